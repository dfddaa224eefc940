// Dredd hooks: shape each documented response's request and the state it needs. Dredd sends every transaction of
// an operation with the document's first example; these hooks turn it into the case that answers that status.
const { createHash, createHmac, randomBytes } = require('node:crypto');
const hooks = require('hooks');
const pg = require('pg');

// The channel Dredd calls as, and its secret: the sandbox's DEMO channel unless QA names another.
const CHANNEL = process.env.DREDD_CHANNEL || 'DEMO';
const SECRET = process.env.DREDD_CHANNEL_SECRET || 'demo-secret';

/** Signs the request as it will be sent (see the partnerSignature scheme; the SDK's sign.ts does the same). */
function signRequest(t, secret = SECRET) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = randomBytes(16).toString('hex');
  const body = t.request.body || '';
  const canonical = [t.request.method, t.fullPath, timestamp, nonce, createHash('sha256').update(body).digest('hex')].join('\n');
  Object.assign(t.request.headers, {
    'X-Channel': CHANNEL,
    'X-Timestamp': timestamp,
    'X-Nonce': nonce,
    'X-Signature': createHmac('sha256', secret).update(canonical).digest('hex'),
  });
}

const base = () => process.env.BINDCARD_URL || process.env.DREDD_BASE_URL;
const dbUrl = process.env.BINDCARD_DATABASE_URL;

function setBody(t, body) {
  t.request.body = typeof body === 'string' ? body : JSON.stringify(body);
  t.request.headers['Content-Length'] = String(Buffer.byteLength(t.request.body));
}
function setPath(t, path) {
  t.fullPath = path;
  t.request.uri = path;
}
async function sql(text) {
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  try { await c.query(text); } finally { await c.end(); }
}
async function post(path, body) {
  const t = { request: { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }, fullPath: path };
  signRequest(t);
  const res = await fetch(base() + path, { method: 'POST', headers: t.request.headers, body: t.request.body });
  return res.json();
}

// A 500 is provoked by taking away a table the operation needs, and giving it back after.
const breakTable = (table) => ({
  before: async (t) => {
    if (!dbUrl) { t.skip = true; hooks.log(`skipped ${t.name}: no database to break (set DREDD_DATABASE_URL)`); return; }
    await sql(`ALTER TABLE ${table} RENAME TO ${table}_contract_off`);
  },
  after: async () => { if (dbUrl) await sql(`ALTER TABLE ${table}_contract_off RENAME TO ${table}`); },
});

// A 429 is provoked by spending the channel's request budget for the next few seconds, and given back after.
const exhaustRate = {
  before: async (t) => {
    if (!dbUrl) { t.skip = true; hooks.log(`skipped ${t.name}: no database to fill the rate counters of (set DREDD_DATABASE_URL)`); return; }
    await sql(`INSERT INTO rate_counters (channel, window_start, slot, count)
      SELECT '${CHANNEL}', date_trunc('second', now()) + make_interval(secs => s), 99, 1000000000 FROM generate_series(0, 10) s
      ON CONFLICT (channel, window_start, slot) DO UPDATE SET count = 1000000000`);
  },
  after: async () => { if (dbUrl) await sql(`DELETE FROM rate_counters WHERE channel = '${CHANNEL}'`); },
};

// A 503 is provoked by keeping the service's one request slot (the contract run starts it with MAX_INFLIGHT=1)
// busy: a new card ending 0002 makes the sandbox gateway take 3 s the first time, so its call holds the slot ~1.5 s.
let slow;
const overload = {
  before: async () => {
    const card = '622202' + String(Math.floor(Math.random() * 1e9)).padStart(9, '0') + '0002';
    slow = post('/demochannel/bindCard?r_c=DEMO', { user_id: 'contract-slow', bank_card: card, open_bank: 'ICBC', user_name: '张三',
      id_number: '110108198802019650', user_mobile: '13420504517', bind_card_src: 1 });
    await new Promise((r) => setTimeout(r, 300));
  },
  after: async () => { await slow; },
};

const protocolCases = (path) => ({
  503: overload,
  401: { before: () => {}, secret: 'not-the-secret' },
  429: exhaustRate,
  400: { before: (t) => setBody(t, { ...JSON.parse(t.request.body), user_id: 'not a valid id!' }) },
  404: { before: (t) => setPath(t, path.replace('/demochannel/', '/nosuchchannel/').replace('r_c=DEMO', 'r_c=NOSUCH')) },
  405: { before: (t) => { t.request.method = 'PUT'; } },
  413: { before: (t) => setBody(t, JSON.stringify({ user_id: 'x'.repeat(70 * 1024) })) },
  415: { before: (t) => { t.request.headers['Content-Type'] = 'text/plain'; } },
});

const CASES = {
  '/{channel}channel/bindCard': {
    // The document's first example is the seed's confirmation; its first call is the same body without the code.
    200: {
      before: async (t) => {
        const confirm = JSON.parse(t.request.body);
        const { verify_code: _, ...first } = confirm;
        const sent = await post('/demochannel/bindCard?r_c=DEMO', first);
        if (sent.data && sent.data.status === 'SMS_SENT') {
          const inbox = await (await fetch(`${base()}/sandbox/sms?mobile=${first.user_mobile}`)).json();
          confirm.verify_code = inbox.messages[0].code;
        }
        setBody(t, confirm);
      },
    },
    ...protocolCases('/demochannel/bindCard?r_c=DEMO'),
    500: breakTable('audit_events'),
  },
  '/{channel}channel/bankCardList': {
    200: {},
    ...protocolCases('/demochannel/bankCardList?r_c=DEMO'),
    500: breakTable('bindings'),
  },
  '/sandbox/sms': {
    200: {},
    400: { before: (t) => setPath(t, '/sandbox/sms?mobile=12345') },
    404: { before: (t) => setPath(t, '/sandbox/nothing?mobile=13420504517') },
    405: { before: (t) => { t.request.method = 'POST'; } },
    500: breakTable('sandbox_sms'),
    503: overload,
  },
};

function caseOf(t) {
  const [path, , status] = t.name.split(' > ');
  return (CASES[path] || {})[status];
}

hooks.beforeEach(async (t, done) => {
  const c = caseOf(t);
  try {
    if (!c) { t.fail = `no hook shapes ${t.name}: add one to test/contract/hooks.cjs`; return done(); }
    if (c.before) await c.before(t);
    if (t.fullPath.includes('channel/')) signRequest(t, c.secret);
    done();
  } catch (e) { t.fail = `hook failed: ${e.message}`; done(); }
});

hooks.afterEach(async (t, done) => {
  const c = caseOf(t);
  try { if (c && c.after) await c.after(t); } catch (e) { hooks.log(`after hook failed: ${e.message}`); }
  done();
});

// Koa answers `application/json; charset=utf-8`; Dredd compares the media type to the letter.
hooks.beforeEachValidation((t, done) => {
  const type = t.real && t.real.headers && t.real.headers['content-type'];
  if (type && type.startsWith('application/json')) t.real.headers['content-type'] = 'application/json';
  done();
});

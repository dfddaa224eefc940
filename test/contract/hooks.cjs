// Dredd hooks: shape each documented response's request. Dredd sends every transaction of an operation with the
// document's first example; these hooks turn it into the case that answers that status. They write to no table:
// 500, 503 and 429 come from the service's test-only fault switch (FAULTS=on, src/faults.ts), and without it those
// cases are skipped with the reason, so the run is safe against a shared environment.
// Run with NODE_OPTIONS=--import=tsx (test/contract/run.mjs does), so the SDK's signing code is the one used here.
const hooks = require('hooks');
const { signedHeaders } = require('../../src/sdk/sign.ts');

// The channel Dredd calls as, and its secret: the sandbox's DEMO channel unless QA names another.
const CHANNEL = process.env.DREDD_CHANNEL || 'DEMO';
const SECRET = process.env.DREDD_CHANNEL_SECRET || 'demo-secret';
const FAULTS = process.env.DREDD_FAULTS === 'on';
const base = () => process.env.BINDCARD_URL || process.env.DREDD_BASE_URL;
const channelPath = (operation) => `/${CHANNEL.toLowerCase()}channel/${operation}?r_c=${CHANNEL}`;

function sign(t, secret = SECRET) {
  Object.assign(t.request.headers, signedHeaders(CHANNEL, secret, t.request.method, t.fullPath, t.request.body || ''));
}
function setBody(t, body) {
  t.request.body = typeof body === 'string' ? body : JSON.stringify(body);
  t.request.headers['Content-Length'] = String(Buffer.byteLength(t.request.body));
}
function setPath(t, path) {
  t.fullPath = path;
  t.request.uri = path;
}
async function post(path, body) {
  const bytes = JSON.stringify(body);
  const res = await fetch(base() + path, {
    method: 'POST',
    body: bytes,
    headers: { 'Content-Type': 'application/json', ...signedHeaders(CHANNEL, SECRET, 'POST', path, bytes) },
  });
  return res.json();
}

/** A case the service's fault switch provokes. */
const fault = (point) => ({
  before: (t) => {
    if (!FAULTS) {
      t.skip = true;
      hooks.log(`skipped ${t.name}: it needs the service's test-only fault switch (FAULTS=on, and DREDD_FAULTS=on here)`);
      return;
    }
    t.request.headers['X-Bindcard-Fault'] = point;
  },
});

const protocolCases = (operation) => ({
  503: fault('overload'),
  401: { secret: 'not-the-secret' },
  429: fault('rate-limit'),
  400: { before: (t) => setBody(t, { ...JSON.parse(t.request.body), user_id: 'not a valid id!' }) },
  404: { before: (t) => setPath(t, `/nosuchchannel/${operation}?r_c=NOSUCH`) },
  405: {
    before: (t) => {
      t.request.method = 'PUT';
    },
  },
  413: { before: (t) => setBody(t, JSON.stringify({ user_id: 'x'.repeat(70 * 1024) })) },
  415: {
    before: (t) => {
      t.request.headers['Content-Type'] = 'text/plain';
    },
  },
  500: fault('internal-error'),
});

const CASES = {
  '/{channel}channel/bindCard': {
    // The document's first example is the seed's confirmation; its first call is the same body without the code.
    200: {
      before: async (t) => {
        const confirm = JSON.parse(t.request.body);
        const first = { ...confirm };
        delete first.verify_code;
        const sent = await post(channelPath('bindCard'), first);
        if (sent.data && sent.data.status === 'SMS_SENT') {
          const inbox = await (await fetch(`${base()}/sandbox/sms?mobile=${first.user_mobile}`)).json();
          confirm.verify_code = inbox.messages[0].code;
        }
        setBody(t, confirm);
      },
    },
    ...protocolCases('bindCard'),
  },
  '/{channel}channel/bankCardList': { 200: {}, ...protocolCases('bankCardList') },
  '/sandbox/sms': {
    200: {},
    400: { before: (t) => setPath(t, '/sandbox/sms?mobile=12345') },
    404: { before: (t) => setPath(t, '/sandbox/nothing?mobile=13420504517') },
    405: {
      before: (t) => {
        t.request.method = 'POST';
      },
    },
    500: fault('internal-error'),
    503: fault('overload'),
  },
};

function caseOf(t) {
  const [path, , status] = t.name.split(' > ');
  return (CASES[path] || {})[status];
}

hooks.beforeEach(async (t, done) => {
  const c = caseOf(t);
  try {
    if (!c) {
      t.fail = `no hook shapes ${t.name}: add one to test/contract/hooks.cjs`;
      return done();
    }
    if (c.before) await c.before(t);
    if (t.fullPath.includes('channel/')) {
      // the document's examples name the DEMO channel; QA may call as another
      setPath(t, t.fullPath.replace('/demochannel/', `/${CHANNEL.toLowerCase()}channel/`).replace('r_c=DEMO', `r_c=${CHANNEL}`));
      sign(t, c.secret);
    }
    done();
  } catch (e) {
    t.fail = `hook failed: ${e.message}`;
    done();
  }
});

// Koa answers `application/json; charset=utf-8`; Dredd compares the media type to the letter.
hooks.beforeEachValidation((t, done) => {
  const type = t.real && t.real.headers && t.real.headers['content-type'];
  if (type && type.startsWith('application/json')) t.real.headers['content-type'] = 'application/json';
  done();
});

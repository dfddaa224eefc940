// Dredd hooks: shape each documented response's request. Dredd sends every transaction of an operation with the
// document's first example; these hooks turn it into the case that answers that status. 500, 503 and 429 come from the
// service's test-only fault switch (FAULTS=on, src/faults.ts), and without it those cases are skipped with the reason.
// Only two cases write, both through the sandbox's own flows: bindCard's 200 binds the seed's card for the seed's user,
// and unbindCard's 200 binds it for a fresh user id and unbinds it for that user (the seed's user keeps it, for the
// cases after). Dredd runs the transactions in document order: bindCard, bankCardList, queryBinding, unbindCard,
// sandbox/callbacks, sandbox/sms. bindCard's `callbacks` (the events we send) make no transaction: Dredd 14 warns that
// the key is unsupported and goes on.
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
async function newestCode(mobile) {
  const inbox = await (await fetch(`${base()}/sandbox/sms?mobile=${mobile}`)).json();
  return inbox.messages[0].code;
}

/** A new card bound through the sandbox flow: the first call, the code from the sandbox phone, the confirmation. */
async function bindNewCard(confirm) {
  const first = { ...confirm };
  delete first.verify_code;
  const sent = await post(channelPath('bindCard'), first);
  if (sent.code === 200 && sent.data.status === 'BOUND') return sent;
  if (sent.code !== 200) throw new Error(`the first call for ${first.user_id} answered ${JSON.stringify(sent)}`);
  const bound = await post(channelPath('bindCard'), { ...confirm, verify_code: await newestCode(first.user_mobile) });
  if (bound.code !== 200) throw new Error(`the confirmation for ${first.user_id} answered ${JSON.stringify(bound)}`);
  return bound;
}

/** A check of the answer itself, where the schema alone would also pass another outcome. */
const answers = (what, ok) => (body) => (ok(body) ? undefined : `expected ${what}, got ${JSON.stringify(body)}`);

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

const sandboxCases = (path, badQuery, query) => ({
  200: {},
  400: { before: (t) => setPath(t, `${path}?${badQuery}`) },
  404: { before: (t) => setPath(t, `/sandbox/nothing?${query}`) },
  405: {
    before: (t) => {
      t.request.method = 'POST';
    },
  },
  500: fault('internal-error'),
  503: fault('overload'),
});

// The document's first example of bindCard: the seed's confirmation (kept by beforeAll for unbindCard's case).
let seedConfirmation;

const CASES = {
  '/{channel}channel/bindCard': {
    // The seed's confirmation; its first call is the same body without the code. The seed's user keeps the card.
    200: {
      before: async (t) => {
        const confirm = JSON.parse(t.request.body);
        const first = { ...confirm };
        delete first.verify_code;
        const sent = await post(channelPath('bindCard'), first);
        if (sent.data && sent.data.status === 'SMS_SENT') confirm.verify_code = await newestCode(first.user_mobile);
        setBody(t, confirm);
      },
      check: answers('200 BOUND', (b) => b.code === 200 && b.data.status === 'BOUND'),
    },
    ...protocolCases('bindCard'),
  },
  '/{channel}channel/bankCardList': {
    200: { check: answers("the seed's card listed", (b) => b.data.cards.length > 0) },
    ...protocolCases('bankCardList'),
  },
  // The seed's user and card, bound by bindCard's 200 case.
  '/{channel}channel/queryBinding': {
    200: { check: answers('200 BOUND', (b) => b.data.status === 'BOUND') },
    ...protocolCases('queryBinding'),
  },
  // The example names the seed's card for the seed's user; the case binds that card for a fresh user id of the same
  // person and unbinds it there, so the seed user's binding stays (and the agreement with it: no unsigning).
  '/{channel}channel/unbindCard': {
    200: {
      before: async (t) => {
        if (!seedConfirmation) throw new Error("bindCard's first example was not found among the transactions");
        const userId = `dredd-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
        await bindNewCard({ ...seedConfirmation, user_id: userId });
        setBody(t, { ...JSON.parse(t.request.body), user_id: userId });
      },
      check: answers('200 UNBOUND', (b) => b.code === 200 && b.data.status === 'UNBOUND'),
    },
    ...protocolCases('unbindCard'),
  },
  '/sandbox/callbacks': sandboxCases('/sandbox/callbacks', 'channel=x', `channel=${CHANNEL}`),
  '/sandbox/sms': sandboxCases('/sandbox/sms', 'mobile=12345', 'mobile=13420504517'),
};

function caseOf(t) {
  const [path, , status] = t.name.split(' > ');
  return (CASES[path] || {})[status];
}

hooks.beforeAll((transactions, done) => {
  const bindCard = transactions.find((t) => caseOf(t) === CASES['/{channel}channel/bindCard'][200]);
  seedConfirmation = bindCard && JSON.parse(bindCard.request.body);
  done();
});

hooks.beforeEach(async (t, done) => {
  const c = caseOf(t);
  try {
    if (!c) {
      t.fail = `no hook shapes ${t.name}: add one to test/contract/hooks.cjs`;
      return done();
    }
    if (t.fullPath.startsWith('/sandbox/callbacks')) setPath(t, t.fullPath.replace('channel=DEMO', `channel=${CHANNEL}`));
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

// The outcome itself, for the cases whose schema would pass another one too.
hooks.afterEach((t, done) => {
  const c = caseOf(t);
  if (c && c.check && !t.skip && t.real && !t.fail) {
    try {
      const problem = c.check(JSON.parse(t.real.body));
      if (problem) t.fail = problem;
    } catch (e) {
      t.fail = `the answer is not the expected JSON: ${e.message}`;
    }
  }
  done();
});

import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { createCallbackWorker } from '../../src/app.ts';
import { CallbackWorker } from '../../src/callbacks/worker.ts';
import { loadConfig } from '../../src/config.ts';
import { vaultFor } from '../../src/crypto/vault.ts';
import { poll } from '../../src/lib/poll.ts';
import { createLogger } from '../../src/log.ts';
import { verifyRequest } from '../../src/sdk/sign.ts';
import { ChannelStore } from '../../src/store/channel-store.ts';
import { OutboxStore } from '../../src/store/outbox-store.ts';
import { FakePartner } from '../fakes/fake-partner.ts';
import { countRows, embeddedRun, resetDb, testDatabaseUrl, testDb } from '../setup/database.ts';
import { startListening } from '../setup/service-process.ts';
import { bindNewCard, requester, seedNewCard, startService, type Service } from '../setup/service.ts';

// The seed card's numbers, none of which an event may carry.
const CARD = '6222022005001212723';
const ID_NUMBER = '110108198802019650';
const MOBILE = '13420504517';
const MASKED = '622202*********2723';
const USER = '246964109149933';

/** The first retry comes 15 s (±20 %) after a failed try, the second 60 s: past the upper bound, each is due. */
const PAST_FIRST_DELAY = 19;
const PAST_SECOND_DELAY = 73;

interface OutboxRow {
  id: string;
  type: string;
  status: string;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  next_at: Date;
}

/** The outbox as the database holds it, oldest first. */
async function outbox(): Promise<OutboxRow[]> {
  const [rows] = await testDb().query(
    'SELECT id, type, status, attempts, last_status, last_error, next_at FROM callback_events ORDER BY created_at, id',
  );
  return rows as OutboxRow[];
}

async function onlyEvent(): Promise<OutboxRow> {
  const rows = await outbox();
  expect(rows).to.have.length(1);
  return rows[0];
}

const seconds = () => Math.floor(Date.now() / 1000);

/** `npm run callbacks -- <args>` on the run's database, as an operator runs it. */
async function callbacksCli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/callbacks.ts', ...args], {
    env: { ...process.env, DATABASE_URL: testDatabaseUrl(), NODE_ENV: 'test' },
  });
  return stdout;
}

describe('callbacks: the outbox delivers binding events to the partner', () => {
  let partner: FakePartner;
  const services: Service[] = [];
  const serve = async (env: Record<string, string> = {}) => {
    const svc = await startService(env);
    services.push(svc);
    return svc;
  };
  /** A new card bound through the service, its events going to the fake partner. */
  const bindWithCallback = async (svc: Service, overrides: Record<string, unknown> = {}) => {
    const answer = await bindNewCard(svc, seedNewCard({ notify_url: partner.notifyUrl, ...overrides }));
    expect(answer.body.data.status).to.equal('BOUND');
    return answer.body.data.card_id;
  };

  beforeEach(resetDb);
  beforeEach(async () => {
    partner = await new FakePartner().start();
  });
  afterEach(async () => {
    await Promise.all(services.splice(0).map((svc) => svc.stop()));
    await partner.stop();
  });

  it("delivers a confirmation's binding.bound once, signed with the channel's secret, as the documented BindingEvent", async () => {
    const svc = await serve();
    const before = svc.clock.now().getTime();
    const cardId = await bindWithCallback(svc);
    const after = svc.clock.now().getTime();
    expect(await svc.worker.deliverDue()).to.equal(1);
    // delivered: not due again, however long one waits
    expect(await svc.worker.deliverDue()).to.equal(0);
    svc.clock.advance(2 * 86400);
    expect(await svc.worker.deliverDue()).to.equal(0);

    expect(partner.requests).to.have.length(1);
    const [request] = partner.requests;
    expect(request.path).to.equal('/bindcard/events');
    expect(request.verified).to.equal(true);
    expect(request.headers['x-channel']).to.equal('DEMO');
    expect(request.headers['content-type']).to.equal('application/json');
    const event = request.event!;
    // deep equality: exactly the documented fields, nothing more
    expect(event).to.deep.equal({
      id: event.id,
      type: 'binding.bound',
      created: event.created,
      channel: 'DEMO',
      user_id: USER,
      data: { card_id: cardId, bank_card: MASKED, open_bank: 'ICBC', bank_card_type: 0 },
    });
    expect(event.id).to.match(/^evt_[0-9a-f]{20}$/);
    expect(new Date(event.created).toISOString()).to.equal(event.created);
    expect(Date.parse(event.created)).to.be.within(before, after);
    const text = request.raw.toString('utf8');
    for (const secret of [CARD, ID_NUMBER, MOBILE, '张三']) expect(text).not.to.include(secret);

    expect(await onlyEvent()).to.include({ id: event.id, type: 'binding.bound', status: 'DELIVERED', attempts: 1, last_status: 204 });
  });

  it('delivers binding.unbound to the address the binding was made with', async () => {
    const svc = await serve();
    const cardId = await bindWithCallback(svc);
    expect((await svc.unbind({ user_id: USER, card_id: cardId })).body.data.status).to.equal('UNBOUND');
    expect(await svc.worker.deliverDue()).to.equal(2);
    const unbound = partner.events().find((e) => e.type === 'binding.unbound');
    expect(unbound?.data).to.deep.equal({ card_id: cardId, bank_card: MASKED, open_bank: 'ICBC', bank_card_type: 0 });
    expect(partner.requests.every((r) => r.verified)).to.equal(true);
  });

  it('retries after a 500 and a reset connection on the schedule, with fresh signing headers and the same bytes', async () => {
    const svc = await serve();
    partner.script({ status: 500 }, { reset: true });
    await bindWithCallback(svc);
    const startedAt: number[] = [];
    const pass = () => {
      startedAt.push(seconds());
      return svc.worker.deliverDue();
    };

    const before = svc.clock.now().getTime();
    expect(await pass()).to.equal(1);
    const after = svc.clock.now().getTime();
    let row = await onlyEvent();
    expect(row).to.include({ status: 'PENDING', attempts: 1, last_status: 500, last_error: 'HTTP 500' });
    // due again 15 s ± 20 % after the try
    expect(row.next_at.getTime()).to.be.within(before + 12_000, after + 18_000);
    // before the delay: no try
    expect(await svc.worker.deliverDue()).to.equal(0);
    svc.clock.advance(11);
    expect(await svc.worker.deliverDue()).to.equal(0);
    svc.clock.advance(PAST_FIRST_DELAY - 11);
    expect(await pass()).to.equal(1);
    row = await onlyEvent();
    expect(row).to.include({ status: 'PENDING', attempts: 2, last_status: null, last_error: 'ECONNRESET' });
    svc.clock.advance(47); // under 60 s - 20 %
    expect(await svc.worker.deliverDue()).to.equal(0);
    svc.clock.advance(PAST_SECOND_DELAY - 47);
    expect(await pass()).to.equal(1);
    expect(await onlyEvent()).to.include({ status: 'DELIVERED', attempts: 3, last_status: 204, last_error: null });

    const tries = partner.requests;
    expect(tries).to.have.length(3);
    expect(tries.every((t) => t.verified)).to.equal(true);
    expect(new Set(tries.map((t) => t.event?.id)).size).to.equal(1);
    for (const t of tries) expect(t.raw.equals(tries[0].raw)).to.equal(true);
    expect(new Set(tries.map((t) => t.headers['x-nonce'])).size).to.equal(3);
    expect(new Set(tries.map((t) => t.headers['x-signature'])).size).to.equal(3);
    // each try is stamped when it is made, not when the event was written
    tries.forEach((t, i) => expect(Number(t.headers['x-timestamp'])).to.be.at.least(startedAt[i]));
  });

  it("counts an answer later than the try's timeout as a failed try, and retries it", async () => {
    const svc = await serve({ CALLBACK_TIMEOUT_MS: '300' });
    partner.script({ status: 204, delayMs: 2000 });
    await bindWithCallback(svc);
    const started = performance.now();
    expect(await svc.worker.deliverDue()).to.equal(1);
    // the try gave up at its timeout, not when the answer came
    expect(performance.now() - started).to.be.below(1500);
    expect(await onlyEvent()).to.include({ status: 'PENDING', attempts: 1, last_status: null, last_error: 'no answer within 300 ms' });
    svc.clock.advance(PAST_FIRST_DELAY);
    expect(await svc.worker.deliverDue()).to.equal(1);
    expect(await onlyEvent()).to.include({ status: 'DELIVERED', attempts: 2, last_status: 204 });
    expect(partner.requests).to.have.length(2);
  });

  it('dead-letters an event after its last try; the CLI lists it and replays it from the first try', async function () {
    // the CLI is a process of its own: the embedded database serves only this one
    if (embeddedRun) return this.skip();
    this.timeout(30_000);
    const svc = await serve({ CALLBACK_RETRY_SECONDS: '1,1' });
    partner.failNext(3);
    await bindWithCallback(svc);
    expect(await svc.worker.deliverDue()).to.equal(1);
    for (const made of [1, 2]) {
      expect(await onlyEvent()).to.include({ status: 'PENDING', attempts: made });
      svc.clock.advance(2); // past 1 s + 20 %
      expect(await svc.worker.deliverDue()).to.equal(1);
    }
    const dead = await onlyEvent();
    expect(dead).to.include({ status: 'DEAD', attempts: 3, last_status: 500, last_error: 'HTTP 500' });
    svc.clock.advance(86400);
    expect(await svc.worker.deliverDue()).to.equal(0);
    expect(partner.requests).to.have.length(3);

    const listed = await callbacksCli('list', '--dead');
    const line = listed.split('\n').find((l) => l.startsWith(dead.id));
    expect(line?.split('\t').slice(0, 5)).to.deep.equal([dead.id, 'DEMO', 'binding.bound', 'DEAD', '3']);
    expect(listed).to.include('1 event(s)');

    expect(await callbacksCli('replay', dead.id)).to.include(`event ${dead.id} will be delivered again`);
    expect(await onlyEvent()).to.include({ status: 'PENDING', attempts: 0, last_error: null });
    expect(await svc.worker.deliverDue()).to.equal(1);
    expect(await onlyEvent()).to.include({ status: 'DELIVERED', attempts: 1, last_status: 204 });
    expect(partner.requests).to.have.length(4);
    expect(await callbacksCli('list', '--dead')).to.include('0 event(s)');
  });

  it('sends nothing more to a host the channel no longer has: the try fails naming why', async () => {
    const svc = await serve();
    await svc.addChannel('ACME');
    const channels = new ChannelStore(testDb(), vaultFor(loadConfig({ NODE_ENV: 'test' })), true);
    await channels.addCallbackHost('ACME', 'hooks.acme.example');
    const bound = await bindNewCard(svc, seedNewCard({ notify_url: 'https://hooks.acme.example/events' }), 'ACME');
    expect(bound.body.data.status).to.equal('BOUND');
    await channels.removeCallbackHost('ACME', 'hooks.acme.example');
    await svc.worker.deliverDue();
    const event = await onlyEvent();
    expect([event.status, event.attempts, event.last_error]).to.deep.equal([
      'PENDING',
      1,
      "refused: hooks.acme.example is not among the channel's callback hosts",
    ]);
  });

  it('does not follow a redirect: the try fails and the Location gets nothing', async () => {
    const svc = await serve();
    const elsewhere = await new FakePartner().start();
    try {
      partner.script({ status: 302, location: elsewhere.notifyUrl });
      await bindWithCallback(svc);
      expect(await svc.worker.deliverDue()).to.equal(1);
      expect(await onlyEvent()).to.include({ status: 'PENDING', attempts: 1, last_status: 302, last_error: 'HTTP 302' });
      svc.clock.advance(PAST_FIRST_DELAY);
      expect(await svc.worker.deliverDue()).to.equal(1);
      expect(await onlyEvent()).to.include({ status: 'DELIVERED', attempts: 2 });
      expect(partner.requests).to.have.length(2);
      expect(elsewhere.requests).to.have.length(0);
    } finally {
      await elsewhere.stop();
    }
  });

  for (const [what, change, bank, sub] of [
    ['a BIN of another bank', { open_bank: 'ABC' }, 'ABC', 'BIN_BANK_MISMATCH'],
    ['a card the issuer rejects (sandbox 0501)', { bank_card: '6222020000000010501' }, 'ICBC', 'AUTH_REJECTED'],
  ] as const) {
    it(`emits one binding.failed for a first call refused 501 ${sub} (${what}), not again when it is sent again`, async () => {
      const svc = await serve();
      const body = seedNewCard({ ...change, notify_url: partner.notifyUrl });
      // svc.bind signs each request afresh: the second is the same request with a new nonce
      for (let i = 0; i < 2; i++) expect((await svc.bind(body)).body).to.deep.include({ code: 501, data: { sub_code: sub } });
      expect(await countRows('callback_events')).to.equal(1);
      expect(await svc.worker.deliverDue()).to.equal(1);
      expect(await svc.worker.deliverDue()).to.equal(0);
      expect(partner.requests).to.have.length(1);
      expect(partner.requests[0].verified).to.equal(true);
      const [event] = partner.events();
      const card = String(body.bank_card);
      expect(event).to.deep.equal({
        id: event.id,
        type: 'binding.failed',
        created: event.created,
        channel: 'DEMO',
        user_id: USER,
        data: {
          card_id: null,
          bank_card: `${card.slice(0, 6)}*********${card.slice(-4)}`,
          open_bank: bank,
          bank_card_type: 0,
          sub_code: sub,
        },
      });
    });
  }

  it('makes each try once when two workers run passes at the same time', async () => {
    const svc = await serve();
    const count = 20;
    for (let n = 0; n < count; n++) {
      const refused = await svc.bind(seedNewCard({ user_id: `user-${n}`, open_bank: 'ABC', notify_url: partner.notifyUrl }));
      expect(refused.body.data.sub_code).to.equal('BIN_BANK_MISMATCH');
    }
    const other = createCallbackWorker({
      config: loadConfig({ NODE_ENV: 'test' }),
      db: testDb(),
      log: createLogger('silent'),
      now: svc.clock.now,
    });
    /** Passes until one finds nothing due; the tries made. */
    const drain = async (worker: CallbackWorker) => {
      let tries = 0;
      for (let made = await worker.deliverDue(); made > 0; made = await worker.deliverDue()) tries += made;
      return tries;
    };
    // Claims as slow as under load (10 ms a row) keep both workers' claims in flight together: a claim that did not
    // lock what it takes would take the same events twice.
    await testDb().query(`
      CREATE FUNCTION slow_claim() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.01); RETURN NEW; END $$;
      CREATE TRIGGER slow_claim BEFORE UPDATE ON callback_events FOR EACH ROW WHEN (NEW.attempts > OLD.attempts)
        EXECUTE FUNCTION slow_claim()`);
    let made: number[];
    try {
      made = await Promise.all([drain(svc.worker), drain(other)]);
    } finally {
      await testDb().query('DROP TRIGGER slow_claim ON callback_events; DROP FUNCTION slow_claim()');
    }
    expect(made[0] + made[1]).to.equal(count);
    expect(
      made.every((n) => n > 0),
      `both workers made tries: ${made.join(', ')}`,
    ).to.equal(true);

    const ids = partner.events().map((e) => e.id);
    expect(ids).to.have.length(count);
    expect(new Set(ids).size).to.equal(count);
    const rows = await outbox();
    expect(rows.map((r) => [r.status, r.attempts])).to.deep.equal(rows.map(() => ['DELIVERED', 1]));
    const [tries] = (await testDb().query('SELECT attempt FROM sandbox_callbacks')) as [{ attempt: number }[], unknown];
    expect(tries.map((t) => t.attempt)).to.deep.equal(ids.map(() => 1));
  });

  for (const host of ['127.0.0.1', 'localhost']) {
    it(`refuses in production a notify address on ${host} at delivery: the try fails naming the refusal, nothing is sent`, async () => {
      const svc = await serve();
      await bindWithCallback(svc, { notify_url: partner.notifyUrl.replace('127.0.0.1', host) });
      const config = loadConfig({ NODE_ENV: 'test' });
      const production = new CallbackWorker({
        outbox: new OutboxStore(testDb()),
        // DEMO exists only with the sandbox on: here it stands for any channel with its secret
        channels: new ChannelStore(testDb(), vaultFor(config), true),
        log: createLogger('silent'),
        now: svc.clock.now,
        config: { retrySeconds: [15], timeoutMs: 2000, pollMs: 1000, refuseInternal: true },
      });
      expect(await production.deliverDue()).to.equal(1);
      const row = await onlyEvent();
      expect(row).to.include({ status: 'PENDING', attempts: 1, last_status: null });
      expect(row.last_error).to.equal(`refused: ${host} resolves to an internal address`);
      expect(partner.requests).to.have.length(0);
      // the same event from a worker that allows loopback arrives: the refusal was the only obstacle (127.0.0.1 only:
      // the partner does not listen on ::1, where localhost may resolve)
      if (host === '127.0.0.1') {
        svc.clock.advance(PAST_FIRST_DELAY);
        expect(await svc.worker.deliverDue()).to.equal(1);
        expect(partner.requests).to.have.length(1);
      }
    });
  }

  it('delivers after a restart an event whose process was killed (SIGKILL) before delivering it', async function () {
    // two processes in turn on one database: the embedded database serves only this one
    if (embeddedRun) return this.skip();
    this.timeout(60_000);
    const env = { DATABASE_URL: testDatabaseUrl(), PORT: '0', ADMIN_PORT: '0', NODE_ENV: 'test', DB_POOL_MAX: '3', LOG_LEVEL: 'warn' };
    // the longest poll allowed: the first process never makes a pass while the test runs
    const first = await startListening('src/main.ts', { ...env, CALLBACK_POLL_MS: '60000' });
    try {
      const call = async (path: string, body: unknown) => (await requester(first.url)('POST', path, body)).body;
      const card = seedNewCard({ notify_url: partner.notifyUrl });
      expect((await call('/demochannel/bindCard?r_c=DEMO', card)).data.status).to.equal('SMS_SENT');
      const inbox = (await (await fetch(`${first.url}/sandbox/sms?mobile=${MOBILE}`)).json()) as { messages: { code: string }[] };
      const confirmed = await call('/demochannel/bindCard?r_c=DEMO', { ...card, verify_code: inbox.messages[0].code });
      expect(confirmed.data.status).to.equal('BOUND');
    } finally {
      first.proc.kill('SIGKILL');
      if (first.proc.exitCode === null && first.proc.signalCode === null) await once(first.proc, 'exit');
    }
    expect(await onlyEvent()).to.include({ type: 'binding.bound', status: 'PENDING', attempts: 0 });
    expect(partner.requests).to.have.length(0);

    const second = await startListening('src/main.ts', { ...env, CALLBACK_POLL_MS: '50' });
    try {
      const deadline = Date.now() + 15_000;
      const delivered = await poll(async () => ((await onlyEvent()).status === 'DELIVERED' ? true : undefined), {
        intervalMs: 50,
        deadline,
      });
      expect(delivered, 'delivered within 15 s of the restart').to.equal(true);
    } finally {
      await second.stop();
    }
    expect(partner.events().map((e) => e.type)).to.deep.equal(['binding.bound']);
    expect(partner.requests[0].verified).to.equal(true);
  });

  it('shows every try at GET /sandbox/callbacks, newest first, with what was sent and how the partner answered (no body from loopback)', async () => {
    const svc = await serve();
    partner.script({ status: 500, body: 'busy' }, { reset: true }).answer({ status: 200, body: 'ok' });
    await bindWithCallback(svc);
    expect(await svc.worker.deliverDue()).to.equal(1);
    svc.clock.advance(PAST_FIRST_DELAY);
    expect(await svc.worker.deliverDue()).to.equal(1);
    svc.clock.advance(PAST_SECOND_DELAY);
    expect(await svc.worker.deliverDue()).to.equal(1);

    const answer = await svc.request('GET', '/sandbox/callbacks?channel=DEMO');
    expect(answer.status).to.equal(200);
    const tries = answer.body.deliveries;
    expect(tries.map((t) => [t.attempt, t.response_status, t.response_body, t.error])).to.deep.equal([
      [3, 200, null, null],
      [2, null, null, 'ECONNRESET'],
      [1, 500, null, null],
    ]);
    const received = [...partner.requests].reverse();
    tries.forEach((t, i) => {
      expect(t).to.include({ event_id: received[i].event?.id, type: 'binding.bound', url: partner.notifyUrl });
      expect(t.request_body).to.equal(received[i].raw.toString('utf8'));
      expect(t.request_headers['X-Channel']).to.equal('DEMO');
      expect(t.request_headers['X-Nonce']).to.equal(received[i].headers['x-nonce']);
      expect(t.request_headers['X-Signature']).to.equal(received[i].headers['x-signature']);
      expect(verifyRequest(['demo-secret'], 'POST', '/bindcard/events', t.request_headers, t.request_body)).to.equal(true);
    });
    expect(Date.parse(tries[0].at)).to.be.above(Date.parse(tries[1].at));
    expect((await svc.request('GET', '/sandbox/callbacks?channel=ACME')).body.deliveries).to.deep.equal([]);
  });
});

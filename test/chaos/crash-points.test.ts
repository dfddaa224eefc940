import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import pg from 'pg';
import { FakeGateway } from '../fakes/fake-gateway.ts';
import { embeddedRun } from '../setup/database.ts';
import { requester, seedNewCard } from '../setup/service.ts';
import { startListening, type Listening } from '../setup/service-process.ts';
import { createThrowawayDatabase, type ThrowawayDatabase } from '../setup/throwaway-database.ts';

interface Body {
  code: number;
  data: { status?: string; sub_code?: string; card_id?: string };
}

/**
 * Each crash point of the fault switch (src/faults.ts) on a real process: the request that names it kills the process
 * (no answer), the service is started again on the same database, and the partner retries as it would (same body, a
 * new nonce, no fault). Gateways are the HTTP adapters against the fake gateway in this process, which counts calls and
 * answers a request number it has seen with its first answer (no second review, text or signing).
 */
describe('crash points: killed at each, restarted, retried by the partner', function () {
  this.timeout(120_000);
  let database: ThrowawayDatabase;
  let client: pg.Client;
  let fake: FakeGateway;
  let svc: Listening | undefined;
  /** Every process a case started (the one in svc among them): a failed assertion must not leave one running. */
  const started: Listening[] = [];
  const start = async (vars: Record<string, string>) => {
    const listening = await startListening('src/main.ts', vars);
    started.push(listening);
    return listening;
  };
  const stopAll = async (keep?: Listening) => {
    const others = started.filter((p) => p !== keep);
    await Promise.all(others.map((p) => p.stop()));
    started.splice(0, started.length, ...started.filter((p) => p === keep));
  };
  const env = (extra: Record<string, string> = {}) => ({
    DATABASE_URL: database.url,
    PORT: '0',
    ADMIN_PORT: '0',
    NODE_ENV: 'test',
    FAULTS: 'chaos',
    DB_POOL_MAX: '8',
    CARD_AUTH_URL: fake.url,
    CARD_AUTH_SECRET: fake.secret,
    SMS_URL: fake.url,
    SMS_SECRET: fake.secret,
    ...extra,
  });

  before(async function () {
    // a process of its own on a database of its own: needs a PostgreSQL server
    if (embeddedRun) return this.skip();
    database = await createThrowawayDatabase({ prefix: 'crash_points' });
    fake = await new FakeGateway().start();
    svc = await start(env());
    client = new pg.Client({ connectionString: database.url });
    await client.connect();
  });
  // after each case only the current service is left running (a case may have started others, or died before it
  // switched svc over); after the last, none
  afterEach(() => stopAll(svc));
  after(async () => {
    await stopAll();
    await client?.end();
    await fake?.stop();
    await database?.drop();
  });
  beforeEach(() => fake.reset());

  const post = async (operation: string, body: unknown, fault?: string): Promise<Body> =>
    (await requester(svc!.url)('POST', `/demochannel/${operation}?r_c=DEMO`, body, fault ? { 'X-Bindcard-Fault': fault } : {})).body;

  /** The request dies with the process: no answer; then the service is started again on the same database. */
  const crash = async (operation: string, body: unknown, fault: string, extra: Record<string, string> = {}) => {
    const { proc } = svc!;
    const answered = await post(operation, body, fault).then(
      (b) => b,
      () => undefined,
    );
    expect(answered, 'an answer from a process that should have died').to.equal(undefined);
    if (proc.exitCode === null && proc.signalCode === null) await once(proc, 'exit');
    expect(proc.signalCode).to.equal('SIGKILL');
    svc = await start(env(extra));
  };

  /** The partner's retries: again after each 505 that says "retry", until another answer (the ones before it kept). */
  const retry = async (operation: string, body: unknown): Promise<{ answer: Body; retried: string[] }> => {
    const retried: string[] = [];
    for (;;) {
      const answer = await post(operation, body);
      const sub = answer.data.sub_code;
      if (answer.code !== 505 || (sub !== 'PROVIDER_TIMEOUT' && sub !== 'PROVIDER_ERROR') || retried.length >= 10) {
        return { answer, retried };
      }
      retried.push(sub);
      await sleep(200);
    }
  };

  const calls = (path: string) => fake.callsTo(`/v1/card-auth/${path}`);
  const requestNumbers = (path: string) => new Set(fake.requestNumbers(`/v1/card-auth/${path}`));
  const bindingsOf = async (userId: string) =>
    (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM bindings WHERE user_id = $1', [userId])).rows[0].n;

  let serial = 0;
  /** A card, user and mobile no other case uses (the SMS limits count per mobile and card). */
  const freshCard = () => {
    serial++;
    return seedNewCard({
      user_id: `crash-user-${serial}`,
      bank_card: `62220200000${String(serial).padStart(4, '0')}1234`,
      user_mobile: `1342050${String(serial).padStart(4, '0')}`,
    });
  };
  const mobileOf = (card: Record<string, unknown>) => card.user_mobile as string;

  const firstCall = async (card: Record<string, unknown>) => {
    expect((await post('bindCard', card)).data.status).to.equal('SMS_SENT');
    return fake.codeFor(mobileOf(card));
  };

  it('crash-after-card-auth: the retry reviews again under the same request number (the gateway answers it from its first review), one text', async () => {
    const card = freshCard();
    await crash('bindCard', card, 'crash-after-card-auth');
    const { answer } = await retry('bindCard', card);
    expect(answer.data.status).to.equal('SMS_SENT');
    expect(calls('verify')).to.have.length(2);
    expect(requestNumbers('verify').size).to.equal(1);
    expect(fake.smsTo(mobileOf(card))).to.have.length(1);
    const done = await post('bindCard', { ...card, verify_code: fake.codeFor(mobileOf(card)) });
    expect(done.data.status).to.equal('BOUND');
    expect([calls('sign').length, await bindingsOf(card.user_id as string)]).to.deep.equal([1, 1]);
  });

  it('crash-after-sms: the retry sends the same code under the same request number: one text, and its code binds', async () => {
    const card = freshCard();
    await crash('bindCard', card, 'crash-after-sms');
    const [text] = fake.smsTo(mobileOf(card)); // the borrower has the text
    const { answer } = await retry('bindCard', card);
    expect(answer.data.status).to.equal('SMS_SENT');
    expect(calls('verify')).to.have.length(1);
    expect(fake.requestNumbers('/v1/sms/send'))
      .to.have.length(2)
      .and.satisfy(([a, b]: string[]) => a === b);
    expect(fake.smsTo(mobileOf(card))).to.deep.equal([text]);
    const done = await post('bindCard', { ...card, verify_code: fake.codeFor(mobileOf(card)) });
    expect(done.data.status).to.equal('BOUND');
    expect([calls('sign').length, await bindingsOf(card.user_id as string)]).to.deep.equal([1, 1]);
  });

  it('crash-after-sign: the retry signs again under the same request number (the same agreement), one binding', async () => {
    const card = freshCard();
    const code = await firstCall(card);
    await crash('bindCard', { ...card, verify_code: code }, 'crash-after-sign');
    const { answer } = await retry('bindCard', { ...card, verify_code: code });
    expect(answer.data.status).to.equal('BOUND');
    expect(calls('sign')).to.have.length(2);
    expect(requestNumbers('sign').size).to.equal(1);
    const agreements = await client.query('SELECT agreement_no FROM cards WHERE id = $1', [answer.data.card_id]);
    expect(agreements.rows).to.have.length(1);
    expect(await bindingsOf(card.user_id as string)).to.equal(1);
    expect(fake.smsTo(mobileOf(card))).to.have.length(1);
  });

  it('crash-after-bind-commit: the retry answers BOUND from the binding, calling no gateway', async () => {
    const card = freshCard();
    const code = await firstCall(card);
    await crash('bindCard', { ...card, verify_code: code }, 'crash-after-bind-commit');
    const { answer, retried } = await retry('bindCard', { ...card, verify_code: code });
    expect([answer.data.status, retried]).to.deep.equal(['BOUND', []]);
    expect([calls('verify').length, calls('sign').length, fake.smsTo(mobileOf(card)).length]).to.deep.equal([1, 1, 1]);
    expect(await bindingsOf(card.user_id as string)).to.equal(1);
  });

  it('crash-after-unsign: the retry ends the agreement again under the same request number, and the binding goes', async () => {
    const card = freshCard();
    const code = await firstCall(card);
    const bound = await post('bindCard', { ...card, verify_code: code });
    const unbind = { user_id: card.user_id, card_id: bound.data.card_id };
    await crash('unbindCard', unbind, 'crash-after-unsign');
    expect(await bindingsOf(card.user_id as string)).to.equal(1);
    const { answer } = await retry('unbindCard', unbind);
    expect(answer.data.status).to.equal('UNBOUND');
    expect(calls('unsign')).to.have.length(2);
    expect(requestNumbers('unsign').size).to.equal(1);
    expect(await bindingsOf(card.user_id as string)).to.equal(0);
  });

  it("a retry within the crashed request's lease, on another instance: PROCESSING, 505 PROVIDER_TIMEOUT, then BOUND", async () => {
    // Two instances with a lease of PROVIDER_TIMEOUT_MS + 500 ms = 5.5 s: one dies in the signing, the partner's
    // retries land on the other at once (a restart may take longer than the lease).
    const slow = env({ PROVIDER_TIMEOUT_MS: '5000' });
    await svc!.stop();
    const [doomed, other] = await Promise.all([start(slow), start(slow)]);
    svc = doomed;
    const card = freshCard();
    const code = await firstCall(card);
    const answered = await post('bindCard', { ...card, verify_code: code }, 'crash-after-sign').catch(() => undefined);
    expect(answered).to.equal(undefined);
    svc = other;
    const query = { user_id: card.user_id, bank_card: card.bank_card };
    expect((await post('queryBinding', query)).data.status).to.equal('PROCESSING');
    const started = performance.now();
    const waited = await post('bindCard', { ...card, verify_code: code });
    expect(waited.data.sub_code).to.equal('PROVIDER_TIMEOUT');
    expect(performance.now() - started).to.be.below(2500);
    while ((await post('queryBinding', query)).data.status === 'PROCESSING') await sleep(250);
    const { answer } = await retry('bindCard', { ...card, verify_code: code });
    expect(answer.data.status).to.equal('BOUND');
    expect(requestNumbers('sign').size).to.equal(1);
    expect(await bindingsOf(card.user_id as string)).to.equal(1);
  });
});

import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import type { Sequelize } from 'sequelize';
import { loadConfig } from '../../src/config.ts';
import { poll } from '../../src/lib/poll.ts';
import { createAdminServer } from '../../src/ops/admin.ts';
import { isDatabaseUnavailable } from '../../src/ops/database.ts';
import { Readiness, type Check } from '../../src/ops/readiness.ts';
import { connect, MIGRATIONS } from '../../src/store/db.ts';
import { sql, STATEMENT_LIMIT_MS, transactor } from '../../src/store/sql.ts';
import { TcpProxy } from '../fakes/tcp-proxy.ts';
import { embeddedRun, resetDb, testDatabaseUrl, testDb } from '../setup/database.ts';
import { idNumber, seedNewCard, startService, type Answer, type Service } from '../setup/service.ts';

// The service's database goes away behind a TCP proxy (test/fakes/tcp-proxy.ts): cut (the host is gone: connections
// reset, new ones refused) or black-holed (a partition: nothing answers, nothing closes). The machine's PostgreSQL
// stays up. The service runs in this process, both of its pools on one pool through the proxy.

/** Partners time out at 2 s: every answer, 503 included, comes before. */
const PARTNER_TIMEOUT_MS = 2000;
/** The promise: the service answers again within a second of the database coming back. */
const RECOVERY_MS = 1000;
const POOL_MAX = 10;
/** REQUEST_DEADLINE_MS, and how long past it the app's deadline race waits for the work's own answer (src/app.ts). */
const DEADLINE_MS = loadConfig({ NODE_ENV: 'test' }).requestDeadlineMs;
const DEADLINE_GRACE_MS = 100;
const RETRY_LATER = { code: 503, message: '服务繁忙，请稍后重试' };

interface LogLine {
  msg: string;
  time: number;
  status?: number;
  ms?: number;
  answered_503?: number;
  down_ms?: number;
}

const linesOf = (svc: Service): LogLine[] => svc.logs.map((line) => JSON.parse(line) as LogLine);
const unavailableLines = (svc: Service) => linesOf(svc).filter((l) => l.msg.startsWith('database unavailable'));
const backLines = (svc: Service) => linesOf(svc).filter((l) => l.msg === 'database back');

let person = 0;
/** A first bindCard call of a new person (a fresh card, ID number and mobile each time). */
const newPerson = () => {
  person++;
  return seedNewCard({
    user_id: `down-${person}`,
    bank_card: `622202${String(person).padStart(9, '0')}1234`,
    id_number: idNumber(person % 1000),
    user_mobile: `139${String(person).padStart(8, '0')}`,
  });
};

/**
 * Requests that need the database, each at a different first access: the nonce claim (DEMO, a static channel), the
 * channel's row (ACME), an unknown channel (404 only once the database says so), and bindCard first calls.
 */
const needingTheDatabase = (svc: Service): (() => Promise<Answer>)[] => [
  () => svc.list('u1'),
  () => svc.list('u1', 'ACME'),
  () => svc.list('u1', 'FOO'),
  () => svc.bind(newPerson()),
  () => svc.bind(newPerson(), 'ACME'),
];
/** Their statuses with the database up. */
const ANSWERED = [200, 200, 404, 200, 200];

function expectRetryLater(a: Answer, what: string): void {
  expect(a.status, `${what}: ${JSON.stringify(a.body)}`).to.equal(503);
  expect(a.headers.get('retry-after'), what).to.equal('1');
  expect(a.body, what).to.deep.equal(RETRY_LATER);
  expect(a.ms, `${what} answered after ${Math.round(a.ms)} ms`).to.be.below(PARTNER_TIMEOUT_MS);
}

/** 404 for an unknown route, 405 and 413: checks that need no database answer at once, as always. */
async function expectNoDatabaseNeeded(svc: Service): Promise<void> {
  const unknown = await svc.request('GET', '/nowhere');
  expect(unknown.status).to.equal(404);
  const wrongMethod = await svc.request('PUT', '/acmechannel/bindCard?r_c=ACME', {});
  expect(wrongMethod.status).to.equal(405);
  const huge = await svc.request('POST', '/acmechannel/bindCard?r_c=ACME', 'x'.repeat(70_000));
  expect(huge.status).to.equal(413);
  for (const a of [unknown, wrongMethod, huge]) expect(a.ms).to.be.below(500);
}

describe('database down: 503 with Retry-After by the deadline, one log line per outage, back by itself', function () {
  this.timeout(60_000);
  let proxy: TcpProxy;
  let db: Sequelize;
  let svc: Service;
  /** every 503 a test received, to compare with the outage's count in the log */
  let answered503: number;
  /** when the database came back (epoch ms, as the log's times) */
  let restoredWall: number;

  /** Brings the database back; when (performance.now()). */
  async function restore(): Promise<number> {
    restoredWall = Date.now();
    await proxy.restore();
    return performance.now();
  }

  before(async function () {
    // the embedded database runs in this process: there is no connection to take away
    if (embeddedRun) return this.skip();
    proxy = await TcpProxy.start(testDatabaseUrl());
  });
  after(async () => {
    await proxy?.close();
  });
  beforeEach(async () => {
    await resetDb();
    answered503 = 0;
    db = connect(proxy.url(), POOL_MAX);
    // both pools of the app through the proxy: startService's deps come after its own `db: testDb()`, so they win
    svc = await startService({}, { db, protocolDb: db });
    await svc.addChannel('ACME'); // on the run's own connection, not through the proxy
  });
  afterEach(async () => {
    await svc?.stop();
    // resets every connection, so that work stuck on a black-holed one fails and the pool can close
    await proxy?.cut();
    await db?.close();
    await proxy?.restore();
  });

  /** Requests of every kind, answered as usual through the proxy; then the pool holds POOL_MAX idle connections. */
  async function warmUp(): Promise<void> {
    const before = proxy.accepted.pass;
    const answers = await Promise.all(needingTheDatabase(svc).map((send) => send()));
    expect(answers.map((a) => a.status)).to.deep.equal(ANSWERED);
    expect(answers.map((a) => a.body.data?.status).slice(3)).to.deep.equal(['SMS_SENT', 'SMS_SENT']);
    expect(proxy.accepted.pass - before, 'the service reaches the database through the proxy').to.be.above(0);
    await Promise.all(Array.from({ length: POOL_MAX }, () => sql(db, undefined, 'SELECT pg_sleep(0.05)')));
  }

  /** Every kind of request that needs the database, together, then `rounds` times one after another: each 503 in time. */
  async function expectAllRetryLater(rounds: number): Promise<void> {
    const kinds = needingTheDatabase(svc);
    const together = await Promise.all(kinds.map((send) => send()));
    together.forEach((a, i) => expectRetryLater(a, `request kind ${i}, sent together`));
    answered503 += together.length;
    for (let round = 0; round < rounds; round++) {
      for (const [i, send] of kinds.entries()) {
        expectRetryLater(await send(), `request kind ${i}, round ${round}`);
        answered503++;
      }
    }
  }

  /**
   * Sends one request after another, each as soon as the last is answered (or 25 ms after a 503), until one is
   * answered 200; how long that took from `since` (performance.now()), and how many 503s came meanwhile.
   */
  async function recovery(since: number, limitMs = 30_000): Promise<{ ms: number; refused: number }> {
    let refused = 0;
    const ok = await poll(
      async () => {
        const a = await svc.list('u1', 'ACME');
        if (a.status === 200) return true;
        expectRetryLater(a, 'a request while the service recovers');
        refused++;
        return undefined;
      },
      { intervalMs: 25, deadline: Date.now() + limitMs },
    );
    expect(ok, `no 200 within ${limitMs} ms of the database coming back`).to.equal(true);
    answered503 += refused;
    return { ms: performance.now() - since, refused };
  }

  /**
   * From a second after the database came back (`restoredAt`, performance.now()), everything is answered again: bursts
   * of every kind, none 503 (no dead connection left in the pool, no connection attempt of the outage still failing).
   */
  async function expectServingAgain(restoredAt: number): Promise<void> {
    const wait = restoredAt + RECOVERY_MS - performance.now();
    if (wait > 0) await sleep(wait);
    for (let i = 0; i < 3; i++) {
      const answers = await Promise.all([...needingTheDatabase(svc), ...needingTheDatabase(svc)].map((send) => send()));
      expect(
        answers.map((a) => a.status),
        `burst ${i} after recovery`,
      ).to.deep.equal([...ANSWERED, ...ANSWERED]);
    }
  }

  /** Work that ran past its request's deadline has failed (its statement limit) and been counted by then. */
  async function settled(lastAnswer: number): Promise<void> {
    const wait = lastAnswer + STATEMENT_LIMIT_MS + 300 - Date.now();
    if (wait > 0) await sleep(wait);
  }

  /**
   * After the database came back at `restoredAt` (performance.now()): answering 200 again within RECOVERY_MS, every kind
   * of request answered as usual, and the outage logged once. `lastAnswer` (epoch ms): the last 503 of a black-hole,
   * whose stuck work is waited out (its statement limit) before the log is read.
   */
  async function expectRecovered(what: string, restoredAt: number, lastAnswer?: number): Promise<void> {
    const back = await recovery(restoredAt);
    console.log(`      ${what}: answering 200 again ${Math.round(back.ms)} ms after the database came back (${back.refused} more 503)`);
    expect(back.ms, `${what}: ms to the first 200 (dead connections replaced)`).to.be.below(RECOVERY_MS);
    await expectServingAgain(restoredAt);
    if (lastAnswer !== undefined) await settled(lastAnswer);
    expectOneOutageLogged();
  }

  /** The log of one outage: one line when it began, one when it ended counting every 503; no 500, no unexpected error. */
  function expectOneOutageLogged(): void {
    const lines = linesOf(svc);
    expect(lines.filter((l) => l.msg === 'unexpected error')).to.deep.equal([]);
    expect(lines.filter((l) => l.msg === 'request' && (l.status ?? 0) >= 500 && l.status !== 503)).to.deep.equal([]);
    expect(unavailableLines(svc), 'lines saying the database is unavailable').to.have.length(1);
    const back = backLines(svc);
    expect(back, 'lines saying the database is back').to.have.length(1);
    expect(back[0].answered_503, 'the outage counts every 503 it caused').to.equal(answered503);
    // told as it happened: the outage began before the database came back, and ended with the first answer after
    expect(unavailableLines(svc)[0].time, 'the outage is logged during it').to.be.below(restoredWall);
    expect(back[0].time - restoredWall, 'ms from the database coming back to the line saying so').to.be.within(0, RECOVERY_MS);
    expect(back[0].down_ms).to.be.a('number');
  }

  it('cut: every request that needs the database answers 503 Retry-After: 1 at once; 404, 405 and 413 still answer', async () => {
    await warmUp();
    await proxy.cut();
    const started = performance.now();
    await expectAllRetryLater(3);
    await expectNoDatabaseNeeded(svc);
    console.log(`      cut: ${answered503} answers 503 in ${Math.round(performance.now() - started)} ms`);
    await expectRecovered('cut', await restore());
  });

  it('black-hole: every request that needs the database answers 503 Retry-After: 1 by the deadline; the outage logged once', async () => {
    await warmUp();
    proxy.blackhole();
    const started = performance.now();
    // together on idle connections the partition left dead (the deadline answers), then one by one on new connections
    // that never hear back (the connect timeout answers)
    await expectAllRetryLater(2);
    await expectNoDatabaseNeeded(svc);
    const lastAnswer = Date.now();
    console.log(`      black-hole: ${answered503} answers 503 in ${Math.round(performance.now() - started)} ms`);
    await expectRecovered('black-hole', await restore(), lastAnswer);
  });

  it('black-hole under load (three times the pool at once): every request still 503 by the deadline; the outage logged once', async () => {
    await warmUp();
    proxy.blackhole();
    // more requests than connections: some wait for one, then for a connection that never opens, past the deadline
    const kinds = needingTheDatabase(svc);
    const answers = await Promise.all(Array.from({ length: 3 * POOL_MAX }, (_, i) => kinds[i % kinds.length]()));
    // Each by its deadline as the service measures it (arrival to answer, its log line): the 30 clients share this
    // process's CPU with the service, so the time they see adds their own queueing, which a partner would not.
    const served = linesOf(svc).filter((l) => l.msg === 'request' && l.status === 503);
    expect(served).to.have.length(answers.length);
    for (const line of served) expect(line.ms, 'ms from arrival to answer').to.be.at.most(DEADLINE_MS + DEADLINE_GRACE_MS + 50);
    for (const [i, a] of answers.entries()) {
      expect(a.status, `request ${i}`).to.equal(503);
      expect(a.headers.get('retry-after')).to.equal('1');
      expect(a.body).to.deep.equal(RETRY_LATER);
    }
    answered503 += answers.length;
    const lastAnswer = Date.now();
    console.log(
      `      black-hole under load: ${answers.length} answers 503, the slowest ${Math.max(...served.map((l) => l.ms!))} ms ` +
        `after arrival (${Math.round(Math.max(...answers.map((a) => a.ms)))} ms as its client saw it)`,
    );
    await expectRecovered('black-hole under load', await restore(), lastAnswer);
  });

  it('a short black-hole: the idle connections it left dead are replaced, and all is answered within a second', async () => {
    await warmUp();
    proxy.blackhole();
    expectRetryLater(await svc.list('u1', 'ACME'), 'during the partition');
    answered503 = 1;
    const lastAnswer = Date.now();
    await expectRecovered('short black-hole', await restore(), lastAnswer);
  });

  it('after a black-hole no connection stays lent out, and the pool can be closed (a stopping process closes it)', async () => {
    await warmUp();
    proxy.blackhole();
    // first, while the pool still holds the connections the partition left dead: a transaction that begins on one (as
    // when a partition falls between a request's statements) and a statement; each fails as unavailable by the limit
    const started = performance.now();
    const stuck = await Promise.allSettled([transactor(db).transaction((tx) => sql(db, tx, 'SELECT 1')), sql(db, undefined, 'SELECT 1')]);
    for (const r of stuck) expect(r.status === 'rejected' && isDatabaseUnavailable(r.reason), String(r.status)).to.equal(true);
    expect(performance.now() - started).to.be.below(STATEMENT_LIMIT_MS + 500);
    await expectAllRetryLater(0);
    const lastAnswer = Date.now();
    await proxy.restore();
    // every statement and transaction has given up by its limit: nothing is lent out any more
    const pool = (db.connectionManager as unknown as { pool: { using: number } }).pool;
    const idle = await poll(async () => (pool.using === 0 ? true : undefined), {
      intervalMs: 50,
      deadline: lastAnswer + STATEMENT_LIMIT_MS + 2000,
    });
    expect(idle, `${pool.using} connection(s) still lent out ${Date.now() - lastAnswer} ms after the last answer`).to.equal(true);
    const closing = performance.now();
    const closed = await Promise.race([db.close().then(() => true), sleep(3000).then(() => false)]);
    expect(closed, 'the pool closes within 3 s').to.equal(true);
    console.log(`      the pool closed ${Math.round(performance.now() - closing)} ms after it was asked to`);
  });

  it('read-only, as a failover leaves it (the old primary, a standby not yet promoted): 503 Retry-After: 1 at once; served again within a second of it being writable', async () => {
    await warmUp();
    const name = new URL(testDatabaseUrl()).pathname.slice(1);
    // every connection made from now on is read-only; the pool's are cut, as HAProxy cuts them when a node goes down
    await testDb().query(`ALTER DATABASE "${name}" SET default_transaction_read_only = on`);
    let restoredAt: number;
    try {
      await proxy.cut();
      await proxy.restore();
      for (let round = 0; round < 3; round++) {
        for (const [what, send] of [
          ['bindCard', () => svc.bind(newPerson())],
          ['bankCardList of ACME', () => svc.list('u1', 'ACME')],
        ] as const) {
          expectRetryLater(await send(), `${what}, round ${round}`);
          answered503++;
        }
      }
    } finally {
      await testDb().query(`ALTER DATABASE "${name}" RESET default_transaction_read_only`);
      restoredWall = Date.now();
      restoredAt = performance.now();
    }
    // the read-only connections were destroyed as they failed: the next ones are writable
    await expectRecovered('read-only', restoredAt);
  });

  it('a request that needs no database during an outage does not end it in the log', async () => {
    await warmUp();
    await proxy.cut();
    expectRetryLater(await svc.list('u1'), 'before');
    // DEMO is a static channel: a wrong signature is 401 before anything reads the database
    const unsigned = await svc.request('POST', '/demochannel/bankCardList?r_c=DEMO', { user_id: 'u1' }, { 'x-signature': 'wrong' });
    expect(unsigned.status).to.equal(401);
    expectRetryLater(await svc.list('u1'), 'after');
    answered503 = 2;
    expect(backLines(svc), 'a 401 that read nothing says nothing of the database').to.deep.equal([]);
    await recovery(await restore());
    expectOneOutageLogged();
  });

  describe('/readyz on the same pool', () => {
    let admin: Server;
    let adminUrl: string;
    beforeEach(async () => {
      admin = createAdminServer({
        readiness: new Readiness(
          db,
          MIGRATIONS.map((m) => m.name),
        ),
        metrics: () => Promise.resolve({ text: '', type: 'text/plain' }),
      });
      admin.listen(0, '127.0.0.1');
      await once(admin, 'listening');
      adminUrl = `http://127.0.0.1:${(admin.address() as AddressInfo).port}`;
    });
    afterEach(() => {
      admin?.closeAllConnections();
      admin?.close();
    });

    async function readyz(): Promise<{ status: number; checks: Check[]; ms: number }> {
      const started = performance.now();
      const res = await fetch(`${adminUrl}/readyz`);
      const body = (await res.json()) as { checks: Check[] };
      return { status: res.status, checks: body.checks, ms: performance.now() - started };
    }

    for (const outage of ['cut', 'black-hole'] as const) {
      it(`${outage}: 503 naming the database within 500 ms, then 200 again within a second of the database coming back`, async () => {
        await warmUp();
        const before = await readyz();
        expect(before.status).to.equal(200);
        expect(before.checks.every((c) => c.ok)).to.equal(true);
        if (outage === 'cut') await proxy.cut();
        else proxy.blackhole();
        const down = await readyz();
        expect(down.status).to.equal(503);
        expect(down.ms, 'the probe gives up after 500 ms').to.be.below(700);
        const database = down.checks.find((c) => c.name === 'database');
        expect(database?.ok).to.equal(false);
        expect(database?.detail).to.be.a('string').and.not.equal('');
        expect(down.checks.find((c) => c.name === 'shutdown')?.ok).to.equal(true);
        const restoredAt = performance.now();
        await proxy.restore();
        const up = await poll(async () => ((await readyz()).status === 200 ? performance.now() - restoredAt : undefined), {
          intervalMs: 25,
          deadline: Date.now() + 15_000,
        });
        console.log(`      ${outage}: /readyz 200 again ${Math.round(up ?? Infinity)} ms after the database came back`);
        expect(up, '/readyz 200 again').to.be.a('number').below(RECOVERY_MS);
      });
    }
  });
});

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { expect } from 'chai';
import { backendFor } from '../../src/http/api.ts';
import { poll } from '../../src/lib/poll.ts';
import type { Check } from '../../src/ops/readiness.ts';
import { signedHeaders } from '../../src/sdk/sign.ts';
import { TcpProxy } from '../fakes/tcp-proxy.ts';
import { embeddedRun, poolMax, resetDb, testDatabaseUrl } from '../setup/database.ts';
import { idNumber, seedNewCard } from '../setup/service.ts';

const DRAIN_MS = 1500;
/**
 * How soon after SIGTERM /readyz must say 503: "at once", i.e. early in the drain, not at its end. What it measures is
 * signal delivery plus the service's event-loop lag under this test's own load on a 2-core machine, which reached
 * 212 ms in one CI run; a flip at the end of the drain (DRAIN_MS) or never still fails.
 */
const NOT_READY_MS = 500;
const LOOPS = 6;

interface Running {
  url: string;
  admin: string;
  proc: ChildProcess;
  /** its stdout: the start-up line, then pino's JSON lines */
  lines: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * The real entry point as its own process (as test/setup/service-process.ts starts it), with both of its addresses
 * read from the start-up line: the partner port and the admin listener.
 */
function startProcess(env: Record<string, string>): Promise<Running> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout }).on('line', (line) => {
      lines.push(line);
      const found = /listening on (http:\/\/127\.0\.0\.1:\d+) .* admin (http:\/\/127\.0\.0\.1:\d+) /.exec(line);
      if (found) resolve({ url: found[1], admin: found[2], proc, lines, exit });
    });
    void exit.then(({ code }) => reject(new Error(`src/main.ts exited (${code}) before it listened`)));
  });
}

const checker = backendFor();

/** One request of the load, as its sender saw it. */
interface Sent {
  /** its X-Request-Id, which the service's log line of the request carries */
  id: string;
  loop: number;
  /** ms since the signal when it was sent (negative: before) */
  at: number;
  /** ms since the signal when its outcome came */
  done: number;
  outcome: 'answered' | 'refused' | 'failed';
  status?: number;
  detail?: string;
}

/** Sends one signed request; its outcome: a full documented answer, a refused connection, or anything else (failed). */
async function send(base: string, path: string, body: unknown, id: string): Promise<Omit<Sent, 'id' | 'loop' | 'at' | 'done'>> {
  const bytes = JSON.stringify(body);
  const headers = {
    'content-type': 'application/json',
    'x-request-id': id,
    ...signedHeaders('DEMO', 'demo-secret', 'POST', path, bytes),
  };
  let res: Response;
  let text: string;
  try {
    res = await fetch(base + path, { method: 'POST', headers, body: bytes });
    text = await res.text();
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code === 'ECONNREFUSED') return { outcome: 'refused' };
    return { outcome: 'failed', detail: `${(e as Error).message}: ${cause?.code ?? ''} ${cause?.message ?? ''}` };
  }
  if (res.status !== 200) return { outcome: 'failed', status: res.status, detail: text };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { outcome: 'failed', status: res.status, detail: `not JSON: ${JSON.stringify(text)}` };
  }
  const operation = checker.router.matchOperation({ method: 'post', path: path.split('?')[0], headers: {}, query: {} })!;
  const check = checker.validateResponse(parsed, operation, res.status);
  if (check.errors) return { outcome: 'failed', status: res.status, detail: `breaks the document: ${JSON.stringify(check.errors)}` };
  return { outcome: 'answered', status: res.status };
}

describe('graceful stop: SIGTERM drains, then no accepted request is dropped', function () {
  this.timeout(60_000);
  let svc: Running | undefined;

  before(async function () {
    // the embedded database would be the process's own; this test is about the process, on the run's server
    if (embeddedRun) return this.skip();
    await checker.init();
  });
  beforeEach(resetDb);
  afterEach(() => {
    if (svc && svc.proc.exitCode === null && svc.proc.signalCode === null) svc.proc.kill('SIGKILL');
    svc = undefined;
  });

  /** Waits for the process to exit, at most `ms`. */
  async function exitWithin(running: Running, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let overdue: NodeJS.Timeout | undefined;
    return Promise.race([
      running.exit,
      new Promise<never>((_, reject) => {
        overdue = setTimeout(() => reject(new Error(`still running ${ms} ms after SIGTERM`)), ms);
      }),
    ]).finally(() => clearTimeout(overdue));
  }

  it(`turns /readyz 503 at once, answers for SHUTDOWN_DRAIN_MS, refuses after, finishes what it accepted and exits 0`, async () => {
    const running = await startProcess({
      DATABASE_URL: testDatabaseUrl(),
      PORT: '0',
      ADMIN_PORT: '0',
      NODE_ENV: 'test',
      SHUTDOWN_DRAIN_MS: String(DRAIN_MS),
      DB_POOL_MAX: String(poolMax),
      RATE_LIMIT_PER_SECOND: '100000',
    });
    svc = running;
    const { url, admin } = running;
    const probe = async (path: string) => {
      const res = await fetch(admin + path);
      return { status: res.status, body: (await res.json()) as { checks?: Check[] } };
    };
    expect((await probe('/readyz')).status).to.equal(200);

    // Steady load: each loop sends its next request when the last is answered (keep-alive connections, as fetch keeps
    // them), bankCardList and bindCard first calls in turn, until the process has exited.
    let signalAt = Infinity;
    const since = () => performance.now() - signalAt;
    let exited = false;
    void running.exit.then(() => (exited = true));
    const sent: Sent[] = [];
    const loops = Array.from({ length: LOOPS }, async (_, loop) => {
      const person = seedNewCard({
        user_id: `stop-${loop}`,
        bank_card: `622202${String(loop).padStart(9, '0')}1234`,
        id_number: idNumber(100 + loop),
        user_mobile: `1370000000${loop}`,
      });
      for (let i = 0; !exited; i++) {
        const at = since();
        const id = `stop-${loop}-${i}`;
        const outcome =
          i % 2
            ? await send(url, '/demochannel/bindCard?r_c=DEMO', person, id)
            : await send(url, '/demochannel/bankCardList?r_c=DEMO', { user_id: `stop-${loop}` }, id);
        sent.push({ id, loop, at, done: since(), ...outcome });
        // a refused connection is tried again a little later, not in a busy loop
        if (outcome.outcome !== 'answered') await new Promise((resolve) => setTimeout(resolve, 20));
      }
    });
    const warm = await poll(async () => (sent.filter((s) => s.outcome === 'answered').length >= LOOPS * 4 ? true : undefined), {
      intervalMs: 10,
      deadline: Date.now() + 10_000,
    });
    expect(warm, 'the load runs').to.equal(true);

    signalAt = performance.now();
    running.proc.kill('SIGTERM');
    // a slow request accepted near the end of the drain, still in flight when the listener closes (the sandbox's
    // card ending 0002: its gateway answers after the 1.5 s gateway timeout)
    const slow = new Promise<Sent>((resolve) =>
      setTimeout(() => {
        const at = since();
        const body = seedNewCard({
          user_id: 'stop-slow',
          bank_card: '6222020000000000002',
          id_number: idNumber(99),
          user_mobile: '13600000099',
        });
        void send(url, '/demochannel/bindCard?r_c=DEMO', body, 'stop-slow').then((o) =>
          resolve({ id: 'stop-slow', loop: -1, at, done: since(), ...o }),
        );
      }, DRAIN_MS - 400),
    );

    // /readyz asked every 10 ms for NOT_READY_MS + 200 ms, each probe without waiting for the last (a probe's own time, a database
    // query, is not what turns it): the first probe that was answered 503 was sent within NOT_READY_MS, and every one
    // sent after it was answered 503 too
    const probes: { sent: number; done: number; status: number; checks: Check[] }[] = [];
    const probing: Promise<void>[] = [];
    while (since() < NOT_READY_MS + 200) {
      const sent = since();
      probing.push(probe('/readyz').then((r) => void probes.push({ sent, done: since(), status: r.status, checks: r.body.checks! })));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await Promise.all(probing);
    probes.sort((a, b) => a.sent - b.sent);
    const notReady = probes.find((p) => p.status === 503);
    expect(notReady, '/readyz turns 503').to.not.equal(undefined);
    expect(notReady!.sent, `the first /readyz answered 503 was sent ${Math.round(notReady!.sent)} ms after SIGTERM`).to.be.below(
      NOT_READY_MS,
    );
    expect(probes.filter((p) => p.sent > notReady!.sent && p.status !== 503)).to.deep.equal([]);
    expect(notReady!.checks.find((c) => c.name === 'shutdown')).to.deep.include({ ok: false });
    expect((await probe('/healthz')).status, '/healthz while draining').to.equal(200);

    const { code, signal } = await exitWithin(running, DRAIN_MS + 5000);
    const exitMs = since();
    await Promise.all(loops);
    const inFlight = await slow;

    // What the service saw: a log line for each request it read, answered and logged.
    const logged = running.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; req_id?: string });
    const served = new Set(logged.filter((l) => l.msg === 'request').map((l) => l.req_id));
    const answered = sent.filter((s) => s.outcome === 'answered');
    const answeredDuringDrain = answered.filter((s) => s.at >= 0);
    const refused = sent.filter((s) => s.outcome === 'refused');
    // A connection the kernel had completed but the process had not yet taken from the listen queue when the
    // listener closed is reset by the kernel: no process can answer it, and the service never saw its request (not in
    // its log). Anything else that failed was dropped.
    const failed = sent.filter((s) => s.outcome === 'failed');
    const neverAccepted = failed.filter(
      (s) => s.status === undefined && /ECONNRESET/.test(s.detail ?? '') && !served.has(s.id) && s.done >= DRAIN_MS,
    );
    const dropped = failed.filter((s) => !neverAccepted.includes(s));
    const lastAnswered = Math.max(...answeredDuringDrain.map((s) => s.done));
    console.log(
      `      /readyz 503 to a probe sent ${Math.round(notReady!.sent)} ms after SIGTERM (answered at ${Math.round(notReady!.done)} ms); ${answered.length - answeredDuringDrain.length} answered before it, ` +
        `${answeredDuringDrain.length} sent and answered after it (the last ${Math.round(lastAnswered)} ms after), ` +
        `${refused.length} refused (the first ${Math.round(Math.min(...refused.map((s) => s.done)))} ms after), ` +
        `${neverAccepted.length} reset in the listen queue at the close, ${dropped.length} dropped; ` +
        `the slow one sent at ${Math.round(inFlight.at)} ms answered at ${Math.round(inFlight.done)} ms; ` +
        `exit ${code} at ${Math.round(exitMs)} ms`,
    );
    expect(dropped, 'requests reset, cut short or answered 5xx').to.deep.equal([]);
    expect(neverAccepted.length, 'resets in the listen queue: at most one per loop, at the close').to.be.at.most(LOOPS);
    expect(code, `exit code (signal ${signal})`).to.equal(0);
    // served through the drain, refused after it, and nothing refused before it ended
    expect(answeredDuringDrain.length).to.be.above(LOOPS);
    expect(lastAnswered, 'answers through the drain').to.be.above(DRAIN_MS * 0.8);
    expect(refused.length, 'new connections refused after the drain').to.be.above(0);
    expect(Math.min(...refused.map((s) => s.done)), 'no refusal before the drain ended').to.be.at.least(DRAIN_MS);
    expect(Math.min(...refused.map((s) => s.done)), 'refused while the process still finished its last request').to.be.below(inFlight.done);
    // the request in flight when the listener closed got its whole answer
    expect(inFlight.outcome, inFlight.detail).to.equal('answered');
    expect(inFlight.done, 'the slow request was still in flight when the drain ended').to.be.above(DRAIN_MS);
    // every answer the load got is one the service logged (X-Request-Id kept): the log is a fair witness above
    expect(answered.filter((s) => !served.has(s.id))).to.deep.equal([]);
    expect(logged.map((l) => l.msg)).to.include.members(['stopping: not ready; draining', 'stopped']);
    // not ready because it stops, with the database well: no database outage is logged (a false alarm on every deploy)
    expect(logged.map((l) => l.msg).filter((m) => /^database (unavailable|back)/.test(m))).to.deep.equal([]);
  });

  it('exits 0 within seconds when SIGTERM comes while the database is black-holed', async () => {
    // the process reaches PostgreSQL through a proxy that then lets nothing through (test/fakes/tcp-proxy.ts)
    const proxy = await TcpProxy.start(testDatabaseUrl());
    try {
      const running = await startProcess({
        DATABASE_URL: proxy.url(),
        PORT: '0',
        ADMIN_PORT: '0',
        NODE_ENV: 'test',
        SHUTDOWN_DRAIN_MS: '200',
        DB_POOL_MAX: '4',
      });
      svc = running;
      // both pools hold idle connections: nonces (the protocol pool) and the flows (the business pool)
      const warm = await Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          send(
            running.url,
            '/demochannel/bindCard?r_c=DEMO',
            seedNewCard({ user_id: `part-${i}`, id_number: idNumber(200 + i), user_mobile: `1350000000${i}` }),
            `part-${i}`,
          ),
        ),
      );
      expect(warm.map((a) => a.outcome)).to.deep.equal(['answered', 'answered', 'answered', 'answered']);
      proxy.blackhole();
      const signalAt = performance.now();
      running.proc.kill('SIGTERM');
      const { code, signal } = await exitWithin(running, 5000);
      console.log(`      exit ${code} ${Math.round(performance.now() - signalAt)} ms after SIGTERM, the database black-holed`);
      expect(code, `exit code (signal ${signal})`).to.equal(0);
    } finally {
      await proxy.close();
    }
  });
});

// The rolling-restart stage (issue #19): two bindcard instances behind HAProxy (round robin, readiness checks on the
// admin port), a mixed partner load through HAProxy, and each instance in turn stopped with SIGTERM and started again.
// Passes when every request HAProxy forwarded got the service's own answer (a 503 of the service is allowed and sent
// again, as a partner would), nothing else answered 5xx but HAProxy's own 503 for a request it could not place, no
// answer took longer than HANG_MS, each stop exited 0, and the bindings are what the answers said.
//
//   node --import tsx test/chaos/rolling/rolling.ts   (run.sh sets ROLLING_DIR and ROLLING_DATABASE_URL)
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Load, type Sent } from './load.ts';
import { Haproxy, Instance, parseHaproxyLog, type Stopped } from './processes.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../..');
const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is required (run test/chaos/rolling/run.sh)`);
  return value;
};
const whole = (name: string, fallback: number): number => Number(env(name, String(fallback)));

const dir = env('ROLLING_DIR');
const databaseUrl = env('ROLLING_DATABASE_URL');
const FRONT = whole('ROLLING_FRONT_PORT', 16000);
const STATS = whole('ROLLING_STATS_PORT', 16001);
const PORTS = {
  a: [whole('ROLLING_A_PORT', 16101), whole('ROLLING_A_ADMIN', 16102)],
  b: [whole('ROLLING_B_PORT', 16103), whole('ROLLING_B_ADMIN', 16104)],
};
const DRAIN_MS = whole('ROLLING_DRAIN_MS', 3000);
/** The load runs this long at least, and until 2 s after the second instance is back. */
const DURATION_MS = whole('ROLLING_DURATION_MS', 30_000);
const WARMUP_MS = whole('ROLLING_WARMUP_MS', 4000);
const CONCURRENCY = whole('ROLLING_CONCURRENCY', 16);
/**
 * An answer slower than this at HAProxy (its Ta: accept to last byte) is a hang: the partner's 2 s, plus slack for a 2-core
 * machine shared with other runs. HAProxy's time, not the driver's: the driver's own event loop is starved there too.
 */
const HANG_MS = whole('ROLLING_HANG_MS', 4000);
/** The orchestrator's stop limit the docs ask for: SHUTDOWN_DRAIN_MS + 10 s. */
const STOP_LIMIT_MS = DRAIN_MS + 10_000;

const say = (line: string) => console.log(`rolling: ${line}`);
const n = (x: number) => x.toLocaleString('en-US');
const t0 = performance.now();
const at = () => Math.round(performance.now() - t0);

const serviceEnv = {
  DATABASE_URL: databaseUrl,
  NODE_ENV: 'test', // the sandbox: channel DEMO, secret demo-secret, the SMS phone
  DB_POOL_MAX: '8',
  MAX_INFLIGHT: '8', // equal to the pool, as docs/operations.md advises
  SHUTDOWN_DRAIN_MS: String(DRAIN_MS),
  RATE_LIMIT_PER_SECOND: '100000', // the channel's rate limit is not what this stage tests
};
const instances = (['a', 'b'] as const).map((name) => new Instance(name, PORTS[name][0], PORTS[name][1], serviceEnv, dir, repo));
const proxy = new Haproxy(
  join(here, 'haproxy.cfg'),
  {
    ROLLING_FRONT_PORT: String(FRONT),
    ROLLING_STATS_PORT: String(STATS),
    ROLLING_A_PORT: String(PORTS.a[0]),
    ROLLING_A_ADMIN: String(PORTS.a[1]),
    ROLLING_B_PORT: String(PORTS.b[0]),
    ROLLING_B_ADMIN: String(PORTS.b[1]),
  },
  dir,
  `http://127.0.0.1:${STATS}/stats`,
);

/** HAProxy's view of the servers, looked at every 100 ms: each change of status with its time. */
const transitions: { at: number; server: string; status: string }[] = [];
let watching = true;
async function watch(): Promise<void> {
  const last = new Map<string, string>();
  while (watching) {
    const servers = await proxy.servers().catch(() => new Map<string, string>());
    for (const [server, status] of servers) {
      if (last.get(server) !== status) transitions.push({ at: at(), server, status });
      last.set(server, status);
    }
    if (servers.size && [...servers.values()].every((s) => !s.startsWith('UP'))) bothDown++;
    await sleep(100);
  }
}
let bothDown = 0;

interface Restart {
  name: string;
  stopped: Stopped;
  /** from SIGTERM to HAProxy's DOWN (status seen by the watcher) */
  downMs?: number;
  startMs: number;
  upMs: number;
}

async function roll(instance: Instance): Promise<Restart> {
  const sigterm = at();
  say(`${sigterm} ms: SIGTERM ${instance.name}`);
  const stopped = await instance.stop(STOP_LIMIT_MS);
  // out of HAProxy already at SIGTERM (a failed probe), or taken out after it
  const before = transitions.filter((t) => t.server === instance.name && t.at <= sigterm).at(-1);
  const already = before !== undefined && !before.status.startsWith('UP');
  const down = already
    ? { at: sigterm, status: before.status }
    : transitions.find((t) => t.server === instance.name && t.at >= sigterm && !t.status.startsWith('UP'));
  say(
    `${at()} ms: ${instance.name} exited ${stopped.code ?? stopped.signal} after ${Math.round(stopped.ms)} ms` +
      (!down
        ? '; HAProxy never saw it down'
        : already
          ? `; HAProxy had it ${down.status} already (a failed probe)`
          : `; HAProxy saw it ${down.status} ${down.at - sigterm} ms after SIGTERM`),
  );
  const starting = performance.now();
  await instance.start();
  const startMs = performance.now() - starting;
  const upMs = await proxy.waitUp(instance.name, 60_000);
  say(`${at()} ms: ${instance.name} listening after ${Math.round(startMs)} ms, UP in HAProxy ${Math.round(upMs)} ms later`);
  return { name: instance.name, stopped, downMs: down ? down.at - sigterm : undefined, startMs, upMs };
}

async function databaseChecks(load: Load): Promise<string[]> {
  const problems: string[] = [];
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const rows = (await client.query<{ user_id: string; card_id: string }>(`SELECT user_id, card_id FROM bindings WHERE channel = 'DEMO'`))
      .rows;
    const inDb = new Set(rows.map((r) => `${r.user_id} ${r.card_id}`));
    const answered = new Set(load.bound.map((f) => `${f.user} ${f.cardId}`));
    if (rows.length !== inDb.size) problems.push(`bindings: ${rows.length - inDb.size} duplicate rows`);
    for (const key of answered) if (!inDb.has(key)) problems.push(`bindings: answered BOUND but no row: ${key}`);
    for (const key of inDb) if (!answered.has(key)) problems.push(`bindings: a row no answer told of: ${key}`);
    const shared = (
      await client.query<{ card_id: string }>(`SELECT card_id FROM bindings GROUP BY card_id HAVING count(DISTINCT user_id) > 1`)
    ).rows;
    for (const r of shared) problems.push(`card ${r.card_id} is bound to two users`);
    const held = (
      await client.query<{ card_hash: string }>(
        `SELECT card_hash FROM cards WHERE released_at IS NULL GROUP BY card_hash HAVING count(*) > 1`,
      )
    ).rows;
    if (held.length) problems.push(`${held.length} card numbers with two current holders`);
    const [cards] = (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM cards`)).rows;
    if (cards.n !== load.bound.length) problems.push(`cards: ${cards.n} rows for ${load.bound.length} bound cards`);
    const [sms] = (
      await client.query<{ n: number; m: number }>(`SELECT count(*)::int AS n, count(DISTINCT mobile_hash)::int AS m FROM sandbox_sms`)
    ).rows;
    // One text per flow: a first call sent again within SMS_RESEND_SECONDS answers SMS_SENT without a new one. Only a
    // first call that did not answer SMS_SENT (505 PROVIDER_*, or 503 at its deadline) may have had its send time out
    // after the text went, and its retry sends a new code: at most one more text for each of those.
    const excused = load.firstCallProviderRetries + load.sent.filter((s) => s.what === 'first call' && s.verdict === 'service503').length;
    if (sms.m !== load.flows.length || sms.n - sms.m > excused)
      problems.push(`sms: ${sms.n} texts to ${sms.m} mobiles for ${load.flows.length} flows (at most ${excused} more allowed)`);
    if (sms.n > sms.m)
      say(`${sms.n - sms.m} flows texted twice: their first send timed out (allowed: ${excused} first calls without an answer)`);
  } finally {
    await client.end();
  }
  return problems;
}

/**
 * What the instances logged that an operator would act on: error lines, and in particular "database unavailable"
 * written by an instance that was stopping (the database was up the whole time: a false alarm).
 */
function serviceLogFindings(): { drainAlarms: number; errors: Map<string, number> } {
  let drainAlarms = 0;
  const errors = new Map<string, number>();
  for (const name of ['a', 'b']) {
    const stopping = new Set<number>();
    for (const line of readFileSync(join(dir, `${name}.log`), 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      let entry: { level?: number; pid?: number; msg?: string };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        continue;
      }
      if (entry.msg?.startsWith('stopping')) stopping.add(entry.pid ?? 0);
      if (entry.msg?.startsWith('database unavailable') && stopping.has(entry.pid ?? 0)) drainAlarms++;
      if ((entry.level ?? 0) >= 50) errors.set(entry.msg ?? '?', (errors.get(entry.msg ?? '?') ?? 0) + 1);
    }
  }
  return { drainAlarms, errors };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : 0;
}

async function main(): Promise<number> {
  say(`starting 2 instances (drain ${DRAIN_MS} ms) and HAProxy on 127.0.0.1:${FRONT}; files in ${dir}`);
  await Promise.all(instances.map((i) => i.start()));
  await proxy.start();
  await Promise.all(instances.map((i) => proxy.waitUp(i.name, 30_000)));
  const watcher = watch();
  const load = new Load(`http://127.0.0.1:${FRONT}`, Date.now().toString(36));
  const loadStart = at();
  say(`${loadStart} ms: load started, ${CONCURRENCY} partners`);
  load.start(CONCURRENCY);
  await sleep(WARMUP_MS);
  const restarts: Restart[] = [];
  for (const instance of instances) {
    restarts.push(await roll(instance));
    await sleep(2000); // traffic on both again before the next stop
  }
  const rest = DURATION_MS - (at() - loadStart);
  if (rest > 0) await sleep(rest);
  say(`${at()} ms: stopping the load (each partner finishes its flow)`);
  await load.stop();
  const loadMs = at() - loadStart;
  const during = load.sent.length;
  // every user's list once more, with nothing in flight: exactly the cards bound
  const users = [...load.users.keys()];
  for (let i = 0; i < users.length; i += 16) await Promise.all(users.slice(i, i + 16).map((u) => load.cardList(u, true)));
  for (const flow of load.flows) if (flow.state !== 'bound') load.problems.push(`flow ${flow.k} (${flow.user}) ended ${flow.state}`);
  const unfinished = load.flows.filter((f) => f.state !== 'bound').length;
  const dbProblems = await databaseChecks(load);
  watching = false;
  await watcher;
  await proxy.stop();
  const finalStops = await Promise.all(instances.map((i) => i.stop(STOP_LIMIT_MS)));

  // Join what the client saw with what HAProxy logged.
  const { requests: logged, other } = parseHaproxyLog(proxy.log());
  const count = (pred: (s: Sent) => boolean) => load.sent.filter(pred).length;
  const accepted = count((s) => logged.get(s.id)?.forwarded === true);
  const haproxy503 = count((s) => s.verdict === 'haproxy503' && logged.get(s.id)?.forwarded !== true);
  const service503 = count((s) => s.verdict === 'service503');
  const isOther5xx = (s: Sent) => s.status !== undefined && s.status >= 500 && s.status !== 503;
  const other5xx = count(isOther5xx);
  const lostOnes = load.sent.filter((s) => logged.get(s.id)?.forwarded === true && !['ok', 'service503', 'service5xx'].includes(s.verdict));
  const unlogged = load.sent.filter((s) => !logged.has(s.id));
  const hangs = load.sent.filter((s) => s.verdict === 'timeout' || (logged.get(s.id)?.ta ?? 0) > HANG_MS);
  const proxyMs = [...logged.values()].map((l) => l.ta).sort((a, b) => a - b);
  const ms = load.sent.map((s) => s.ms).sort((a, b) => a - b);
  const over2s = count((s) => s.ms > 2000);
  const exits = restarts.map((r) => r.stopped);
  const badExits = [...exits, ...finalStops].filter((s) => s.code !== 0 || s.killed).length;
  const lateDown = restarts.filter((r) => r.downMs === undefined || r.downMs >= DRAIN_MS);
  const byWhat = new Map<string, number>();
  for (const s of load.sent) byWhat.set(s.what, (byWhat.get(s.what) ?? 0) + 1);

  say(
    `load ${n(loadMs)} ms, ${n(during)} requests during it (${Math.round(during / (loadMs / 1000))}/s) + ${n(load.sent.length - during)} final card lists`,
  );
  say(`mix: ${[...byWhat].map(([w, c]) => `${w} ${n(c)}`).join(' · ')}; flows ${n(load.flows.length)}, bound ${n(load.bound.length)}`);
  say(
    `latency at HAProxy p50 ${percentile(proxyMs, 50)} ms · p99 ${percentile(proxyMs, 99)} ms · max ${proxyMs.at(-1) ?? 0} ms · over 2 s ${proxyMs.filter((x) => x > 2000).length}; ` +
      `at the client p99 ${Math.round(percentile(ms, 99))} ms · max ${Math.round(ms.at(-1) ?? 0)} ms · over 2 s ${over2s}`,
  );
  say(`HAProxy states: ${transitions.map((t) => `${t.at}ms ${t.server} ${t.status}`).join(' · ')}`);
  for (const r of restarts)
    say(
      `${r.name}: exit ${r.stopped.code ?? r.stopped.signal} in ${Math.round(r.stopped.ms)} ms; down in HAProxy ${r.downMs ?? 'never'} ms after SIGTERM (drain ${DRAIN_MS}); start ${Math.round(r.startMs)} ms; UP ${Math.round(r.upMs)} ms after`,
    );
  if (bothDown) say(`both servers out of HAProxy for ${bothDown} looks (100 ms apart)`);
  if (load.providerRetries) say(`505 PROVIDER_* answers retried: ${load.providerRetries}`);
  const alerts = other.filter((l) => !/is (UP|DOWN)|Proxy .* started|Proxy .* stopped|Stopping|backend.*has no server available/i.test(l));
  for (const l of alerts.slice(0, 10)) say(`haproxy: ${l}`);
  for (const s of lostOnes.slice(0, 10)) {
    const l = logged.get(s.id)!;
    say(
      `LOST ${s.id} ${s.what}: client ${s.verdict} ${s.status ?? ''} ${s.error ?? ''} after ${Math.round(s.ms)} ms; HAProxy ${l.status} server ${l.server} termination ${l.termination} Ta ${l.ta}`,
    );
  }
  for (const s of unlogged.slice(0, 5)) say(`NOT IN HAPROXY'S LOG ${s.id} ${s.what}: ${s.verdict} ${s.status ?? ''} ${s.error ?? ''}`);
  for (const s of hangs.slice(0, 5))
    say(
      `SLOW ${s.id} ${s.what}: ${logged.get(s.id)?.ta ?? '?'} ms at HAProxy, ${Math.round(s.ms)} ms at the client (${s.verdict} ${s.status ?? ''})`,
    );
  for (const s of load.sent.filter(isOther5xx).slice(0, 5)) say(`5xx ${s.id} ${s.what}: ${s.status} (${s.verdict})`);
  for (const r of lateDown)
    say(`${r.name}: HAProxy did not take it out before its listener closed (down ${r.downMs ?? 'never'} ms, drain ${DRAIN_MS} ms)`);
  for (const p of [...load.problems, ...dbProblems].slice(0, 20)) say(`INCONSISTENT ${p}`);
  const findings = serviceLogFindings();
  for (const [msg, c] of findings.errors) say(`service error lines: ${c} × ${msg}`);
  if (findings.drainAlarms)
    say(
      `${findings.drainAlarms} "database unavailable" error lines from stopping instances with the database up: ` +
        `a false alarm on every deploy`,
    );
  const inconsistent = load.inconsistent + dbProblems.length + unfinished;
  const failures =
    other5xx + lostOnes.length + unlogged.length + hangs.length + badExits + inconsistent + lateDown.length + findings.drainAlarms;
  console.log(
    `rolling: ${restarts.length} restarts · ${n(load.sent.length)} requests · accepted ${n(accepted)} · 503 from haproxy ${n(haproxy503)} · ` +
      `service 503 ${n(service503)} · other 5xx ${other5xx} · lost ${lostOnes.length} · hangs ${hangs.length} · ` +
      `exits ${exits.map((s) => s.code ?? s.signal).join(',')} (final ${finalStops.map((s) => s.code ?? s.signal).join(',')}) · inconsistent ${inconsistent}` +
      (unlogged.length ? ` · not in HAProxy's log ${unlogged.length}` : '') +
      ` · false db alarms ${findings.drainAlarms}` +
      ` · ${failures ? 'FAILED' : 'ok'}`,
  );
  return failures ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error('rolling: failed:', e instanceof Error ? e.message : e);
    for (const i of instances) i.kill();
    proxy.kill();
    process.exit(2);
  },
);

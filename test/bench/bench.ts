// `npm run bench [-- --runs 3 --duration 10 --connections 32 --scale [N] --only list,replay]`
// Starts the service on a fresh PostgreSQL database (production settings, sandbox providers), loads it from a separate
// process with autocannon, and prints per scenario requests/s, p50/p90/p99/max, non-2xx and errors, each against the
// ceilings that bound it on this machine: the database (the scenario's exact SQL replayed by bare `pg` clients at the
// same concurrency) and the framework (bare Koa answering the same JSON). Medians of --runs runs. Then: fixed arrival
// rates (half and twice the maximum), WORKERS=2, housekeeping under a backlog, and with --scale the same scenarios over
// N bulk-loaded cards, with the hot queries' plans. Results: bench-results/<time>.json and .svg. With --only, just those
// scenarios and their ceilings (a quick check while working on one path).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import { vaultFor } from '../../src/crypto/vault.ts';
import { signedHeaders } from '../../src/sdk/sign.ts';
import { ChannelStore } from '../../src/store/channel-store.ts';
import { connect, migrate, PROTOCOL_POOL_MAX, PROTOCOL_POOL_NAME } from '../../src/store/db.ts';
import { identity } from './identities.ts';
import { seedBindings } from './seed.ts';
import { startListening, type Listening } from '../setup/service-process.ts';

const argv = process.argv.slice(2);
const flag = (name: string, def: number) => {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(argv[i + 1]);
  return Number.isFinite(v) && !argv[i + 1]?.startsWith('--') ? v : def;
};
const RUNS = flag('runs', 3);
const DURATION = flag('duration', 10);
const CONNECTIONS = flag('connections', 32);
const SCALE = argv.includes('--scale') ? flag('scale', 1_000_000) : 0;
const OVERLOAD_SECONDS = flag('overload-seconds', 30);
const SEED = 5000; // bound users every scenario draws from
const VARIANTS = 200; // recorded requests of each kind for the database ceiling
const POOL_SOCKETS = 128; // the open loop's connections, as a partner's HTTP client pool
const SLOW_SECOND_MS = 40; // a second of the half-rate runs whose slowest answer took longer: where its tail comes from
const ALL = ['existing', 'newCardFlow', 'replay', 'list', 'mix'] as const;
type Scenario = (typeof ALL)[number];
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1]?.split(',') ?? [] : undefined;
if (only?.some((s) => !ALL.includes(s as Scenario))) throw new Error(`--only takes scenarios among ${ALL.join(',')}`);
const SCENARIOS = only ? ALL.filter((s) => only.includes(s)) : ALL;
const SINGLE = ['existing', 'replay', 'list', 'newFirst'] as const; // one request each, for the open loop
const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
// A partner channel as production has them (looked up in PostgreSQL, its secret decrypted), not the sandbox's DEMO,
// which is answered from memory; the sandbox stays on only for its providers and its phone.
const CHANNEL = 'BENCH';
let channelSecret = '';
const config = loadConfig({});
const vault = vaultFor(config);

// ---- progress on stderr
let step = 0;
let steps = 1;
function progress(label: string): void {
  step++;
  const w = 30;
  const filled = Math.min(w, Math.round((step / steps) * w));
  process.stderr.write(`\r[${'#'.repeat(filled)}${'-'.repeat(w - filled)}] ${step}/${steps} ${label.padEnd(48).slice(0, 48)}`);
}

// ---- processes
function startService(dbUrl: string, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<Listening> {
  return startListening('src/main.ts', {
    DATABASE_URL: dbUrl, PORT: '0', NODE_ENV: 'development', VALIDATE_RESPONSES: 'false', LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_SECOND: '1000000', PURGE_INTERVAL_MS: '0', ...env,
  }, false, nodeArgs);
}

/** The service with the SQL recorder (record-sql.ts) preloaded, appending every statement it sends to `file`. */
function startRecordingService(dbUrl: string, file: string): Promise<Listening> {
  return startService(dbUrl, { BENCH_RECORD_SQL: file }, ['--import', new URL('./record-sql.ts', import.meta.url).href]);
}

interface Load {
  rps: number; p50: number; p90: number; p99: number; max: number; non2xx: number; errors: number; timeouts: number; total: number;
  statusCodes: Record<string, { count: number }>;
  /** open loop only: per second, 2xx answers, 503s and the slowest answer (ms) */
  timeline?: { ok: number; shed: number; max: number }[];
  /** open loop only: when the timeline's first second began (epoch ms) */
  timelineStart?: number;
  /** open loop only: first answers on connections opened during the run, and answers on open keep-alive ones */
  connections?: { opened: { count: number; max: number }; reused: { count: number; max: number } };
  /** open loop of the mix only: each part's latency */
  byKind?: Record<string, { count: number; p50: number; p99: number }>;
}
let fresh = 100_000_000;
/** Closed loop (autocannon) without a rate; with one, an open loop at that fixed arrival rate (see load.ts). */
async function load(url: string, scenario: string, o: { connections?: number; duration?: number; rate?: number; autocannonRate?: boolean; sockets?: number; warmup?: number } = {}): Promise<Load> {
  const duration = o.duration ?? DURATION;
  const spec = { url, channel: CHANNEL, secret: channelSecret, scenario, connections: o.connections ?? CONNECTIONS, duration, rate: o.rate, autocannonRate: o.autocannonRate, sockets: o.sockets, warmup: o.warmup, seeded: [0, SEED], fresh };
  fresh += 1_000_000;
  const proc = spawn(process.execPath, ['--import', 'tsx', 'test/bench/load.ts', JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  await once(proc, 'exit');
  return JSON.parse(out) as Load;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function medianLoad(runs: Load[]): Load {
  const keys = ['rps', 'p50', 'p90', 'p99', 'max', 'non2xx', 'errors', 'timeouts', 'total'] as const;
  const middle = [...runs].sort((a, b) => a.p99 - b.p99)[Math.floor(runs.length / 2)]; // its status codes and timeline
  return { ...middle, ...Object.fromEntries(keys.map((k) => [k, median(runs.map((r) => r[k]))])) } as Load;
}

// ---- the database ceiling: a scenario's recorded statements, replayed by bare pg clients
interface Stmt { text: string; values?: unknown[]; name?: string; pool?: string; options?: string }

/**
 * Records the statements of VARIANTS requests of each kind, each for another user: replaying one user's statements
 * from 32 clients at once would make them queue on that user's rows, which the service's load never does.
 */
async function recordScenarioSql(dbUrl: string): Promise<Record<string, Stmt[][]>> {
  const file = join(tmpdir(), `bindcard-sql-${randomBytes(4).toString('hex')}.jsonl`);
  writeFileSync(file, '');
  const svc = await startRecordingService(dbUrl, file);
  /** the statements `run` makes the service send: the lines the recorder appends meanwhile (it writes before it sends) */
  const record = async (run: () => Promise<unknown>): Promise<Stmt[]> => {
    const from = statSync(file).size;
    await run();
    const added = Buffer.alloc(statSync(file).size - from);
    const fd = openSync(file, 'r');
    readSync(fd, added, 0, added.length, from);
    closeSync(fd);
    return added.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Stmt);
  };
  const post = async (path: string, body: object) => {
    const bytes = JSON.stringify(body);
    const res = await fetch(svc.url + path, { method: 'POST', body: bytes, headers: { 'content-type': 'application/json', ...signedHeaders(CHANNEL, channelSecret, 'POST', path, bytes) } });
    return res.json();
  };
  const inbox = async (mobile: string) => (await fetch(`${svc.url}/sandbox/sms?mobile=${mobile}`)).json() as Promise<{ messages: { code: string }[] }>;
  const BIND = `/${CHANNEL.toLowerCase()}channel/bindCard?r_c=${CHANNEL}`;
  const LIST = `/${CHANNEL.toLowerCase()}channel/bankCardList?r_c=${CHANNEL}`;
  await post(LIST, { user_id: identity(SEED - 1).user_id }); // opens each pool's connection (and its set-up statements) first
  const out: Record<'existing' | 'replay' | 'list' | 'newFirst' | 'newCardFlow', Stmt[][]> = { existing: [], replay: [], list: [], newFirst: [], newCardFlow: [] };
  for (let i = 0; i < VARIANTS; i++) {
    const w = identity(i);
    out.existing.push(await record(() => post(BIND, { user_id: w.user_id, bank_card: w.bank_card, open_bank: 'ICBC', bind_card_src: 2 })));
    out.replay.push(await record(() => post(BIND, { ...w, verify_code: '123456' })));
    out.list.push(await record(() => post(LIST, { user_id: w.user_id })));
    const n = identity(fresh++);
    const first = await record(() => post(BIND, n));
    let code = '';
    const sms = await record(async () => { code = (await inbox(n.user_mobile)).messages[0].code; });
    const confirm = await record(() => post(BIND, { ...n, verify_code: code }));
    out.newFirst.push(first);
    out.newCardFlow.push([...first, ...sms, ...confirm]);
  }
  await svc.stop();
  rmSync(file);
  const { existing, replay, list, newFirst } = out;
  // the mix's parts with its weights (list 4, existing 3, replay 2, new first call 1)
  return { ...out, mix: [...list, ...list, ...list, ...list, ...existing, ...existing, ...existing, ...replay, ...replay, ...newFirst] };
}

async function dbCeiling(dbUrl: string, variants: Stmt[][], connections: number, seconds: number): Promise<number> {
  // as the service: replay protection on a pool of a few sessions, the rest each on a session of its own; both with
  // the options (synchronous_commit) the service's sessions had
  const options = (protocol: boolean) => variants.flat().find((s) => (s.pool === PROTOCOL_POOL_NAME) === protocol)?.options;
  const clients = await Promise.all(Array.from({ length: connections }, async () => {
    const c = new pg.Client({ connectionString: dbUrl, options: options(false) });
    await c.connect();
    return c;
  }));
  const protocolPool = new pg.Pool({ connectionString: dbUrl, max: PROTOCOL_POOL_MAX, options: options(true) });
  const until = Date.now() + seconds * 1000;
  let done = 0;
  await Promise.all(clients.map(async (c) => {
    while (Date.now() < until) {
      const seq = variants[Math.floor(Math.random() * variants.length)];
      // every request carries a new nonce: replay each sequence under a fresh one, as the service sees them
      const nonce = seq.find((s) => /INSERT INTO nonces/.test(s.text))?.values?.[1];
      const fresh = randomBytes(16).toString('hex');
      try {
        for (const s of seq) {
          const values = s.values?.map((v) => (v === nonce ? fresh : v));
          await (s.pool === PROTOCOL_POOL_NAME ? protocolPool : c).query(s.name ? { name: s.name, text: s.text, values } : { text: s.text, values });
        }
      } catch {
        await c.query('ROLLBACK').catch(() => {});
      }
      done++;
    }
  }));
  await Promise.all(clients.map((c) => c.end()));
  await protocolPool.end();
  return done / seconds;
}

// ---- what the service's PostgreSQL sessions wait on while a load runs
type Waits = { at: number; waits: string[] }[];
/** the cluster's WAL and buffer-write counters: WAL bytes and full-page images, pages written by the checkpointer and by backends evicting dirty pages */
type Io = { walBytes: number; walFpi: number; checkpoints: number; checkpointerPages: number; backendPages: number };
async function ioCounters(c: pg.Client): Promise<Io> {
  const { rows: [r] } = await c.query(`SELECT w.wal_bytes, w.wal_fpi, b.checkpoints_timed + b.checkpoints_req AS checkpoints, b.buffers_checkpoint, b.buffers_backend
    FROM pg_stat_wal w, pg_stat_bgwriter b`);
  return { walBytes: Number(r.wal_bytes), walFpi: Number(r.wal_fpi), checkpoints: Number(r.checkpoints), checkpointerPages: Number(r.buffers_checkpoint), backendPages: Number(r.buffers_backend) };
}
/** Samples pg_stat_activity every 10 ms while `during` runs: the wait event of each active session of the service's pools ('CPU' when none). */
async function sampledWaits<T>(dbUrl: string, during: () => Promise<T>): Promise<{ result: T; samples: Waits; io: Io }> {
  const c = new pg.Client({ connectionString: dbUrl, application_name: 'bench-sampler' });
  await c.connect();
  const before = await ioCounters(c);
  const samples: Waits = [];
  let running = true;
  const sampling = (async () => {
    while (running) {
      const at = Date.now();
      const { rows } = await c.query(`SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS w FROM pg_stat_activity
        WHERE state = 'active' AND application_name LIKE 'bindcard%'`);
      samples.push({ at, waits: rows.map((r: { w: string }) => r.w) });
      await sleep(10);
    }
  })();
  try {
    const result = await during();
    const after = await ioCounters(c); // queued behind the sampler's query on the same client; a later sample falls outside the timeline
    return { result, samples, io: Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof Io]])) as Io };
  } finally {
    running = false;
    await sampling;
    await c.end();
  }
}

/** Shares of the sampled waits, overall and in the seconds whose slowest answer took more than `slowMs`. */
function waitShares(runs: { load: Load; samples: Waits }[], slowMs: number): { all: Record<string, number>; slow: Record<string, number>; slowSeconds: number } {
  const all: Record<string, number> = {};
  const slow: Record<string, number> = {};
  let slowSeconds = 0;
  for (const { load, samples } of runs) {
    const slowSecond = new Set((load.timeline ?? []).flatMap((t, i) => (t.max > slowMs ? [i] : [])));
    slowSeconds += slowSecond.size;
    for (const { at, waits } of samples) {
      const second = Math.floor((at - (load.timelineStart ?? 0)) / 1000);
      if (second < 0 || second >= (load.timeline?.length ?? 0)) continue;
      for (const w of waits) {
        all[w] = (all[w] ?? 0) + 1;
        if (slowSecond.has(second)) slow[w] = (slow[w] ?? 0) + 1;
      }
    }
  }
  const shares = (m: Record<string, number>) => {
    const n = Object.values(m).reduce((a, b) => a + b, 0) || 1;
    return Object.fromEntries(Object.entries(m).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round((v / n) * 1000) / 10]));
  };
  return { all: shares(all), slow: shares(slow), slowSeconds };
}

/** --runs runs of one load, each a step of the progress bar. */
async function repeated(label: string, once: () => Promise<Load>): Promise<Load[]> {
  const runs: Load[] = [];
  for (let r = 0; r < RUNS; r++) {
    progress(`${label}, run ${r + 1}`);
    runs.push(await once());
  }
  return runs;
}

async function frameworkCeiling(): Promise<Load> {
  const bare = await startListening('test/bench/bare-koa.ts');
  const runs = await repeated('framework ceiling', () => load(bare.url, 'list'));
  await bare.stop();
  return medianLoad(runs);
}

// ---- one pass of every scenario with its database ceiling
type Pass = Record<Scenario, { load: Load; dbCeiling: number; ratio: number }>;
async function scenarioPass(dbUrl: string, url: string, sql: Record<string, Stmt[][]>, label: string): Promise<Pass> {
  const out = {} as Pass;
  for (const s of SCENARIOS) {
    const runs: Load[] = [];
    const ceilings: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      progress(`${label} ${s} run ${r + 1}`);
      runs.push(await load(url, s));
      progress(`${label} ${s} db ceiling ${r + 1}`);
      // the flow's ceiling counts whole flows; autocannon counts its three requests
      ceilings.push((await dbCeiling(dbUrl, sql[s], CONNECTIONS, DURATION)) * (s === 'newCardFlow' ? 3 : 1));
    }
    const l = medianLoad(runs);
    const c = median(ceilings);
    out[s] = { load: l, dbCeiling: c, ratio: l.rps / c };
  }
  return out;
}

async function explainHot(dbUrl: string, sql: Record<string, Stmt[][]>): Promise<Record<string, string>> {
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  const plans: Record<string, string> = {};
  try {
    const seen = new Set<string>();
    for (const seq of [...sql.existing, ...sql.list, ...sql.replay, ...sql.newCardFlow]) {
      for (const s of seq) {
        if (!/^\s*(SELECT|UPDATE|INSERT|WITH)/i.test(s.text) || seen.has(s.text) || /pg_advisory/.test(s.text)) continue;
        seen.add(s.text);
        await c.query('BEGIN');
        const r = await c.query(`EXPLAIN ANALYZE ${s.text}`, s.values).catch((e: Error) => ({ rows: [{ 'QUERY PLAN': `(${e.message})` }] }));
        await c.query('ROLLBACK');
        plans[s.text.replace(/\s+/g, ' ').slice(0, 160)] = r.rows.map((x: Record<string, string>) => x['QUERY PLAN']).join('\n');
      }
    }
  } finally {
    await c.end();
  }
  return plans;
}

function fmt(l: Load): string {
  return `${l.rps.toFixed(0).padStart(6)} req/s  p50 ${String(l.p50).padStart(4)}  p90 ${String(l.p90).padStart(4)}  p99 ${String(l.p99).padStart(4)}  max ${String(l.max).padStart(5)} ms  non2xx ${l.non2xx}  errors ${l.errors}`;
}

function svgChart(pass: Pass, title: string): string {
  const rows = SCENARIOS.map((s) => [s, pass[s].load] as const);
  const maxMs = Math.max(...rows.map(([, l]) => l.p99), 1);
  const bar = (x: number, y: number, w: number, color: string) => `<rect x="${x}" y="${y}" width="${Math.max(1, w).toFixed(1)}" height="10" fill="${color}"/>`;
  const body = rows.map(([s, l], i) => {
    const y = 40 + i * 50;
    const scale = (ms: number) => (ms / maxMs) * 480;
    return `<text x="10" y="${y + 10}" font-size="12">${s}</text>`
      + bar(120, y, scale(l.p50), '#4c9') + bar(120, y + 12, scale(l.p90), '#fb4') + bar(120, y + 24, scale(l.p99), '#e55')
      + `<text x="${130 + scale(l.p99)}" y="${y + 34}" font-size="10">p50 ${l.p50} / p90 ${l.p90} / p99 ${l.p99} ms · ${l.rps.toFixed(0)} req/s</text>`;
  }).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="820" height="${60 + rows.length * 50}" font-family="sans-serif">`
    + `<text x="10" y="20" font-size="14">${title}: latency (green p50, yellow p90, red p99)</text>${body}</svg>`;
}

// ---- the run
async function measure(results: Record<string, unknown>): Promise<void> {
  const dbName = `bindcard_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const u = new URL(adminUrl);
  u.pathname = `/${dbName}`;
  const dbUrl = u.toString();
  // seeding; per run: framework, half rate, WORKERS=2, each single scenario, every scenario and its ceiling (twice with
  // --scale); once: autocannon's rate, overload twice, recovery, housekeeping, and the bulk load with --scale
  steps = only ? 1 + RUNS * (1 + SCENARIOS.length * 2) : 1 + RUNS * (3 + SINGLE.length + SCENARIOS.length * 2 * (SCALE ? 2 : 1)) + 5 + (SCALE ? 1 : 0);
  try {
    const db = connect(dbUrl, 1);
    await migrate(db, dbUrl);
    channelSecret = await new ChannelStore(db, vault, true).add(CHANNEL);
    await db.close();
    progress(`seeding ${SEED} bound users`);
    await seedBindings(dbUrl, vault, CHANNEL, 0, SEED, () => {});
    const sql = await recordScenarioSql(dbUrl);

    const framework = await frameworkCeiling();
    results.frameworkCeiling = framework;
    const svc = await startService(dbUrl);
    const empty = await scenarioPass(dbUrl, svc.url, sql, 'empty');
    results.empty = empty;
    if (only) {
      await svc.stop();
      return;
    }

    // fixed arrival rates around the measured maximum of the mix
    const max = empty.mix.load.rps;
    // steady state: each load process (a new generator, its connections) first sends a second of the same load, not
    // counted; meanwhile the service's sessions' waits are sampled, to tell where the slow seconds come from
    const sampled: { load: Load; samples: Waits; io: Io }[] = [];
    const halves = await repeated('half the maximum, fixed rate', async () => {
      const { result, samples, io } = await sampledWaits(dbUrl, () => load(svc.url, 'mix', { rate: Math.round(max / 2), warmup: 1, sockets: POOL_SOCKETS }));
      sampled.push({ load: result, samples, io });
      return result;
    });
    const half = medianLoad(halves);
    const halfWaits = waitShares(sampled, SLOW_SECOND_MS);
    progress('half the maximum, autocannon overallRate');
    const halfAutocannon = await load(svc.url, 'mix', { rate: Math.round(max / 2), connections: 64, autocannonRate: true });
    progress(`twice the maximum for ${OVERLOAD_SECONDS} s`);
    const over = await load(svc.url, 'mix', { rate: Math.round(max * 2), duration: OVERLOAD_SECONDS, sockets: POOL_SOCKETS });
    progress('recovery at half the maximum');
    const recovery = await load(svc.url, 'mix', { rate: Math.round(max / 2), duration: 10, sockets: POOL_SOCKETS });
    // each single-request scenario at half its own maximum too, to see which part of the mix sets its tail
    const halfEach: Record<string, Load> = {};
    for (const s of SINGLE) {
      // a new-card first call at half the flow's maximum in flows per second (its rps counts three requests a flow)
      const own = s === 'newFirst' ? empty.newCardFlow.load.rps / 3 : empty[s].load.rps;
      halfEach[s] = medianLoad(await repeated(`${s} at half its maximum`, () => load(svc.url, s, { rate: Math.round(own / 2), warmup: 1, sockets: POOL_SOCKETS })));
    }
    // twice again from a client that opens a connection for every request in flight (up to 1,024): Node accepts one
    // new connection per event-loop turn, so under overload new connections wait in the listen queue (README)
    progress(`twice the maximum, up to 1,024 connections`);
    const overWide = await load(svc.url, 'mix', { rate: Math.round(max * 2), duration: OVERLOAD_SECONDS, sockets: 1024 });
    const halfIo = sampled.map((x) => x.io);
    results.fixedRate = { maxRps: max, half, halfRuns: halves, halfWaits, halfIo, halfAutocannon, over, recovery, halfEach, overWide };
    await svc.stop();

    const two = await startService(dbUrl, { WORKERS: '2' });
    const twoMix = medianLoad(await repeated('WORKERS=2 mix', () => load(two.url, 'mix')));
    await two.stop();
    results.workers = { one: empty.mix.load, two: twoMix, gain: twoMix.rps / empty.mix.load.rps };

    progress('housekeeping under a backlog of 300,000 expired nonces');
    const c = new pg.Client({ connectionString: dbUrl });
    await c.connect();
    await c.query(`INSERT INTO nonces (channel, nonce, signature, created_at)
      SELECT '${CHANNEL}', 'expired-' || g, 's', now() - interval '1 hour' FROM generate_series(1, 300000) g`);
    const purging = await startService(dbUrl, { PURGE_INTERVAL_MS: '1000' });
    const during = await load(purging.url, 'list');
    await purging.stop();
    const [{ n: left }] = (await c.query("SELECT count(*)::int AS n FROM nonces WHERE nonce LIKE 'expired-%'")).rows;
    await c.end();
    results.housekeeping = { without: empty.list.load, during, expiredLeft: left };

    if (SCALE) {
      progress(`bulk-loading ${SCALE.toLocaleString()} cards and bindings`);
      process.stderr.write('\n');
      await seedBindings(dbUrl, vault, CHANNEL, 10_000_000, SCALE, (done) => {
        const w = 30;
        const f = Math.round((done / SCALE) * w);
        process.stderr.write(`\r  load [${'#'.repeat(f)}${'-'.repeat(w - f)}] ${done.toLocaleString()}/${SCALE.toLocaleString()}`);
      });
      process.stderr.write('\n');
      // measure the tables as they would be in service, not in the wake of the bulk load (dead tuples, dirty pages)
      const settle = new pg.Client({ connectionString: dbUrl });
      await settle.connect();
      await settle.query('VACUUM (ANALYZE)');
      await settle.query('CHECKPOINT');
      await settle.end();
      const big = await startService(dbUrl);
      const scaled = await scenarioPass(dbUrl, big.url, sql, `${SCALE} cards`);
      await big.stop();
      results.scaled = { cards: SCALE, pass: scaled, vsEmpty: Object.fromEntries(SCENARIOS.map((s) => [s, scaled[s].load.rps / empty[s].load.rps])) };
      results.plans = await explainHot(dbUrl, sql);
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}

function report(results: Record<string, unknown>, started: number): void {
  process.stderr.write('\n');
  const empty = results.empty as Pass;
  const fw = results.frameworkCeiling as Load;
  const lines = [`bindcard benchmark · ${RUNS} runs of ${DURATION} s, ${CONNECTIONS} connections, medians · framework ceiling (bare Koa): ${fw.rps.toFixed(0)} req/s`];
  lines.push('scenario        throughput and latency                                                   db ceiling   ratio');
  for (const s of SCENARIOS) lines.push(`${s.padEnd(14)}  ${fmt(empty[s].load)}  ${empty[s].dbCeiling.toFixed(0).padStart(8)}   ${empty[s].ratio.toFixed(2)}`);
  if (!only) {
    const fr = results.fixedRate as { maxRps: number; half: Load; halfWaits: ReturnType<typeof waitShares>; halfIo: Io[]; halfRuns: Load[]; halfAutocannon: Load; over: Load; recovery: Load; halfEach: Record<string, Load>; overWide: Load };
    const shed = (l: Load) => l.statusCodes?.['503']?.count ?? 0;
    const seconds = (l: Load) => (l.timeline ?? []).map((t) => `${t.ok}/${t.shed}/${t.max}`).join(' ');
    const parts = (l: Load) => Object.entries(l.byKind ?? {}).map(([k, v]) => `${k} ${v.p50}/${v.p99}`).join(', ');
    lines.push(`fixed rate ${Math.round(fr.maxRps / 2)} req/s (half the mix maximum), open loop after 1 s not counted:  ${fmt(fr.half)}  (503: ${shed(fr.half)})`);
    lines.push(`  the mix's parts, p50/p99 ms: ${parts(fr.half)}`);
    const top = (m: Record<string, number>) => Object.entries(m).slice(0, 5).map(([k, v]) => `${k} ${v}%`).join(', ');
    lines.push(`  the service's PostgreSQL sessions, sampled every 10 ms (share of active samples): all seconds: ${top(fr.halfWaits.all)}`);
    lines.push(`    the ${fr.halfWaits.slowSeconds} seconds (of ${RUNS * DURATION}) whose slowest answer took over ${SLOW_SECOND_MS} ms: ${top(fr.halfWaits.slow)}`);
    const io = (x: Io, l: Load) => `p99 ${l.p99} ms; with its warm-up second: WAL ${(x.walBytes / 1e6).toFixed(1)} MB (${x.walFpi} full-page images), pages written by the checkpointer ${x.checkpointerPages}, by backends ${x.backendPages}, checkpoints ended ${x.checkpoints}`;
    fr.halfIo.forEach((x, i) => lines.push(`  run ${i + 1}: ${io(x, fr.halfRuns[i])}`));
    for (const [name, l] of Object.entries(fr.halfEach)) lines.push(`  ${name.padEnd(9)} alone at ${l.rps.toFixed(0)} req/s:  ${fmt(l)}`);
    lines.push(`  the same with autocannon --overallRate (bursts each second, see load.ts):  ${fmt(fr.halfAutocannon)}  (503: ${shed(fr.halfAutocannon)})`);
    lines.push(`fixed rate ${Math.round(fr.maxRps * 2)} req/s for ${OVERLOAD_SECONDS} s (twice), open loop over ≤ ${POOL_SOCKETS} connections:  ${fmt(fr.over)}  (503 shed: ${shed(fr.over)})`);
    lines.push(`  per second, 2xx/503/slowest ms: ${seconds(fr.over)}`);
    const connections = ({ connections: c }: Load) => c
      ? `  slowest first answer on the ${c.opened.count} connections opened meanwhile: ${c.opened.max} ms; on open keep-alive connections (${c.reused.count} answers): ${c.reused.max} ms`
      : '  (no connection counts)';
    lines.push(connections(fr.over));
    lines.push(`recovery at half the maximum right after:  ${fmt(fr.recovery)}  (503: ${shed(fr.recovery)})`);
    lines.push(`  per second, 2xx/503/slowest ms: ${seconds(fr.recovery)}`);
    lines.push(`twice again over ≤ 1,024 connections (one per request in flight):  ${fmt(fr.overWide)}  (503 shed: ${shed(fr.overWide)})`);
    lines.push(connections(fr.overWide));
    const wk = results.workers as { two: Load; gain: number };
    lines.push(`WORKERS=2 mix:  ${fmt(wk.two)}  (gain ×${wk.gain.toFixed(2)} over one)`);
    const hk = results.housekeeping as { during: Load; without: Load; expiredLeft: number };
    lines.push(`list during purge of 300,000 expired nonces:  ${fmt(hk.during)}  (left after ${DURATION} s: ${hk.expiredLeft}; without purge p99 ${hk.without.p99} ms)`);
  }
  if (results.scaled) {
    const sc = results.scaled as { cards: number; pass: Pass; vsEmpty: Record<string, number> };
    lines.push(`with ${sc.cards.toLocaleString()} cards:`);
    for (const s of SCENARIOS) lines.push(`${s.padEnd(14)}  ${fmt(sc.pass[s].load)}  ${sc.pass[s].dbCeiling.toFixed(0).padStart(8)}   ${sc.pass[s].ratio.toFixed(2)}  vs empty ${sc.vsEmpty[s].toFixed(2)}`);
  }
  lines.push(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  console.log(lines.join('\n'));

  mkdirSync('bench-results', { recursive: true });
  const stamp = new Date(started).toISOString().replace(/[:.]/g, '-');
  writeFileSync(`bench-results/${stamp}.json`, JSON.stringify(results, null, 2));
  writeFileSync(`bench-results/${stamp}.svg`, svgChart(empty, `bindcard ${stamp}`));
  console.log(`results: bench-results/${stamp}.json, bench-results/${stamp}.svg`);
}

const started = Date.now();
const results: Record<string, unknown> = { started: new Date(started).toISOString(), runs: RUNS, duration: DURATION, connections: CONNECTIONS, only };
await measure(results);
report(results, started);

// `npm run bench [-- --runs 3 --duration 10 --connections 32 --scale [N] --only list,replay]`
// Starts the service on a fresh PostgreSQL database (production settings, sandbox providers), loads it from a separate
// process with autocannon, and prints per scenario requests/s, p50/p90/p99/max, non-2xx and errors, each against the
// ceilings that bound it on this machine: the database (the scenario's exact SQL replayed by bare `pg` clients at the
// same concurrency) and the framework (bare Koa answering the same JSON). Medians of --runs runs. Then: fixed arrival
// rates (half and twice the maximum), WORKERS=2, housekeeping under a backlog, and with --scale the same scenarios over
// N bulk-loaded cards, with the hot queries' plans. Results: bench-results/<time>.json and .svg. With --only, just those
// scenarios and their ceilings (a quick check while working on one path).
//
// The parts: options.ts (command line), service.ts (the service and its channel), load-runs.ts (the load generator's
// runs), ceilings.ts (database and framework ceilings), pg-waits.ts (what the sessions wait on), query-plans.ts,
// report.ts, steps.ts (the progress bar); this file runs them in order.
import pg from 'pg';
import { showProgress } from '../../src/cli/progress.ts';
import { loadConfig } from '../../src/config.ts';
import { vaultFor } from '../../src/crypto/vault.ts';
import { frameworkCeiling, recordScenarioSql, scenarioPass } from './ceilings.ts';
import { medianLoad, runLoad, type Load } from './load-runs.ts';
import { CONNECTIONS, DURATION, ONLY, OVERLOAD_SECONDS, POOL_SOCKETS, RUNS, SCALE, SCENARIOS, SEED, SLOW_SECOND_MS } from './options.ts';
import { sampledWaits, waitShares, type Io, type Waits } from './pg-waits.ts';
import { explainHot } from './query-plans.ts';
import { report } from './report.ts';
import { seedBindings } from './seed.ts';
import { CHANNEL, prepareDatabase, startService } from './service.ts';
import { planSteps, repeated, step } from './steps.ts';
import { createThrowawayDatabase } from '../setup/throwaway-database.ts';

const SINGLE = ['existing', 'replay', 'list', 'newFirst'] as const; // one request each, for the open loop
const vault = vaultFor(loadConfig({}));

async function measure(results: Record<string, unknown>): Promise<void> {
  // always a server: the run reads pg_stat_activity and starts WORKERS=2, which the embedded database cannot serve
  const database = await createThrowawayDatabase({
    prefix: 'bindcard_bench',
    serverUrl: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  });
  const dbUrl = database.url;
  // seeding; per run: framework, half rate, WORKERS=2, each single scenario, every scenario and its ceiling (twice with
  // --scale); once: autocannon's rate, overload twice, recovery, housekeeping, and the bulk load with --scale
  planSteps(
    ONLY
      ? 1 + RUNS * (1 + SCENARIOS.length * 2)
      : 1 + RUNS * (3 + SINGLE.length + SCENARIOS.length * 2 * (SCALE ? 2 : 1)) + 5 + (SCALE ? 1 : 0),
  );
  try {
    await prepareDatabase(dbUrl, vault);
    step(`seeding ${SEED} bound users`);
    await seedBindings(dbUrl, vault, CHANNEL, 0, SEED, () => {});
    const sql = await recordScenarioSql(dbUrl);

    const framework = await frameworkCeiling();
    results.frameworkCeiling = framework;
    const svc = await startService(dbUrl);
    const empty = await scenarioPass(dbUrl, svc.url, sql, 'empty');
    results.empty = empty;
    if (ONLY) {
      await svc.stop();
      return;
    }

    // fixed arrival rates around the measured maximum of the mix
    const max = empty.mix.load.rps;
    // steady state: each load process (a new generator, its connections) first sends a second of the same load, not
    // counted; meanwhile the service's sessions' waits are sampled, to tell where the slow seconds come from
    const sampled: { load: Load; samples: Waits; io: Io }[] = [];
    const halves = await repeated('half the maximum, fixed rate', async () => {
      const { result, samples, io } = await sampledWaits(dbUrl, () =>
        runLoad(svc.url, 'mix', { rate: Math.round(max / 2), warmup: 1, sockets: POOL_SOCKETS }),
      );
      sampled.push({ load: result, samples, io });
      return result;
    });
    const half = medianLoad(halves);
    const halfWaits = waitShares(sampled, SLOW_SECOND_MS);
    step('half the maximum, autocannon overallRate');
    const halfAutocannon = await runLoad(svc.url, 'mix', { rate: Math.round(max / 2), connections: 64, autocannonRate: true });
    step(`twice the maximum for ${OVERLOAD_SECONDS} s`);
    const over = await runLoad(svc.url, 'mix', { rate: Math.round(max * 2), duration: OVERLOAD_SECONDS, sockets: POOL_SOCKETS });
    step('recovery at half the maximum');
    const recovery = await runLoad(svc.url, 'mix', { rate: Math.round(max / 2), duration: 10, sockets: POOL_SOCKETS });
    // each single-request scenario at half its own maximum too, to see which part of the mix sets its tail
    const halfEach: Record<string, Load> = {};
    for (const scenario of SINGLE) {
      // a new-card first call at half the flow's maximum in flows per second (its rps counts three requests a flow)
      const own = scenario === 'newFirst' ? empty.newCardFlow.load.rps / 3 : empty[scenario].load.rps;
      halfEach[scenario] = medianLoad(
        await repeated(`${scenario} at half its maximum`, () =>
          runLoad(svc.url, scenario, { rate: Math.round(own / 2), warmup: 1, sockets: POOL_SOCKETS }),
        ),
      );
    }
    // twice again from a client that opens a connection for every request in flight (up to 1,024): the service
    // accepts new connections only when its event loop polls, so under overload they wait in the listen queue
    step(`twice the maximum, up to 1,024 connections`);
    const overWide = await runLoad(svc.url, 'mix', { rate: Math.round(max * 2), duration: OVERLOAD_SECONDS, sockets: 1024 });
    const halfIo = sampled.map((run) => run.io);
    results.fixedRate = { maxRps: max, half, halfRuns: halves, halfWaits, halfIo, halfAutocannon, over, recovery, halfEach, overWide };
    await svc.stop();

    const two = await startService(dbUrl, { WORKERS: '2' });
    const twoMix = medianLoad(await repeated('WORKERS=2 mix', () => runLoad(two.url, 'mix')));
    await two.stop();
    results.workers = { one: empty.mix.load, two: twoMix, gain: twoMix.rps / empty.mix.load.rps };

    step('housekeeping under a backlog of 300,000 expired nonces');
    const client = new pg.Client({ connectionString: dbUrl });
    await client.connect();
    await client.query(`INSERT INTO nonces (channel, nonce, signature, created_at)
      SELECT '${CHANNEL}', 'expired-' || g, 's', now() - interval '1 hour' FROM generate_series(1, 300000) g`);
    const purging = await startService(dbUrl, { PURGE_INTERVAL_MS: '1000' });
    const during = await runLoad(purging.url, 'list');
    await purging.stop();
    const [{ n: left }] = (await client.query<{ n: number }>("SELECT count(*)::int AS n FROM nonces WHERE nonce LIKE 'expired-%'")).rows;
    await client.end();
    results.housekeeping = { without: empty.list.load, during, expiredLeft: left };

    if (SCALE) {
      step(`bulk-loading ${SCALE.toLocaleString()} cards and bindings`);
      process.stderr.write('\n');
      await seedBindings(dbUrl, vault, CHANNEL, 10_000_000, SCALE, (done) => showProgress(done, SCALE, { before: '  load ' }));
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
      results.scaled = {
        cards: SCALE,
        pass: scaled,
        vsEmpty: Object.fromEntries(SCENARIOS.map((scenario) => [scenario, scaled[scenario].load.rps / empty[scenario].load.rps])),
      };
      results.plans = await explainHot(dbUrl, sql);
    }
  } finally {
    await database.drop();
  }
}

const started = Date.now();
const results: Record<string, unknown> = {
  started: new Date(started).toISOString(),
  runs: RUNS,
  duration: DURATION,
  connections: CONNECTIONS,
  only: ONLY,
  // the runtime measured: the service and the load processes run on this process's node (process.execPath)
  node: process.version,
};
await measure(results);
report(results, started);

// The model-based test of issue #19: random sequences of bindCard (first calls, resends, right, wrong, stale and
// malformed codes, existing cards), card lists, queries and unbindings, by four users (three people) sharing three
// cards and two mobiles, against one real service over HTTP on PostgreSQL, with business time moved by the fault
// switch's clock. After every step the answers are the reference model's and the invariants hold (commands.ts).
//
// Run with the chaos stages' mocha configuration (the root one's spec would add the whole suite to any file named on
// the command line): `scripts/chaos.sh model`, i.e. `npx mocha --config test/chaos/mocharc.json <this file>`.
//   MODEL_RUNS=1000 MODEL_STEPS=60 scripts/chaos.sh model     more than the 100 sequences of up to 30 steps
//   MODEL_SEED=<seed> MODEL_PATH=<path> scripts/chaos.sh model  replays a failure
//   MODEL_COVERAGE=1 …                                          prints what the answers were
import fc from 'fast-check';
import pg from 'pg';
import { testDatabaseUrl } from '../../setup/database.ts';
import { startListening, type Listening } from '../../setup/service-process.ts';
import { commandArbs, coverage, newCtx, type Ctx, type Real } from './commands.ts';
import { Driver } from './driver.ts';
import { emptyState, Model, SERVICE_LIMITS } from './model.ts';
import { makeWorld } from './world.ts';

const whole = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new Error(`${name} must be a whole number, got "${raw}"`);
  return Number(raw);
};

const RUNS = whole('MODEL_RUNS', 100);
const STEPS = whole('MODEL_STEPS', 30);
const SEED = process.env.MODEL_SEED ? Number(process.env.MODEL_SEED) : undefined;
if (SEED !== undefined && !Number.isInteger(SEED)) throw new Error(`MODEL_SEED must be an integer, got "${process.env.MODEL_SEED}"`);
const PATH = process.env.MODEL_PATH;

describe('model-based: random sequences of the four operations against the model', function () {
  // a failing sequence is shrunk by running it again and again
  this.timeout(0);
  let service: Listening;
  let db: pg.Client;
  let real: Real;

  before(async () => {
    service = await startListening('src/main.ts', {
      DATABASE_URL: testDatabaseUrl(),
      PORT: '0',
      ADMIN_PORT: '0',
      NODE_ENV: 'test',
      FAULTS: 'chaos',
      DB_POOL_MAX: '8',
      LOG_LEVEL: 'error',
      // the test's own pace is no overload: it checks the rules, not the channel's rate
      RATE_LIMIT_PER_SECOND: '100000',
      // business time runs ahead of real time; nothing is purged under the sequences' feet
      PURGE_INTERVAL_MS: '0',
      ...SERVICE_LIMITS,
    });
    db = new pg.Client({ connectionString: testDatabaseUrl() });
    await db.connect();
    real = { driver: new Driver(service.url), db };
  });

  after(async () => {
    await db?.end();
    await service?.stop();
  });

  it(`${RUNS} sequences of up to ${STEPS} steps match the model, and the invariants hold`, async () => {
    const started = Date.now();
    let sequences = 0;
    let steps = 0;
    const property = fc.asyncProperty(fc.commands(commandArbs, { maxCommands: STEPS, size: 'max' }), async (cmds) => {
      sequences++;
      const setup = () => {
        // every sequence (and every try while shrinking) has people, cards and mobiles of its own
        const ctx: Ctx = newCtx(new Model(makeWorld(), emptyState(Date.now())));
        return { model: ctx, real };
      };
      await fc.asyncModelRun(setup, cmds);
      steps += [...cmds].length;
    });
    try {
      await fc.assert(property, { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }), ...(PATH ? { path: PATH } : {}) });
    } catch (e) {
      const m = /seed: (-?\d+), path: "([^"]*)"/.exec(String((e as Error).message));
      if (m)
        (e as Error).message +=
          `\n\nReplay: MODEL_SEED=${m[1]} MODEL_PATH=${m[2]} npx mocha --config test/chaos/mocharc.json test/chaos/model/model.test.ts`;
      throw e;
    }
    const seconds = (Date.now() - started) / 1000;
    if (process.env.MODEL_COVERAGE) {
      for (const [what, n] of [...coverage].sort()) console.log(`      ${String(n).padStart(6)}  ${what}`);
    }
    console.log(
      `      ${sequences} sequences, ${steps} steps in ${seconds.toFixed(1)} s; unexpected transient answers retried: ${real.driver.transients}`,
    );
  });
});

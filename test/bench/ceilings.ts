// The ceilings that bound each scenario on this machine. The database's: the scenario's exact SQL, recorded from the
// service, replayed by bare `pg` clients at the same concurrency. The framework's: bare Koa answering the same JSON.
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { signedHeaders } from '../../src/sdk/sign.ts';
import { PROTOCOL_POOL_MAX, PROTOCOL_POOL_NAME } from '../../src/store/db.ts';
import { identity, takeFreshUsers } from './identities.ts';
import { median, medianLoad, runLoad, type Load } from './load-runs.ts';
import { CONNECTIONS, DURATION, RUNS, SCENARIOS, SEED, type Scenario } from './options.ts';
import { CHANNEL, channelSecret, startRecordingService } from './service.ts';
import { repeated, step } from './steps.ts';
import { startListening } from '../setup/service-process.ts';

const VARIANTS = 200; // recorded requests of each kind for the database ceiling

/** One statement as record-sql.ts wrote it. */
export interface Statement {
  text: string;
  values?: unknown[];
  name?: string;
  pool?: string;
  options?: string;
}
/** Per scenario, the statements of each recorded request (of each flow, for newCardFlow). */
export type ScenarioSql = Record<string, Statement[][]>;

/**
 * Records the statements of VARIANTS requests of each kind, each for another user: replaying one user's statements
 * from 32 clients at once would make them queue on that user's rows, which the service's load never does.
 */
export async function recordScenarioSql(dbUrl: string): Promise<ScenarioSql> {
  const file = join(tmpdir(), `bindcard-sql-${randomBytes(4).toString('hex')}.jsonl`);
  writeFileSync(file, '');
  const svc = await startRecordingService(dbUrl, file);
  /** the statements `run` makes the service send: the lines the recorder appends meanwhile (it writes before it sends) */
  const record = async (run: () => Promise<unknown>): Promise<Statement[]> => {
    const from = statSync(file).size;
    await run();
    const added = Buffer.alloc(statSync(file).size - from);
    const fd = openSync(file, 'r');
    readSync(fd, added, 0, added.length, from);
    closeSync(fd);
    return added
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Statement);
  };
  const post = async (path: string, body: object) => {
    const bytes = JSON.stringify(body);
    const res = await fetch(svc.url + path, {
      method: 'POST',
      body: bytes,
      headers: { 'content-type': 'application/json', ...signedHeaders(CHANNEL, channelSecret(), 'POST', path, bytes) },
    });
    return res.json() as Promise<unknown>;
  };
  const inbox = async (mobile: string) =>
    (await fetch(`${svc.url}/sandbox/sms?mobile=${mobile}`)).json() as Promise<{ messages: { code: string }[] }>;
  const BIND = `/${CHANNEL.toLowerCase()}channel/bindCard?r_c=${CHANNEL}`;
  const LIST = `/${CHANNEL.toLowerCase()}channel/bankCardList?r_c=${CHANNEL}`;
  await post(LIST, { user_id: identity(SEED - 1).user_id }); // opens each pool's connection (and its set-up statements) first
  const out: Record<'existing' | 'replay' | 'list' | 'newFirst' | 'newCardFlow', Statement[][]> = {
    existing: [],
    replay: [],
    list: [],
    newFirst: [],
    newCardFlow: [],
  };
  for (let variant = 0; variant < VARIANTS; variant++) {
    const bound = identity(variant);
    out.existing.push(
      await record(() => post(BIND, { user_id: bound.user_id, bank_card: bound.bank_card, open_bank: 'ICBC', bind_card_src: 2 })),
    );
    out.replay.push(await record(() => post(BIND, { ...bound, verify_code: '123456' })));
    out.list.push(await record(() => post(LIST, { user_id: bound.user_id })));
    const newcomer = identity(takeFreshUsers(1));
    const first = await record(() => post(BIND, newcomer));
    let code = '';
    const sms = await record(async () => {
      code = (await inbox(newcomer.user_mobile)).messages[0].code;
    });
    const confirm = await record(() => post(BIND, { ...newcomer, verify_code: code }));
    out.newFirst.push(first);
    out.newCardFlow.push([...first, ...sms, ...confirm]);
  }
  await svc.stop();
  rmSync(file);
  const { existing, replay, list, newFirst } = out;
  // the mix's parts with its weights (list 4, existing 3, replay 2, new first call 1)
  return { ...out, mix: [...list, ...list, ...list, ...list, ...existing, ...existing, ...existing, ...replay, ...replay, ...newFirst] };
}

/** Requests (sequences of statements) per second that `connections` bare clients complete, each replaying a random variant. */
export async function databaseCeiling(dbUrl: string, variants: Statement[][], connections: number, seconds: number): Promise<number> {
  // as the service: replay protection on a pool of a few sessions, the rest each on a session of its own; both with
  // the options (synchronous_commit) the service's sessions had
  const options = (protocol: boolean) => variants.flat().find((statement) => (statement.pool === PROTOCOL_POOL_NAME) === protocol)?.options;
  const clients = await Promise.all(
    Array.from({ length: connections }, async () => {
      const client = new pg.Client({ connectionString: dbUrl, options: options(false) });
      await client.connect();
      return client;
    }),
  );
  const protocolPool = new pg.Pool({ connectionString: dbUrl, max: PROTOCOL_POOL_MAX, options: options(true) });
  const until = Date.now() + seconds * 1000;
  let done = 0;
  await Promise.all(
    clients.map(async (client) => {
      while (Date.now() < until) {
        const sequence = variants[Math.floor(Math.random() * variants.length)];
        // every request carries a new nonce: replay each sequence under a fresh one, as the service sees them
        const nonce = sequence.find((statement) => /INSERT INTO nonces/.test(statement.text))?.values?.[1];
        const freshNonce = randomBytes(16).toString('hex');
        try {
          for (const statement of sequence) {
            const values = statement.values?.map((value) => (value === nonce ? freshNonce : value));
            const query = statement.name ? { name: statement.name, text: statement.text, values } : { text: statement.text, values };
            await (statement.pool === PROTOCOL_POOL_NAME ? protocolPool : client).query(query);
          }
        } catch {
          await client.query('ROLLBACK').catch(() => {});
        }
        done++;
      }
    }),
  );
  await Promise.all(clients.map((client) => client.end()));
  await protocolPool.end();
  return done / seconds;
}

export async function frameworkCeiling(): Promise<Load> {
  const bare = await startListening('test/bench/bare-koa.ts');
  const runs = await repeated('framework ceiling', () => runLoad(bare.url, 'list'));
  await bare.stop();
  return medianLoad(runs);
}

/** One pass of every scenario: its load and its database ceiling, --runs times each, and the ratio of their medians. */
export type Pass = Record<Scenario, { load: Load; dbCeiling: number; ratio: number }>;

export async function scenarioPass(dbUrl: string, url: string, sql: ScenarioSql, label: string): Promise<Pass> {
  const pass = {} as Pass;
  for (const scenario of SCENARIOS) {
    const runs: Load[] = [];
    const ceilings: number[] = [];
    for (let run = 1; run <= RUNS; run++) {
      step(`${label} ${scenario} run ${run}`);
      runs.push(await runLoad(url, scenario));
      step(`${label} ${scenario} db ceiling ${run}`);
      // the flow's ceiling counts whole flows; autocannon counts its three requests
      ceilings.push((await databaseCeiling(dbUrl, sql[scenario], CONNECTIONS, DURATION)) * (scenario === 'newCardFlow' ? 3 : 1));
    }
    const load = medianLoad(runs);
    const ceiling = median(ceilings);
    pass[scenario] = { load, dbCeiling: ceiling, ratio: load.rps / ceiling };
  }
  return pass;
}

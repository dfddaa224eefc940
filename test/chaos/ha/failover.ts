// The HA stage's driver (run by run.sh, cwd the repository): starts the service on HAProxy's address, runs new-card
// flows as the sandbox partner DEMO, SIGKILLs the leading node (Patroni and its postmaster) under that load, checks
// the service's answers through the failover and that no BOUND binding is lost, then brings the old primary back and
// waits for it to stream from the new leader. Prints the figures; exits 1 on any violation.
import { execFileSync } from 'node:child_process';
import { createWriteStream, readFileSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { poll } from '../../../src/lib/poll.ts';
import { signedHeaders } from '../../../src/sdk/sign.ts';
import { seedNewCard, withCheckChar, withLuhnDigit } from '../../setup/seed.ts';
import { startListening } from '../../setup/service-process.ts';

const DIR = process.env.HA_DIR ?? '';
if (!DIR) throw new Error('HA_DIR: the cluster folder (run.sh sets it)');
const CLUSTER = new URL('cluster.sh', import.meta.url).pathname;
// cluster.sh's ports: the Patroni REST APIs and HAProxy's front
const REST = { node1: 28008, node2: 28009 } as const;
type Node = keyof typeof REST;
const HAPROXY = 25000;

const ANSWER_LIMIT_MS = 2000; // the partner's timeout (the seed)
const FIRST_SUCCESS_LIMIT_MS = 30_000;
const WORKERS = 8; // concurrent partner flows
const PAUSE_MS = 150; // between one worker's flows: keeps the channel well under its 200 requests/s
const RETRY_MS = 500; // a partner's pause before sending the same request again
const BEFORE_KILL_MS = 8_000;
const AFTER_RECOVERY_MS = 8_000; // load on the new, unprotected primary before the flows stop
const REJOIN_LIMIT_MS = 60_000;

interface Answer {
  sent: number;
  ms: number;
  status: number; // 0: no answer (timeout or connection error)
  result: unknown; // the body's data.status (SMS_SENT, BOUND, …)
  op: string;
}
const answers: Answer[] = [];
const bound: { user_id: string; card_id: string; before_kill: boolean }[] = [];
const problems: string[] = [];
let killedAt = Infinity;
let stopping = false;
let providerRetries = 0;

const log = (msg: string) => process.stderr.write(`ha: ${msg}\n`);
const now = () => performance.now();

/** One request; every answer (or its absence) is recorded with its latency. */
async function send(op: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const sent = now();
  let status = 0;
  let json: Record<string, unknown> = {};
  try {
    const bytes = body === undefined ? undefined : JSON.stringify(body);
    const headers =
      bytes === undefined ? {} : { 'content-type': 'application/json', ...signedHeaders('DEMO', 'demo-secret', 'POST', path, bytes) };
    // wait well past the limit, so a late answer is measured rather than cut
    const res = await fetch(base + path, { method: bytes ? 'POST' : 'GET', headers, body: bytes, signal: AbortSignal.timeout(5000) });
    status = res.status;
    json = (await res.json()) as Record<string, unknown>;
  } catch {
    status = 0;
  }
  const result = (json.data as { status?: unknown } | undefined)?.status;
  answers.push({ sent, ms: now() - sent, status, result, op });
  return { status, json };
}

/**
 * Sends the same request until it is answered, as a partner does on a 503, a timeout or a gateway timeout. A 429 is
 * retried too (so the flow goes on), but the verdict counts every 429 as a violation: the load stays under the limit.
 */
async function until200(op: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  for (;;) {
    const { status, json } = await send(op, path, body);
    // 505 PROVIDER_TIMEOUT / PROVIDER_ERROR say "retry" (README): the sandbox's gateways are slow on a loaded machine
    const subCode = (json.data as { sub_code?: string } | undefined)?.sub_code ?? '';
    const providerRetry = status === 200 && json.code === 505 && /^PROVIDER_(TIMEOUT|ERROR)$/.test(subCode);
    if (status === 200 && !providerRetry) return json;
    if (providerRetry) providerRetries++;
    else if (![0, 429, 503].includes(status)) throw new Error(`${op}: HTTP ${status} ${JSON.stringify(json)}`);
    if (now() - killedAt > 60_000) throw new Error(`${op}: still HTTP ${status} ${subCode} a minute after the kill`);
    await sleep(RETRY_MS);
  }
}

/** A distinct borrower for flow n: own user, card (ICBC debit BIN, Luhn-valid), ID number and mobile. */
function borrower(n: number): Record<string, unknown> {
  const card = withLuhnDigit(`62220220${String(n).padStart(10, '0')}`);
  // born 1980-01-01 + n / 1000 days, serial n % 1000: a valid date and check character for any n
  const born = new Date(Date.UTC(1980, 0, 1 + Math.floor(n / 1000))).toISOString().slice(0, 10).replaceAll('-', '');
  return seedNewCard({
    user_id: `ha-${n}`,
    bank_card: card,
    id_number: withCheckChar(`110108${born}${String(n % 1000).padStart(3, '0')}`),
    user_mobile: `139${String(n).padStart(8, '0')}`,
  });
}

const BIND = '/demochannel/bindCard?r_c=DEMO';

async function flow(n: number): Promise<void> {
  const body = borrower(n);
  const startedBeforeKill = now() < killedAt;
  const first = (await until200('bindCard', BIND, body)) as { code: number; data?: { status?: string } };
  if (first.code !== 200 || first.data?.status !== 'SMS_SENT') throw new Error(`flow ${n}: first call ${JSON.stringify(first)}`);
  const inbox = (await until200('sms', `/sandbox/sms?mobile=${String(body.user_mobile)}`)) as { messages: { code: string }[] };
  const code = inbox.messages[0]?.code;
  if (!code) throw new Error(`flow ${n}: no SMS`);
  const done = (await until200('bindCard', BIND, { ...body, verify_code: code })) as {
    code: number;
    data?: { status?: string; card_id?: string };
  };
  if (done.code !== 200 || done.data?.status !== 'BOUND' || !done.data.card_id)
    throw new Error(`flow ${n}: confirmation ${JSON.stringify(done)}`);
  bound.push({ user_id: String(body.user_id), card_id: done.data.card_id, before_kill: startedBeforeKill && now() < killedAt });
}

let next = 0;
async function worker(): Promise<void> {
  while (!stopping) {
    const n = next++;
    await flow(n).catch((e: Error) => problems.push(e.message));
    await sleep(PAUSE_MS);
  }
}

async function rest(node: Node, path: string): Promise<{ status: number; json: Record<string, unknown> }> {
  try {
    const res = await fetch(`http://127.0.0.1:${REST[node]}/${path}`, { signal: AbortSignal.timeout(1000) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  } catch {
    return { status: 0, json: {} };
  }
}

async function leader(): Promise<Node | undefined> {
  for (const node of Object.keys(REST) as Node[]) if ((await rest(node, 'primary')).status === 200) return node;
  return undefined;
}

// ── the service, on HAProxy's one address ──
const service = await startListening('src/main.ts', {
  DATABASE_URL: `postgres://postgres@127.0.0.1:${HAPROXY}/bindcard`,
  PORT: '0',
  ADMIN_PORT: '0',
  NODE_ENV: 'test',
  SANDBOX: 'true',
  DB_POOL_MAX: '16',
  LOG_LEVEL: 'warn',
});
service.proc.stdout?.pipe(createWriteStream(`${DIR}/service.log`));
const base = service.url;
// stopped from outside (run.sh's cleanup): the service goes with us
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void service.stop().finally(() => process.exit(1)));
log(`service ${base}, admin ${service.admin}`);

try {
  const primary = await leader();
  if (!primary) throw new Error('no leader before the kill');
  const standby: Node = primary === 'node1' ? 'node2' : 'node1';
  if ((await rest(standby, 'sync')).status !== 200) throw new Error(`${standby} is not the synchronous standby before the kill`);

  // one flow first, so the figures are about the failover and not the service's cold start (JIT, first connections)
  await flow(next++);
  const warmUp = answers.splice(0);
  log(`warm-up flow: ${warmUp.length} requests, slowest ${Math.max(...warmUp.map((a) => a.ms)).toFixed(0)} ms`);

  // ── load, then the kill ──
  const workers = Array.from({ length: WORKERS }, () => worker());
  await sleep(BEFORE_KILL_MS);
  const boundBefore = bound.length;
  killedAt = now();
  execFileSync(CLUSTER, ['kill', DIR, primary], { stdio: 'inherit' });
  log(`killed ${primary} (Patroni + postmaster, SIGKILL) after ${boundBefore} bound flows`);

  // when the standby holds the lock and has left recovery (HAProxy's criterion): failure detection + promotion
  let promotedMs = Infinity;
  void (async () => {
    while (promotedMs === Infinity && !stopping) {
      const { status, json } = await rest(standby, 'primary');
      if (status === 200 && ['master', 'primary'].includes(String(json.role))) promotedMs = now() - killedAt;
      else await sleep(100);
    }
  })();

  // the first success: a bindCard request sent after the kill whose answer moved the flow on (SMS_SENT or BOUND)
  const succeededAfterKill = () =>
    answers.find((a) => a.sent > killedAt && a.op === 'bindCard' && a.status === 200 && (a.result === 'SMS_SENT' || a.result === 'BOUND'));
  const first = await poll(async () => succeededAfterKill(), {
    intervalMs: 100,
    deadline: Date.now() + FIRST_SUCCESS_LIMIT_MS + 15_000 - (now() - killedAt),
  });
  const firstSuccessMs = first ? first.sent + first.ms - killedAt : Infinity;
  await sleep(AFTER_RECOVERY_MS);
  stopping = true;
  await Promise.all(workers);

  const newLeader = await leader();
  const served503 = answers.filter((a) => a.status === 503).length;
  const late = answers.filter((a) => a.ms > ANSWER_LIMIT_MS || a.status === 0);
  const worstMs = Math.max(...answers.map((a) => a.ms));
  const http500 = answers.filter((a) => a.status >= 500 && a.status !== 503).length;
  const rateLimited = answers.filter((a) => a.status === 429).length;

  // ── every BOUND answer still bound, read through the service on the new leader ──
  let lost = 0;
  for (let i = 0; i < bound.length; i += WORKERS) {
    await Promise.all(
      bound.slice(i, i + WORKERS).map(async (b) => {
        const list = (await until200('bankCardList', '/demochannel/bankCardList?r_c=DEMO', { user_id: b.user_id })) as {
          data?: { cards?: { card_id: string }[] };
        };
        if (!list.data?.cards?.some((c) => c.card_id === b.card_id)) {
          lost++;
          problems.push(`lost: ${b.user_id} ${b.card_id} (answered BOUND ${b.before_kill ? 'before' : 'after'} the kill)`);
        }
      }),
    );
  }
  const alive = service.proc.exitCode === null && (await fetch(`${service.admin}/readyz`)).status === 200;

  // ── the old primary comes back and must stream from the new leader ──
  const logFile = `${DIR}/${primary}.log`;
  const logOffset = statSync(logFile).size;
  const rejoinStart = now();
  execFileSync(CLUSTER, ['start', DIR, primary], { stdio: 'inherit' });
  const rejoinMs =
    (await poll(
      async () => {
        const replicas = newLeader
          ? ((await rest(newLeader, 'patroni')).json.replication as { application_name: string; state: string }[] | undefined)
          : [];
        const streaming = replicas?.some((r) => r.application_name === primary && r.state === 'streaming');
        return streaming && (await rest(primary, 'replica')).status === 200 ? now() - rejoinStart : undefined;
      },
      { intervalMs: 250, deadline: Date.now() + REJOIN_LIMIT_MS },
    )) ?? Infinity;
  // once streaming, the leader's next loop makes it the synchronous standby again
  const syncAgain =
    rejoinMs < Infinity &&
    (await poll(async () => ((await rest(primary, 'sync')).status === 200 ? true : undefined), {
      intervalMs: 250,
      deadline: Date.now() + 15_000,
    })) === true;
  // How it came back, from what its Patroni logged since the restart. remove_data_directory_on_rewind_failure (and
  // _on_diverged_timelines) would let a failed rewind end in a fresh pg_basebackup from the leader that streams just
  // the same: that is a violation here. A successful pg_rewind, or none needed (same timeline or no divergence), is fine.
  const since = readFileSync(logFile).subarray(logOffset).toString();
  const cloned = /bootstrap(ped)? from (leader|replica)|created using basebackup|Removing data directory|reinitializ/i.test(since);
  const rewound = /pg_rewind exit code=0\b/.test(since);
  const rewindTried = /running pg_rewind/.test(since);
  const how = cloned
    ? `by a fresh clone (pg_basebackup${rewindTried ? ' after a failed pg_rewind' : ''})`
    : rewound
      ? 'after a successful pg_rewind'
      : rewindTried
        ? 'after a pg_rewind that did not succeed'
        : 'with no pg_rewind needed';
  log(`${primary} came back ${how}`);

  // ── verdict ──
  if (newLeader !== standby) problems.push(`leader after the kill: ${newLeader ?? 'none'} (expected ${standby})`);
  if (!(firstSuccessMs <= FIRST_SUCCESS_LIMIT_MS))
    problems.push(`first success ${(firstSuccessMs / 1000).toFixed(1)} s after the kill (limit 30 s)`);
  const sinceKill = (a: Answer) =>
    `${a.op} ${a.status || 'no answer'} ${a.ms.toFixed(0)} ms at ${((a.sent - killedAt) / 1000).toFixed(1)} s`;
  if (late.length) problems.push(`${late.length} answers over 2 s or missing: ${late.slice(0, 5).map(sinceKill).join(', ')}`);
  if (http500) problems.push(`${http500} answers 5xx other than 503`);
  if (rateLimited) problems.push(`${rateLimited} answers 429 (rate limited)`);
  if (cloned) problems.push(`${primary} came back ${how}, not by pg_rewind (or without needing one)`);
  else if (rewindTried && !rewound) problems.push(`${primary}: pg_rewind ran and did not succeed`);
  if (!alive) problems.push('the service is not running and ready after the failover');
  if (rejoinMs === Infinity) problems.push(`${primary} did not stream from ${newLeader ?? '?'} within ${REJOIN_LIMIT_MS / 1000} s`);
  else if (!syncAgain) problems.push(`${primary} streams but did not become the synchronous standby again`);
  for (const p of problems.slice(0, 20)) log(`VIOLATION ${p}`);

  const s = (ms: number) => (ms === Infinity ? 'never' : `${(ms / 1000).toFixed(1)} s`);
  console.log(
    `ha: kill→promoted ${s(promotedMs)} · kill→first success ${s(firstSuccessMs)} · 503s ${served503} · over 2 s ${late.length} ` +
      `(worst ${worstMs.toFixed(0)} ms) · flows ${bound.length} bound ` +
      `(${boundBefore} before the kill) · bound lost ${lost} · 429s ${rateLimited} · gateway retries ${providerRetries} · old primary rejoined as ` +
      `${syncAgain ? 'sync ' : ''}replica ${how} in ${s(rejoinMs)}${problems.length ? ` · ${problems.length} VIOLATIONS` : ''}`,
  );
  process.exitCode = problems.length ? 1 : 0;
} finally {
  stopping = true;
  await service.stop();
}

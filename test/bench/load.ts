// The load generator, run as its own process, printing one JSON result for one scenario.
// usage: node --import tsx test/bench/load.ts '{"url":…,"channel":…,"secret":…,"scenario":…,"connections":…,"duration":…,"rate":…,"seeded":[from,count],"fresh":start}'
// Without a rate: autocannon, closed loop (each connection sends its next request when the last is answered).
// With a rate: an open loop of our own. autocannon's overallRate is not a fixed arrival rate: each connection sends
// back to back until it has made its share for the current second, then pauses until the next one (httpClient.js,
// reqsMadeThisSecond), so every second starts with a burst at full concurrency; and its coordinated-omission
// correction uses an expected interval of ceil(1 / rate) = 1 ms, adding a synthetic sample for every millisecond of a
// slow answer. Here request i is sent at start + i / rate whether or not earlier ones were answered, and its latency
// is counted from that planned moment, so a stall on either side shows up in the numbers. The requests are built and
// signed before the clock starts (the generator shares the two cores with the service), and they go over at most
// `sockets` keep-alive connections, as a partner's HTTP client pool would send them: a request waiting for a free
// connection waits on the clock too. With `warmup`, the first seconds of the same load are sent and not counted.
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { signedHeaders } from '../../src/sdk/sign.ts';
import { identity } from './identities.ts';

const opts = JSON.parse(process.argv[2]) as {
  url: string;
  channel: string;
  secret: string;
  scenario: string;
  connections: number;
  duration: number;
  rate?: number;
  seeded: [number, number];
  fresh: number;
  /** with a rate: autocannon's overallRate instead of the open loop, to show the difference */
  autocannonRate?: boolean;
  /** with a rate: the most connections the open loop opens (default 128) */
  sockets?: number;
  /** with a rate: seconds of the same load sent first and not counted (a new generator process, its connections) */
  warmup?: number;
};
const BIND = `/${opts.channel.toLowerCase()}channel/bindCard?r_c=${opts.channel}`;
const LIST = `/${opts.channel.toLowerCase()}channel/bankCardList?r_c=${opts.channel}`;
const [seedFrom, seedCount] = opts.seeded;
const anySeeded = () => identity(seedFrom + Math.floor(Math.random() * seedCount));
let fresh = opts.fresh;

type Req = { method: string; path: string; body?: string; headers: Record<string, string>; kind?: string };
function signedPost(path: string, body: object): Req {
  const bytes = JSON.stringify(body);
  return {
    method: 'POST',
    path,
    body: bytes,
    headers: { 'content-type': 'application/json', ...signedHeaders(opts.channel, opts.secret, 'POST', path, bytes) },
  };
}

const one: Record<string, () => Req> = {
  existing: () => {
    const w = anySeeded();
    return signedPost(BIND, { user_id: w.user_id, bank_card: w.bank_card, open_bank: 'ICBC', bind_card_src: 2 });
  },
  replay: () => signedPost(BIND, { ...anySeeded(), verify_code: '123456' }),
  list: () => signedPost(LIST, { user_id: anySeeded().user_id }),
  newFirst: () => signedPost(BIND, identity(fresh++)),
};
const MIX: [number, string][] = [
  [0.4, 'list'],
  [0.3, 'existing'],
  [0.2, 'replay'],
  [0.1, 'newFirst'],
];
const mix = () => {
  let r = Math.random();
  for (const [p, k] of MIX) {
    if ((r -= p) < 0) return { ...one[k](), kind: k };
  }
  return { ...one.list(), kind: 'list' };
};

const single = (make: () => Req) => [{ setupRequest: (req: object) => ({ ...req, ...make() }) }];
// The full new-card flow for distinct users: first call, the code from the sandbox phone, confirmation.
const flow = [
  {
    setupRequest: (req: object, ctx: Record<string, unknown>) => {
      ctx.who = identity(fresh++);
      return { ...req, ...signedPost(BIND, ctx.who as object) };
    },
  },
  {
    setupRequest: (req: object, ctx: Record<string, unknown>) => ({
      ...req,
      method: 'GET',
      path: `/sandbox/sms?mobile=${(ctx.who as { user_mobile: string }).user_mobile}`,
      body: undefined,
      headers: {},
    }),
    onResponse: (_status: number, body: string, ctx: Record<string, unknown>) => {
      ctx.code = (JSON.parse(body) as { messages?: { code: string }[] }).messages?.[0]?.code ?? '000000';
    },
  },
  {
    setupRequest: (req: object, ctx: Record<string, unknown>) => ({
      ...req,
      ...signedPost(BIND, { ...(ctx.who as object), verify_code: ctx.code }),
    }),
  },
];

async function openLoop(make: () => Req, rate: number, seconds: number): Promise<object> {
  const u = new URL(opts.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.sockets ?? 128 });
  const seen = new WeakSet<object>(); // sockets that have carried a request
  const send = (r: Req) =>
    new Promise<{ status: number; newConnection: boolean }>((resolve) => {
      let newConnection = false;
      const req = http.request({ host: u.hostname, port: u.port, agent, method: r.method, path: r.path, headers: r.headers }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, newConnection }));
      });
      req.on('socket', (socket) => {
        newConnection = !seen.has(socket);
        seen.add(socket);
      });
      req.on('error', () => resolve({ status: 0, newConnection }));
      req.end(r.body);
    });
  const latencies: number[] = [];
  const byKind: Record<string, number[]> = {}; // the mix's parts apart, to see which sets its tail
  const codes: Record<string, { count: number }> = {};
  // per planned second: answers that were 2xx, 503s, and the slowest answer
  // first answers on connections the generator opened during the run, apart from those on open keep-alive ones
  const connections = { opened: { count: 0, max: 0 }, reused: { count: 0, max: 0 } };
  const timeline = Array.from({ length: Math.ceil(seconds) }, () => ({ ok: 0, shed: 0, max: 0 }));
  const pending: Promise<void>[] = [];
  const total = Math.round(rate * seconds);
  const warm = Math.round(rate * (opts.warmup ?? 0));
  const requests = Array.from({ length: warm + total }, make);
  const lag = monitorEventLoopDelay({ resolution: 5 }); // the generator's own stalls, which would count against the service
  const begun = performance.now();
  const start = begun + (warm * 1000) / rate; // the counted requests' first planned moment
  for (let i = 0; i < warm + total; i++) {
    const planned = begun + (i * 1000) / rate;
    const wait = planned - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const r = requests[i];
    if (i < warm) {
      void send(r);
      continue;
    }
    if (i === warm) lag.enable();
    pending.push(
      send(r).then(({ status, newConnection }) => {
        const ms = performance.now() - planned;
        latencies.push(ms);
        if (r.kind) (byKind[r.kind] ??= []).push(ms);
        const c = newConnection ? connections.opened : connections.reused;
        c.count++;
        c.max = Math.max(c.max, Math.round(ms));
        (codes[status] ??= { count: 0 }).count++;
        const sec = timeline[Math.floor((planned - start) / 1000)];
        if (status >= 200 && status < 300) sec.ok++;
        if (status === 503) sec.shed++;
        sec.max = Math.max(sec.max, Math.round(ms));
      }),
    );
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - start) / 1000;
  agent.destroy();
  const ascending = (xs: number[]) => [...xs].sort((a, b) => a - b);
  const quantile = (sorted: number[], q: number) =>
    Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 10) / 10;
  const all = ascending(latencies);
  const at = (q: number) => quantile(all, q);
  const errors = codes['0']?.count ?? 0;
  return {
    rps: total / elapsed,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: at(1),
    errors,
    timeouts: 0,
    total,
    non2xx: Object.entries(codes)
      .filter(([c]) => c !== '0' && !c.startsWith('2'))
      .reduce((n, [, v]) => n + v.count, 0),
    statusCodes: codes,
    timeline,
    timelineStart: Math.round(performance.timeOrigin + start),
    connections,
    generatorLagMaxMs: Math.round(lag.max / 1e6),
    byKind: Object.fromEntries(
      Object.entries(byKind).map(([k, xs]) => {
        const sorted = ascending(xs);
        return [k, { count: xs.length, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) }];
      }),
    ),
  };
}

const make = opts.scenario === 'mix' ? mix : one[opts.scenario];
if (opts.rate && !opts.autocannonRate) {
  process.stdout.write(JSON.stringify(await openLoop(make, opts.rate, opts.duration)));
  process.exit(0);
}
const requests = opts.scenario === 'newCardFlow' ? flow : single(make);
const result = await autocannon({
  url: opts.url,
  connections: opts.connections,
  duration: opts.duration,
  requests: requests as never,
  ...(opts.rate ? { overallRate: opts.rate } : {}),
});
process.stdout.write(
  JSON.stringify({
    rps: result.requests.average,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    max: result.latency.max,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    total: result.requests.total,
    statusCodes: result.statusCodeStats,
  }),
);

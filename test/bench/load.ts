// The load generator, run as its own process: autocannon against one scenario, printing autocannon's JSON result.
// usage: node --import tsx test/bench/load.ts '{"url":…,"scenario":…,"connections":…,"duration":…,"rate":…,"seeded":[from,count],"fresh":start}'
import autocannon from 'autocannon';
import { signedHeaders } from '../../src/sdk/sign.ts';
import { identity } from './identities.ts';

const opts = JSON.parse(process.argv[2]) as {
  url: string; scenario: string; connections: number; duration: number; rate?: number; seeded: [number, number]; fresh: number;
};
const BIND = '/demochannel/bindCard?r_c=DEMO';
const LIST = '/demochannel/bankCardList?r_c=DEMO';
const [seedFrom, seedCount] = opts.seeded;
const anySeeded = () => identity(seedFrom + Math.floor(Math.random() * seedCount));
let fresh = opts.fresh;

type Req = { method: string; path: string; body?: string; headers: Record<string, string> };
function signedPost(path: string, body: object): Req {
  const bytes = JSON.stringify(body);
  return { method: 'POST', path, body: bytes, headers: { 'content-type': 'application/json', ...signedHeaders('DEMO', 'demo-secret', 'POST', path, bytes) } };
}

const one: Record<string, () => Req> = {
  existing: () => { const w = anySeeded(); return signedPost(BIND, { user_id: w.user_id, bank_card: w.bank_card, open_bank: 'ICBC', bind_card_src: 2 }); },
  replay: () => signedPost(BIND, { ...anySeeded(), verify_code: '123456' }),
  list: () => signedPost(LIST, { user_id: anySeeded().user_id }),
  newFirst: () => signedPost(BIND, identity(fresh++)),
};
const MIX: [number, () => Req][] = [[0.4, one.list], [0.3, one.existing], [0.2, one.replay], [0.1, one.newFirst]];
const mix = () => { let r = Math.random(); for (const [p, f] of MIX) { if ((r -= p) < 0) return f(); } return one.list(); };

const single = (make: () => Req) => [{ setupRequest: (req: object) => ({ ...req, ...make() }) }];
// The full new-card flow for distinct users: first call, the code from the sandbox phone, confirmation.
const flow = [
  { setupRequest: (req: object, ctx: Record<string, unknown>) => { ctx.who = identity(fresh++); return { ...req, ...signedPost(BIND, ctx.who as object) }; } },
  {
    setupRequest: (req: object, ctx: Record<string, unknown>) => ({ ...req, method: 'GET', path: `/sandbox/sms?mobile=${(ctx.who as { user_mobile: string }).user_mobile}`, body: undefined, headers: {} }),
    onResponse: (_status: number, body: string, ctx: Record<string, unknown>) => { ctx.code = JSON.parse(body).messages?.[0]?.code ?? '000000'; },
  },
  { setupRequest: (req: object, ctx: Record<string, unknown>) => ({ ...req, ...signedPost(BIND, { ...(ctx.who as object), verify_code: ctx.code }) }) },
];

const requests = opts.scenario === 'newCardFlow' ? flow : single(opts.scenario === 'mix' ? mix : one[opts.scenario]);
const result = await autocannon({
  url: opts.url, connections: opts.connections, duration: opts.duration, requests: requests as never,
  ...(opts.rate ? { overallRate: opts.rate } : {}),
});
process.stdout.write(JSON.stringify({
  rps: result.requests.average, p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max,
  non2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts, total: result.requests.total,
  statusCodes: result.statusCodeStats,
}));

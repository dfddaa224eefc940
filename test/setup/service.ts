import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createApp, createCallbackWorker, type AppDeps } from '../../src/app.ts';
import type { CallbackWorker } from '../../src/callbacks/worker.ts';
import { loadConfig } from '../../src/config.ts';
import { backendFor } from '../../src/http/api.ts';
import { createHttpServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/log.ts';
import { vaultFor } from '../../src/crypto/vault.ts';
import { signedHeaders } from '../../src/sdk/sign.ts';
import { ChannelStore } from '../../src/store/channel-store.ts';
import { FakeGateway } from '../fakes/fake-gateway.ts';
import { resetDb, testDb } from './database.ts';

export { idNumber, seedExistingCard, seedNewCard, withCheckChar } from './seed.ts';

/** Business time the tests move forward instead of sleeping. */
export class TestClock {
  offsetMs = 0;
  now = (): Date => new Date(Date.now() + this.offsetMs);
  advance(seconds: number): void {
    this.offsetMs += seconds * 1000;
  }
}

/**
 * An answer's JSON as tests read it: the documented envelope with every field a test looks at typed. Which fields an
 * answer really has is checked against the document (checkAgainstDocument); a field it lacks reads as undefined.
 */
export interface WireBody {
  code: number;
  message: string;
  data: {
    status: string;
    sub_code: string;
    card_id: string;
    bank_card: string;
    open_bank: string;
    bank_card_type: number;
    bound_at: string;
    unbound_at: string;
    code_expires_at: string;
    code_ttl_seconds: number;
    resend_after_seconds: number;
    errors: { field: string; rule: string; message: string }[];
    cards: { card_id: string; bank_card: string; open_bank: string; bank_card_type: number; extra_info: { card_token: string } }[];
  };
  /** the sandbox phone's inbox */
  messages: { mobile: string; code: string; text: string; sent_at: string }[];
  /** the sandbox's callback tries */
  deliveries: {
    event_id: string;
    type: string;
    attempt: number;
    url: string;
    at: string;
    request_headers: Record<string, string>;
    request_body: string;
    response_status: number | null;
    response_body: string | null;
    error: string | null;
  }[];
}

export interface Answer {
  status: number;
  body: WireBody;
  headers: Headers;
  ms: number;
}

const checker = backendFor();
const ready = checker.init();

/** Every answer a test receives is checked against the document: a mismatch fails the test at once. */
async function checkAgainstDocument(method: string, path: string, a: Answer): Promise<void> {
  await ready;
  const url = new URL(path, 'http://x');
  const op = checker.router.matchOperation({ method, path: url.pathname, headers: {}, query: {} });
  if (!op) {
    if (a.body?.code !== a.status || typeof a.body?.message !== 'string') {
      throw new Error(`answer to ${method} ${url.pathname} is not the documented error body: ${JSON.stringify(a.body)}`);
    }
    return;
  }
  const res = checker.validateResponse(a.body, op, a.status);
  if (res.errors)
    throw new Error(
      `answer ${a.status} to ${op.operationId} breaks the document: ${JSON.stringify(res.errors)} body=${JSON.stringify(a.body)}`,
    );
}

export interface Service {
  url: string;
  clock: TestClock;
  logs: string[];
  /** Adds a partner channel to the database and keeps its secret for signing. */
  addChannel(code: string, cardTypes?: number[]): Promise<string>;
  secrets: Map<string, string>;
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Answer>;
  bind(body: Record<string, unknown>, channel?: string): Promise<Answer>;
  list(userId: string, channel?: string): Promise<Answer>;
  inbox(mobile: string): Promise<{ code: string; text: string }[]>;
  /** queryBinding and unbindCard of a (channel, user)'s card */
  query(body: Record<string, unknown>, channel?: string): Promise<Answer>;
  unbind(body: Record<string, unknown>, channel?: string): Promise<Answer>;
  /** This service's callback worker on the test clock, not started: a test runs its passes (deliverDue) itself. */
  worker: CallbackWorker;
  stop(): Promise<void>;
}

/**
 * Requests to the service at `url`: a partner operation is signed with its channel's secret (from `secrets`) unless the
 * headers already say otherwise; every answer is checked against the document.
 */
export function requester(url: string, secrets: ReadonlyMap<string, string> = new Map([['DEMO', 'demo-secret']])): Service['request'] {
  return async function request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const started = performance.now();
    const bytes =
      body === undefined ? '' : typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : JSON.stringify(body);
    const code = /^\/[a-z0-9_]+channel\/.*[?&]r_c=([A-Z0-9_]+)/.exec(path)?.[1];
    const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    const sign = code && !('x-signature' in lower) && !('x-unsigned' in lower);
    delete lower['x-unsigned'];
    const res = await fetch(url + path, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(sign ? signedHeaders(code, secrets.get(code) ?? 'unknown-channel', method, path, bytes) : {}),
        ...lower,
      },
      body: body === undefined ? undefined : bytes,
    });
    const text = await res.text();
    const a = {
      status: res.status,
      body: (text ? JSON.parse(text) : undefined) as WireBody,
      headers: res.headers,
      ms: performance.now() - started,
    };
    await checkAgainstDocument(method, path, a);
    return a;
  };
}

export async function startService(env: Record<string, string> = {}, deps: Partial<AppDeps> = {}): Promise<Service> {
  const clock = new TestClock();
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'info', ...env });
  const app = await createApp({ config, db: testDb(), log: createLogger(config.logLevel, sink), now: clock.now, ...deps });
  const server = createHttpServer(app, config);
  const secrets = new Map([['DEMO', 'demo-secret']]);
  const channelStore = new ChannelStore(testDb(), vaultFor(config), config.sandbox);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const request = requester(url, secrets);

  return {
    url,
    clock,
    logs,
    request,
    secrets,
    addChannel: async (code, cardTypes) => {
      const secret = await channelStore.add(code, cardTypes);
      secrets.set(code, secret);
      return secret;
    },
    bind: (body, channel = 'DEMO') => request('POST', `/${channel.toLowerCase()}channel/bindCard?r_c=${channel}`, body),
    list: (userId, channel = 'DEMO') =>
      request('POST', `/${channel.toLowerCase()}channel/bankCardList?r_c=${channel}`, { user_id: userId }),
    inbox: async (mobile) => (await request('GET', `/sandbox/sms?mobile=${mobile}`)).body.messages,
    query: (body, channel = 'DEMO') => request('POST', `/${channel.toLowerCase()}channel/queryBinding?r_c=${channel}`, body),
    unbind: (body, channel = 'DEMO') => request('POST', `/${channel.toLowerCase()}channel/unbindCard?r_c=${channel}`, body),
    worker: createCallbackWorker({ config, db: testDb(), log: createLogger('silent'), now: clock.now }),
    stop: async () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Runs the first call, reads the code from the sandbox phone and confirms. */
export async function bindNewCard(svc: Service, body: Record<string, unknown>, channel?: string): Promise<Answer> {
  const first = await svc.bind(body, channel);
  if (first.body.data?.status === 'BOUND') return first;
  if (first.body.data?.status !== 'SMS_SENT') throw new Error(`first call failed: ${JSON.stringify(first.body)}`);
  const [latest] = await svc.inbox(body.user_mobile as string);
  return svc.bind({ ...body, verify_code: latest.code }, channel);
}

/**
 * For a describe block: the service with both gateways over HTTP on one fake gateway (sandbox off), started before its
 * tests and stopped after; each test begins on an empty database with the fake's memory cleared and channel ACME.
 */
export function serviceOnFakeGateway(): { fake: FakeGateway; svc: Service } {
  const on = {} as { fake: FakeGateway; svc: Service };
  before(async () => {
    on.fake = await new FakeGateway().start();
    const { url, secret } = on.fake;
    on.svc = await startService({ SANDBOX: 'false', CARD_AUTH_URL: url, CARD_AUTH_SECRET: secret, SMS_URL: url, SMS_SECRET: secret });
  });
  after(async () => {
    await on.svc.stop();
    await on.fake.stop();
  });
  beforeEach(async () => {
    await resetDb();
    on.fake.reset();
    await on.svc.addChannel('ACME');
  });
  return on;
}

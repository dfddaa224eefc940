import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { sign } from '../../src/sdk/sign.ts';

/**
 * What the fake answers to one call: a status and a body (a string is sent as it is), after an optional delay; or,
 * with `reset`, no answer at all: the connection is reset (after the delay). Either way, with `keep` false the call is
 * not kept for its request number (a gateway that failed before doing anything); by default a 2xx answer is kept.
 */
export interface FakeAnswer {
  status?: number;
  body: unknown;
  delayMs?: number;
  reset?: boolean;
  keep?: boolean;
}
export interface FakeCall {
  path: string;
  body: Record<string, unknown>;
  headers: IncomingMessage['headers'];
  /** the gateway did the call's work (a text went out): a 2xx answer it kept, not a repeat */
  done: boolean;
}
type Script = (call: FakeCall) => FakeAnswer;

const DEFAULTS: Record<string, Script> = {
  '/v1/card-auth/verify': () => ({ body: { result: 'APPROVED' } }),
  '/v1/card-auth/sign': (c) => ({
    body: {
      agreement_no: `AG${String(c.body.request_no)
        .replace(/[^A-Za-z0-9]/g, '')
        .slice(-20)}`,
    },
  }),
  '/v1/card-auth/unsign': () => ({ body: { result: 'UNSIGNED' } }),
  '/v1/sms/send': () => ({ body: { accepted: true } }),
};

/**
 * A card-auth and SMS gateway on loopback for the HTTP adapters' tests. Like a real one it refuses a request that is
 * not signed with the shared secret (401) or lacks its Idempotency-Key (400), and answers a repeated Idempotency-Key
 * with the first answer. `script` changes what a path answers; `calls` and `aborted` show what arrived.
 */
export class FakeGateway {
  readonly calls: FakeCall[] = [];
  /** calls whose client went away before the answer was sent */
  aborted = 0;
  private readonly scripts = new Map<string, Script>();
  private readonly answered = new Map<string, FakeAnswer>();
  private server!: Server;
  url = '';

  constructor(
    readonly clientId = 'BINDCARD',
    readonly secret = 'fake-gateway-secret-0123',
  ) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  /** From now on `path` answers by `script`; without one, as by default. */
  script(path: string, script?: Script): void {
    if (script) this.scripts.set(path, script);
    else this.scripts.delete(path);
  }

  reset(): void {
    this.calls.length = 0;
    this.aborted = 0;
    this.scripts.clear();
    this.answered.clear();
  }

  /** The calls made to a path ('/v1/sms/send', …), oldest first. */
  callsTo(path: string): FakeCall[] {
    return this.calls.filter((c) => c.path === path);
  }

  /** Those calls' request numbers, oldest first: a retry of a call in doubt repeats its number. */
  requestNumbers(path: string): unknown[] {
    return this.callsTo(path).map((c) => c.body.request_no);
  }

  /** The texts delivered to a mobile (one per request number), newest first. */
  smsTo(mobile: string): string[] {
    return this.calls
      .filter((c) => c.path === '/v1/sms/send' && c.body.mobile === mobile && c.done)
      .map((c) => String(c.body.text))
      .reverse();
  }

  /** The newest 6-digit code sent to a mobile. */
  codeFor(mobile: string): string {
    const code = /\d{6}/.exec(this.smsTo(mobile)[0] ?? '')?.[0];
    if (!code) throw new Error(`no code was sent to ${mobile}`);
    return code;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let gone = false;
    res.on('close', () => {
      gone = !res.writableFinished;
      if (gone) this.aborted++;
    });
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const h = req.headers;
    const expected = sign(this.secret, req.method!, req.url!, String(h['x-timestamp']), String(h['x-nonce']), raw);
    if (h['x-channel'] !== this.clientId || h['x-signature'] !== expected)
      return this.send(res, { status: 401, body: { error: 'bad signature' } });
    const key = h['idempotency-key'];
    const body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    if (typeof key !== 'string' || body.request_no !== key)
      return this.send(res, { status: 400, body: { error: 'Idempotency-Key must be the request_no' } });
    const stored = this.answered.get(`${req.url} ${key}`);
    const call = { path: req.url!, body, headers: h, done: false };
    this.calls.push(call);
    if (stored) return this.send(res, { ...stored, delayMs: 0, reset: false });
    const script = this.scripts.get(req.url!) ?? DEFAULTS[req.url!];
    if (!script) return this.send(res, { status: 404, body: { error: 'no such path' } });
    const answer = script(call);
    const succeeded = (answer.status ?? 200) < 300;
    if (answer.keep ?? succeeded) this.answered.set(`${req.url} ${key}`, answer);
    call.done = succeeded && answer.keep !== false;
    if (answer.delayMs) {
      await sleep(answer.delayMs);
      if (gone) return;
    }
    if (answer.reset) return void req.socket.resetAndDestroy();
    this.send(res, answer);
  }

  private send(res: ServerResponse, a: FakeAnswer): void {
    const text = typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
    res.writeHead(a.status ?? 200, { 'content-type': 'application/json' }).end(text);
  }
}

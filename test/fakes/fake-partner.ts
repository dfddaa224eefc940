import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { components } from '../../generated/api-types.ts';
import { verifyRequest } from '../../src/sdk/sign.ts';

export type BindingEvent = components['schemas']['BindingEvent'];

/** How the partner answers one request: a status (a body, a Location), optionally late; or a reset connection. */
export type PartnerReply = { status: number; body?: string; location?: string; delayMs?: number } | { reset: true };

/** One request as it arrived. */
export interface PartnerRequest {
  path: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  /** the body parsed as JSON; undefined when it is not JSON */
  event: BindingEvent | undefined;
  /** whether verifyRequest accepted its signature with the partner's secrets */
  verified: boolean;
}

/**
 * A partner's callback endpoint on 127.0.0.1: it records every request and checks its signature as a partner would
 * (verifyRequest), and answers as scripted: the queued replies first, one per request, then the standing reply (204).
 * It answers whatever the signature, so a test sees what a lenient partner would have accepted.
 */
export class FakePartner {
  readonly requests: PartnerRequest[] = [];
  url = '';
  private readonly queued: PartnerReply[] = [];
  private standing: PartnerReply = { status: 204 };
  private server!: Server;

  constructor(readonly secrets: string[] = ['demo-secret']) {}

  /** Where the events go: a path on the partner's host, as a notify_url names it. */
  get notifyUrl(): string {
    return `${this.url}/bindcard/events`;
  }

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

  /** The next requests get these replies, in order; later ones the standing reply. */
  script(...replies: PartnerReply[]): this {
    this.queued.push(...replies);
    return this;
  }

  /** The next `n` requests get `reply` (a 500 unless given); later ones the standing reply. */
  failNext(n: number, reply: PartnerReply = { status: 500 }): this {
    return this.script(...Array.from({ length: n }, () => reply));
  }

  /** Every request not scripted gets this reply from now on. */
  answer(reply: PartnerReply): this {
    this.standing = reply;
    return this;
  }

  /** The events received, in order of arrival (a retried event once per try). */
  events(): BindingEvent[] {
    return this.requests.flatMap((r) => (r.event ? [r.event] : []));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const path = req.url ?? '/';
    this.requests.push({
      path,
      headers: req.headers,
      raw,
      event: parse(raw),
      verified: verifyRequest(this.secrets, req.method ?? '', path, req.headers, raw),
    });
    const reply = this.queued.shift() ?? this.standing;
    if ('reset' in reply) {
      req.socket.destroy();
      return;
    }
    if (reply.delayMs) await sleep(reply.delayMs);
    // the caller may have given up meanwhile (its timeout): there is no one left to answer
    if (res.destroyed) return;
    const headers = reply.location ? { location: reply.location } : {};
    res.writeHead(reply.status, headers).end(reply.status === 204 ? undefined : (reply.body ?? ''));
  }
}

function parse(raw: Buffer): BindingEvent | undefined {
  try {
    return JSON.parse(raw.toString('utf8')) as BindingEvent;
  } catch {
    return undefined;
  }
}

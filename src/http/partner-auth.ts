import { timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IncomingHttpHeaders } from 'node:http';
import type { Sequelize } from 'sequelize';
import { sign } from '../sdk/sign.ts';
import { CHANNEL_CODE, type Channel } from '../domain/channel.ts';
import { sql } from '../store/sql.ts';
import { protocolError, type Reply } from './replies.ts';

const WINDOW_SECONDS = 300;
const RATE_SLOTS = 16;

function unauthorized(field: string, rule: string, message: string): Reply {
  return protocolError(401, `签名校验失败：${message}`, [{ field, rule, message }]);
}

const FORMS: [string, string, RegExp][] = [
  ['x-channel', 'X-Channel', CHANNEL_CODE],
  ['x-timestamp', 'X-Timestamp', /^[0-9]{1,12}$/],
  ['x-nonce', 'X-Nonce', /^[A-Za-z0-9._~+/=-]{16,64}$/],
  ['x-signature', 'X-Signature', /^[0-9a-f]{64}$/],
];

export interface Signed { nonce: string; signature: string }

/**
 * Verifies a partner request's signature over the raw bytes, before anything parses them.
 * Answers 401 for a missing or malformed header, X-Channel other than r_c, a timestamp outside ±300 s, or a
 * signature no active secret of the channel makes.
 */
export function verifySignature(method: string, url: string, headers: IncomingHttpHeaders, raw: Buffer, channel: Channel,
  nowSeconds = Date.now() / 1000): Signed | Reply {
  const h: Record<string, string> = {};
  for (const [name, label, form] of FORMS) {
    const v = headers[name];
    if (typeof v !== 'string') return unauthorized(`header.${label}`, 'required', `缺少 ${label} / ${label} is missing`);
    if (!form.test(v)) return unauthorized(`header.${label}`, 'pattern', `${label} 格式不正确 / ${label} is malformed`);
    h[name] = v;
  }
  if (h['x-channel'] !== channel.code) return unauthorized('header.X-Channel', 'channel', 'X-Channel 与 r_c 不一致 / X-Channel is not the channel of r_c');
  if (Math.abs(nowSeconds - Number(h['x-timestamp'])) > WINDOW_SECONDS) {
    return unauthorized('header.X-Timestamp', 'window', 'X-Timestamp 与服务器时间相差超过 300 秒 / X-Timestamp is more than 300 s from server time');
  }
  const given = Buffer.from(h['x-signature']);
  const ok = channel.secrets.some((secret) => timingSafeEqual(Buffer.from(sign(secret, method, url, h['x-timestamp'], h['x-nonce'], raw)), given));
  if (!ok) return unauthorized('header.X-Signature', 'signature', 'X-Signature 不正确 / X-Signature does not match');
  return { nonce: h['x-nonce'], signature: h['x-signature'] };
}

/**
 * Nonces live in PostgreSQL, so the rule holds across instances. A nonce seen before with the same signature is the
 * partner retrying the very same bytes: it gets the first answer again (waiting for it while the first still runs).
 * With another signature it is a replay: 401.
 */
export class NonceBook {
  constructor(private readonly db: Sequelize) {}

  /**
   * Claims the nonce and counts the request against the channel's rate in one statement (one commit). The count is
   * spread over RATE_SLOTS rows so concurrent requests do not queue on one row lock; `overRate` is acted on only
   * after the request has passed validation (429 comes last).
   */
  async claim(channel: string, s: Signed, deadline: number, perSecond: number): Promise<{ fresh: true; overRate: boolean } | Reply> {
    const [row] = await sql<{ claimed: number; used: number }>(this.db, undefined,
      `WITH claim AS (
         INSERT INTO nonces (channel, nonce, signature, created_at) VALUES ($1, $2, $3, now())
         ON CONFLICT DO NOTHING RETURNING 1
       ), counted AS (  -- runs although unreferenced: PostgreSQL always executes data-modifying CTEs
         INSERT INTO rate_counters (channel, window_start, slot, count) VALUES ($1, date_trunc('second', now()), $4, 1)
         ON CONFLICT (channel, window_start, slot) DO UPDATE SET count = rate_counters.count + 1 RETURNING count
       )
       -- the statement's snapshot does not see its own increment: hence + 1
       SELECT (SELECT count(*) FROM claim)::int AS claimed,
              ((SELECT coalesce(sum(count), 0) FROM rate_counters
                 WHERE channel = $1 AND window_start = date_trunc('second', now())) + 1)::int AS used`,
      [channel, s.nonce, s.signature, Math.floor(Math.random() * RATE_SLOTS)]);
    if (row.claimed === 1) return { fresh: true, overRate: row.used > perSecond };
    for (;;) {
      const [seen] = await sql<{ signature: string; status: number | null; response: Reply['body'] | null }>(this.db, undefined,
        'SELECT signature, status, response FROM nonces WHERE channel = $1 AND nonce = $2', [channel, s.nonce]);
      if (seen.signature !== s.signature) return unauthorized('header.X-Nonce', 'replay', 'X-Nonce 已使用 / X-Nonce was already used');
      if (seen.status !== null) return { status: seen.status, body: seen.response! };
      // The first request is still running; past our deadline the business rules' own idempotency takes over.
      if (Date.now() >= deadline) return { fresh: true, overRate: false };
      await sleep(25);
    }
  }

  async record(channel: string, nonce: string, reply: Reply): Promise<void> {
    await sql(this.db, undefined, 'UPDATE nonces SET status = $1, response = $2 WHERE channel = $3 AND nonce = $4',
      [reply.status, JSON.stringify(reply.body), channel, nonce]);
  }
}


import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { sign } from '../sdk/sign.ts';
import { CHANNEL_CODE, type Channel } from '../domain/channel.ts';
import { protocolError, type Reply } from './replies.ts';

const WINDOW_SECONDS = 300;

function unauthorized(field: string, rule: string, message: string): Reply {
  return protocolError(401, `签名校验失败：${message}`, [{ field, rule, message }]);
}

function refuse(field: string, rule: string, message: string): Verdict {
  return { ok: false, reply: unauthorized(field, rule, message) };
}

/** A nonce used before with another signature. */
export function replayed(): Reply {
  return unauthorized('header.X-Nonce', 'replay', 'X-Nonce 已使用 / X-Nonce was already used');
}

const FORMS: [string, string, RegExp][] = [
  ['x-channel', 'X-Channel', CHANNEL_CODE],
  ['x-timestamp', 'X-Timestamp', /^[0-9]{1,12}$/],
  ['x-nonce', 'X-Nonce', /^[A-Za-z0-9._~+/=-]{16,64}$/],
  ['x-signature', 'X-Signature', /^[0-9a-f]{64}$/],
];

/** A verified request's nonce and signature, or the 401 that refuses it. */
export type Verdict = { ok: true; nonce: string; signature: string } | { ok: false; reply: Reply };

/**
 * Verifies a partner request's signature over the raw bytes, before anything parses them.
 * Answers 401 for a missing or malformed header, X-Channel other than r_c, a timestamp outside ±300 s, or a
 * signature no active secret of the channel makes.
 */
export function verifySignature(
  method: string,
  url: string,
  headers: IncomingHttpHeaders,
  raw: Buffer,
  channel: Channel,
  nowSeconds = Date.now() / 1000,
): Verdict {
  const given: Record<string, string> = {};
  for (const [name, label, form] of FORMS) {
    const value = headers[name];
    if (typeof value !== 'string') return refuse(`header.${label}`, 'required', `缺少 ${label} / ${label} is missing`);
    if (!form.test(value)) return refuse(`header.${label}`, 'pattern', `${label} 格式不正确 / ${label} is malformed`);
    given[name] = value;
  }
  if (given['x-channel'] !== channel.code)
    return refuse('header.X-Channel', 'channel', 'X-Channel 与 r_c 不一致 / X-Channel is not the channel of r_c');
  if (Math.abs(nowSeconds - Number(given['x-timestamp'])) > WINDOW_SECONDS) {
    return refuse(
      'header.X-Timestamp',
      'window',
      'X-Timestamp 与服务器时间相差超过 300 秒 / X-Timestamp is more than 300 s from server time',
    );
  }
  const signature = Buffer.from(given['x-signature']);
  const ok = channel.secrets.some((secret) =>
    timingSafeEqual(Buffer.from(sign(secret, method, url, given['x-timestamp'], given['x-nonce'], raw)), signature),
  );
  if (!ok) return refuse('header.X-Signature', 'signature', 'X-Signature 不正确 / X-Signature does not match');
  return { ok: true, nonce: given['x-nonce'], signature: given['x-signature'] };
}

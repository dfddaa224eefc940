import type { IncomingMessage } from 'node:http';
import { duplicateKey } from './json.ts';
import { protocolError, type Reply } from './replies.ts';

export type Read<T> = { ok: true; value: T } | { ok: false; reply: Reply };

/** Reads the raw body up to the limit; 413 as soon as the declared or received size passes it. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Read<Buffer>> {
  const tooLarge = { ok: false, reply: protocolError(413) } as const;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return tooLarge;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return tooLarge;
    chunks.push(chunk as Buffer);
  }
  return { ok: true, value: Buffer.concat(chunks) };
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The charset parameter of a Content-Type, unquoted; undefined when there is none. */
function charsetOf(params: string[]): string | undefined {
  for (const param of params) {
    const [name, value = ''] = param.split('=');
    if (name.trim().toLowerCase() === 'charset') return value.trim().replace(/^"(.*)"$/, '$1');
  }
  return undefined;
}

/** U+0000, or half of a surrogate pair alone: PostgreSQL text cannot hold them. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const unstorableText = (text: string) => text.includes('\u0000') || LONE_SURROGATE.test(text);

/**
 * The path (body.a.b) of the first string value or object key holding a character that cannot be stored. A loop over
 * an explicit stack, not recursion: a signed partner may nest a body thousands deep within 64 KiB.
 */
export function unstorable(body: unknown): string | undefined {
  const pending: [unknown, string][] = [[body, 'body']];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [value, path] = next;
    if (typeof value === 'string' && unstorableText(value)) return path;
    if (value === null || typeof value !== 'object') continue;
    const entries = Object.entries(value);
    // a key cannot name itself: the object holding it is named
    if (entries.some(([key]) => unstorableText(key))) return path;
    for (const [key, inner] of entries.reverse()) pending.push([inner, `${path}.${key}`]);
  }
  return undefined;
}

const refuse = (status: number, message: string, field: string, rule: string, detail: string): Read<never> => ({
  ok: false,
  reply: protocolError(status, message, [{ field, rule, message: detail }]),
});

/**
 * Parses a JSON body of an application/json request in UTF-8: 415 for another type or charset; 400 for bytes that are
 * not UTF-8 or not JSON, for a key twice in one object, and for characters PostgreSQL text cannot hold.
 */
export function parseJson(contentType: string | undefined, raw: Buffer): Read<unknown> {
  const [type, ...params] = (contentType ?? '').split(';');
  if (type.trim().toLowerCase() !== 'application/json') return { ok: false, reply: protocolError(415) };
  const charset = charsetOf(params);
  if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
    return refuse(415, '请求体须为 UTF-8 编码的 application/json', 'header.Content-Type', 'charset', 'the charset must be UTF-8');
  }
  let text: string;
  try {
    text = decoder.decode(raw);
  } catch {
    return refuse(400, '请求体不是合法的 UTF-8', 'body', 'encoding', 'the body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return refuse(400, '请求体不是合法的 JSON', 'body', 'json', 'malformed JSON');
  }
  if (duplicateKey(text) !== undefined)
    return refuse(400, '请求体中有重复的字段', 'body', 'duplicate-key', 'a key appears twice in one object');
  const field = unstorable(value);
  if (field) {
    return refuse(
      400,
      `请求参数不合法：${field} 含有不允许的字符`,
      field,
      'characters',
      'holds U+0000 or a lone surrogate, which cannot be stored',
    );
  }
  return { ok: true, value };
}

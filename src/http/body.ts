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

/** Parses a JSON body of an application/json request; 415 for another type, 400 for bytes that are not JSON. */
export function parseJson(contentType: string | undefined, raw: Buffer): Read<unknown> {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') return { ok: false, reply: protocolError(415) };
  const text = raw.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reply: protocolError(400, '请求体不是合法的 JSON', [{ field: 'body', rule: 'json', message: 'malformed JSON' }]) };
  }
  if (duplicateKey(text) !== undefined) {
    return {
      ok: false,
      reply: protocolError(400, '请求体中有重复的字段', [
        { field: 'body', rule: 'duplicate-key', message: 'a key appears twice in one object' },
      ]),
    };
  }
  return { ok: true, value };
}

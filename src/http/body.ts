import type { IncomingMessage } from 'node:http';
import { duplicateKey } from './json.ts';
import { protocolError, type Reply } from './replies.ts';

/** Reads the raw body up to the limit; answers 413 as soon as the declared or received size passes it. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | Reply> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return protocolError(413);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return protocolError(413);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Parses a JSON body of an application/json request; 415 for another type, 400 for bytes that are not JSON. */
export function parseJson(contentType: string | undefined, raw: Buffer): { value: unknown } | Reply {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') return protocolError(415);
  const text = raw.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return protocolError(400, '请求体不是合法的 JSON', [{ field: 'body', rule: 'json', message: 'malformed JSON' }]);
  }
  const dup = duplicateKey(text);
  if (dup !== undefined) {
    return protocolError(400, '请求体中有重复的字段', [{ field: 'body', rule: 'duplicate-key', message: 'a key appears twice in one object' }]);
  }
  return { value };
}

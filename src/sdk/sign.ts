// Request signing of the bindcard partner API, shared by the server (verification) and the SDK (signing).
// X-Signature = lowercase hex HMAC-SHA256(secret, METHOD \n PATH_WITH_QUERY \n TIMESTAMP \n NONCE \n SHA256_HEX(RAW_BODY)).
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export function canonicalString(
  method: string,
  pathWithQuery: string,
  timestamp: string,
  nonce: string,
  body: Uint8Array | string,
): string {
  const bodyHash = createHash('sha256').update(body).digest('hex');
  return [method.toUpperCase(), pathWithQuery, timestamp, nonce, bodyHash].join('\n');
}

export function sign(
  secret: string,
  method: string,
  pathWithQuery: string,
  timestamp: string,
  nonce: string,
  body: Uint8Array | string,
): string {
  return createHmac('sha256', secret)
    .update(canonicalString(method, pathWithQuery, timestamp, nonce, body))
    .digest('hex');
}

/** The four headers of a signed request; a fresh nonce and the current time unless given. */
export function signedHeaders(
  channel: string,
  secret: string,
  method: string,
  pathWithQuery: string,
  body: Uint8Array | string,
  timestamp = String(Math.floor(Date.now() / 1000)),
  nonce = randomBytes(16).toString('hex'),
): Record<string, string> {
  return {
    'X-Channel': channel,
    'X-Timestamp': timestamp,
    'X-Nonce': nonce,
    'X-Signature': sign(secret, method, pathWithQuery, timestamp, nonce, body),
  };
}

/**
 * A request interceptor for the generated client: `client.interceptors.request.use(signRequests('ACME', secret))`.
 * It signs the exact bytes the client sends.
 */
export function signRequests(channel: string, secret: string): (request: Request) => Promise<Request> {
  return async (request) => {
    const body = new Uint8Array(await request.clone().arrayBuffer());
    const url = new URL(request.url);
    const headers = signedHeaders(channel, secret, request.method, url.pathname + url.search, body);
    for (const [k, v] of Object.entries(headers)) request.headers.set(k, v);
    return request;
  };
}

/**
 * Checks a signed request, as a partner checks our callbacks (the same headers and string as its own requests): the
 * signature is one of the secrets' (during a rotation, the newest and the previous), and the timestamp is within
 * `windowSeconds` of now. Dedupe by the event's id as well: a retried callback has a new nonce and timestamp.
 */
export function verifyRequest(
  secrets: string[],
  method: string,
  pathWithQuery: string,
  headers: Record<string, string | string[] | undefined>,
  body: Uint8Array | string,
  windowSeconds = 300,
  nowSeconds = Date.now() / 1000,
): boolean {
  const one = (name: string) => {
    const value = headers[name] ?? headers[name.toLowerCase()];
    return typeof value === 'string' ? value : undefined;
  };
  const [timestamp, nonce, signature] = [one('X-Timestamp'), one('X-Nonce'), one('X-Signature')];
  if (!timestamp || !nonce || !signature || !/^[0-9a-f]{64}$/.test(signature)) return false;
  if (!/^[0-9]{1,12}$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > windowSeconds) return false;
  const given = Buffer.from(signature);
  return secrets.some((secret) => timingSafeEqual(Buffer.from(sign(secret, method, pathWithQuery, timestamp, nonce, body)), given));
}

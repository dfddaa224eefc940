import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/** Private, loopback, link-local, unspecified and other non-public ranges: a callback may not reach them in production. */
const INTERNAL = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and the broadcast address
] as const) {
  INTERNAL.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 96], // unspecified, loopback and the old IPv4-compatible form
  ['64:ff9b::', 96], // NAT64: an IPv4 address behind the prefix
  ['64:ff9b:1::', 48], // local-use NAT64
  ['2001::', 32], // Teredo
  ['2002::', 16], // 6to4
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  INTERNAL.addSubnet(net, bits, 'ipv6');
}

export function isInternal(address: string): boolean {
  const family = isIP(address);
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return INTERNAL.check(mapped[1], 'ipv4');
    return INTERNAL.check(address, 'ipv6');
  }
  return INTERNAL.check(address, 'ipv4');
}

export interface PostResult {
  /** the partner's HTTP status, when it answered */
  status: number | null;
  /** up to 2 KiB of the partner's answer */
  body: string | null;
  /** why there was no answer */
  error: string | null;
}

const KEEP_BYTES = 2048;

/**
 * POSTs a callback. The host is resolved here, once; with `refuseInternal` an address in a private, loopback or
 * link-local range is refused (the try fails), and the connection goes to the address checked, not to a second lookup.
 * Redirects are not followed (a 3xx is an answer like any other), and the whole try has `timeoutMs`.
 */
export async function postCallback(
  target: string,
  body: string,
  headers: Record<string, string>,
  opts: { timeoutMs: number; refuseInternal: boolean },
): Promise<PostResult> {
  const url = new URL(target);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const signal = AbortSignal.timeout(opts.timeoutMs);
  let address: { address: string; family: number };
  try {
    address = isIP(host) ? { address: host, family: isIP(host) } : await resolve(host, signal);
  } catch (e) {
    if (signal.aborted) return { status: null, body: null, error: describe(e as Error, opts.timeoutMs) };
    return { status: null, body: null, error: `cannot resolve ${host} (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  if (opts.refuseInternal && isInternal(address.address)) {
    return { status: null, body: null, error: `refused: ${host} resolves to an internal address` };
  }
  const pinned: LookupFunction = (_name, options, callback) => {
    if ((options as { all?: boolean }).all) (callback as (e: null, a: { address: string; family: number }[]) => void)(null, [address]);
    else callback(null, address.address, address.family);
  };
  const client = url.protocol === 'https:' ? https : http;
  // The status line is the partner's acknowledgement: once it has come, a body cut short or late does not undo it.
  let status: number | null = null;
  return new Promise<PostResult>((resolve) => {
    const req = client.request(
      url,
      {
        method: 'POST',
        lookup: pinned,
        signal,
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers },
      },
      (res) => {
        status = res.statusCode ?? null;
        const kept: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < KEEP_BYTES) kept.push(chunk.subarray(0, KEEP_BYTES - size));
          size += chunk.length;
        });
        res.on('end', () => resolve({ status, body: Buffer.concat(kept).toString('utf8'), error: null }));
        res.on('error', (e) => resolve({ status, body: null, error: describe(e, opts.timeoutMs) }));
      },
    );
    req.on('error', (e) => resolve({ status, body: null, error: describe(e, opts.timeoutMs) }));
    req.end(body);
  });
}

/** The host's first address; the resolver cannot be aborted, so the try's time limit is raced against it. */
async function resolve(host: string, signal: AbortSignal): Promise<{ address: string; family: number }> {
  let onAbort = () => {};
  const timedOut = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([lookup(host, { verbatim: true }), timedOut]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

function describe(e: Error, timeoutMs: number): string {
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  return (e as NodeJS.ErrnoException).code ?? e.message;
}

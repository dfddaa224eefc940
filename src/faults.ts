import type { IncomingHttpHeaders } from 'node:http';
import { requestContext } from './log.ts';

// The test-only fault switch (production configuration refuses it). With FAULTS=on a request may name fault points in
// the X-Bindcard-Fault header (comma-separated): the documented 500, 503 and 429, which touch no table, so they are safe
// against a shared test environment (the contract run uses them). FAULTS=chaos adds what is safe only on a service of
// one test's own: the crash points, which kill the process, and the business clock. Otherwise the headers are ignored.
//
// With FAULTS=chaos a request may set the business clock: `X-Bindcard-Clock: <epoch milliseconds>` is the business time
// (code expiry, the resend window, the hourly and daily limits, leases) at the request's arrival, running on with real
// time while it is served, for that request only (nothing is kept: two instances read it alike). Signature timestamps,
// nonces and deadlines stay on real time. Malformed, it is 400 naming the header; with the switch off it is ignored.
// Leases are on the business clock too: a test that moves it should move it forward only and send it on every request.

export const FAULT_HEADER = 'x-bindcard-fault';
export const CLOCK_HEADER = 'x-bindcard-clock';

export const FAULT_POINTS = {
  /** admission refuses the request: 503 with Retry-After */
  overload: 'admission refuses the request (503)',
  /** the request counts as over its channel's rate: 429 after validation */
  'rate-limit': "the request is over its channel's rate (429)",
  /** the operation fails unexpectedly after validation, as a broken database would: 500 */
  'internal-error': 'the operation fails unexpectedly (500)',
  // Crash points: the process is killed (SIGKILL, as a machine lost) where the request reaches the point.
  'crash-after-card-auth': 'the card review has answered and is not recorded yet',
  'crash-after-sms': 'the SMS gateway accepted the text and it is not recorded as sent yet',
  'crash-after-sign': 'the agreement is signed and the binding has not committed yet',
  'crash-after-bind-commit': 'the binding has committed and the answer is not sent yet',
  'crash-after-unsign': "an unbinding's agreement is ended at the gateway and the unbinding is not recorded yet",
} as const;

export type FaultPoint = keyof typeof FAULT_POINTS;

const NONE: ReadonlySet<FaultPoint> = new Set();

/** The switch's settings: off; the answers that write nothing; and, on a service of one test's own, chaos. */
export type FaultSwitch = 'off' | 'on' | 'chaos';

/** The fault points a request names that the switch allows. Names that are not fault points are ignored. */
export function faultsOf(level: FaultSwitch, headers: IncomingHttpHeaders): ReadonlySet<FaultPoint> {
  const named = headers[FAULT_HEADER];
  if (level === 'off' || typeof named !== 'string') return NONE;
  return new Set(
    named
      .split(',')
      .map((name) => name.trim())
      .filter((name): name is FaultPoint => name in FAULT_POINTS && (level === 'chaos' || !name.startsWith('crash-'))),
  );
}

/** The business time a request sets (epoch ms), with FAULTS=chaos: undefined without the header, 'malformed' if bad. */
export function clockOf(level: FaultSwitch, headers: IncomingHttpHeaders): number | 'malformed' | undefined {
  const given = headers[CLOCK_HEADER];
  if (level !== 'chaos' || given === undefined) return undefined;
  return typeof given === 'string' && /^\d{1,15}$/.test(given) ? Number(given) : 'malformed';
}

/** The process dies here, as a machine lost, if the request being served named this crash point. */
export function crashPoint(point: FaultPoint & `crash-${string}`): void {
  if (requestContext.getStore()?.faults?.has(point)) process.kill(process.pid, 'SIGKILL');
}

/** An unexpected failure the fault switch injected. */
export class InjectedFault extends Error {}

import type { IncomingHttpHeaders } from 'node:http';

// The test-only fault switch. With FAULTS=on (which production configuration refuses), a request may name fault
// points in the X-Bindcard-Fault header (comma-separated); without it, or with FAULTS off, the header is ignored.
// It lets the contract run and the tests provoke the documented 500, 503 and 429 without touching any table, so they
// are safe against a shared environment. Later fault points join this list.

export const FAULT_HEADER = 'x-bindcard-fault';

export const FAULT_POINTS = {
  /** admission refuses the request: 503 with Retry-After */
  overload: 'admission refuses the request (503)',
  /** the request counts as over its channel's rate: 429 after validation */
  'rate-limit': "the request is over its channel's rate (429)",
  /** the operation fails unexpectedly after validation, as a broken database would: 500 */
  'internal-error': 'the operation fails unexpectedly (500)',
} as const;

export type FaultPoint = keyof typeof FAULT_POINTS;

const NONE: ReadonlySet<FaultPoint> = new Set();

/** The fault points a request names, when the switch is on. Names that are not fault points are ignored. */
export function faultsOf(enabled: boolean, headers: IncomingHttpHeaders): ReadonlySet<FaultPoint> {
  const named = headers[FAULT_HEADER];
  if (!enabled || typeof named !== 'string') return NONE;
  return new Set(
    named
      .split(',')
      .map((name) => name.trim())
      .filter((name): name is FaultPoint => name in FAULT_POINTS),
  );
}

/** An unexpected failure the fault switch injected. */
export class InjectedFault extends Error {}

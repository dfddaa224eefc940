import { AsyncLocalStorage } from 'node:async_hooks';
import { pino, type Logger, type DestinationStream } from 'pino';

/** The request being served, for every log line written while serving it and every gateway call it makes. */
export const requestContext = new AsyncLocalStorage<{
  reqId: string;
  /** business time minus real time, when the request set the business clock (test only: src/faults.ts) */
  clockShiftMs?: number;
  /** the fault points the request named (test only: src/faults.ts) */
  faults?: ReadonlySet<string>;
}>();

/** A caller's X-Request-Id is kept when it is 1–64 of these; otherwise the service makes one. */
export const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

// Personal data and secrets never reach a log line, whatever object carries them.
const SENSITIVE = [
  'bank_card',
  'id_number',
  'user_mobile',
  'user_name',
  'verify_code',
  'mobile',
  'code_plain',
  'cardNumber',
  'idNumber',
  'name',
  'body',
  'rawBody',
  'secret',
  'signature',
  'authorization',
];
const paths = SENSITIVE.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

export function createLogger(level: string, dest?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths, censor: '[redacted]' },
      // Errors are reduced to type, message and stack: a parser error may carry the raw body.
      serializers: { err: (e: Error) => ({ type: e?.name, message: e?.message, stack: e?.stack }) },
      // every line written while a request is served names it
      mixin: () => {
        const reqId = requestContext.getStore()?.reqId;
        return reqId ? { req_id: reqId } : {};
      },
    },
    dest,
  );
}

export type { Logger };

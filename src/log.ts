import { pino, type Logger, type DestinationStream } from 'pino';

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
    },
    dest,
  );
}

export type { Logger };

import { readFileSync } from 'node:fs';
import { CHANNEL_CODE } from './domain/channel.ts';
import type { Gateway } from './providers/provider-types.ts';
import type { FaultSwitch } from './faults.ts';

// Every setting in one table: its env name, its default, its parser and what it means. loadConfig reads the
// table once at start, and a bad value stops the process with the setting's name. `npm run docs:config` writes the
// table into docs/operations.md (CI fails when they disagree).

export interface Config {
  env: string;
  port: number;
  /** the admin listener: /healthz, /readyz, /metrics */
  adminPort: number;
  adminHost: string;
  /** the API reference at /docs and the document at /openapi.yaml and /openapi.json, on the partner port */
  docs: boolean;
  /** after SIGTERM, how long /readyz answers 503 while requests are still served, before the listener closes */
  shutdownDrainMs: number;
  databaseUrl: string | undefined;
  dataDir: string;
  dbPoolMax: number;
  sandbox: boolean;
  faults: FaultSwitch;
  rateLimitPerSecond: number;
  maxInflight: number;
  maxQueued: number;
  queueWaitMs: number;
  purgeIntervalMs: number;
  workers: number;
  tls: { cert: string; key: string } | undefined;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  dataKeys: Map<string, Buffer>;
  dataKeyId: string;
  hashKey: Buffer;
  validateResponses: boolean;
  logLevel: string;
  requestDeadlineMs: number;
  providerTimeoutMs: number;
  codeTtlSeconds: number;
  codeMaxAttempts: number;
  resendSeconds: number;
  smsPerMobileHour: number;
  smsPerMobileDay: number;
  smsPerCardHour: number;
  authReviewsPerCardDay: number;
  authReviewsPerIdDay: number;
  authReviewsPerMobileDay: number;
  ownershipProbesPerCard: number;
  bodyLimitBytes: number;
  /** seconds before each retry of a callback; after the last retry fails the event is dead */
  callbackRetrySeconds: number[];
  callbackTimeoutMs: number;
  callbackPollMs: number;
  /** the card-auth and SMS gateways over HTTP; unset: the sandbox's (only while the sandbox is on) */
  cardAuthGateway: Gateway | undefined;
  smsGateway: Gateway | undefined;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

// Development-only keys: fine for a laptop and tests, refused in production.
const DEV_DATA_KEY = 'dev1:' + Buffer.alloc(32, 7).toString('base64');
const DEV_HASH_KEY = Buffer.alloc(32, 9).toString('base64');

type Value = string | number | boolean;

/** One setting. `fallback` is its text when unset, per environment; `shownDefault` says it in the docs. */
export interface Setting {
  env: string;
  shownDefault: string;
  fallback: (production: boolean) => string | undefined;
  /** the text's value; throws ConfigError naming the setting */
  parse: (raw: string, env: string) => Value;
  doc: string;
}

const whole = (min: number, max: number) => (raw: string, env: string) => {
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${env} must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${env} must be between ${min} and ${max}, got ${value}`);
  return value;
};
const oneOf =
  (...allowed: string[]) =>
  (raw: string, env: string) => {
    if (!allowed.includes(raw)) throw new ConfigError(`${env} must be one of ${allowed.join(', ')}; got "${raw}"`);
    return raw;
  };
const flag =
  (yes: string[], no: string[]) =>
  (raw: string, env: string): boolean => {
    if (yes.includes(raw)) return true;
    if (no.includes(raw)) return false;
    throw new ConfigError(`${env} must be one of ${[...yes, ...no].join(', ')}; got "${raw}"`);
  };
const anything = (raw: string) => raw;
const secondsList = (raw: string, env: string) => {
  const parts = raw.split(',').map((part) => part.trim());
  if (parts.length > 20 || parts.some((part) => !/^\d{1,6}$/.test(part) || Number(part) < 1)) {
    throw new ConfigError(`${env} must be 1 to 20 comma-separated whole numbers of seconds (1 or more), got "${raw}"`);
  }
  return parts.join(',');
};
const fixed = (value: string | undefined) => () => value;

function setting(
  env: string,
  shownDefault: string | undefined,
  parse: Setting['parse'],
  doc: string,
  fallback: Setting['fallback'] = fixed(shownDefault),
): Setting {
  return { env, shownDefault: shownDefault ?? '(unset)', fallback, parse, doc };
}

/** A gateway's three settings. */
const gatewaySettings = (prefix: string, what: string): Setting[] => [
  setting(
    `${prefix}_URL`,
    undefined,
    anything,
    `The ${what} gateway's base URL (https in production). Required with the sandbox off; unset with the sandbox on: the sandbox's.`,
  ),
  setting(`${prefix}_CLIENT_ID`, 'BINDCARD', anything, `Our client id at the ${what} gateway (X-Channel of our calls).`),
  setting(
    `${prefix}_SECRET`,
    undefined,
    anything,
    `The secret shared with the ${what} gateway for signing, 16 characters or more. Required with ${prefix}_URL.`,
  ),
];

export const SETTINGS: Setting[] = [
  setting('NODE_ENV', 'development', anything, '`production` refuses the sandbox, the development keys and the fault switch.'),
  setting('PORT', '8080', whole(0, 65535), 'The partner port; 0 picks a free one.'),
  setting(
    'ADMIN_PORT',
    '9464',
    whole(0, 65535),
    'The admin port: /healthz, /readyz and /metrics (never on the partner port); 0 picks a free one.',
  ),
  setting('ADMIN_HOST', '127.0.0.1', anything, 'The address the admin port listens on (`0.0.0.0` for a probe from outside the host).'),
  setting(
    'DOCS',
    'on with the sandbox, else off',
    flag(['on'], ['off']),
    'The API reference at /docs and the document at /openapi.yaml and /openapi.json, on the partner port.',
    fixed(undefined),
  ),
  setting(
    'SHUTDOWN_DRAIN_MS',
    '5000 in production, else 0',
    whole(0, 120_000),
    'After SIGTERM, /readyz answers 503 at once and requests are still served this long, so a load balancer stops sending; then the listener closes and in-flight requests finish.',
    (production) => (production ? '5000' : '0'),
  ),
  setting(
    'DATABASE_URL',
    undefined,
    anything,
    'PostgreSQL (`postgres://user@host:port/db`). Unset: the embedded database (PGlite) in DATA_DIR.',
  ),
  setting('DATA_DIR', './data', anything, 'Folder of the embedded database (only without DATABASE_URL).'),
  setting('DB_POOL_MAX', '32', whole(1, 200), 'Connections of the business pool (replay protection has up to 8 more).'),
  setting(
    'SANDBOX',
    'on unless production',
    flag(['1', 'true'], ['0', 'false']),
    'The sandbox: the DEMO channel, sandbox gateways and the phone at /sandbox/sms. Refused in production.',
    (production) => (production ? 'false' : 'true'),
  ),
  setting(
    'FAULTS',
    'off',
    oneOf('off', 'on', 'chaos'),
    "Test only, refused in production (src/faults.ts). `on`: the X-Bindcard-Fault header's 500, 503 and 429, which write nothing (safe on a shared test environment). `chaos`: also the crash points (the process kills itself) and the business clock (X-Bindcard-Clock), for a service of one test's own.",
  ),
  setting('RATE_LIMIT_PER_SECOND', '200', whole(1, 1_000_000), 'Requests per second per channel; past it 429.'),
  setting('MAX_INFLIGHT', '32', whole(1, 100_000), 'Requests one process works on at once.'),
  setting('MAX_QUEUED', '128', whole(0, 100_000), 'Requests that may wait for a place when all are taken; past it 503.'),
  setting('QUEUE_WAIT_MS', '250', whole(1, 1000), 'Longest wait for a place, and how long without a prompt start counts as overload.'),
  setting('PURGE_INTERVAL_MS', '60000', whole(0, 86_400_000), 'How often expired rows are purged; 0 never.'),
  setting('WORKERS', '1', whole(1, 64), 'Processes sharing the port (node:cluster); more than 1 needs DATABASE_URL.'),
  setting(
    'TLS_CERT_FILE',
    undefined,
    anything,
    'PEM certificate: the service speaks TLS 1.2+. Set with TLS_KEY_FILE, or neither (plain HTTP behind a proxy).',
  ),
  setting('TLS_KEY_FILE', undefined, anything, 'PEM private key of TLS_CERT_FILE.'),
  setting('REQUEST_TIMEOUT_MS', '5000', whole(100, 120_000), 'Longest time a client may take to send a whole request.'),
  setting('HEADERS_TIMEOUT_MS', '3000', whole(100, 120_000), 'Longest time a client may take to send the headers.'),
  setting(
    'DATA_KEYS',
    'a development key, unless production',
    anything,
    'Keys for personal data at rest: `id:base64,id:base64` (32 bytes each). Required in production.',
    (production) => (production ? undefined : DEV_DATA_KEY),
  ),
  setting('DATA_KEY_ID', 'the last of DATA_KEYS', anything, 'The key new values are encrypted under.', fixed(undefined)),
  setting(
    'HASH_KEY',
    'a development key, unless production',
    anything,
    'Key of the keyed hashes (lookup) and signed card tokens: 32 bytes, base64. Required in production.',
    (production) => (production ? undefined : DEV_HASH_KEY),
  ),
  setting(
    'VALIDATE_RESPONSES',
    'true unless production',
    flag(['true'], ['false']),
    'Check every answer against the document; a mismatch is logged and answered 500.',
    (production) => String(!production),
  ),
  setting('LOG_LEVEL', 'info', oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'), 'pino log level.'),
  setting(
    'REQUEST_DEADLINE_MS',
    '1800',
    whole(200, 10_000),
    'An answer is ready this long after the request arrived (partners time out at 2 s).',
  ),
  setting('PROVIDER_TIMEOUT_MS', '1500', whole(50, 10_000), 'Longest wait for one gateway call.'),
  setting('CODE_TTL_SECONDS', '300', whole(30, 3600), 'How long an SMS code is valid.'),
  setting('CODE_MAX_ATTEMPTS', '5', whole(1, 20), 'Wrong codes before a code is dead.'),
  setting('SMS_RESEND_SECONDS', '60', whole(1, 3600), 'A first call repeated within this answers SMS_SENT without a new text.'),
  setting('SMS_PER_MOBILE_HOUR', '5', whole(1, 1000), 'Texts per mobile in a rolling hour.'),
  setting('SMS_PER_MOBILE_DAY', '10', whole(1, 10_000), 'Texts per mobile in a rolling day.'),
  setting('SMS_PER_CARD_HOUR', '5', whole(1, 1000), 'Texts per card in a rolling hour.'),
  setting(
    'AUTH_REVIEWS_PER_CARD_DAY',
    '10',
    whole(1, 10_000),
    'Card-authentication calls per card in a rolling day; past it 505 AUTH_RATE_LIMITED.',
  ),
  setting('AUTH_REVIEWS_PER_ID_DAY', '10', whole(1, 10_000), 'Card-authentication calls per ID number in a rolling day.'),
  setting('AUTH_REVIEWS_PER_MOBILE_DAY', '10', whole(1, 10_000), 'Card-authentication calls per mobile in a rolling day.'),
  setting(
    'OWNERSHIP_PROBES_PER_CARD',
    '3',
    whole(1, 1000),
    "Other people's ID numbers a bound card may be tried with in a rolling day before every new-card call for it from a user without a binding of it answers 502.",
  ),
  setting(
    'CALLBACK_RETRY_SECONDS',
    '15,60,300,1800,7200,21600,43200,86400',
    secondsList,
    'Seconds before each retry of an undelivered callback (each with ±20 % jitter); after the last, the event is dead-lettered.',
  ),
  setting('CALLBACK_TIMEOUT_MS', '2000', whole(100, 30_000), 'Longest wait for a partner to acknowledge one callback try.'),
  setting('CALLBACK_POLL_MS', '1000', whole(10, 60_000), 'How often each instance looks for callbacks due.'),
  ...gatewaySettings('CARD_AUTH', 'card-auth'),
  ...gatewaySettings('SMS', 'SMS'),
];

const BY_NAME = new Map(SETTINGS.map((s) => [s.env, s]));

/** Reads one setting: the value set (checked), else its default for the environment. */
function reader(env: Env, production: boolean) {
  return (name: string): Value | undefined => {
    const entry = BY_NAME.get(name);
    if (!entry) throw new Error(`${name} is not in SETTINGS`);
    const raw = env[name] || entry.fallback(production);
    return raw === undefined ? undefined : entry.parse(raw, name);
  };
}

function key(name: string, b64: string): Buffer {
  const buf = Buffer.from(b64, 'base64');
  if (buf.length !== 32) throw new ConfigError(`${name} must hold 32 bytes in base64 (openssl rand -base64 32)`);
  return buf;
}

/** DATA_KEYS: "id:base64,id:base64"; the active one is DATA_KEY_ID (default: the last listed). */
function dataKeys(raw: string | undefined, activeRaw: string | undefined): { keys: Map<string, Buffer>; active: string } {
  if (!raw) throw new ConfigError('DATA_KEYS is required in production ("id:base64key[,id:base64key]")');
  const keys = new Map<string, Buffer>();
  for (const part of raw.split(',')) {
    const entry = /^([A-Za-z0-9_-]{1,16}):(.+)$/.exec(part.trim());
    if (!entry) throw new ConfigError('DATA_KEYS entries must look like "id:base64key"');
    keys.set(entry[1], key(`DATA_KEYS (${entry[1]})`, entry[2]));
  }
  const active = activeRaw ?? [...keys.keys()].at(-1)!;
  if (!keys.has(active)) throw new ConfigError(`DATA_KEY_ID "${active}" is not among DATA_KEYS`);
  return { keys, active };
}

function tls(cert: string | undefined, keyFile: string | undefined): Config['tls'] {
  if (!cert && !keyFile) return undefined;
  if (!cert || !keyFile) throw new ConfigError('TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither');
  const read = (name: string, file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError(`${name}: cannot read ${file} (${(e as NodeJS.ErrnoException).code})`);
    }
  };
  return { cert: read('TLS_CERT_FILE', cert), key: read('TLS_KEY_FILE', keyFile) };
}

/** One gateway's settings; none set: undefined. In production the URL must be https (the calls carry full card and ID numbers). */
function gateway(
  read: (name: string) => string | undefined,
  prefix: string,
  what: string,
  production: boolean,
  sandbox: boolean,
): Gateway | undefined {
  const raw = read(`${prefix}_URL`);
  if (!raw) {
    if (!sandbox) throw new ConfigError(`${prefix}_URL is required with the sandbox off: the ${what} gateway's base URL`);
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${prefix}_URL must be an http(s) URL, got "${raw}"`);
  }
  if (production ? url.protocol !== 'https:' : !['http:', 'https:'].includes(url.protocol)) {
    throw new ConfigError(`${prefix}_URL must be ${production ? 'https in production' : 'an http(s) URL'}, got "${raw}"`);
  }
  const clientId = read(`${prefix}_CLIENT_ID`)!;
  if (!CHANNEL_CODE.test(clientId)) throw new ConfigError(`${prefix}_CLIENT_ID must be 2–32 of A–Z, 0–9 and _`);
  const secret = read(`${prefix}_SECRET`);
  if (!secret || secret.length < 16)
    throw new ConfigError(`${prefix}_SECRET is required with ${prefix}_URL: the shared signing secret, 16 characters or more`);
  return { url: url.toString(), clientId, secret };
}

export function loadConfig(env: Env = process.env): Config {
  const production = env.NODE_ENV === 'production';
  const read = reader(env, production);
  const number = (name: string) => read(name) as number;
  const text = (name: string) => read(name) as string | undefined;
  const sandbox = read('SANDBOX') === true;
  if (production && sandbox) throw new ConfigError('SANDBOX cannot be on with NODE_ENV=production');
  const faults = read('FAULTS') as FaultSwitch;
  if (production && faults !== 'off') throw new ConfigError('FAULTS cannot be on with NODE_ENV=production: the fault switch is for tests');
  const hashRaw = text('HASH_KEY');
  if (!hashRaw) throw new ConfigError('HASH_KEY is required in production (32 bytes, base64)');
  const { keys, active } = dataKeys(text('DATA_KEYS'), text('DATA_KEY_ID'));
  return {
    env: text('NODE_ENV')!,
    port: number('PORT'),
    adminPort: number('ADMIN_PORT'),
    adminHost: text('ADMIN_HOST')!,
    docs: (read('DOCS') as boolean | undefined) ?? sandbox,
    shutdownDrainMs: number('SHUTDOWN_DRAIN_MS'),
    databaseUrl: text('DATABASE_URL'),
    dataDir: text('DATA_DIR')!,
    dbPoolMax: number('DB_POOL_MAX'),
    sandbox,
    faults,
    rateLimitPerSecond: number('RATE_LIMIT_PER_SECOND'),
    maxInflight: number('MAX_INFLIGHT'),
    maxQueued: number('MAX_QUEUED'),
    queueWaitMs: number('QUEUE_WAIT_MS'),
    purgeIntervalMs: number('PURGE_INTERVAL_MS'),
    workers: number('WORKERS'),
    tls: tls(text('TLS_CERT_FILE'), text('TLS_KEY_FILE')),
    requestTimeoutMs: number('REQUEST_TIMEOUT_MS'),
    headersTimeoutMs: number('HEADERS_TIMEOUT_MS'),
    dataKeys: keys,
    dataKeyId: active,
    hashKey: key('HASH_KEY', hashRaw),
    validateResponses: read('VALIDATE_RESPONSES') === true,
    logLevel: text('LOG_LEVEL')!,
    requestDeadlineMs: number('REQUEST_DEADLINE_MS'),
    providerTimeoutMs: number('PROVIDER_TIMEOUT_MS'),
    codeTtlSeconds: number('CODE_TTL_SECONDS'),
    codeMaxAttempts: number('CODE_MAX_ATTEMPTS'),
    resendSeconds: number('SMS_RESEND_SECONDS'),
    smsPerMobileHour: number('SMS_PER_MOBILE_HOUR'),
    smsPerMobileDay: number('SMS_PER_MOBILE_DAY'),
    smsPerCardHour: number('SMS_PER_CARD_HOUR'),
    authReviewsPerCardDay: number('AUTH_REVIEWS_PER_CARD_DAY'),
    authReviewsPerIdDay: number('AUTH_REVIEWS_PER_ID_DAY'),
    authReviewsPerMobileDay: number('AUTH_REVIEWS_PER_MOBILE_DAY'),
    ownershipProbesPerCard: number('OWNERSHIP_PROBES_PER_CARD'),
    bodyLimitBytes: 64 * 1024,
    callbackRetrySeconds: text('CALLBACK_RETRY_SECONDS')!.split(',').map(Number),
    callbackTimeoutMs: number('CALLBACK_TIMEOUT_MS'),
    callbackPollMs: number('CALLBACK_POLL_MS'),
    cardAuthGateway: gateway(text, 'CARD_AUTH', 'card-auth', production, sandbox),
    smsGateway: gateway(text, 'SMS', 'SMS', production, sandbox),
  };
}

/** The settings as a Markdown table, for docs/operations.md. */
export function settingsTable(): string {
  const escape = (text: string) => text.replaceAll('|', '\\|');
  return [
    '| setting | default | meaning |',
    '|---|---|---|',
    ...SETTINGS.map((s) => `| \`${s.env}\` | ${escape(s.shownDefault)} | ${escape(s.doc)} |`),
  ].join('\n');
}

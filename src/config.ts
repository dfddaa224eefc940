import { readFileSync } from 'node:fs';
import { CHANNEL_CODE } from './domain/channel.ts';
import type { Gateway } from './providers/provider-types.ts';

// Every setting: env name, default, meaning. Parsed and validated once at start; a bad value stops the process with its name.

export interface Config {
  env: string;
  port: number;
  databaseUrl: string | undefined;
  dataDir: string;
  dbPoolMax: number;
  sandbox: boolean;
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
  bodyLimitBytes: number;
  /** the card-auth and SMS gateways over HTTP; unset: the sandbox's (only while the sandbox is on) */
  cardAuthGateway: Gateway | undefined;
  smsGateway: Gateway | undefined;
}

export class ConfigError extends Error {}

// Development-only keys: fine for a laptop and tests, refused in production.
const DEV_DATA_KEY = 'dev1:' + Buffer.alloc(32, 7).toString('base64');
const DEV_HASH_KEY = Buffer.alloc(32, 9).toString('base64');

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function key(name: string, b64: string): Buffer {
  const buf = Buffer.from(b64, 'base64');
  if (buf.length !== 32) throw new ConfigError(`${name} must hold 32 bytes in base64 (openssl rand -base64 32)`);
  return buf;
}

/** DATA_KEYS: "id:base64,id:base64"; the active one is DATA_KEY_ID (default: the last listed). */
function dataKeys(env: Env, production: boolean): { keys: Map<string, Buffer>; active: string } {
  const raw = env.DATA_KEYS ?? (production ? undefined : DEV_DATA_KEY);
  if (!raw) throw new ConfigError('DATA_KEYS is required in production ("id:base64key[,id:base64key]")');
  const keys = new Map<string, Buffer>();
  for (const part of raw.split(',')) {
    const m = /^([A-Za-z0-9_-]{1,16}):(.+)$/.exec(part.trim());
    if (!m) throw new ConfigError('DATA_KEYS entries must look like "id:base64key"');
    keys.set(m[1], key(`DATA_KEYS (${m[1]})`, m[2]));
  }
  const active = env.DATA_KEY_ID || [...keys.keys()].at(-1)!;
  if (!keys.has(active)) throw new ConfigError(`DATA_KEY_ID "${active}" is not among DATA_KEYS`);
  return { keys, active };
}

/** TLS_CERT_FILE and TLS_KEY_FILE: both (the service speaks TLS 1.2+) or neither (plain HTTP behind a proxy). */
function tls(env: Env): Config['tls'] {
  const cert = env.TLS_CERT_FILE;
  const key = env.TLS_KEY_FILE;
  if (!cert && !key) return undefined;
  if (!cert || !key) throw new ConfigError('TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither');
  const read = (name: string, file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError(`${name}: cannot read ${file} (${(e as NodeJS.ErrnoException).code})`);
    }
  };
  return { cert: read('TLS_CERT_FILE', cert), key: read('TLS_KEY_FILE', key) };
}

/**
 * PREFIX_URL, PREFIX_CLIENT_ID and PREFIX_SECRET of one gateway; none set: undefined. In production the URL must be
 * https (the calls carry full card and ID numbers). With the sandbox off, the gateway is required.
 */
function gateway(env: Env, prefix: string, what: string, production: boolean, sandbox: boolean): Gateway | undefined {
  const raw = env[`${prefix}_URL`];
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
  const clientId = env[`${prefix}_CLIENT_ID`] || 'BINDCARD';
  if (!CHANNEL_CODE.test(clientId)) throw new ConfigError(`${prefix}_CLIENT_ID must be 2–32 of A–Z, 0–9 and _`);
  const secret = env[`${prefix}_SECRET`];
  if (!secret || secret.length < 16) throw new ConfigError(`${prefix}_SECRET is required with ${prefix}_URL: the shared signing secret, 16 characters or more`);
  return { url: url.toString(), clientId, secret };
}

export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = env.NODE_ENV || 'development';
  const production = nodeEnv === 'production';
  const sandboxRaw = env.SANDBOX;
  if (sandboxRaw !== undefined && sandboxRaw !== '' && !['0', '1', 'true', 'false'].includes(sandboxRaw)) {
    throw new ConfigError(`SANDBOX must be true or false, got "${sandboxRaw}"`);
  }
  const sandbox = sandboxRaw === undefined || sandboxRaw === '' ? !production : ['1', 'true'].includes(sandboxRaw);
  if (production && sandbox) throw new ConfigError('SANDBOX cannot be on with NODE_ENV=production');
  if (env.VALIDATE_RESPONSES && !['true', 'false'].includes(env.VALIDATE_RESPONSES)) throw new ConfigError('VALIDATE_RESPONSES must be true or false');
  const hashRaw = env.HASH_KEY ?? (production ? undefined : DEV_HASH_KEY);
  if (!hashRaw) throw new ConfigError('HASH_KEY is required in production (32 bytes, base64)');
  const { keys, active } = dataKeys(env, production);
  const logLevel = env.LOG_LEVEL || 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent; got "${logLevel}"`);
  }
  const cfg: Config = {
    env: nodeEnv,
    port: int(env, 'PORT', 8080, 0, 65535),
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: env.DATA_DIR || './data',
    dbPoolMax: int(env, 'DB_POOL_MAX', 32, 1, 200),
    sandbox,
    rateLimitPerSecond: int(env, 'RATE_LIMIT_PER_SECOND', 200, 1, 1_000_000),
    maxInflight: int(env, 'MAX_INFLIGHT', 32, 1, 100_000),
    maxQueued: int(env, 'MAX_QUEUED', 128, 0, 100_000),
    queueWaitMs: int(env, 'QUEUE_WAIT_MS', 250, 1, 1000),
    purgeIntervalMs: int(env, 'PURGE_INTERVAL_MS', 60_000, 0, 86_400_000),
    workers: int(env, 'WORKERS', 1, 1, 64),
    tls: tls(env),
    requestTimeoutMs: int(env, 'REQUEST_TIMEOUT_MS', 5000, 100, 120_000),
    headersTimeoutMs: int(env, 'HEADERS_TIMEOUT_MS', 3000, 100, 120_000),
    dataKeys: keys,
    dataKeyId: active,
    hashKey: key('HASH_KEY', hashRaw),
    validateResponses: env.VALIDATE_RESPONSES ? env.VALIDATE_RESPONSES === 'true' : !production,
    logLevel,
    requestDeadlineMs: int(env, 'REQUEST_DEADLINE_MS', 1800, 200, 10000),
    providerTimeoutMs: int(env, 'PROVIDER_TIMEOUT_MS', 1500, 50, 10000),
    codeTtlSeconds: int(env, 'CODE_TTL_SECONDS', 300, 30, 3600),
    codeMaxAttempts: int(env, 'CODE_MAX_ATTEMPTS', 5, 1, 20),
    resendSeconds: int(env, 'SMS_RESEND_SECONDS', 60, 1, 3600),
    smsPerMobileHour: int(env, 'SMS_PER_MOBILE_HOUR', 5, 1, 1000),
    smsPerMobileDay: int(env, 'SMS_PER_MOBILE_DAY', 10, 1, 10000),
    smsPerCardHour: int(env, 'SMS_PER_CARD_HOUR', 5, 1, 1000),
    bodyLimitBytes: 64 * 1024,
    cardAuthGateway: gateway(env, 'CARD_AUTH', 'card-auth', production, sandbox),
    smsGateway: gateway(env, 'SMS', 'SMS', production, sandbox),
  };
  return cfg;
}

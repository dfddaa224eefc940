import type { Logger } from '../log.ts';
import { DatabaseTimeout, errorChain, READ_ONLY } from '../store/sql.ts';

const GONE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const SEQUELIZE_GONE = new Set([
  'SequelizeConnectionError',
  'SequelizeConnectionRefusedError',
  'SequelizeHostNotFoundError',
  'SequelizeHostNotReachableError',
  'SequelizeConnectionTimedOutError',
  'SequelizeConnectionAcquireTimeoutError',
]);

/**
 * Whether an error says the database cannot be reached (not that a statement was wrong): a refused, reset or
 * timed-out connection, a server shutting down or starting (SQLSTATE 57P01–57P03), a connection exception (class
 * 08), a server that is read-only (25006: during a failover, the old primary or a standby not yet promoted), or no
 * answer within the statement limit. Sequelize and pg wrap the cause: the whole chain is looked at.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  return errorChain(error).some((e) => {
    if (e instanceof DatabaseTimeout || SEQUELIZE_GONE.has(String(e.name))) return true;
    const code = typeof e.code === 'string' ? e.code : '';
    if (GONE_CODES.has(code) || /^57P0[123]$/.test(code) || code.startsWith('08') || code === READ_ONLY) return true;
    const message = typeof e.message === 'string' ? e.message : '';
    return /^Connection terminated|not queryable|timeout exceeded when trying to connect/.test(message);
  });
}

/**
 * One outage of the database, as the log tells it: one line when it starts (with the first error) and one when it
 * ends (how long, how many requests were answered 503), not one per request.
 */
export class DatabaseOutage {
  private since: number | undefined;
  private refused = 0;

  constructor(private readonly log: Logger) {}

  get down(): boolean {
    return this.since !== undefined;
  }

  /** A request (or a probe) could not reach the database. */
  failed(error: unknown, requests = 1): void {
    if (this.since === undefined) {
      this.since = Date.now();
      this.log.error({ err: error }, 'database unavailable: requests that need it answer 503 until it is back');
    }
    this.refused += requests;
  }

  /** The database answered. */
  answered(): void {
    if (this.since === undefined) return;
    this.log.warn({ down_ms: Date.now() - this.since, answered_503: this.refused }, 'database back');
    this.since = undefined;
    this.refused = 0;
  }
}

import pg from 'pg';
import { Sequelize, type QueryInterface } from 'sequelize';
import { Umzug, SequelizeStorage } from 'umzug';
import { sql } from './sql.ts';
import * as m001 from './migrations/001-initial.ts';
import * as m002 from './migrations/002-partners.ts';
import * as m003 from './migrations/003-housekeeping.ts';
import * as m004 from './migrations/004-rate-slots.ts';
import * as m005 from './migrations/005-verifications-hot.ts';
import * as m006 from './migrations/006-hardening.ts';
import * as m007 from './migrations/007-lifecycle.ts';
import * as m008 from './migrations/008-code-resend.ts';

/** The replay-protection pool's name (application_name), apart from the business pool's 'bindcard'. */
export const PROTOCOL_POOL_NAME = 'bindcard-protocol';
/** Its size: nonce claims and records are one short statement each, so a few connections serve MAX_INFLIGHT requests. */
export const PROTOCOL_POOL_MAX = 8;

/**
 * A pool to PostgreSQL. `asyncCommit` sessions run with synchronous_commit off: a commit returns before its WAL
 * reaches the disk, so a crash can lose the last fraction of a second of them (never corrupt anything). Any later
 * synchronous commit flushes them too: WAL reaches the disk in order, and a commit another session has seen was
 * written to WAL before that session's own. The service's pools are asynchronous, and every bindCard answer waits
 * for one synchronous commit after everything it depends on (its audit event, AuditStore.appendDurably): one WAL
 * flush per answer, not one per transaction, and nothing answered that a crash could take back.
 */
export function connect(url: string, poolMax = 10, opts: { asyncCommit?: boolean; name?: string } = {}): Sequelize {
  return new Sequelize(url, {
    dialect: 'postgres',
    logging: false,
    // Idle connections stay for a minute: with 10 s, load after a quiet spell reopened up to 32 at once (a backend
    // each, and Sequelize's set-up statements) and stalled the first second of load (docs/performance.md).
    // A request waits for a connection, or for a new one to connect, no longer than it could use one: with the
    // database gone it fails fast (503) instead of queueing past the partner's timeout.
    pool: { max: poolMax, min: 0, idle: 60_000, acquire: 2_000 },
    dialectOptions: {
      // the pool's name shows in pg_stat_activity (and tells the benchmark's recording which pool a statement took)
      application_name: opts.name ?? 'bindcard',
      connectionTimeoutMillis: 1_000,
      keepAlive: true,
      ...(opts.asyncCommit ? { options: '-c synchronous_commit=off' } : {}),
    },
  });
}

// Migrations in order; each runs once and is recorded in SequelizeMeta.
export const MIGRATIONS = [
  { name: '001-initial', ...m001 },
  { name: '002-partners', ...m002 },
  { name: '003-housekeeping', ...m003 },
  { name: '004-rate-slots', ...m004 },
  { name: '005-verifications-hot', ...m005 },
  { name: '006-hardening', ...m006 },
  { name: '007-lifecycle', ...m007 },
  { name: '008-code-resend', ...m008 },
];

export function migrator(db: Sequelize): Umzug<QueryInterface> {
  return new Umzug({
    migrations: MIGRATIONS,
    context: db.getQueryInterface(),
    storage: new SequelizeStorage({ sequelize: db }),
    logger: undefined,
  });
}

/** The names of the migrations this database has run. */
export async function migrationsRun(db: Sequelize): Promise<string[]> {
  const [row] = await sql<{ names: string[] | null }>(db, undefined, 'SELECT array_agg(name) AS names FROM "SequelizeMeta"');
  return row.names ?? [];
}

/** Brings the schema up to date; a session advisory lock keeps instances that start together from racing. */
export async function migrate(db: Sequelize, url: string): Promise<void> {
  const lock = new pg.Client({ connectionString: url });
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock(727274)');
    await migrator(db).up();
  } finally {
    await lock.end(); // ending the session releases the lock
  }
}

import { connect, migrate } from '../../src/store/db.ts';
import type { Sequelize } from 'sequelize';
import { createThrowawayDatabase, type ThrowawayDatabase } from './throwaway-database.ts';

// One throwaway database for the whole run: created on the server DATABASE_URL points at and dropped at the end,
// or, without DATABASE_URL, an in-memory embedded PostgreSQL (PGlite) that lives as long as the run.
let database: ThrowawayDatabase | undefined;
let shared: Sequelize | undefined;

/** The embedded database serves one session, so the run keeps to one connection there (see src/main.ts). */
export const poolMax = process.env.DATABASE_URL ? 20 : 1;
export const embeddedRun = !process.env.DATABASE_URL;

export function testDatabaseUrl(): string {
  if (!database) throw new Error('the test database is not ready');
  return database.url;
}

/** The run's connection, shared by every service a test starts (Sequelize models bind to one instance). */
export function testDb(): Sequelize {
  shared ??= connect(testDatabaseUrl(), poolMax);
  return shared;
}

const TABLES = [
  'audit_events',
  'bindings',
  'cards',
  'persons',
  'verifications',
  'sms_sends',
  'sandbox_sms',
  'sandbox_slow_cards',
  'channel_secrets',
  'channels',
  'nonces',
  'rate_counters',
  'unbindings',
  'binding_failures',
  'callback_events',
  'sandbox_callbacks',
  'channel_callback_hosts',
  'auth_reviews',
  'ownership_probes',
];

/** How many rows a table holds. */
export async function countRows(table: string): Promise<number> {
  const [[row]] = (await testDb().query(`SELECT count(*)::int AS n FROM ${table}`)) as [{ n: number }[], unknown];
  return row.n;
}

export async function resetDb(): Promise<void> {
  await testDb().query(`TRUNCATE ${TABLES.join(', ')} RESTART IDENTITY CASCADE`);
}

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(60_000);
    // embedded: the one pooled connection, and the session that holds the migration lock meanwhile
    database = await createThrowawayDatabase({ prefix: 'bindcard_test', embeddedPool: 2 });
    const db = connect(database.url, 1);
    await migrate(db, database.url);
    await db.close();
  },
  async afterAll(this: Mocha.Context) {
    await shared?.close();
    await database?.drop();
  },
};

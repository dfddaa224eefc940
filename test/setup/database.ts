import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { connect, migrate } from '../../src/store/db.ts';
import { startEmbedded, type Embedded } from '../../src/store/embedded.ts';
import type { Sequelize } from 'sequelize';

// One throwaway database for the whole run: created on the server DATABASE_URL points at and dropped at the end,
// or, without DATABASE_URL, an in-memory embedded PostgreSQL (PGlite) that lives as long as the run.
const adminUrl = process.env.DATABASE_URL;
let testUrl: string | undefined;
let shared: Sequelize | undefined;
let embedded: Embedded | undefined;

/** The embedded database serves one session, so the run keeps to one connection there (see src/main.ts). */
export const poolMax = adminUrl ? 20 : 1;
export const embeddedRun = !adminUrl;

export function testDatabaseUrl(): string {
  if (!testUrl) throw new Error('the test database is not ready');
  return testUrl;
}

/** The run's connection, shared by every service a test starts (Sequelize models bind to one instance). */
export function testDb(): Sequelize {
  shared ??= connect(testDatabaseUrl(), poolMax);
  return shared;
}

const TABLES = ['audit_events', 'bindings', 'cards', 'persons', 'verifications', 'sms_sends', 'sandbox_sms', 'sandbox_slow_cards',
  'channel_secrets', 'channels', 'nonces', 'rate_counters'];

export async function resetDb(): Promise<void> {
  await testDb().query(`TRUNCATE ${TABLES.join(', ')} RESTART IDENTITY CASCADE`);
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(60_000);
    if (adminUrl) {
      const name = `bindcard_test_${randomBytes(4).toString('hex')}`;
      await admin((c) => c.query(`CREATE DATABASE ${name}`));
      const url = new URL(adminUrl);
      url.pathname = `/${name}`;
      testUrl = url.toString();
    } else {
      embedded = await startEmbedded(undefined, 2);
      testUrl = embedded.url;
    }
    const db = connect(testUrl, 1);
    await migrate(db, testUrl);
    await db.close();
  },
  async afterAll(this: Mocha.Context) {
    await shared?.close();
    await embedded?.stop();
    if (adminUrl && testUrl) {
      const name = new URL(testUrl).pathname.slice(1);
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    }
  },
};

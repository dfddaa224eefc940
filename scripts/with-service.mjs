// Runs a command against a freshly started service, then stops it:
//   node scripts/with-service.mjs <command> [args...]     ("{url}" in an argument becomes the service's base URL)
// The service gets a new database: one created on DATABASE_URL's server (dropped afterwards), or, without
// DATABASE_URL, an embedded one in a temporary folder. The command sees BINDCARD_URL and BINDCARD_DATABASE_URL.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startListening } from '../test/setup/service-process.ts';

async function admin(url, sql) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try { await c.query(sql); } finally { await c.end(); }
}

async function freshDatabase() {
  if (process.env.DATABASE_URL) {
    const name = `bindcard_run_${randomBytes(4).toString('hex')}`;
    await admin(process.env.DATABASE_URL, `CREATE DATABASE ${name}`);
    const url = new URL(process.env.DATABASE_URL);
    url.pathname = `/${name}`;
    return { url: url.toString(), pool: 3, drop: () => admin(process.env.DATABASE_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
  }
  const { startEmbedded } = await import('../src/store/embedded.ts');
  const dir = mkdtempSync(join(tmpdir(), 'bindcard-run-'));
  const db = await startEmbedded(dir, 3);
  return { url: db.url, pool: 1, drop: async () => { await db.stop(); rmSync(dir, { recursive: true, force: true }); } };
}

export async function withService(run) {
  const db = await freshDatabase();
  const service = await startListening('src/main.ts', {
    DATABASE_URL: db.url, DB_POOL_MAX: String(db.pool), PORT: '0', NODE_ENV: 'test', LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  }, true).catch(async (e) => { await db.drop(); throw e; });
  try {
    return await run(service.url, db.url);
  } finally {
    await service.stop();
    await db.drop();
  }
}

export function runCommand(cmd, args, env = {}) {
  const child = spawn(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  return once(child, 'exit').then(([code]) => code ?? 1);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [cmd, ...args] = process.argv.slice(2);
  const code = await withService((url, dbUrl) =>
    runCommand(cmd, args.map((a) => a.replaceAll('{url}', url)), { BINDCARD_URL: url, BINDCARD_DATABASE_URL: dbUrl }));
  process.exit(code);
}

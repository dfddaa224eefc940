import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { createApp } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger } from './log.ts';
import { createHttpServer } from './http/server.ts';
import { connect, migrate } from './store/db.ts';
import { DataDirBusy, startEmbedded, type Embedded } from './store/embedded.ts';

// pglite-socket multiplexes one PGlite session: a second connection's extended-protocol messages can interleave with
// the first's ("unnamed prepared statement does not exist"), so the service keeps to one. +1 for the migration lock.
const EMBEDDED_POOL = 1;

function fail(message: string): never {
  console.error(`bindcard: ${message}`);
  process.exit(2);
}

async function database(config: Config): Promise<{ url: string; label: string; pool: number; embedded?: Embedded }> {
  if (config.databaseUrl) {
    const u = new URL(config.databaseUrl);
    return { url: config.databaseUrl, label: `PostgreSQL ${u.host}${u.pathname}`, pool: config.dbPoolMax };
  }
  const dir = resolve(config.dataDir);
  const embedded = await startEmbedded(dir, EMBEDDED_POOL + 1);
  return { url: embedded.url, label: `embedded PostgreSQL (PGlite) in ${dir} (set DATABASE_URL to use a server)`, pool: EMBEDDED_POOL, embedded };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) fail(`configuration error: ${e.message}`);
    throw e;
  }
  const log = createLogger(config.logLevel);
  let store;
  try {
    store = await database(config);
  } catch (e) {
    if (e instanceof DataDirBusy) fail(e.message);
    throw e;
  }
  const db = connect(store.url, store.pool);
  await migrate(db, store.url);
  const server = createHttpServer(await createApp({ config, db, log }), config);
  server.listen(config.port, '0.0.0.0');
  await once(server, 'listening');
  const base = `${config.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  console.log(`bindcard listening on ${base} · database: ${store.label} · `
    + (config.sandbox ? `sandbox on: channel DEMO, codes at ${base}/sandbox/sms?mobile=<mobile>` : 'sandbox off'));
  log.info({ url: base, sandbox: config.sandbox, tls: Boolean(config.tls) }, 'started');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    await new Promise((r) => { server.close(r); server.closeIdleConnections(); });
    await db.close();
    await store.embedded?.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

main().catch((e) => {
  console.error('bindcard: failed to start:', e instanceof Error ? e.message : e);
  process.exit(1);
});

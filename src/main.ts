import cluster from 'node:cluster';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { createApp, createCallbackWorker } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger } from './log.ts';
import { createHttpServer } from './http/server.ts';
import { connect, migrate, PROTOCOL_POOL_MAX, PROTOCOL_POOL_NAME } from './store/db.ts';
import { DataDirBusy, startEmbedded, type Embedded } from './store/embedded.ts';
import { startHousekeeping } from './store/housekeeping.ts';

// pglite-socket multiplexes one PGlite session: a second connection's extended-protocol messages can interleave with
// the first's ("unnamed prepared statement does not exist"), so the service keeps to one. +1 for the migration lock.
const EMBEDDED_POOL = 1;

function fail(message: string): never {
  console.error(`bindcard: ${message}`);
  process.exit(2);
}

async function database(config: Config): Promise<{ url: string; label: string; pool: number; embedded?: Embedded }> {
  if (config.databaseUrl) {
    const server = new URL(config.databaseUrl);
    return { url: config.databaseUrl, label: `PostgreSQL ${server.host}${server.pathname}`, pool: config.dbPoolMax };
  }
  const dir = resolve(config.dataDir);
  const embedded = await startEmbedded(dir, EMBEDDED_POOL + 1);
  return {
    url: embedded.url,
    label: `embedded PostgreSQL (PGlite) in ${dir} (set DATABASE_URL to use a server)`,
    pool: EMBEDDED_POOL,
    embedded,
  };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) fail(`configuration error: ${e.message}`);
    throw e;
  }
  if (config.workers > 1 && cluster.isPrimary) return primary(config);
  const log = createLogger(config.logLevel);
  let store;
  try {
    store = await database(config);
  } catch (e) {
    if (e instanceof DataDirBusy) fail(e.message);
    throw e;
  }
  // Commits are asynchronous and each answer waits for one synchronous commit (see connect). Replay protection has a
  // pool of its own; the embedded database has one connection for everything.
  const db = connect(store.url, store.pool, { asyncCommit: !store.embedded });
  await migrate(db, store.url);
  const protocolDb = store.embedded
    ? db
    : connect(store.url, Math.min(PROTOCOL_POOL_MAX, store.pool), { asyncCommit: true, name: PROTOCOL_POOL_NAME });
  const server = createHttpServer(await createApp({ config, db, protocolDb, log }), config);
  const stopHousekeeping = startHousekeeping(db, log, config.purgeIntervalMs, () => new Date());
  const stopCallbacks = createCallbackWorker({ config, db, log }).start();
  server.listen(config.port, '0.0.0.0');
  await once(server, 'listening');
  const base = `${config.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  if (!cluster.isWorker || cluster.worker?.id === 1) {
    console.log(
      `bindcard listening on ${base} · database: ${store.label} · ` +
        (config.sandbox ? `sandbox on: channel DEMO, codes at ${base}/sandbox/sms?mobile=<mobile>` : 'sandbox off') +
        (config.workers > 1 ? ` · ${config.workers} workers` : ''),
    );
  }
  log.info({ url: base, sandbox: config.sandbox, tls: Boolean(config.tls) }, 'started');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    await new Promise((r) => {
      server.close(r);
      server.closeIdleConnections();
    });
    await stopHousekeeping();
    await stopCallbacks();
    await db.close();
    if (protocolDb !== db) await protocolDb.close();
    await store.embedded?.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

/** WORKERS > 1: the primary runs the migrations once, then forks workers that share the port (node:cluster). */
async function primary(config: Config): Promise<void> {
  if (!config.databaseUrl) fail('WORKERS > 1 needs DATABASE_URL: the embedded database serves one process');
  const db = connect(config.databaseUrl, 1);
  await migrate(db, config.databaseUrl);
  await db.close();
  for (let i = 0; i < config.workers; i++) cluster.fork();
  let stopping = false;
  cluster.on('exit', (worker, code) => {
    if (stopping) return;
    console.error(`bindcard: worker ${worker.id} exited (${code}); starting another`);
    cluster.fork();
  });
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    const workers = Object.values(cluster.workers ?? {}).filter((worker) => worker !== undefined);
    void Promise.all(workers.map((worker) => once(worker, 'exit'))).then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((e) => {
  console.error('bindcard: failed to start:', e instanceof Error ? e.message : e);
  process.exit(1);
});

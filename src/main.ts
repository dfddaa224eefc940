import cluster from 'node:cluster';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { createApp, createCallbackWorker } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger } from './log.ts';
import { createHttpServer } from './http/server.ts';
import { connect, migrate, MIGRATIONS, PROTOCOL_POOL_MAX, PROTOCOL_POOL_NAME } from './store/db.ts';
import { dropIdle } from './store/sql.ts';
import { DataDirBusy, startEmbedded, type Embedded } from './store/embedded.ts';
import { startHousekeeping } from './store/housekeeping.ts';
import { OutboxStore } from './store/outbox-store.ts';
import { Admission } from './http/admission.ts';
import { createAdminServer } from './ops/admin.ts';
import { DatabaseOutage } from './ops/database.ts';
import { clusterMetrics, Metrics } from './ops/metrics.ts';
import { Readiness } from './ops/readiness.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Sequelize } from 'sequelize';

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
  const admission = new Admission(config.maxInflight, config.maxQueued, config.queueWaitMs);
  const outbox = new OutboxStore(db);
  const metrics = new Metrics({
    admission: () => admission.load,
    pools: () => [poolLoad('business', db), ...(protocolDb === db ? [] : [poolLoad('protocol', protocolDb)])],
    outbox: () => outbox.depth(new Date()),
  });
  metrics.joinCluster();
  const outage = new DatabaseOutage(log);
  const readiness = new Readiness(
    db,
    MIGRATIONS.map((m) => m.name),
  );
  const app = await createApp({ config, db, protocolDb, log, admission, metrics, outage, stopping: () => readiness.stopping });
  const server = createHttpServer(app, config);
  const stopHousekeeping = startHousekeeping(db, log, config.purgeIntervalMs, () => new Date());
  const stopCallbacks = createCallbackWorker({ config, db, log, metrics }).start();
  server.listen(config.port, '0.0.0.0');
  await once(server, 'listening');
  const base = `${config.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // one admin listener per machine: in a cluster the primary's (see primary)
  const admin = cluster.isWorker
    ? undefined
    : await listenAdmin(config, readiness, outage, async () => ({
        text: await metrics.registry.metrics(),
        type: metrics.registry.contentType,
      }));
  if (!cluster.isWorker || cluster.worker?.id === 1) {
    console.log(
      `bindcard listening on ${base} · database: ${store.label} · ` +
        (config.sandbox ? `sandbox on: channel DEMO, codes at ${base}/sandbox/sms?mobile=<mobile>` : 'sandbox off') +
        (config.workers > 1 ? ` · ${config.workers} workers` : '') +
        (admin ? ` · admin ${admin} (/healthz /readyz /metrics)` : ''),
    );
  }
  log.info({ url: base, admin, sandbox: config.sandbox, tls: Boolean(config.tls) }, 'started');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    // Readiness fails at once, so a load balancer stops sending; requests are still served while it notices.
    readiness.stopping = true;
    log.info({ signal, drain_ms: config.shutdownDrainMs }, 'stopping: not ready; draining');
    await sleep(config.shutdownDrainMs);
    // No new connections; idle ones close, and the others once their request is answered (Connection: close).
    const closed = new Promise((r) => server.close(r));
    server.closeIdleConnections();
    const force = setTimeout(() => server.closeAllConnections(), config.requestTimeoutMs + config.requestDeadlineMs);
    await closed;
    clearTimeout(force);
    await stopCallbacks();
    await stopHousekeeping();
    // A database that went silent would hold the pools' close (each connection says goodbye first): its idle
    // connections are ended at once, and the close gets a few seconds.
    for (const pool of new Set([db, protocolDb])) dropIdle(pool);
    await Promise.race([Promise.all([db.close(), protocolDb !== db && protocolDb.close()]), sleep(3000)]);
    await store.embedded?.stop();
    log.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

/** A Sequelize pool's connections lent out and requests waiting for one. */
function poolLoad(pool: string, db: Sequelize): { pool: string; inUse: number; waiting: number } {
  const p = (db.connectionManager as unknown as { pool?: { using: number; waiting: number } }).pool;
  return { pool, inUse: p?.using ?? 0, waiting: p?.waiting ?? 0 };
}

/** Starts the admin listener; its base URL. A port that is taken stops the process with the setting's name. */
async function listenAdmin(
  config: Config,
  readiness: Readiness,
  outage: DatabaseOutage | undefined,
  metrics: () => Promise<{ text: string; type: string }>,
): Promise<string> {
  const admin = createAdminServer({
    readiness,
    metrics,
    onDatabaseCheck: (ok, detail) => (ok ? outage?.answered() : outage?.failed(new Error(detail ?? 'unreachable'), 0)),
  });
  admin.listen(config.adminPort, config.adminHost);
  await new Promise<void>((resolve) => {
    admin.once('listening', resolve);
    admin.once('error', (e: NodeJS.ErrnoException) =>
      fail(`ADMIN_PORT ${config.adminPort} on ${config.adminHost}: ${e.code ?? e.message}`),
    );
  });
  admin.unref();
  return `http://${config.adminHost}:${(admin.address() as AddressInfo).port}`;
}

/** WORKERS > 1: the primary runs the migrations once, then forks workers that share the port (node:cluster). */
async function primary(config: Config): Promise<void> {
  if (!config.databaseUrl) fail('WORKERS > 1 needs DATABASE_URL: the embedded database serves one process');
  const db = connect(config.databaseUrl, 1);
  await migrate(db, config.databaseUrl);
  // the primary keeps one connection for readiness; the workers' metrics come aggregated, one scrape for all
  const readiness = new Readiness(
    db,
    MIGRATIONS.map((m) => m.name),
  );
  const admin = await listenAdmin(config, readiness, undefined, clusterMetrics());
  console.log(`bindcard primary: admin ${admin} (/healthz /readyz /metrics)`);
  for (let i = 0; i < config.workers; i++) cluster.fork();
  let stopping = false;
  cluster.on('exit', (worker, code) => {
    if (stopping) return;
    console.error(`bindcard: worker ${worker.id} exited (${code}); starting another`);
    cluster.fork();
  });
  const stop = () => {
    stopping = true;
    readiness.stopping = true;
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

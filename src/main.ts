import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './log.ts';
import { createHttpServer } from './http/server.ts';
import { connect, migrate } from './store/db.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(`bindcard: configuration error: ${e.message}`);
    process.exit(2);
  }
  const log = createLogger(config.logLevel);
  if (!config.databaseUrl) {
    console.error('bindcard: DATABASE_URL is not set (postgres://user@host:5432/db)');
    process.exit(2);
  }
  const db = connect(config.databaseUrl);
  await migrate(db, config.databaseUrl);
  const server = createHttpServer(await createApp({ config, db, log }));
  server.listen(config.port, '0.0.0.0');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  log.info({ port, sandbox: config.sandbox, channels: [...config.channels.keys()] },
    `bindcard listening on http://127.0.0.1:${port}` + (config.sandbox ? ` (sandbox on: GET /sandbox/sms?mobile=...)` : ''));

  const stop = async (signal: string) => {
    log.info({ signal }, 'stopping');
    server.close();
    server.closeIdleConnections();
    await db.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

main().catch((e) => {
  console.error('bindcard: failed to start:', e instanceof Error ? e.message : e);
  process.exit(1);
});

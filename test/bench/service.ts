// The service under test, started as production runs it (sandbox providers aside), and the partner channel the
// benchmark's requests come from.
import type { Vault } from '../../src/crypto/vault.ts';
import { ChannelStore } from '../../src/store/channel-store.ts';
import { connect, migrate } from '../../src/store/db.ts';
import { startListening, type Listening } from '../setup/service-process.ts';

// A partner channel as production has them (looked up in PostgreSQL, its secret decrypted), not the sandbox's DEMO,
// which is answered from memory; the sandbox stays on only for its providers and its phone.
export const CHANNEL = 'BENCH';
let secret: string | undefined;

/** Migrates the database and adds the BENCH channel, keeping its secret for signing. */
export async function prepareDatabase(dbUrl: string, vault: Vault): Promise<void> {
  const db = connect(dbUrl, 1);
  await migrate(db, dbUrl);
  secret = await new ChannelStore(db, vault, true).add(CHANNEL);
  await db.close();
}

export function channelSecret(): string {
  if (secret === undefined) throw new Error('the BENCH channel is not added yet (prepareDatabase)');
  return secret;
}

export function startService(dbUrl: string, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<Listening> {
  return startListening(
    'src/main.ts',
    {
      DATABASE_URL: dbUrl,
      PORT: '0',
      ADMIN_PORT: '0',
      NODE_ENV: 'development',
      VALIDATE_RESPONSES: 'false',
      LOG_LEVEL: 'warn',
      RATE_LIMIT_PER_SECOND: '1000000',
      PURGE_INTERVAL_MS: '0',
      ...env,
    },
    false,
    nodeArgs,
  );
}

/** The service with the SQL recorder (record-sql.ts) preloaded, appending every statement it sends to `file`. */
export function startRecordingService(dbUrl: string, file: string): Promise<Listening> {
  return startService(dbUrl, { BENCH_RECORD_SQL: file }, ['--import', new URL('./record-sql.ts', import.meta.url).href]);
}

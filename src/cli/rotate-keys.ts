// `npm run rotate-keys`: re-encrypts every value not yet under DATA_KEY_ID, in small batches, each its own transaction.
// Resumable after a crash (a row's key_id says where it stands); reads and writes go on meanwhile, since every row
// names the key it is encrypted under and DATA_KEYS keeps the old keys until this is done.
import { loadConfig } from '../config.ts';
import { vaultFor } from '../crypto/vault.ts';
import { connect, migrate } from '../store/db.ts';
import { rotateKeys } from '../store/key-rotation.ts';
import { showProgress } from './progress.ts';

const config = loadConfig();
if (!config.databaseUrl) {
  console.error('rotate-keys: DATABASE_URL is not set');
  process.exit(2);
}
const db = connect(config.databaseUrl, 1);
await migrate(db, config.databaseUrl);
const vault = vaultFor(config);
await rotateKeys(db, vault, 500, (table, done, total) => {
  showProgress(done, total, { before: `${table.padEnd(16)} ` });
  if (done === total) process.stderr.write('\n');
});
console.log(`rotate-keys: every value is now under key ${vault.keyId}`);
await db.close();

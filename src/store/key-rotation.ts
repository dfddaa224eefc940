import type { Sequelize } from 'sequelize';
import type { Vault } from '../crypto/vault.ts';

/** The encrypted columns of each table; every row names its key in key_id. */
export const ENCRYPTED: Record<string, string[]> = {
  persons: ['id_number_enc', 'name_enc'],
  cards: ['card_enc', 'mobile_enc'],
  channel_secrets: ['secret_enc'],
};

/**
 * Re-encrypts rows under the vault's active key, a batch at a time. SKIP LOCKED lets two runs share the work and
 * keeps a batch from waiting on a row a request holds.
 */
export async function rotateKeys(db: Sequelize, vault: Vault, batch: number,
  progress: (table: string, done: number, total: number) => void, maxBatches = Infinity): Promise<void> {
  let batches = 0;
  for (const [table, columns] of Object.entries(ENCRYPTED)) {
    const [[{ n }]] = await db.query(`SELECT count(*)::int AS n FROM ${table} WHERE key_id <> :k`, { replacements: { k: vault.keyId } }) as [{ n: number }[], unknown];
    let done = 0;
    progress(table, done, n);
    while (done < n && batches < maxBatches) {
      const moved = await db.transaction(async (t) => {
        const [rows] = await db.query(
          `SELECT id, key_id, ${columns.join(', ')} FROM ${table} WHERE key_id <> :k LIMIT :batch FOR UPDATE SKIP LOCKED`,
          { replacements: { k: vault.keyId, batch }, transaction: t }) as [Record<string, string>[], unknown];
        for (const row of rows) {
          const sets = columns.map((c) => `${c} = :${c}`).join(', ');
          const values = Object.fromEntries(columns.map((c) => [c, vault.encrypt(vault.decrypt(row[c], row.key_id))]));
          await db.query(`UPDATE ${table} SET ${sets}, key_id = :k WHERE id = :id`, { replacements: { ...values, k: vault.keyId, id: row.id }, transaction: t });
        }
        return rows.length;
      });
      batches++;
      if (moved === 0) break;
      done += moved;
      progress(table, done, n);
    }
  }
}

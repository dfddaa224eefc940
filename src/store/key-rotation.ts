import { Op } from 'sequelize';
import type { Vault } from '../crypto/vault.ts';
import { modelsOf, type Models } from './models.ts';
import type { Db } from './sql.ts';

/** The encrypted columns of each model; every row names its key in key_id. */
export const ENCRYPTED: { model: keyof Models; columns: string[] }[] = [
  { model: 'Person', columns: ['id_number_enc', 'name_enc'] },
  { model: 'Card', columns: ['card_enc', 'mobile_enc'] },
  { model: 'ChannelSecret', columns: ['secret_enc'] },
];

/**
 * Re-encrypts rows under the vault's active key, a batch at a time. SKIP LOCKED lets two runs share the work and
 * keeps a batch from waiting on a row a request holds.
 */
export async function rotateKeys(
  db: Db,
  vault: Vault,
  batch: number,
  progress: (table: string, done: number, total: number) => void,
  maxBatches = Infinity,
): Promise<void> {
  const models = modelsOf(db);
  let batches = 0;
  for (const { model: name, columns } of ENCRYPTED) {
    const model = models[name] as unknown as Models['ChannelSecret'];
    const stale = { key_id: { [Op.ne]: vault.keyId } };
    const total = await model.count({ where: stale });
    let done = 0;
    progress(model.tableName, done, total);
    while (done < total && batches < maxBatches) {
      const moved = await db.transaction(async (transaction) => {
        const rows = await model.findAll({ where: stale, limit: batch, lock: transaction.LOCK.UPDATE, skipLocked: true, transaction });
        for (const row of rows) {
          const record = row.get({ plain: true }) as unknown as Record<string, string>;
          const values = Object.fromEntries(columns.map((column) => [column, vault.encrypt(vault.decrypt(record[column], record.key_id))]));
          await row.update({ ...values, key_id: vault.keyId }, { transaction });
        }
        return rows.length;
      });
      batches++;
      if (moved === 0) break;
      done += moved;
      progress(model.tableName, done, total);
    }
  }
}

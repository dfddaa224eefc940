import type { QueryInterface } from 'sequelize';

// A flow's current code, encrypted (key id and ciphertext: src/crypto/vault.ts seal), so that a send not known to have
// gone (timed out, failed, or cut by a crash) is sent again with the same code under the same request number.
export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('ALTER TABLE verifications ADD COLUMN code_enc TEXT');
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('ALTER TABLE verifications DROP COLUMN code_enc');
}

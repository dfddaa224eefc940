import type { QueryInterface } from 'sequelize';

// Every update of a verification row set updated_at, which was indexed for the purge, so none could be a HOT update:
// each of a flow's five or six updates wrote a new entry into all three indexes. The purge now finds rows by
// created_at, which never changes, and checks updated_at row by row.
export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`
    DROP INDEX verifications_updated;
    CREATE INDEX verifications_created ON verifications (created_at);
  `);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`
    DROP INDEX verifications_created;
    CREATE INDEX verifications_updated ON verifications (updated_at);
  `);
}

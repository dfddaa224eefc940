import type { QueryInterface } from 'sequelize';

// Rate counters spread over slots: one hot row per channel and second serialised every request behind one lock.
export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`
    DELETE FROM rate_counters;
    ALTER TABLE rate_counters ADD COLUMN slot SMALLINT NOT NULL DEFAULT 0;
    ALTER TABLE rate_counters DROP CONSTRAINT rate_counters_pkey;
    ALTER TABLE rate_counters ADD PRIMARY KEY (channel, window_start, slot);
  `);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`
    DELETE FROM rate_counters;
    ALTER TABLE rate_counters DROP CONSTRAINT rate_counters_pkey;
    ALTER TABLE rate_counters DROP COLUMN slot;
    ALTER TABLE rate_counters ADD PRIMARY KEY (channel, window_start);
  `);
}

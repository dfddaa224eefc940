import type { QueryInterface } from 'sequelize';

// Indexes the housekeeping job walks by age, so its small batches stay cheap as tables grow.
export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`
    CREATE INDEX verifications_updated ON verifications (updated_at);
    CREATE INDEX sms_sends_sent ON sms_sends (sent_at);
    CREATE INDEX sandbox_sms_sent ON sandbox_sms (sent_at);
    CREATE INDEX rate_counters_window ON rate_counters (window_start);
  `);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP INDEX verifications_updated, sms_sends_sent, sandbox_sms_sent, rate_counters_window');
}

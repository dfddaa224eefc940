// The verification row as the new-card flow reads it; migrations/ own the schema. The service talks to PostgreSQL
// with plain SQL on Sequelize's pool and transactions (src/store/sql.ts): its model layer cost about a fifth of the
// new-card first call's latency (benchmark notes in the README).

export interface Verification {
  id: string;
  channel: string;
  user_id: string;
  card_hash: string;
  details_hash: string;
  id_number_hash: string;
  mobile_hash: string;
  generation: number;
  auth_status: 'APPROVED' | 'REJECTED' | null;
  code_seq: number;
  code_hash: string | null;
  code_expires_at: Date | null;
  code_sent_at: Date | null;
  code_attempts: number;
  code_tried: string[];
  code_verified_at: Date | null;
  bound_card_id: string | null;
  busy_until: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** Its columns, named: a prepared statement's result must not change shape when a migration adds a column. */
export const VERIFICATION = `id, channel, user_id, card_hash, details_hash, id_number_hash, mobile_hash, generation, auth_status,
  code_seq, code_hash, code_expires_at, code_sent_at, code_attempts, code_tried, code_verified_at, bound_card_id, busy_until,
  created_at, updated_at`;

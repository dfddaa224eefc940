import type { FlowKey, Owner, Tx, Verification, VerificationChanges, VerificationStore } from '../domain/stores.ts';
import { ownerFrom, ownerSql, VERIFICATION_COLUMNS as COLUMNS, type OwnerRow } from './binding-store.ts';
import { execute, sql, type Db } from './sql.ts';

/** The verifications table (one row per new-card flow), and the SMS send a new code records beside it. */
export class PgVerificationStore implements VerificationStore {
  constructor(private readonly db: Db) {}

  async openForFirstCall(tx: Tx, key: FlowKey, now: Date): Promise<{ flow: Verification; owner: Owner | undefined }> {
    // The no-op update on conflict takes the row lock and returns the row as it is.
    const [row] = await sql<Verification & { owner: OwnerRow | null }>(
      this.db,
      tx,
      `WITH v AS (
        INSERT INTO verifications (channel, user_id, card_hash, details_hash, id_number_hash, mobile_hash, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (channel, user_id, card_hash) DO UPDATE SET channel = EXCLUDED.channel
        RETURNING ${COLUMNS})
      SELECT v.*, row_to_json(o) AS owner FROM v LEFT JOIN (${ownerSql({ channel: '$1', userId: '$2', cardHash: '$3', idHash: '$5' })}) o ON true`,
      [key.channel, key.userId, key.cardHash, key.detailsHash, key.idHash, key.mobileHash, now],
    );
    const { owner, ...flow } = row;
    return { flow, owner: ownerFrom(owner) };
  }

  async lockForConfirmation(tx: Tx, key: FlowKey): Promise<Verification | undefined> {
    const [row] = await sql<Verification>(
      this.db,
      tx,
      `SELECT ${COLUMNS} FROM verifications WHERE channel = $1 AND user_id = $2 AND card_hash = $3 FOR UPDATE`,
      [key.channel, key.userId, key.cardHash],
    );
    return row;
  }

  async update(tx: Tx, flow: Verification, changes: VerificationChanges, now: Date): Promise<Verification> {
    const [statement, values] = this.updateStatement(flow, changes, now);
    await sql(this.db, tx, statement, values);
    return { ...flow, ...changes, updated_at: now };
  }

  async issueCode(tx: Tx, flow: Verification, changes: VerificationChanges, now: Date): Promise<Verification> {
    // One statement: the row's new code, and the send that the SMS limits count.
    const [update, values] = this.updateStatement(flow, changes, now);
    const at = values.length + 1;
    await sql(
      this.db,
      tx,
      `WITH send AS (INSERT INTO sms_sends (mobile_hash, card_hash, sent_at) VALUES ($${at}, $${at + 1}, $${at + 2})) ${update}`,
      [...values, flow.mobile_hash, flow.card_hash, now],
    );
    return { ...flow, ...changes, updated_at: now };
  }

  async startReview(tx: Tx, flow: Verification, leaseUntil: Date, now: Date): Promise<Verification> {
    // One statement: the lease for the call, and the review that the daily limits count.
    const [update, values] = this.updateStatement(flow, { busy_until: leaseUntil }, now);
    const at = values.length + 1;
    await sql(
      this.db,
      tx,
      `WITH review AS (INSERT INTO auth_reviews (card_hash, id_number_hash, mobile_hash, at) VALUES ($${at}, $${at + 1}, $${at + 2}, $${at + 3})) ${update}`,
      [...values, flow.card_hash, flow.id_number_hash, flow.mobile_hash, now],
    );
    return { ...flow, busy_until: leaseUntil, updated_at: now };
  }

  async releaseLease(flow: Verification): Promise<void> {
    // only the lease this request took: another may have taken the row over since
    await sql(this.db, undefined, 'UPDATE verifications SET busy_until = NULL WHERE id = $1 AND busy_until = $2', [
      flow.id,
      flow.busy_until,
    ]);
  }

  /** UPDATE of the given columns (names from the domain's VerificationChanges, values bound) and updated_at. */
  private updateStatement(flow: Verification, changes: VerificationChanges, now: Date): [string, unknown[]] {
    const columns = Object.keys(changes);
    const assignments = columns.map((column, i) => `${column} = $${i + 2}`).join(', ');
    return [
      `UPDATE verifications SET ${assignments}, updated_at = $${columns.length + 2} WHERE id = $1`,
      [flow.id, ...Object.values(changes), now],
    ];
  }

  async markCodeSent(flow: Verification, now: Date): Promise<boolean> {
    const changed = await execute(
      this.db,
      undefined,
      // sent: its sealed copy is needed no more (only an unsent code is sent again)
      'UPDATE verifications SET busy_until = NULL, code_sent_at = $1, code_enc = NULL, updated_at = $1 WHERE id = $2 AND generation = $3 AND code_seq = $4',
      [now, flow.id, flow.generation, flow.code_seq],
    );
    return changed === 1;
  }

  async rememberNotifyUrl(tx: Tx, key: FlowKey, url: string): Promise<void> {
    await sql(this.db, tx, 'UPDATE verifications SET notify_url = $4 WHERE channel = $1 AND user_id = $2 AND card_hash = $3', [
      key.channel,
      key.userId,
      key.cardHash,
      url,
    ]);
  }

  async notifyUrlOf(tx: Tx, key: FlowKey): Promise<string | null> {
    const [row] = await sql<{ notify_url: string | null }>(
      this.db,
      tx,
      'SELECT notify_url FROM verifications WHERE channel = $1 AND user_id = $2 AND card_hash = $3',
      [key.channel, key.userId, key.cardHash],
    );
    return row?.notify_url ?? null;
  }

  async generationOf(id: string): Promise<number | undefined> {
    const [row] = await sql<{ generation: number }>(this.db, undefined, 'SELECT generation FROM verifications WHERE id = $1', [id]);
    return row?.generation;
  }

  async endLease(tx: Tx, flow: Verification, review: 'APPROVED' | 'REJECTED' | null, now: Date): Promise<Verification | undefined> {
    const [row] = await sql<Verification>(
      this.db,
      tx,
      `UPDATE verifications SET busy_until = NULL, auth_status = coalesce($3, auth_status), updated_at = $4
      WHERE id = $1 AND generation = $2 RETURNING ${COLUMNS}`,
      [flow.id, flow.generation, review, now],
    );
    return row;
  }
}

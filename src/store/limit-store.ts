import type { FlowKey, LimitCounts, LimitStore, Owner, Tx } from '../domain/stores.ts';
import { ownerFrom, ownerSql, probeLock, type OwnerRow } from './binding-store.ts';
import { sql, type Db } from './sql.ts';

const HOUR = 3600_000;

/**
 * Reads of sms_sends (every SMS attempt) and auth_reviews (every card-authentication call) for the rolling limits. Their
 * rows are written with the flow's row, in the same statement (verification-store: issueCode, startReview).
 */
export class PgLimitStore implements LimitStore {
  constructor(private readonly db: Db) {}

  async lockMobileAndCount(tx: Tx, key: FlowKey, now: Date): Promise<{ owner: Owner | undefined; counts: LimitCounts }> {
    // the card's probe lock before the mobile's: the order every path takes them in
    await sql(this.db, tx, 'SELECT pg_advisory_xact_lock(hashtext($1)), pg_advisory_xact_lock(hashtext($2))', [
      probeLock(key.cardHash),
      key.mobileHash,
    ]);
    // Each count is one range on its index: (mobile_hash, sent_at), (card_hash, sent_at), (…_hash, at).
    const [row] = await sql<LimitCounts & { owner: OwnerRow | null }>(
      this.db,
      tx,
      `SELECT row_to_json(o) AS owner,
              (SELECT count(*) FROM sms_sends WHERE mobile_hash = $5 AND sent_at > $6)::int AS "smsMobileHour",
              (SELECT count(*) FROM sms_sends WHERE mobile_hash = $5 AND sent_at > $7)::int AS "smsMobileDay",
              (SELECT count(*) FROM sms_sends WHERE card_hash = $3 AND sent_at > $6)::int AS "smsCardHour",
              (SELECT count(*) FROM auth_reviews WHERE card_hash = $3 AND at > $7)::int AS "reviewsCardDay",
              (SELECT count(*) FROM auth_reviews WHERE id_number_hash = $4 AND at > $7)::int AS "reviewsIdDay",
              (SELECT count(*) FROM auth_reviews WHERE mobile_hash = $5 AND at > $7)::int AS "reviewsMobileDay"
         FROM (SELECT) one LEFT JOIN (${ownerSql({ channel: '$1', userId: '$2', cardHash: '$3', idHash: '$4' })}) o ON true`,
      [
        key.channel,
        key.userId,
        key.cardHash,
        key.idHash,
        key.mobileHash,
        new Date(now.getTime() - HOUR),
        new Date(now.getTime() - 24 * HOUR),
      ],
    );
    const { owner, ...counts } = row;
    return { owner: ownerFrom(owner), counts };
  }
}

import type { FlowKey, Owner, SmsCounts, SmsSendStore, Tx } from '../domain/stores.ts';
import { ownerFrom, ownerSql, type OwnerRow } from './binding-store.ts';
import { sql, type Db } from './sql.ts';

const HOUR = 3600_000;

/** The sms_sends table: every SMS attempt, for the rolling limits per mobile and per card. Rows are added by issueCode. */
export class PgSmsSendStore implements SmsSendStore {
  constructor(private readonly db: Db) {}

  async lockMobileForSms(tx: Tx, key: FlowKey, now: Date): Promise<{ owner: Owner | undefined; counts: SmsCounts }> {
    await sql(this.db, tx, 'SELECT pg_advisory_xact_lock(hashtext($1))', [key.mobileHash]);
    // Each count is one range on its index, (mobile_hash, sent_at) or (card_hash, sent_at).
    const [row] = await sql<SmsCounts & { owner: OwnerRow | null }>(
      this.db,
      tx,
      `SELECT row_to_json(o) AS owner,
              (SELECT count(*) FROM sms_sends WHERE mobile_hash = $5 AND sent_at > $6)::int AS "mobileHour",
              (SELECT count(*) FROM sms_sends WHERE mobile_hash = $5 AND sent_at > $7)::int AS "mobileDay",
              (SELECT count(*) FROM sms_sends WHERE card_hash = $3 AND sent_at > $6)::int AS "cardHour"
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

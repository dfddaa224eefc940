import { modelsOf } from './models.ts';
import { sql, type Db } from './sql.ts';

export interface SandboxMessage {
  code: string;
  text: string;
  sent_at: Date;
}

/** The sandbox's state, in PostgreSQL so that two instances act as one: its phone (sandbox_sms) and its slow cards. */
export class SandboxStore {
  constructor(private readonly db: Db) {}

  /** True the first time a card is seen by the slow card rule. */
  async firstSeenSlowCard(cardHash: string): Promise<boolean> {
    // (a model's bulkCreate with ignoreDuplicates returns the row whether or not it was inserted)
    const inserted = await sql(
      this.db,
      undefined,
      'INSERT INTO sandbox_slow_cards (card_hash) VALUES ($1) ON CONFLICT DO NOTHING RETURNING card_hash',
      [cardHash],
    );
    return inserted.length > 0;
  }

  /** A text on the sandbox phone; a retried send (same request number) is kept once. */
  async keepSms(requestNo: string, mobileHash: string, code: string, text: string, sentAt: Date): Promise<void> {
    // on the new-card flow's path (the sandbox serves the benchmark's SMS): one prepared statement
    await sql(
      this.db,
      undefined,
      `INSERT INTO sandbox_sms (request_no, mobile_hash, code, text, sent_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (request_no) DO NOTHING`,
      [requestNo, mobileHash, code, text, sentAt],
    );
  }

  /** The newest 50 texts to a mobile. */
  async inbox(mobileHash: string): Promise<SandboxMessage[]> {
    const rows = await modelsOf(this.db).SandboxSms.findAll({
      attributes: ['code', 'text', 'sent_at'],
      where: { mobile_hash: mobileHash },
      order: [
        ['sent_at', 'DESC'],
        ['id', 'DESC'],
      ],
      limit: 50,
    });
    return rows.map((row) => row.get({ plain: true }));
  }
}

import { modelsOf, type SandboxCallbackRow } from './models.ts';
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

  /** A delivery try of a callback, as the sandbox shows it at GET /sandbox/callbacks. */
  async keepCallback(t: {
    id: string;
    channel: string;
    type: string;
    url: string;
    body: string;
    attempt: number;
    at: Date;
    headers: Record<string, string>;
    result: { status: number | null; body: string | null; error: string | null };
  }): Promise<void> {
    await sql(
      this.db,
      undefined,
      `INSERT INTO sandbox_callbacks (channel, event_id, type, attempt, url, at, request_headers, request_body, response_status, response_body, error)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [t.channel, t.id, t.type, t.attempt, t.url, t.at, JSON.stringify(t.headers), t.body, t.result.status, t.result.body, t.result.error],
    );
  }

  /** The channel's newest 50 callback tries. */
  async callbacks(channel: string): Promise<SandboxCallback[]> {
    return sql<SandboxCallback>(
      this.db,
      undefined,
      `SELECT event_id, type, attempt, url, at, request_headers, request_body, response_status, response_body, error
        FROM sandbox_callbacks WHERE channel = $1 ORDER BY at DESC, id DESC LIMIT 50`,
      [channel],
    );
  }
}

/** A callback try as GET /sandbox/callbacks shows it: its row without the row's id and channel. */
export type SandboxCallback = Omit<SandboxCallbackRow, 'id' | 'channel'>;

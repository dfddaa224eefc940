import { sql, execute, type Db } from './sql.ts';

/** An event being delivered: claimed by one worker for one try. */
export interface Claimed {
  id: string;
  channel: string;
  type: string;
  url: string;
  body: string;
  /** which try this is, from 1 */
  attempts: number;
}

export interface OutboxRow extends Claimed {
  status: 'PENDING' | 'DELIVERED' | 'DEAD';
  next_at: Date;
  last_status: number | null;
  last_error: string | null;
  created_at: Date;
  done_at: Date | null;
}

/**
 * callback_events, the delivering side. A worker claims due rows with FOR UPDATE SKIP LOCKED, and the claim itself
 * moves them out of reach (next_at to the end of the try's lease) and counts the try, so no transaction spans the
 * POST, two workers never make the same try, and a try cut short by a crash is made again after the lease.
 */
export class OutboxStore {
  constructor(private readonly db: Db) {}

  async claim(now: Date, leaseUntil: Date, limit: number): Promise<Claimed[]> {
    return sql<Claimed>(
      this.db,
      undefined,
      `UPDATE callback_events SET attempts = attempts + 1, next_at = $2
      WHERE id IN (SELECT id FROM callback_events WHERE status = 'PENDING' AND next_at <= $1
                   ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED)
      RETURNING id, channel, type, url, body, attempts`,
      [now, leaseUntil, limit],
    );
  }

  /**
   * Records a try's outcome, if the try is still the event's latest: delivered, due again at `retryAt`, or dead
   * (retryAt null). False when the row moved on meanwhile (replayed by an operator).
   */
  async record(
    event: Claimed,
    outcome: { delivered: boolean; status: number | null; error: string | null; retryAt: Date | null },
    now: Date,
  ): Promise<boolean> {
    const status = outcome.delivered ? 'DELIVERED' : outcome.retryAt ? 'PENDING' : 'DEAD';
    const changed = await execute(
      this.db,
      undefined,
      `UPDATE callback_events SET status = $3, last_status = $4, last_error = $5, next_at = coalesce($6, next_at),
          done_at = CASE WHEN $3 = 'PENDING' THEN NULL ELSE $7::timestamptz END
      WHERE id = $1 AND attempts = $2 AND status = 'PENDING'`,
      [event.id, event.attempts, status, outcome.status, outcome.error, outcome.retryAt, now],
    );
    return changed === 1;
  }

  /** Events, newest first: the pending ones, or the dead letters; of one channel or all. */
  async list(filter: { dead: boolean; channel?: string; limit?: number }): Promise<OutboxRow[]> {
    return sql<OutboxRow>(
      this.db,
      undefined,
      `SELECT id, channel, type, url, body, attempts, status, next_at, last_status, last_error, created_at, done_at
        FROM callback_events WHERE ($1::text IS NULL OR channel = $1) AND status = $2
        ORDER BY created_at DESC LIMIT $3`,
      [filter.channel ?? null, filter.dead ? 'DEAD' : 'PENDING', filter.limit ?? 100],
    );
  }

  /** Delivers events again from the first try of the schedule: one by id, or a channel's since a time. */
  async replay(which: { id: string } | { channel: string; since: Date }, now: Date): Promise<number> {
    const where = 'id' in which ? 'id = $2' : 'channel = $2 AND created_at >= $3';
    const values = 'id' in which ? [now, which.id] : [now, which.channel, which.since];
    return execute(
      this.db,
      undefined,
      `UPDATE callback_events SET status = 'PENDING', attempts = 0, next_at = $1, done_at = NULL, last_error = NULL WHERE ${where}`,
      values,
    );
  }

  /** Outbox depth and the age of the oldest due event, for an operator's eye. */
  async depth(now: Date): Promise<{ pending: number; dead: number; oldestDueSeconds: number }> {
    const [row] = await sql<{ pending: number; dead: number; oldest: Date | null }>(
      this.db,
      undefined,
      `SELECT count(*) FILTER (WHERE status = 'PENDING')::int AS pending, count(*) FILTER (WHERE status = 'DEAD')::int AS dead,
          min(next_at) FILTER (WHERE status = 'PENDING' AND next_at <= $1) AS oldest FROM callback_events`,
      [now],
    );
    return { pending: row.pending, dead: row.dead, oldestDueSeconds: row.oldest ? (now.getTime() - row.oldest.getTime()) / 1000 : 0 };
  }
}

import { poll } from '../lib/poll.ts';
import { sql, type Db } from './sql.ts';

/** How many rows one channel's count per second is spread over, so concurrent requests do not queue on one row lock. */
const RATE_SLOTS = 16;
const POLL_MS = 25;

/** An answer kept with its nonce, as the exact bytes it was sent as. */
export interface StoredAnswer {
  status: number;
  text: string;
}

export type Claim = { fresh: true; overRate: boolean } | { replay: true } | { answer: StoredAnswer };

/**
 * nonces and rate_counters: replay protection and the channel's request rate, in PostgreSQL so the rules hold across
 * instances. A nonce seen before with the same signature is the partner retrying the very same bytes: it gets the
 * first answer again (waiting for it while the first still runs), or, when that answer was transient, the request is
 * processed afresh. With another signature it is a replay.
 */
export class NonceStore {
  constructor(private readonly db: Db) {}

  /**
   * Claims the nonce (or re-claims one whose answer was transient) and counts the request against the channel's rate,
   * in one statement. `overRate` is acted on only after the request has passed validation (429 comes last). Past the
   * deadline, waiting for the first request's answer gives up and the request runs (the business rules' own
   * idempotency then holds).
   */
  async claim(channel: string, nonce: string, signature: string, deadline: number, perSecond: number): Promise<Claim> {
    const [row] = await sql<{ claimed: number; used: number }>(
      this.db,
      undefined,
      `WITH claim AS (
         INSERT INTO nonces (channel, nonce, signature, created_at) VALUES ($1, $2, $3, now())
         ON CONFLICT (channel, nonce) DO UPDATE SET retryable = false
           WHERE nonces.retryable AND nonces.signature = EXCLUDED.signature
         RETURNING 1
       ), counted AS (  -- runs although unreferenced: PostgreSQL always executes data-modifying CTEs
         INSERT INTO rate_counters (channel, window_start, slot, count) VALUES ($1, date_trunc('second', now()), $4, 1)
         ON CONFLICT (channel, window_start, slot) DO UPDATE SET count = rate_counters.count + 1 RETURNING count
       )
       -- the statement's snapshot does not see its own increment: hence + 1
       SELECT (SELECT count(*) FROM claim)::int AS claimed,
              ((SELECT coalesce(sum(count), 0) FROM rate_counters
                 WHERE channel = $1 AND window_start = date_trunc('second', now())) + 1)::int AS used`,
      [channel, nonce, signature, Math.floor(Math.random() * RATE_SLOTS)],
    );
    const overRate = row.used > perSecond;
    if (row.claimed === 1) return { fresh: true, overRate };
    const seen = await poll(
      async (): Promise<Claim | undefined> => {
        // the answer as the previous release stored it (jsonb), while such rows are still within their window
        const [first] = await sql<{ signature: string; status: number | null; text: string | null; retryable: boolean }>(
          this.db,
          undefined,
          'SELECT signature, status, coalesce(response_text, response::text) AS text, retryable FROM nonces WHERE channel = $1 AND nonce = $2',
          [channel, nonce],
        );
        if (!first) return { fresh: true, overRate }; // purged meanwhile: long outside its signature window
        if (first.signature !== signature) return { replay: true };
        if (first.retryable && (await this.reclaim(channel, nonce))) return { fresh: true, overRate };
        return first.status === null || first.text === null ? undefined : { answer: { status: first.status, text: first.text } };
      },
      { intervalMs: POLL_MS, deadline },
    );
    return seen ?? { fresh: true, overRate };
  }

  /** Takes a nonce whose answer turned out transient while this request waited for it. */
  private async reclaim(channel: string, nonce: string): Promise<boolean> {
    const taken = await sql(
      this.db,
      undefined,
      'UPDATE nonces SET retryable = false WHERE channel = $1 AND nonce = $2 AND retryable RETURNING 1',
      [channel, nonce],
    );
    return taken.length === 1;
  }

  /** Keeps the answer, so the same signed bytes get it again. */
  async record(channel: string, nonce: string, answer: StoredAnswer): Promise<void> {
    await sql(this.db, undefined, 'UPDATE nonces SET status = $1, response_text = $2 WHERE channel = $3 AND nonce = $4', [
      answer.status,
      answer.text,
      channel,
      nonce,
    ]);
  }

  /** The answer was transient: the nonce stays taken for this signature, and the same bytes are processed afresh. */
  async release(channel: string, nonce: string): Promise<void> {
    await sql(this.db, undefined, 'UPDATE nonces SET retryable = true WHERE channel = $1 AND nonce = $2', [channel, nonce]);
  }
}

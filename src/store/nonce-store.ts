import { poll } from '../lib/poll.ts';
import { sql, type Db } from './sql.ts';

/** How many rows one channel's count per second is spread over, so concurrent requests do not queue on one row lock. */
const RATE_SLOTS = 16;
const POLL_MS = 25;

/** An answer kept with its nonce. */
export interface StoredAnswer {
  status: number;
  body: Record<string, unknown>;
}

export type Claim = { fresh: true; overRate: boolean } | { replay: true } | { answer: StoredAnswer };

/**
 * nonces and rate_counters: replay protection and the channel's request rate, in PostgreSQL so the rules hold across
 * instances. A nonce seen before with the same signature is the partner retrying the very same bytes: it gets the
 * first answer again (waiting for it while the first still runs). With another signature it is a replay.
 */
export class NonceStore {
  constructor(private readonly db: Db) {}

  /**
   * Claims the nonce and counts the request against the channel's rate in one statement (one commit). `overRate` is
   * acted on only after the request has passed validation (429 comes last). Past the deadline, waiting for the first
   * request's answer gives up and the request runs (the business rules' own idempotency then holds).
   */
  async claim(channel: string, nonce: string, signature: string, deadline: number, perSecond: number): Promise<Claim> {
    const [row] = await sql<{ claimed: number; used: number }>(
      this.db,
      undefined,
      `WITH claim AS (
         INSERT INTO nonces (channel, nonce, signature, created_at) VALUES ($1, $2, $3, now())
         ON CONFLICT DO NOTHING RETURNING 1
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
    if (row.claimed === 1) return { fresh: true, overRate: row.used > perSecond };
    const seen = await poll(
      async (): Promise<Claim | undefined> => {
        const [first] = await sql<{ signature: string; status: number | null; response: StoredAnswer['body'] | null }>(
          this.db,
          undefined,
          'SELECT signature, status, response FROM nonces WHERE channel = $1 AND nonce = $2',
          [channel, nonce],
        );
        if (first.signature !== signature) return { replay: true };
        return first.status === null ? undefined : { answer: { status: first.status, body: first.response! } };
      },
      { intervalMs: POLL_MS, deadline },
    );
    return seen ?? { fresh: true, overRate: false };
  }

  async record(channel: string, nonce: string, answer: StoredAnswer): Promise<void> {
    await sql(this.db, undefined, 'UPDATE nonces SET status = $1, response = $2 WHERE channel = $3 AND nonce = $4', [
      answer.status,
      JSON.stringify(answer.body),
      channel,
      nonce,
    ]);
  }
}

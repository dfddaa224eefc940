import type { Sequelize } from 'sequelize';
import type { Logger } from '../log.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * What expires, and after how long: past it no rule reads the row any more. The condition's first column is indexed;
 * :cutoff is now minus the time.
 */
export const EXPIRY: [table: string, expired: string, afterMs: number][] = [
  ['nonces', 'created_at < :cutoff', 15 * MINUTE], // the signature window is ±5 min
  ['rate_counters', 'window_start < :cutoff', 2 * MINUTE],
  // codes live 5 min; a bound card answers retries from bindings; queryBinding tells of an expired code for 7 days.
  // Found by created_at, which no update changes (an index on updated_at would rule out HOT updates), and kept while
  // the flow was touched within the time.
  ['verifications', 'created_at < :cutoff AND updated_at < :cutoff', 8 * DAY],
  ['binding_failures', 'at < :cutoff', 8 * DAY], // queryBinding tells of a refusal for at least 7 days
  // delivered and dead events are kept 30 days (pending ones until they are one or the other)
  ['callback_events', "status <> 'PENDING' AND done_at < :cutoff", 30 * DAY],
  ['sandbox_callbacks', 'at < :cutoff', 25 * HOUR],
  ['sms_sends', 'sent_at < :cutoff', 25 * HOUR], // the longest SMS limit is a rolling day
  ['sandbox_sms', 'sent_at < :cutoff', 25 * HOUR],
  ['auth_reviews', 'at < :cutoff', 25 * HOUR], // the card-review limits are a rolling day
  ['ownership_probes', 'at < :cutoff', 25 * HOUR], // so is the ID-number probe count
];

/**
 * Deletes expired rows in small batches, each its own short statement; SKIP LOCKED steps around rows a request holds,
 * so the job never waits on traffic nor makes traffic wait. Returns how many rows went, by table.
 */
export async function purgeExpired(db: Sequelize, now: Date, batch = 1000): Promise<Record<string, number>> {
  const gone: Record<string, number> = {};
  for (const [table, expired, afterMs] of EXPIRY) {
    gone[table] = 0;
    for (;;) {
      const [, meta] = (await db.query(
        `DELETE FROM ${table} WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM ${table} WHERE ${expired} LIMIT :batch FOR UPDATE SKIP LOCKED))`,
        { replacements: { cutoff: new Date(now.getTime() - afterMs), batch } },
      )) as [unknown, { rowCount: number }];
      gone[table] += meta.rowCount;
      if (meta.rowCount < batch) break;
    }
  }
  return gone;
}

/** Runs purgeExpired every intervalMs (0: never); returns a stop function. */
export function startHousekeeping(db: Sequelize, log: Logger, intervalMs: number, now: () => Date): () => Promise<void> {
  if (intervalMs <= 0) return async () => {};
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = purgeExpired(db, now())
      .then((gone) => {
        if (Object.values(gone).some((n) => n > 0)) log.info({ gone }, 'housekeeping purged expired rows');
      })
      .catch((err) => log.warn({ err }, 'housekeeping failed; will retry'));
  }, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

import type { AuditEvent, AuditStore } from '../domain/stores.ts';
import { sql, type Db } from './sql.ts';

/**
 * audit_events: append-only, masked values only. Its append is the request's durability point: the service's pools
 * commit asynchronously (a commit returns before its WAL reaches the disk), and this one statement commits
 * synchronously whatever its session's mode. WAL reaches the disk in order, so when it returns, every commit the
 * request made or read before it is on disk too: one WAL flush per answer, and no answer that a crash could take back.
 */
export class PgAuditStore implements AuditStore {
  constructor(private readonly db: Db) {}

  async appendDurably(event: AuditEvent): Promise<void> {
    await sql(
      this.db,
      undefined,
      `INSERT INTO audit_events (at, channel, user_id, event, card_masked, card_id, result_code, sub_code)
       SELECT $1::timestamptz, $2::text, $3::text, $4::text, $5::text, $6::text, $7::int, $8::text
         FROM (SELECT set_config('synchronous_commit', 'on', true)) durable`,
      [event.at, event.channel, event.userId, event.event, event.cardMasked, event.cardId, event.resultCode, event.subCode],
    );
  }
}

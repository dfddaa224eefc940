import { randomBytes } from 'node:crypto';
import type { EventStore, LifecycleEvent, Tx } from '../domain/stores.ts';
import { sql, type Db } from './sql.ts';

/** The outbox's writing side: callback_events rows, due at once. The delivering side: outbox-store.ts, src/callbacks/worker.ts. */
export class PgEventStore implements EventStore {
  constructor(private readonly db: Db) {}

  async emit(tx: Tx, event: LifecycleEvent, url: string | null): Promise<void> {
    if (url === null) return;
    const id = 'evt_' + randomBytes(10).toString('hex');
    const body = JSON.stringify({
      id,
      type: event.type,
      created: event.created.toISOString(),
      channel: event.channel,
      user_id: event.userId,
      data: event.data,
    });
    // the same event again (a retry, another instance) keeps the first
    await sql(
      this.db,
      tx,
      `INSERT INTO callback_events (id, key, channel, type, url, body, next_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
      ON CONFLICT (key) DO NOTHING`,
      [id, event.key, event.channel, event.type, url, body, event.created],
    );
  }
}

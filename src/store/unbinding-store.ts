import type { BoundCard, Tx, Unbinding, UnbindingStore, UnbindOpening } from '../domain/stores.ts';
import { cardPreference } from './binding-store.ts';
import { sql, type Db } from './sql.ts';

const COLUMNS = 'id, channel, user_id, card_id, cycle, agreement_no, busy_until, unbound_at';

/** unbindings: the latest unbinding of each (channel, user, card), and the leases it takes while ending an agreement. */
export class PgUnbindingStore implements UnbindingStore {
  constructor(private readonly db: Db) {}

  async cardIdOf(channel: string, userId: string, ref: { cardId: string } | { cardHash: string }): Promise<string | undefined> {
    const byId = 'cardId' in ref;
    const [row] = await sql<{ id: string }>(
      this.db,
      undefined,
      `SELECT id FROM cards c WHERE ${byId ? 'id' : 'card_hash'} = $1 ORDER BY ${cardPreference('$2', '$3')} LIMIT 1`,
      [byId ? ref.cardId : ref.cardHash, channel, userId],
    );
    return row?.id;
  }

  async open(tx: Tx, channel: string, userId: string, cardId: string, now: Date, leaseUntil: Date): Promise<UnbindOpening> {
    // The binding and its card, locked: a binding of the card made meanwhile (which locks the card's row) waits.
    const [binding] = await sql<BoundCard & { binding_id: string; agreement_no: string | null }>(
      this.db,
      tx,
      `SELECT b.id AS binding_id, c.id, c.masked, c.open_bank, c.bank_card_type, c.agreement_no
        FROM bindings b JOIN cards c ON c.id = b.card_id WHERE b.channel = $1 AND b.user_id = $2 AND b.card_id = $3
        FOR UPDATE OF b, c`,
      [channel, userId, cardId],
    );
    if (!binding) {
      const [done] = await sql<Unbinding & BoundCard>(
        this.db,
        tx,
        `SELECT u.id, u.channel, u.user_id, u.card_id, u.cycle, u.agreement_no, u.busy_until, u.unbound_at,
            c.masked, c.open_bank, c.bank_card_type
          FROM unbindings u JOIN cards c ON c.id = u.card_id
          WHERE u.channel = $1 AND u.user_id = $2 AND u.card_id = $3 AND u.unbound_at IS NOT NULL`,
        [channel, userId, cardId],
      );
      if (!done) return { state: 'none' };
      const { masked, open_bank, bank_card_type, ...unbinding } = done;
      return { state: 'unbound', unbinding, card: { id: cardId, masked, open_bank, bank_card_type } };
    }
    const { binding_id: bindingId, agreement_no: agreementNo, ...card } = binding;
    const [row] = await sql<Unbinding>(
      this.db,
      tx,
      `INSERT INTO unbindings (channel, user_id, card_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
      ON CONFLICT (channel, user_id, card_id) DO UPDATE SET channel = EXCLUDED.channel RETURNING ${COLUMNS}`,
      [channel, userId, cardId, now],
    );
    if (row.busy_until && row.busy_until > now && !row.unbound_at) return { state: 'busy' };
    const [others] = await sql(this.db, tx, 'SELECT 1 FROM bindings WHERE card_id = $1 AND id <> $2 LIMIT 1', [cardId, bindingId]);
    // An earlier try that set out to end an agreement (its call failed or timed out) goes on ending that one: it may
    // have ended already, and a binding made meanwhile signed anew. Otherwise the last binding ends the card's.
    const unfinished = !row.unbound_at && row.agreement_no !== null ? row.agreement_no : null;
    const agreement = unfinished ?? (!others ? agreementNo : null);
    // A binding unbound before and bound again starts a new cycle (a new gateway request number).
    const cycle = row.unbound_at ? row.cycle + 1 : row.cycle;
    const [unbinding] = await sql<Unbinding>(
      this.db,
      tx,
      `UPDATE unbindings SET cycle = $2, agreement_no = $3, busy_until = $4, unbound_at = NULL, updated_at = $5
      WHERE id = $1 RETURNING ${COLUMNS}`,
      [row.id, cycle, agreement, leaseUntil, now],
    );
    return { state: 'open', unbinding, card };
  }

  async finish(tx: Tx, unbinding: Unbinding, now: Date): Promise<{ unbound_at: Date; notifyUrl: string | null } | 'again' | undefined> {
    // The binding's row, then the card's, as open() takes them (one order, no deadlock with a request waiting there).
    // Every finish of the card's unbindings (and every binding of it) is serialised on the card's row, so the last of
    // several concurrent unbindings sees that it is the last. The locks are statements of their own: a statement that
    // waits for a lock still reads with the snapshot it began with, so the bindings are read by the next one.
    await sql(this.db, tx, 'SELECT 1 FROM bindings WHERE channel = $1 AND user_id = $2 AND card_id = $3 FOR UPDATE', [
      unbinding.channel,
      unbinding.user_id,
      unbinding.card_id,
    ]);
    await sql(this.db, tx, 'SELECT 1 FROM cards WHERE id = $1 FOR UPDATE', [unbinding.card_id]);
    const [card] = await sql<{ agreement_no: string | null; others: boolean }>(
      this.db,
      tx,
      `SELECT c.agreement_no, EXISTS (SELECT 1 FROM bindings b WHERE b.card_id = c.id AND NOT (b.channel = $2 AND b.user_id = $3)) AS others
        FROM cards c WHERE c.id = $1`,
      [unbinding.card_id, unbinding.channel, unbinding.user_id],
    );
    const last = card && !card.others && card.agreement_no !== null && unbinding.agreement_no === null;
    // 'again': give the lease back and leave the binding; the next look finds it the card's last
    const [mine] = last
      ? await sql(
          this.db,
          tx,
          'UPDATE unbindings SET busy_until = NULL WHERE id = $1 AND busy_until = $2 AND unbound_at IS NULL RETURNING id',
          [unbinding.id, unbinding.busy_until],
        )
      : await sql(
          this.db,
          tx,
          `UPDATE unbindings SET busy_until = NULL, unbound_at = $3, updated_at = $3
          WHERE id = $1 AND busy_until = $2 AND unbound_at IS NULL RETURNING id`,
          [unbinding.id, unbinding.busy_until, now],
        );
    if (!mine) return undefined;
    if (last) return 'again';
    const [binding] = await sql<{ notify_url: string | null }>(
      this.db,
      tx,
      'DELETE FROM bindings WHERE channel = $1 AND user_id = $2 AND card_id = $3 RETURNING notify_url',
      [unbinding.channel, unbinding.user_id, unbinding.card_id],
    );
    if (unbinding.agreement_no !== null) {
      await sql(this.db, tx, 'UPDATE cards SET agreement_no = NULL WHERE id = $1 AND agreement_no = $2', [
        unbinding.card_id,
        unbinding.agreement_no,
      ]);
    }
    return { unbound_at: now, notifyUrl: binding?.notify_url ?? null };
  }

  async release(unbinding: Unbinding): Promise<void> {
    await sql(this.db, undefined, 'UPDATE unbindings SET busy_until = NULL WHERE id = $1 AND busy_until = $2', [
      unbinding.id,
      unbinding.busy_until,
    ]);
  }
}

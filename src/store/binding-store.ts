import { randomBytes } from 'node:crypto';
import type { Vault } from '../crypto/vault.ts';
import type { BindingStore, BoundCard, CardFacts, CardRef, FlowKey, NewBinding, Owner, Tx, Verification } from '../domain/stores.ts';
import { sql, type Db } from './sql.ts';

/** Where a statement that embeds ownerSql keeps each value: its placeholders ($1, $2, …). */
interface OwnerParams {
  channel: string;
  userId: string;
  cardHash: string;
  idHash: string;
}

export interface OwnerRow {
  id: string;
  same_person: boolean;
  mine: boolean;
}

/**
 * The one definition of who owns a card: the card with this hash, if bound in some channel (a card whose last binding
 * went has no owner), with whether it is the same person and whether this (channel, user) has it. A subquery, so the
 * statements that read ownership with something else (a flow's row, the SMS counts) do it in one round trip.
 */
export function ownerSql(at: OwnerParams): string {
  return `SELECT c.id, p.id_number_hash = ${at.idHash} AS same_person,
      EXISTS (SELECT 1 FROM bindings b WHERE b.channel = ${at.channel} AND b.user_id = ${at.userId} AND b.card_id = c.id) AS mine
    FROM cards c JOIN persons p ON p.id = c.person_id
    WHERE c.card_hash = ${at.cardHash} AND c.released_at IS NULL AND EXISTS (SELECT 1 FROM bindings b WHERE b.card_id = c.id)`;
}

/** The columns of a flow's row, named: a prepared statement's result must not change shape when a migration adds one. */
export const VERIFICATION_COLUMNS = `id, channel, user_id, card_hash, details_hash, id_number_hash, mobile_hash, generation, auth_status,
  code_seq, code_hash, code_enc, code_expires_at, code_sent_at, code_attempts, code_tried, code_verified_at, bound_card_id, busy_until,
  notify_url, created_at, updated_at`;

/**
 * Of several rows of one card number (a released one is an old holder's history), the one a (channel, user) has or
 * had first, then the one held now: an ORDER BY over cards c.
 */
export function cardPreference(channel: string, userId: string): string {
  return `(EXISTS (SELECT 1 FROM bindings b WHERE b.card_id = c.id AND b.channel = ${channel} AND b.user_id = ${userId})
      OR EXISTS (SELECT 1 FROM unbindings u WHERE u.card_id = c.id AND u.channel = ${channel} AND u.user_id = ${userId})) DESC,
    c.released_at IS NULL DESC, c.created_at DESC`;
}

/** The advisory lock that serialises ownership probes of one card. */
export function probeLock(cardHash: string): string {
  return `probe:${cardHash}`;
}

export function ownerFrom(row: OwnerRow | null | undefined): Owner | undefined {
  return row ? { cardId: row.id, samePerson: row.same_person, mine: row.mine } : undefined;
}

/**
 * persons, cards and bindings: who holds a card (encrypted ID and name), the card (encrypted number and mobile), and
 * who bound it; and ownership_probes, the other people's ID numbers tried against a bound card.
 */
export class PgBindingStore implements BindingStore {
  constructor(
    private readonly db: Db,
    private readonly vault: Vault,
  ) {}

  async ownerOf(key: FlowKey, tx?: Tx): Promise<Owner | undefined> {
    const [row] = await sql<OwnerRow>(this.db, tx, ownerSql({ channel: '$1', userId: '$2', cardHash: '$3', idHash: '$4' }), [
      key.channel,
      key.userId,
      key.cardHash,
      key.idHash,
    ]);
    return ownerFrom(row);
  }

  async bind(tx: Tx, binding: NewBinding, now: Date): Promise<{ cardId: string; samePerson: boolean }> {
    const { vault } = this;
    // Each insert returns the row there if there is one (the no-op update also waits for one being committed).
    // (xmax = 0: this statement inserted the row rather than finding it)
    const [person] = await sql<{ id: string; inserted: boolean }>(
      this.db,
      tx,
      `INSERT INTO persons (id_number_hash, id_number_enc, name_enc, key_id, created_at)
      VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id_number_hash) DO UPDATE SET id_number_hash = EXCLUDED.id_number_hash
      RETURNING id, (xmax = 0) AS inserted`,
      [binding.idHash, vault.encrypt(binding.idNumber), vault.encrypt(binding.name), vault.keyId, now],
    );
    let card = await this.upsertCard(tx, binding, person.id, now);
    if (card.person_id !== person.id) {
      const [bound] = await sql(this.db, tx, 'SELECT 1 FROM bindings WHERE card_id = $1 LIMIT 1', [card.id]);
      if (bound) {
        // another person holds the card: the refused binding leaves no person behind
        if (person.inserted) await sql(this.db, tx, 'DELETE FROM persons WHERE id = $1', [person.id]);
        return { cardId: card.id, samePerson: false };
      }
      // No binding of it is left in any channel: the card's row is released (kept as the old holder's history, with its
      // unbindings) and the new holder gets a row of their own.
      await sql(this.db, tx, 'UPDATE cards SET released_at = $2 WHERE id = $1', [card.id, now]);
      card = await this.upsertCard(tx, binding, person.id, now);
    }
    await sql(
      this.db,
      tx,
      `INSERT INTO bindings (channel, user_id, card_id, created_at, confirmed_at, notify_url) VALUES ($1, $2, $3, $4, $4, $5)
      ON CONFLICT DO NOTHING`,
      [binding.channel, binding.userId, card.id, now, binding.notifyUrl],
    );
    return { cardId: card.id, samePerson: true };
  }

  /**
   * The card's row: a new one, or the one held now (locked). A card whose agreement was ended (its last binding went),
   * or whose ending may have happened (an unbinding's call failed or timed out), takes the agreement of this signing.
   */
  private async upsertCard(tx: Tx, binding: NewBinding, personId: string, now: Date): Promise<{ id: string; person_id: string }> {
    const { vault } = this;
    const [card] = await sql<{ id: string; person_id: string }>(
      this.db,
      tx,
      `INSERT INTO cards (id, card_hash, card_enc, mobile_enc, key_id,
        person_id, masked, open_bank, bank_card_type, bank_address, agreement_no, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
      ON CONFLICT (card_hash) WHERE released_at IS NULL DO UPDATE SET agreement_no = CASE
          WHEN cards.agreement_no IS NULL OR EXISTS (SELECT 1 FROM unbindings u
            WHERE u.card_id = cards.id AND u.unbound_at IS NULL AND u.agreement_no = cards.agreement_no)
          THEN EXCLUDED.agreement_no ELSE cards.agreement_no END
      RETURNING id, person_id`,
      [
        'card_' + randomBytes(8).toString('hex'),
        binding.cardHash,
        vault.encrypt(binding.cardNumber),
        vault.encrypt(binding.mobile),
        vault.keyId,
        personId,
        binding.masked,
        binding.bank,
        binding.cardType,
        binding.bankAddress,
        binding.agreementNo,
        now,
      ],
    );
    return card;
  }

  async countProbes(tx: Tx, key: FlowKey, tried: boolean, now: Date): Promise<number> {
    const since = new Date(now.getTime() - 24 * 3600_000);
    await sql(this.db, tx, 'SELECT pg_advisory_xact_lock(hashtext($1))', [probeLock(key.cardHash)]);
    // the statement does not see its own insert: the request's ID is counted from the CTE
    const [row] = await sql<{ others: number }>(
      this.db,
      tx,
      `WITH probe AS (
         INSERT INTO ownership_probes (card_hash, id_number_hash, at) SELECT $1::text, $2::text, $3::timestamptz WHERE $4::boolean
         ON CONFLICT (card_hash, id_number_hash) DO UPDATE SET at = EXCLUDED.at RETURNING id_number_hash
       )
       SELECT count(*)::int AS others FROM (
         SELECT id_number_hash FROM ownership_probes WHERE card_hash = $1 AND at > $5 UNION SELECT id_number_hash FROM probe) tried`,
      [key.cardHash, key.idHash, now, tried, since],
    );
    return row.others;
  }

  async listForUser(channel: string, userId: string): Promise<BoundCard[]> {
    return sql<BoundCard>(
      this.db,
      undefined,
      `SELECT c.id, c.masked, c.open_bank, c.bank_card_type FROM bindings b JOIN cards c ON c.id = b.card_id
        WHERE b.channel = $1 AND b.user_id = $2 ORDER BY b.created_at DESC, b.id DESC`,
      [channel, userId],
    );
  }

  async findForUser(channel: string, userId: string, ref: CardRef): Promise<BoundCard | undefined> {
    const [row] =
      'cardId' in ref
        ? await sql<BoundCard>(
            this.db,
            undefined,
            `SELECT c.id, c.masked, c.open_bank, c.bank_card_type FROM bindings b JOIN cards c ON c.id = b.card_id
          WHERE b.channel = $1 AND b.user_id = $2 AND c.id = $4 AND (c.masked = $5 OR c.card_hash = $3)`,
            [channel, userId, ref.cardHash, ref.cardId, ref.number],
          )
        : await sql<BoundCard>(
            this.db,
            undefined,
            `SELECT c.id, c.masked, c.open_bank, c.bank_card_type FROM bindings b JOIN cards c ON c.id = b.card_id
          WHERE b.channel = $1 AND b.user_id = $2 AND c.card_hash = $3`,
            [channel, userId, ref.cardHash],
          );
    return row;
  }

  async agreementFor(tx: Tx, key: FlowKey, now: Date): Promise<{ state: 'live'; agreementNo: string } | { state: 'unsigning' | 'none' }> {
    // The person's row, then the card's, as bind() takes them; each lock a statement of its own, so that what is read
    // after it (the unbindings) includes what committed while it waited.
    await sql(this.db, tx, 'SELECT 1 FROM persons WHERE id_number_hash = $1 FOR UPDATE', [key.idHash]);
    const [card] = await sql<{ id: string; agreement_no: string | null; same_person: boolean }>(
      this.db,
      tx,
      `SELECT c.id, c.agreement_no, p.id_number_hash = $2 AS same_person FROM cards c JOIN persons p ON p.id = c.person_id
        WHERE c.card_hash = $1 AND c.released_at IS NULL FOR UPDATE OF c`,
      [key.cardHash, key.idHash],
    );
    if (!card?.same_person || card.agreement_no === null) return { state: 'none' };
    const ending = await sql<{ busy_until: Date | null }>(
      this.db,
      tx,
      'SELECT busy_until FROM unbindings WHERE card_id = $1 AND unbound_at IS NULL AND agreement_no = $2',
      [card.id, card.agreement_no],
    );
    if (ending.some((u) => u.busy_until !== null && u.busy_until > now)) return { state: 'unsigning' };
    if (ending.length > 0) return { state: 'none' }; // its ending failed or timed out: it may be over
    return { state: 'live', agreementNo: card.agreement_no };
  }

  async recordFailure(tx: Tx, at: { channel: string; userId: string; cardHash: string }, subCode: string, now: Date): Promise<void> {
    await sql(
      this.db,
      tx,
      `INSERT INTO binding_failures (channel, user_id, card_hash, sub_code, at) VALUES ($1, $2, $3, $4, $5)
      ON CONFLICT (channel, user_id, card_hash) DO UPDATE SET sub_code = EXCLUDED.sub_code, at = EXCLUDED.at`,
      [at.channel, at.userId, at.cardHash, subCode, now],
    );
  }

  async factsOf(channel: string, userId: string, ref: { cardId: string } | { cardHash: string }): Promise<CardFacts> {
    const byId = 'cardId' in ref;
    const who = [channel, userId];
    const [card] = await sql<BoundCard & { card_hash: string }>(
      this.db,
      undefined,
      `SELECT id, card_hash, masked, open_bank, bank_card_type FROM cards c WHERE ${byId ? 'id' : 'card_hash'} = $1
        ORDER BY ${cardPreference('$2', '$3')} LIMIT 1`,
      [byId ? ref.cardId : ref.cardHash, ...who],
    );
    const cardHash = byId ? card?.card_hash : ref.cardHash;
    if (!cardHash) return {};
    const [binding] = card
      ? await sql<{ confirmed_at: Date }>(
          this.db,
          undefined,
          'SELECT confirmed_at FROM bindings WHERE channel = $1 AND user_id = $2 AND card_id = $3',
          [...who, card.id],
        )
      : [];
    const [unbinding] = card
      ? await sql<{ busy_until: Date | null; unbound_at: Date | null }>(
          this.db,
          undefined,
          'SELECT busy_until, unbound_at FROM unbindings WHERE channel = $1 AND user_id = $2 AND card_id = $3',
          [...who, card.id],
        )
      : [];
    const [flow] = await sql<Verification>(
      this.db,
      undefined,
      `SELECT ${VERIFICATION_COLUMNS} FROM verifications WHERE channel = $1 AND user_id = $2 AND card_hash = $3`,
      [...who, cardHash],
    );
    const [failure] = await sql<{ sub_code: string; at: Date }>(
      this.db,
      undefined,
      'SELECT sub_code, at FROM binding_failures WHERE channel = $1 AND user_id = $2 AND card_hash = $3',
      [...who, cardHash],
    );
    const hadCard = Boolean(binding || unbinding || (card && flow?.bound_card_id === card.id));
    // a card id names only the user's own cards; a number tells of the user's own attempts with it too
    if (byId && !hadCard) return {};
    const shown = card && { id: card.id, masked: card.masked, open_bank: card.open_bank, bank_card_type: card.bank_card_type };
    return {
      ...(shown && hadCard ? { card: shown } : {}),
      ...(binding ? { boundAt: binding.confirmed_at } : {}),
      ...(unbinding ? { unbinding } : {}),
      ...(flow ? { flow } : {}),
      ...(failure ? { failure: { subCode: failure.sub_code, at: failure.at } } : {}),
    };
  }
}

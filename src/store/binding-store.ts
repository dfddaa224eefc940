import { randomBytes } from 'node:crypto';
import type { Vault } from '../crypto/vault.ts';
import type { BindingStore, BoundCard, CardRef, FlowKey, NewBinding, Owner, Tx } from '../domain/stores.ts';
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
 * The one definition of who owns a card: the card with this hash, if bound, with whether it is the same person and
 * whether this (channel, user) has it. A subquery, so the statements that read ownership with something else
 * (a flow's row, the SMS counts) do it in one round trip.
 */
export function ownerSql(at: OwnerParams): string {
  return `SELECT c.id, p.id_number_hash = ${at.idHash} AS same_person,
      EXISTS (SELECT 1 FROM bindings b WHERE b.channel = ${at.channel} AND b.user_id = ${at.userId} AND b.card_id = c.id) AS mine
    FROM cards c JOIN persons p ON p.id = c.person_id WHERE c.card_hash = ${at.cardHash}`;
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
    const [card] = await sql<{ id: string; person_id: string }>(
      this.db,
      tx,
      `INSERT INTO cards (id, card_hash, card_enc, mobile_enc, key_id,
        person_id, masked, open_bank, bank_card_type, bank_address, agreement_no, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
      ON CONFLICT (card_hash) DO UPDATE SET card_hash = EXCLUDED.card_hash RETURNING id, person_id`,
      [
        'card_' + randomBytes(8).toString('hex'),
        binding.cardHash,
        vault.encrypt(binding.cardNumber),
        vault.encrypt(binding.mobile),
        vault.keyId,
        person.id,
        binding.masked,
        binding.bank,
        binding.cardType,
        binding.bankAddress,
        binding.agreementNo,
        now,
      ],
    );
    if (card.person_id !== person.id) {
      // another person holds the card: the refused binding leaves no person behind
      if (person.inserted) await sql(this.db, tx, 'DELETE FROM persons WHERE id = $1', [person.id]);
      return { cardId: card.id, samePerson: false };
    }
    await sql(
      this.db,
      tx,
      `INSERT INTO bindings (channel, user_id, card_id, created_at, confirmed_at) VALUES ($1, $2, $3, $4, $4)
      ON CONFLICT DO NOTHING`,
      [binding.channel, binding.userId, card.id, now],
    );
    return { cardId: card.id, samePerson: true };
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
}

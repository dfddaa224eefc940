// Bulk-loads bound cards straight into the tables (as the binding flow would leave them), in batches, with a progress bar.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Vault } from '../../src/crypto/vault.ts';
import { maskCard } from '../../src/domain/card-rules.ts';
import { identity } from './identities.ts';

export async function seedBindings(
  url: string,
  vault: Vault,
  channel: string,
  from: number,
  count: number,
  progress: (done: number) => void,
): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const batch = 2000;
    for (let start = from; start < from + count; start += batch) {
      const rows = [];
      for (let n = start; n < Math.min(start + batch, from + count); n++)
        rows.push({ n, who: identity(n), cardId: 'card_' + randomBytes(8).toString('hex') });
      const now = new Date();
      const persons = await c.query<{ id: string }>(
        `INSERT INTO persons (id_number_hash, id_number_enc, name_enc, key_id, created_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) RETURNING id`,
        [
          rows.map((r) => vault.hash('id', r.who.id_number)),
          rows.map((r) => vault.encrypt(r.who.id_number)),
          rows.map((r) => vault.encrypt(r.who.user_name)),
          rows.map(() => vault.keyId),
          rows.map(() => now),
        ],
      );
      await c.query(
        `INSERT INTO cards (id, card_hash, card_enc, mobile_enc, key_id, person_id, masked, open_bank, bank_card_type, agreement_no, created_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::smallint[], $10::text[], $11::timestamptz[])`,
        [
          rows.map((r) => r.cardId),
          rows.map((r) => vault.hash('card', r.who.bank_card)),
          rows.map((r) => vault.encrypt(r.who.bank_card)),
          rows.map((r) => vault.encrypt(r.who.user_mobile)),
          rows.map(() => vault.keyId),
          persons.rows.map((p) => p.id),
          rows.map((r) => maskCard(r.who.bank_card)),
          rows.map(() => 'ICBC'),
          rows.map(() => 0),
          rows.map((r) => `BENCH${r.n}`),
          rows.map(() => now),
        ],
      );
      await c.query(
        `INSERT INTO bindings (channel, user_id, card_id, created_at, confirmed_at)
         SELECT $4::text, * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $3::timestamptz[])`,
        [rows.map((r) => r.who.user_id), rows.map((r) => r.cardId), rows.map(() => now), channel],
      );
      progress(Math.min(start + batch, from + count) - from);
    }
    await c.query('ANALYZE persons; ANALYZE cards; ANALYZE bindings');
  } finally {
    await c.end();
  }
}

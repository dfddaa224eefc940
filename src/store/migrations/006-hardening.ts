import type { QueryInterface } from 'sequelize';

// Stored answers keep their exact bytes, and a transient one is marked retryable instead; card-authentication calls
// and ownership probes are counted for their limits. nonces.response (jsonb) stays for one release: instances of the
// previous release still write it during a rolling deploy, and an answer they stored is replayed from it.
export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`
    ALTER TABLE nonces ADD COLUMN response_text TEXT;
    ALTER TABLE nonces ADD COLUMN retryable BOOLEAN NOT NULL DEFAULT false;
    UPDATE nonces SET response_text = response::text WHERE response IS NOT NULL;

    -- Every card-authentication call made, for the rolling daily limits per card, ID number and mobile.
    CREATE TABLE auth_reviews (
      id BIGSERIAL PRIMARY KEY,
      card_hash TEXT NOT NULL,
      id_number_hash TEXT NOT NULL,
      mobile_hash TEXT NOT NULL,
      at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX auth_reviews_card ON auth_reviews (card_hash, at);
    CREATE INDEX auth_reviews_id ON auth_reviews (id_number_hash, at);
    CREATE INDEX auth_reviews_mobile ON auth_reviews (mobile_hash, at);
    CREATE INDEX auth_reviews_at ON auth_reviews (at);

    -- ID numbers other than the holder's tried against a bound card, each with when it was last tried.
    CREATE TABLE ownership_probes (
      card_hash TEXT NOT NULL,
      id_number_hash TEXT NOT NULL,
      at TIMESTAMPTZ NOT NULL,
      PRIMARY KEY (card_hash, id_number_hash)
    );
    CREATE INDEX ownership_probes_at ON ownership_probes (at);
  `);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`
    DROP TABLE ownership_probes, auth_reviews;
    ALTER TABLE nonces DROP COLUMN retryable;
    ALTER TABLE nonces DROP COLUMN response_text;
  `);
}

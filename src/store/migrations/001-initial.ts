import type { QueryInterface } from 'sequelize';

// Encrypted columns (*_enc) are AES-256-GCM under the row's key_id; *_hash columns are HMAC-SHA256 for lookup.
export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`
    CREATE TABLE persons (
      id BIGSERIAL PRIMARY KEY,
      id_number_hash TEXT NOT NULL UNIQUE,
      id_number_enc TEXT NOT NULL,
      name_enc TEXT NOT NULL,
      key_id TEXT NOT NULL,
      created_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE cards (
      id TEXT PRIMARY KEY,
      card_hash TEXT NOT NULL UNIQUE,
      card_enc TEXT NOT NULL,
      mobile_enc TEXT NOT NULL,
      key_id TEXT NOT NULL,
      person_id BIGINT NOT NULL REFERENCES persons(id),
      masked TEXT NOT NULL,
      open_bank TEXT NOT NULL,
      bank_card_type SMALLINT NOT NULL CHECK (bank_card_type IN (0, 1)),
      bank_address TEXT,
      agreement_no TEXT NOT NULL,
      created_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE bindings (
      id BIGSERIAL PRIMARY KEY,
      channel TEXT NOT NULL,
      user_id TEXT NOT NULL,
      card_id TEXT NOT NULL REFERENCES cards(id),
      created_at TIMESTAMPTZ NOT NULL,
      confirmed_at TIMESTAMPTZ NOT NULL,
      UNIQUE (channel, user_id, card_id)
    );
    CREATE INDEX bindings_card ON bindings (card_id);

    -- One row per (channel, user, card) new-card flow: its progress between outside calls, its code, its lease.
    -- Only keyed hashes here: the clear values live in the request, and encrypted in persons/cards once bound.
    CREATE TABLE verifications (
      id BIGSERIAL PRIMARY KEY,
      channel TEXT NOT NULL,
      user_id TEXT NOT NULL,
      card_hash TEXT NOT NULL,
      details_hash TEXT NOT NULL,
      id_number_hash TEXT NOT NULL,
      mobile_hash TEXT NOT NULL,
      generation INT NOT NULL DEFAULT 1,
      auth_status TEXT CHECK (auth_status IN ('APPROVED', 'REJECTED')),
      code_seq INT NOT NULL DEFAULT 0,
      code_hash TEXT,
      code_expires_at TIMESTAMPTZ,
      code_sent_at TIMESTAMPTZ,
      code_attempts INT NOT NULL DEFAULT 0,
      code_tried TEXT[] NOT NULL DEFAULT '{}',
      code_verified_at TIMESTAMPTZ,
      bound_card_id TEXT REFERENCES cards(id),
      busy_until TIMESTAMPTZ,
      created_at TIMESTAMPTZ NOT NULL,
      updated_at TIMESTAMPTZ NOT NULL,
      UNIQUE (channel, user_id, card_hash)
    );

    -- Every SMS attempt, for the rolling limits per mobile and per card.
    CREATE TABLE sms_sends (
      id BIGSERIAL PRIMARY KEY,
      mobile_hash TEXT NOT NULL,
      card_hash TEXT NOT NULL,
      sent_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX sms_sends_mobile ON sms_sends (mobile_hash, sent_at);
    CREATE INDEX sms_sends_card ON sms_sends (card_hash, sent_at);

    -- Append-only: masked values only; updates and deletes are refused.
    CREATE TABLE audit_events (
      id BIGSERIAL PRIMARY KEY,
      at TIMESTAMPTZ NOT NULL,
      channel TEXT NOT NULL,
      user_id TEXT NOT NULL,
      event TEXT NOT NULL,
      card_masked TEXT,
      card_id TEXT,
      result_code INT NOT NULL,
      sub_code TEXT
    );
    CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$;
    CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
      FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

    -- Sandbox only: the simulated phone, and the cards whose first authentication is slow.
    CREATE TABLE sandbox_sms (
      id BIGSERIAL PRIMARY KEY,
      request_no TEXT NOT NULL UNIQUE,
      mobile_hash TEXT NOT NULL,
      code TEXT NOT NULL,
      text TEXT NOT NULL,
      sent_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX sandbox_sms_mobile ON sandbox_sms (mobile_hash, sent_at);
    CREATE TABLE sandbox_slow_cards (card_hash TEXT PRIMARY KEY);
  `);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`
    DROP TABLE sandbox_slow_cards, sandbox_sms, audit_events, sms_sends, verifications, bindings, cards, persons;
    DROP FUNCTION audit_events_append_only;
  `);
}

import type { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`
    CREATE TABLE channels (
      code TEXT PRIMARY KEY,
      card_types SMALLINT[] NOT NULL DEFAULT '{0,1}',
      status TEXT NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'DISABLED')),
      created_at TIMESTAMPTZ NOT NULL
    );
    -- Secrets encrypted like personal data; two may be active while a partner rotates.
    CREATE TABLE channel_secrets (
      id BIGSERIAL PRIMARY KEY,
      channel TEXT NOT NULL REFERENCES channels(code),
      secret_enc TEXT NOT NULL,
      key_id TEXT NOT NULL,
      created_at TIMESTAMPTZ NOT NULL,
      retired_at TIMESTAMPTZ
    );
    CREATE INDEX channel_secrets_active ON channel_secrets (channel) WHERE retired_at IS NULL;

    -- Nonces seen in the signature window, with the answer given, so a byte-identical retry gets it again.
    CREATE TABLE nonces (
      channel TEXT NOT NULL,
      nonce TEXT NOT NULL,
      signature TEXT NOT NULL,
      created_at TIMESTAMPTZ NOT NULL,
      status INT,
      response JSONB,
      PRIMARY KEY (channel, nonce)
    );
    CREATE INDEX nonces_created ON nonces (created_at);

    -- Per-channel request counters in one-second windows.
    CREATE TABLE rate_counters (
      channel TEXT NOT NULL,
      window_start TIMESTAMPTZ NOT NULL,
      count INT NOT NULL,
      PRIMARY KEY (channel, window_start)
    );
  `);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP TABLE rate_counters, nonces, channel_secrets, channels');
}

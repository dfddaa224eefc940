import type { QueryInterface } from 'sequelize';

// The binding lifecycle: partners' callback addresses, unbinding, the last refusal of a flow (for queryBinding), and
// the transactional outbox of the events sent to partners.
export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`
    -- Where a channel's events may go (hosts), and where they go when a flow names no address.
    ALTER TABLE channels ADD COLUMN default_notify_url TEXT;
    CREATE TABLE channel_callback_hosts (
      channel TEXT NOT NULL REFERENCES channels(code),
      host TEXT NOT NULL,
      created_at TIMESTAMPTZ NOT NULL,
      PRIMARY KEY (channel, host)
    );

    -- The newest callback address given for a flow, and the one a binding was made with (for its binding.unbound).
    ALTER TABLE verifications ADD COLUMN notify_url TEXT;
    ALTER TABLE bindings ADD COLUMN notify_url TEXT;

    -- A card's agreement is NULL once ended at the gateway (the last binding went); a new binding signs again.
    ALTER TABLE cards ALTER COLUMN agreement_no DROP NOT NULL;
    -- A card whose last binding went may be bound by another person: its row is then released (kept, with its
    -- unbindings, for the old holder's queries and repeats) and the new holder gets a row of their own.
    ALTER TABLE cards ADD COLUMN released_at TIMESTAMPTZ;
    ALTER TABLE cards DROP CONSTRAINT cards_card_hash_key;
    CREATE UNIQUE INDEX cards_card_hash_held ON cards (card_hash) WHERE released_at IS NULL;
    CREATE INDEX cards_card_hash ON cards (card_hash);

    -- The latest unbinding of a (channel, user, card): in progress (busy_until, unbound_at NULL) or done.
    CREATE TABLE unbindings (
      id BIGSERIAL PRIMARY KEY,
      channel TEXT NOT NULL,
      user_id TEXT NOT NULL,
      card_id TEXT NOT NULL REFERENCES cards(id),
      cycle INT NOT NULL DEFAULT 1,
      agreement_no TEXT,
      busy_until TIMESTAMPTZ,
      unbound_at TIMESTAMPTZ,
      created_at TIMESTAMPTZ NOT NULL,
      updated_at TIMESTAMPTZ NOT NULL,
      UNIQUE (channel, user_id, card_id)
    );
    CREATE INDEX unbindings_card ON unbindings (card_id);

    -- The last refusal of a (channel, user, card)'s attempts, for queryBinding's FAILED.
    CREATE TABLE binding_failures (
      channel TEXT NOT NULL,
      user_id TEXT NOT NULL,
      card_hash TEXT NOT NULL,
      sub_code TEXT NOT NULL,
      at TIMESTAMPTZ NOT NULL,
      PRIMARY KEY (channel, user_id, card_hash)
    );
    CREATE INDEX binding_failures_at ON binding_failures (at);

    -- The outbox: an event is written in the transaction of the change it tells of; workers deliver it (at least once).
    -- id: what partners see (random); key: what makes the event one (a keyed hash), so emitting it again is a no-op.
    CREATE TABLE callback_events (
      id TEXT PRIMARY KEY,
      key TEXT NOT NULL UNIQUE,
      channel TEXT NOT NULL,
      type TEXT NOT NULL,
      url TEXT NOT NULL,
      body TEXT NOT NULL,
      status TEXT NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'DELIVERED', 'DEAD')),
      attempts INT NOT NULL DEFAULT 0,
      next_at TIMESTAMPTZ NOT NULL,
      last_status INT,
      last_error TEXT,
      created_at TIMESTAMPTZ NOT NULL,
      done_at TIMESTAMPTZ
    );
    CREATE INDEX callback_events_due ON callback_events (next_at) WHERE status = 'PENDING';
    CREATE INDEX callback_events_done ON callback_events (done_at) WHERE status <> 'PENDING';
    CREATE INDEX callback_events_channel ON callback_events (channel, created_at);

    -- Sandbox only: every delivery try, readable at GET /sandbox/callbacks.
    CREATE TABLE sandbox_callbacks (
      id BIGSERIAL PRIMARY KEY,
      channel TEXT NOT NULL,
      event_id TEXT NOT NULL,
      type TEXT NOT NULL,
      attempt INT NOT NULL,
      url TEXT NOT NULL,
      at TIMESTAMPTZ NOT NULL,
      request_headers JSONB NOT NULL,
      request_body TEXT NOT NULL,
      response_status INT,
      response_body TEXT,
      error TEXT
    );
    CREATE INDEX sandbox_callbacks_channel ON sandbox_callbacks (channel, at);
  `);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`
    DROP TABLE sandbox_callbacks, callback_events, binding_failures, unbindings, channel_callback_hosts;
    DROP INDEX cards_card_hash, cards_card_hash_held;
    DELETE FROM cards WHERE released_at IS NOT NULL;
    ALTER TABLE cards DROP COLUMN released_at, ADD CONSTRAINT cards_card_hash_key UNIQUE (card_hash);
    UPDATE cards SET agreement_no = '' WHERE agreement_no IS NULL;
    ALTER TABLE cards ALTER COLUMN agreement_no SET NOT NULL;
    ALTER TABLE bindings DROP COLUMN notify_url;
    ALTER TABLE verifications DROP COLUMN notify_url;
    ALTER TABLE channels DROP COLUMN default_notify_url;
  `);
}

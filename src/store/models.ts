import { DataTypes, type ModelAttributes, type ModelStatic, type Model, type Optional } from 'sequelize';
import type { Unbinding, Verification } from '../domain/stores.ts';
import type { Db } from './sql.ts';

// A typed Sequelize model of every table, matching the migrations (test/integration/models.test.ts compares them with
// a freshly migrated database). Migrations own the schema; models are how stores read and write off the hot path.

export interface PersonRow {
  id: string;
  id_number_hash: string;
  id_number_enc: string;
  name_enc: string;
  key_id: string;
  created_at: Date;
}
export interface CardRow {
  id: string;
  card_hash: string;
  card_enc: string;
  mobile_enc: string;
  key_id: string;
  person_id: string;
  masked: string;
  open_bank: string;
  bank_card_type: number;
  bank_address: string | null;
  /** null once ended at the gateway (the card's last binding went) */
  agreement_no: string | null;
  created_at: Date;
  /** set when another person took the card after its last binding went: this row is history */
  released_at: Date | null;
}
export interface BindingRow {
  id: string;
  channel: string;
  user_id: string;
  card_id: string;
  created_at: Date;
  confirmed_at: Date;
  notify_url: string | null;
}
/** The flow's row is the domain's record as it is. */
export type VerificationRow = Verification;
export interface SmsSendRow {
  id: string;
  mobile_hash: string;
  card_hash: string;
  sent_at: Date;
}
export interface AuditEventRow {
  id: string;
  at: Date;
  channel: string;
  user_id: string;
  event: string;
  card_masked: string | null;
  card_id: string | null;
  result_code: number;
  sub_code: string | null;
}
export interface SandboxSmsRow {
  id: string;
  request_no: string;
  mobile_hash: string;
  code: string;
  text: string;
  sent_at: Date;
}
export interface SandboxSlowCardRow {
  card_hash: string;
}
export interface ChannelRow {
  code: string;
  card_types: number[];
  status: 'ACTIVE' | 'DISABLED';
  created_at: Date;
  default_notify_url: string | null;
}
export interface ChannelCallbackHostRow {
  channel: string;
  host: string;
  created_at: Date;
}
/** The unbinding's row is the domain's record with its times. */
export interface UnbindingRow extends Unbinding {
  created_at: Date;
  updated_at: Date;
}
export interface BindingFailureRow {
  channel: string;
  user_id: string;
  card_hash: string;
  sub_code: string;
  at: Date;
}
export interface CallbackEventRow {
  id: string;
  key: string;
  channel: string;
  type: string;
  url: string;
  body: string;
  status: 'PENDING' | 'DELIVERED' | 'DEAD';
  attempts: number;
  next_at: Date;
  last_status: number | null;
  last_error: string | null;
  created_at: Date;
  done_at: Date | null;
}
export interface SandboxCallbackRow {
  id: string;
  channel: string;
  event_id: string;
  type: string;
  attempt: number;
  url: string;
  at: Date;
  request_headers: Record<string, string>;
  request_body: string;
  response_status: number | null;
  response_body: string | null;
  error: string | null;
}
export interface ChannelSecretRow {
  id: string;
  channel: string;
  secret_enc: string;
  key_id: string;
  created_at: Date;
  retired_at: Date | null;
}
export interface NonceRow {
  channel: string;
  nonce: string;
  signature: string;
  created_at: Date;
  status: number | null;
  /** the answer as the previous release stored it (read when response_text is absent; to be dropped) */
  response: unknown;
  /** the stored answer's exact bytes */
  response_text: string | null;
  /** the answer was transient: the same signed bytes are processed afresh */
  retryable: boolean;
}
export interface AuthReviewRow {
  id: string;
  card_hash: string;
  id_number_hash: string;
  mobile_hash: string;
  at: Date;
}
export interface OwnershipProbeRow {
  card_hash: string;
  id_number_hash: string;
  at: Date;
}
export interface RateCounterRow {
  channel: string;
  window_start: Date;
  slot: number;
  count: number;
}

/** A model whose generated or defaulted columns may be left out on create. */
type ModelOf<Row extends object, Optionals extends keyof Row = never> = ModelStatic<Model<Row, Optional<Row, Optionals>>>;

export interface Models {
  Person: ModelOf<PersonRow, 'id'>;
  Card: ModelOf<CardRow, 'released_at'>;
  Binding: ModelOf<BindingRow, 'id' | 'notify_url'>;
  Verification: ModelOf<
    VerificationRow,
    | 'id'
    | 'generation'
    | 'auth_status'
    | 'code_seq'
    | 'code_hash'
    | 'code_enc'
    | 'code_expires_at'
    | 'code_sent_at'
    | 'code_attempts'
    | 'code_tried'
    | 'code_verified_at'
    | 'bound_card_id'
    | 'busy_until'
    | 'notify_url'
  >;
  SmsSend: ModelOf<SmsSendRow, 'id'>;
  AuditEvent: ModelOf<AuditEventRow, 'id' | 'card_masked' | 'card_id' | 'sub_code'>;
  SandboxSms: ModelOf<SandboxSmsRow, 'id'>;
  SandboxSlowCard: ModelOf<SandboxSlowCardRow>;
  Channel: ModelOf<ChannelRow, 'card_types' | 'status' | 'default_notify_url'>;
  ChannelCallbackHost: ModelOf<ChannelCallbackHostRow>;
  Unbinding: ModelOf<UnbindingRow, 'id' | 'cycle' | 'agreement_no' | 'busy_until' | 'unbound_at'>;
  BindingFailure: ModelOf<BindingFailureRow>;
  CallbackEvent: ModelOf<CallbackEventRow, 'status' | 'attempts' | 'last_status' | 'last_error' | 'done_at'>;
  SandboxCallback: ModelOf<SandboxCallbackRow, 'id' | 'response_status' | 'response_body' | 'error'>;
  ChannelSecret: ModelOf<ChannelSecretRow, 'id' | 'retired_at'>;
  Nonce: ModelOf<NonceRow, 'status' | 'response' | 'response_text' | 'retryable'>;
  RateCounter: ModelOf<RateCounterRow>;
  AuthReview: ModelOf<AuthReviewRow, 'id'>;
  OwnershipProbe: ModelOf<OwnershipProbeRow>;
}

const { BIGINT, TEXT, DATE, SMALLINT, INTEGER, ARRAY, BOOLEAN, JSONB } = DataTypes;
// Column shapes; a fresh object each time, since Sequelize writes into the attribute objects it is given.
const text = () => ({ type: TEXT, allowNull: false });
const maybeText = () => ({ type: TEXT, allowNull: true });
const time = () => ({ type: DATE, allowNull: false });
const maybeTime = () => ({ type: DATE, allowNull: true });
const serial = () => ({ type: BIGINT, primaryKey: true, autoIncrement: true });
const int = () => ({ type: INTEGER, allowNull: false });

/** Each model's table and columns (new objects on every call). */
export function tables(): { [M in keyof Models]: [table: string, ModelAttributes] } {
  return {
    Person: [
      'persons',
      {
        id: serial(),
        id_number_hash: { ...text(), unique: true },
        id_number_enc: text(),
        name_enc: text(),
        key_id: text(),
        created_at: time(),
      },
    ],
    Card: [
      'cards',
      {
        id: { type: TEXT, primaryKey: true },
        card_hash: text(),
        card_enc: text(),
        mobile_enc: text(),
        key_id: text(),
        person_id: { type: BIGINT, allowNull: false },
        masked: text(),
        open_bank: text(),
        bank_card_type: { type: SMALLINT, allowNull: false },
        bank_address: maybeText(),
        agreement_no: maybeText(),
        created_at: time(),
        released_at: maybeTime(),
      },
    ],
    Binding: [
      'bindings',
      {
        id: serial(),
        channel: text(),
        user_id: text(),
        card_id: text(),
        created_at: time(),
        confirmed_at: time(),
        notify_url: maybeText(),
      },
    ],
    Verification: [
      'verifications',
      {
        id: serial(),
        channel: text(),
        user_id: text(),
        card_hash: text(),
        details_hash: text(),
        id_number_hash: text(),
        mobile_hash: text(),
        generation: { ...int(), defaultValue: 1 },
        auth_status: maybeText(),
        code_seq: { ...int(), defaultValue: 0 },
        code_hash: maybeText(),
        code_enc: maybeText(),
        code_expires_at: maybeTime(),
        code_sent_at: maybeTime(),
        code_attempts: { ...int(), defaultValue: 0 },
        code_tried: { type: ARRAY(TEXT), allowNull: false, defaultValue: [] },
        code_verified_at: maybeTime(),
        bound_card_id: maybeText(),
        busy_until: maybeTime(),
        notify_url: maybeText(),
        created_at: time(),
        updated_at: time(),
      },
    ],
    SmsSend: ['sms_sends', { id: serial(), mobile_hash: text(), card_hash: text(), sent_at: time() }],
    AuditEvent: [
      'audit_events',
      {
        id: serial(),
        at: time(),
        channel: text(),
        user_id: text(),
        event: text(),
        card_masked: maybeText(),
        card_id: maybeText(),
        result_code: int(),
        sub_code: maybeText(),
      },
    ],
    SandboxSms: [
      'sandbox_sms',
      { id: serial(), request_no: { ...text(), unique: true }, mobile_hash: text(), code: text(), text: text(), sent_at: time() },
    ],
    SandboxSlowCard: ['sandbox_slow_cards', { card_hash: { type: TEXT, primaryKey: true } }],
    Channel: [
      'channels',
      {
        code: { type: TEXT, primaryKey: true },
        card_types: { type: ARRAY(SMALLINT), allowNull: false, defaultValue: [0, 1] },
        status: { ...text(), defaultValue: 'ACTIVE' },
        created_at: time(),
        default_notify_url: maybeText(),
      },
    ],
    ChannelCallbackHost: [
      'channel_callback_hosts',
      { channel: { type: TEXT, primaryKey: true }, host: { type: TEXT, primaryKey: true }, created_at: time() },
    ],
    Unbinding: [
      'unbindings',
      {
        id: serial(),
        channel: text(),
        user_id: text(),
        card_id: text(),
        cycle: { ...int(), defaultValue: 1 },
        agreement_no: maybeText(),
        busy_until: maybeTime(),
        unbound_at: maybeTime(),
        created_at: time(),
        updated_at: time(),
      },
    ],
    BindingFailure: [
      'binding_failures',
      {
        channel: { type: TEXT, primaryKey: true },
        user_id: { type: TEXT, primaryKey: true },
        card_hash: { type: TEXT, primaryKey: true },
        sub_code: text(),
        at: time(),
      },
    ],
    CallbackEvent: [
      'callback_events',
      {
        id: { type: TEXT, primaryKey: true },
        key: { ...text(), unique: true },
        channel: text(),
        type: text(),
        url: text(),
        body: text(),
        status: { ...text(), defaultValue: 'PENDING' },
        attempts: { ...int(), defaultValue: 0 },
        next_at: time(),
        last_status: { type: INTEGER, allowNull: true },
        last_error: maybeText(),
        created_at: time(),
        done_at: maybeTime(),
      },
    ],
    SandboxCallback: [
      'sandbox_callbacks',
      {
        id: serial(),
        channel: text(),
        event_id: text(),
        type: text(),
        attempt: int(),
        url: text(),
        at: time(),
        request_headers: { type: JSONB, allowNull: false },
        request_body: text(),
        response_status: { type: INTEGER, allowNull: true },
        response_body: maybeText(),
        error: maybeText(),
      },
    ],
    ChannelSecret: [
      'channel_secrets',
      { id: serial(), channel: text(), secret_enc: text(), key_id: text(), created_at: time(), retired_at: maybeTime() },
    ],
    Nonce: [
      'nonces',
      {
        channel: { type: TEXT, primaryKey: true },
        nonce: { type: TEXT, primaryKey: true },
        signature: text(),
        created_at: time(),
        status: { type: INTEGER, allowNull: true },
        response: { type: JSONB, allowNull: true },
        response_text: maybeText(),
        retryable: { type: BOOLEAN, allowNull: false, defaultValue: false },
      },
    ],
    RateCounter: [
      'rate_counters',
      {
        channel: { type: TEXT, primaryKey: true },
        window_start: { type: DATE, primaryKey: true },
        slot: { type: SMALLINT, primaryKey: true },
        count: int(),
      },
    ],
    AuthReview: ['auth_reviews', { id: serial(), card_hash: text(), id_number_hash: text(), mobile_hash: text(), at: time() }],
    OwnershipProbe: [
      'ownership_probes',
      { card_hash: { type: TEXT, primaryKey: true }, id_number_hash: { type: TEXT, primaryKey: true }, at: time() },
    ],
  };
}

const defined = new WeakMap<Db, Models>();

/** The models bound to this Sequelize instance (defined once per instance). */
export function modelsOf(db: Db): Models {
  let models = defined.get(db);
  if (!models) {
    const entries = Object.entries(tables()).map(([name, [table, attributes]]) => [
      name,
      db.define(name, attributes, { tableName: table, timestamps: false, freezeTableName: true }),
    ]);
    models = Object.fromEntries(entries) as Models;
    defined.set(db, models);
  }
  return models;
}

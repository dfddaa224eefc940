import { randomBytes, randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Sequelize, Transaction } from 'sequelize';
import type { components } from '../../generated/api-types.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { VERIFICATION, type Verification } from '../store/rows.ts';
import { execute, sql } from '../store/sql.ts';
import {
  ProviderTimeout, withDeadline, type AuthResult, type CardAuthenticator, type CardDetails, type SmsSender,
} from '../providers/provider-types.ts';
import { maskCard, normalizeNewCard, reviewCard, type NewCard } from './card-rules.ts';
import { bound, failure, RequestError, smsSent, type Outcome } from './outcomes.ts';
import type { Vault } from '../crypto/vault.ts';

export type BindCardRequest = components['schemas']['BindCardRequest'];
export type BankCard = components['schemas']['BankCard'];

export interface BindingDeps {
  db: Sequelize;
  vault: Vault;
  auth: CardAuthenticator;
  sms: SmsSender;
  now: () => Date;
  log: Logger;
  config: Pick<Config, 'requestDeadlineMs' | 'providerTimeoutMs' | 'codeTtlSeconds' | 'codeMaxAttempts'
    | 'resendSeconds' | 'smsPerMobileHour' | 'smsPerMobileDay' | 'smsPerCardHour'>;
}

type V = Verification;

/** What a phase decided: an answer, wait for the request holding the lease, or an outside call to make. */
type Step =
  | { done: Outcome }
  | { wait: true }
  | { call: 'auth'; v: V }
  | { call: 'sms'; v: V; code: string }
  | { call: 'sign'; v: V };

const HOUR = 3600_000;
const POLL_MS = 25;

/**
 * Card binding. The new-card flow advances one verification row through atomic phases; no transaction spans an
 * outside call. A request about to call out takes a lease on the row (busy_until); a duplicate arriving meanwhile
 * waits for it and then answers from the row, so it gets the same answer and causes no second call.
 */
export class BindingService {
  constructor(private readonly d: BindingDeps) {}

  /** `deadline` (epoch ms): when the answer must be ready; by default REQUEST_DEADLINE_MS from now. */
  async bindCard(channel: { code: string; cardTypes: number[] }, body: BindCardRequest,
    deadline = Date.now() + this.d.config.requestDeadlineMs): Promise<Outcome> {
    const outcome = body.bind_card_src === 2
      ? await this.existingCard(channel.code, body)
      : await this.newCard(channel.code, channel.cardTypes, body, deadline);
    await this.audit(channel.code, body, outcome);
    return outcome;
  }

  async listCards(channel: string, userId: string): Promise<BankCard[]> {
    const rows = await this.sql<{ id: string; masked: string; open_bank: string; bank_card_type: number }>(undefined,
      `SELECT c.id, c.masked, c.open_bank, c.bank_card_type FROM bindings b JOIN cards c ON c.id = b.card_id
        WHERE b.channel = $1 AND b.user_id = $2 ORDER BY b.created_at DESC, b.id DESC`, [channel, userId]);
    return rows.map((c) => ({
      card_id: c.id,
      bank_card: c.masked,
      open_bank: c.open_bank,
      bank_card_type: c.bank_card_type as 0 | 1,
      extra_info: { card_token: this.cardToken(channel, userId, c.id) },
    }));
  }

  // ---- existing card (bind_card_src=2): in this user's list, named by extra_info or by the full number

  private async existingCard(channel: string, b: BindCardRequest): Promise<Outcome> {
    const hasExtra = b.extra_info != null && Object.keys(b.extra_info).length > 0;
    let cardId: string | undefined;
    if (hasExtra) {
      cardId = this.readCardToken(channel, b.user_id, b.extra_info!.card_token);
      if (!cardId) return failure('CARD_NOT_OWNED');
    } else if (b.bank_card.includes('*')) {
      throw new RequestError('body.bank_card', 'extra_info', '脱敏卡号须与 extra_info 一起提交 / a masked number needs the extra_info from the card list');
    }
    // The card must be in this user's list: by the card list's token (and the number as listed or in full), or by the full number.
    const values: unknown[] = [channel, b.user_id, this.d.vault.hash('card', b.bank_card)];
    const named = cardId ? (values.push(cardId, b.bank_card), '(c.id = $4 AND (c.masked = $5 OR c.card_hash = $3))') : 'c.card_hash = $3';
    // The binding is there already, so confirming it writes nothing but the audit event, which records it.
    const [card] = await this.sql<{ id: string; open_bank: string; bank_card_type: number }>(undefined,
      `SELECT c.id, c.open_bank, c.bank_card_type FROM bindings b JOIN cards c ON c.id = b.card_id
        WHERE b.channel = $1 AND b.user_id = $2 AND ${named}`, values);
    if (!card) return failure('CARD_NOT_OWNED');
    if (card.open_bank !== b.open_bank.toUpperCase()) return failure('BIN_BANK_MISMATCH');
    if (b.bank_card_type != null && card.bank_card_type !== b.bank_card_type) return failure('CARD_TYPE_MISMATCH');
    return bound(card.id);
  }

  cardToken(channel: string, userId: string, cardId: string): string {
    return `v1.${cardId}.${this.d.vault.sign('extra_info', `${channel}|${userId}|${cardId}`)}`;
  }

  private readCardToken(channel: string, userId: string, token: unknown): string | undefined {
    const m = typeof token === 'string' ? /^v1\.(card_[0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/.exec(token) : null;
    if (!m || !this.d.vault.verify('extra_info', `${channel}|${userId}|${m[1]}`, m[2])) return undefined;
    return m[1];
  }

  // ---- new card (bind_card_src=1)

  private async newCard(channel: string, cardTypes: number[], b: BindCardRequest, deadline: number): Promise<Outcome> {
    const card = normalizeNewCard(b);
    const refused = reviewCard(card, cardTypes, b.bank_card_type != null);
    if (refused) return failure(refused);
    const code = b.verify_code ? b.verify_code : undefined;
    const key = {
      channel,
      userId: b.user_id,
      cardHash: this.d.vault.hash('card', card.card),
      idHash: this.d.vault.hash('id', card.idNumber),
      mobileHash: this.d.vault.hash('mobile', card.mobile),
      detailsHash: this.d.vault.hash('details', JSON.stringify([card.idNumber, card.name, card.mobile, card.bank,
        card.cardType, b.bank_address ?? ''])),
    };
    const details: CardDetails = {
      cardNumber: card.card, idNumber: card.idNumber, name: card.name, mobile: card.mobile, bank: card.bank,
      cardType: card.cardType,
    };
    // A confirmation retried after the binding (or for a card bound to someone else) is answered without a lock.
    const owned = code === undefined ? undefined : await this.ownership(key);
    if (owned) return owned;
    const decide = () => this.d.db.transaction((t) =>
      code === undefined ? this.decideFirstCall(t, key) : this.decideConfirmation(t, key, code));
    let step = await decide();
    for (;;) {
      if ('done' in step) return step.done;
      if ('wait' in step) {
        if (Date.now() + POLL_MS >= deadline) return failure('PROVIDER_TIMEOUT');
        await sleep(POLL_MS);
        step = await decide();
        continue;
      }
      step = await this.callAndRecord(step, key, details, card, b, deadline) ?? await decide();
    }
  }

  /** A card already bound is final: to this user (bound) or to another person (refused). */
  private async ownership(k: Key, t?: Transaction): Promise<Outcome | undefined> {
    const [card] = await this.sql<Owner>(t, OWNER, [k.idHash, k.channel, k.userId, k.cardHash]);
    return ownerOutcome(card);
  }

  /** One statement with bind parameters ($1, $2, …); its rows. */
  private sql<T = V>(t: Transaction | undefined, text: string, values: unknown[]): Promise<T[]> {
    return sql<T>(this.d.db, t, text, values);
  }

  private async lockRow(t: Transaction, k: Key): Promise<V | undefined> {
    const [v] = await this.sql(t, `SELECT ${VERIFICATION} FROM verifications WHERE channel = $1 AND user_id = $2 AND card_hash = $3 FOR UPDATE`,
      [k.channel, k.userId, k.cardHash]);
    return v;
  }

  private busy(v: V): boolean {
    return v.busy_until !== null && new Date(v.busy_until) > this.d.now();
  }

  /** Updates the row; `alsoInsert` (an INSERT … VALUES and its values) rides along in the same statement. */
  private async update(t: Transaction, v: V, values: Partial<V>, alsoInsert?: [string, unknown[]]): Promise<V> {
    const next = { ...values, updated_at: this.d.now() };
    const bind: unknown[] = [v.id, ...Object.values(next)];
    const columns = Object.keys(next).map((c, i) => `${c} = $${i + 2}`).join(', '); // names from this file, values bound
    let statement = `UPDATE verifications SET ${columns} WHERE id = $1`;
    if (alsoInsert) {
      const [insert, more] = alsoInsert;
      statement = `WITH also AS (${insert} (${more.map((_, i) => `$${bind.length + i + 1}`).join(', ')})) ${statement}`;
      bind.push(...more);
    }
    await this.sql(t, statement, bind);
    return { ...v, ...next } as V;
  }

  private lease(): Date {
    return new Date(this.d.now().getTime() + this.d.config.providerTimeoutMs + 500);
  }

  private async decideFirstCall(t: Transaction, k: Key): Promise<Step> {
    // Creates the row or locks the one there (the no-op update takes the row lock and returns the row as it is), and
    // looks at ownership in the same statement. Its snapshot predates a lock wait, so a binding committed meanwhile may
    // be missed here: the SMS decision reads ownership again after its locks, so at worst a card review is wasted.
    const [row] = await this.sql<V & { owner: Owner | null }>(t, `WITH v AS (
        INSERT INTO verifications (channel, user_id, card_hash, details_hash, id_number_hash, mobile_hash, created_at, updated_at)
        VALUES ($2, $3, $4, $5, $1, $6, $7, $7) ON CONFLICT (channel, user_id, card_hash) DO UPDATE SET channel = EXCLUDED.channel
        RETURNING ${VERIFICATION})
      SELECT v.*, row_to_json(o) AS owner FROM v LEFT JOIN (${OWNER}) o ON true`,
    [k.idHash, k.channel, k.userId, k.cardHash, k.detailsHash, k.mobileHash, this.d.now()]);
    const { owner, ...fields } = row;
    let v: V = fields;
    if (this.busy(v)) return { wait: true };
    const owned = ownerOutcome(owner);
    if (owned) return { done: owned };
    if (v.details_hash !== k.detailsHash) {
      // Corrected details start the review over; the SMS limits still count what was sent.
      v = await this.update(t, v, {
        details_hash: k.detailsHash, id_number_hash: k.idHash, mobile_hash: k.mobileHash, generation: v.generation + 1,
        auth_status: null, code_hash: null, code_expires_at: null, code_sent_at: null, code_attempts: 0, code_tried: [],
        code_verified_at: null,
      });
    }
    return this.afterReview(t, k, v);
  }

  /** The first call's next step once the row is ours: the card review, then a code by SMS (or the one just sent). */
  private async afterReview(t: Transaction, k: Key, v: V): Promise<Step> {
    const now = this.d.now();
    if (v.auth_status === 'REJECTED') return { done: failure('AUTH_REJECTED') };
    if (v.auth_status === null) return { call: 'auth', v: await this.update(t, v, { busy_until: this.lease() }) };
    const cfg = this.d.config;
    const live = v.code_hash !== null && v.code_attempts < cfg.codeMaxAttempts;
    if (live && v.code_sent_at && now.getTime() - new Date(v.code_sent_at).getTime() < cfg.resendSeconds * 1000) {
      return { done: smsSent(cfg.codeTtlSeconds, cfg.resendSeconds) };
    }
    const { owned, overLimits } = await this.smsChecks(t, k, now);
    if (owned) return { done: owned }; // bound meanwhile, by another flow for this card
    if (overLimits) return { done: failure('SMS_RATE_LIMITED') };
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const seq = v.code_seq + 1;
    // The new code and the send that the SMS limits count, in one statement.
    v = await this.update(t, v, {
      code_seq: seq, code_hash: this.codeHash(v.id, seq, code), code_expires_at: new Date(now.getTime() + cfg.codeTtlSeconds * 1000),
      code_sent_at: null, code_attempts: 0, code_tried: [], code_verified_at: null, busy_until: this.lease(),
    }, ['INSERT INTO sms_sends (mobile_hash, card_hash, sent_at) VALUES', [k.mobileHash, k.cardHash, now]]);
    return { call: 'sms', v, code };
  }

  /** What decides an SMS, read after the mobile's lock: whether the card is bound now, and the SMS limits. */
  private async smsChecks(t: Transaction, k: Key, now: Date): Promise<{ owned?: Outcome; overLimits: boolean }> {
    // Serialise SMS decisions per mobile so concurrent flows cannot both pass the last free slot.
    await this.sql(t, 'SELECT pg_advisory_xact_lock(hashtext($1))', [k.mobileHash]);
    // Each count is one range on its index, (mobile_hash, sent_at) or (card_hash, sent_at).
    const [row] = await this.sql<{ owner: Owner | null; mobileHour: number; mobileDay: number; cardHour: number }>(t,
      `SELECT row_to_json(o) AS owner, (SELECT count(*) FROM sms_sends WHERE mobile_hash = $5 AND sent_at > $6)::int AS "mobileHour",
              (SELECT count(*) FROM sms_sends WHERE mobile_hash = $5 AND sent_at > $7)::int AS "mobileDay",
              (SELECT count(*) FROM sms_sends WHERE card_hash = $4 AND sent_at > $6)::int AS "cardHour"
         FROM (SELECT) one LEFT JOIN (${OWNER}) o ON true`,
      [k.idHash, k.channel, k.userId, k.cardHash, k.mobileHash, new Date(now.getTime() - HOUR), new Date(now.getTime() - 24 * HOUR)]);
    const cfg = this.d.config;
    return {
      owned: ownerOutcome(row.owner),
      overLimits: row.mobileHour >= cfg.smsPerMobileHour || row.mobileDay >= cfg.smsPerMobileDay || row.cardHour >= cfg.smsPerCardHour,
    };
  }

  private codeHash(verificationId: string, seq: number, code: string): string {
    return this.d.vault.hash('code', `${verificationId}:${seq}:${code}`);
  }

  // The confirmation locks the row before it looks at ownership, so a binding that commits meanwhile is seen.
  private async decideConfirmation(t: Transaction, k: Key, code: string): Promise<Step> {
    const v = await this.lockRow(t, k);
    if (v && this.busy(v)) return { wait: true };
    const owned = await this.ownership(k, t);
    if (owned) return { done: owned };
    if (!v) return { done: failure('CODE_NOT_ISSUED') };
    if (v.details_hash !== k.detailsHash || v.code_hash === null) return { done: failure('CODE_NOT_ISSUED') };
    const cfg = this.d.config;
    const dead = v.code_attempts >= cfg.codeMaxAttempts;
    const expired = this.d.now() >= new Date(v.code_expires_at!);
    const given = this.codeHash(v.id, v.code_seq, code);
    if (given === v.code_hash) {
      if (dead) return { done: failure('CODE_ATTEMPTS_EXCEEDED') };
      // A code verified in time stays good for the signing retries that follow a gateway timeout.
      if (expired && !v.code_verified_at) return { done: failure('CODE_EXPIRED') };
      return { call: 'sign', v: await this.update(t, v, { code_verified_at: v.code_verified_at ?? this.d.now(), busy_until: this.lease() }) };
    }
    if (dead) return { done: failure('CODE_ATTEMPTS_EXCEEDED') };
    if (expired) return { done: failure('CODE_EXPIRED') };
    if (v.code_tried.includes(given)) return { done: failure('CODE_INCORRECT') }; // a retry counts once
    const attempts = v.code_attempts + 1;
    await this.update(t, v, { code_attempts: attempts, code_tried: [...v.code_tried, given] });
    return { done: failure(attempts >= cfg.codeMaxAttempts ? 'CODE_ATTEMPTS_EXCEEDED' : 'CODE_INCORRECT') };
  }

  /**
   * Makes the outside call the phase asked for, then records its result in a phase of its own, which also decides the
   * step after an approved review (the SMS). Undefined: the details changed meanwhile, decide again.
   */
  private async callAndRecord(step: Exclude<Step, { done: Outcome } | { wait: true }>, k: Key, details: CardDetails, card: NewCard,
    b: BindCardRequest, deadline: number): Promise<Step | undefined> {
    const budget = Math.min(this.d.config.providerTimeoutMs, deadline - Date.now() - 100);
    const v = step.v;
    let result: AuthResult | { agreementNo: string } | undefined;
    let error: Outcome | undefined;
    try {
      if (step.call === 'auth') result = await withDeadline(budget, (s) => this.d.auth.verify(`A${v.id}-${v.generation}`, details, s));
      if (step.call === 'sms') {
        const text = `【还呗】您的绑卡验证码为${step.code}，${Math.round(this.d.config.codeTtlSeconds / 60)}分钟内有效，请勿泄露。`;
        await withDeadline(budget, (s) => this.d.sms.send(`S${v.id}-${v.code_seq}`, details.mobile, step.code, text, s));
      }
      if (step.call === 'sign') result = await withDeadline(budget, (s) => this.d.auth.sign(`G${v.id}-${v.code_seq}`, details, s));
    } catch (e) {
      this.d.log.warn({ call: step.call, verification: v.id, err: e }, 'provider call failed');
      error = failure(e instanceof ProviderTimeout ? 'PROVIDER_TIMEOUT' : 'PROVIDER_ERROR');
    }
    if (!error && step.call === 'sms') {
      // The usual case in one statement: the code just sent is still this row's latest.
      const sent = await execute(this.d.db, undefined,
        'UPDATE verifications SET busy_until = NULL, code_sent_at = $1, updated_at = $1 WHERE id = $2 AND generation = $3 AND code_seq = $4',
        [this.d.now(), v.id, v.generation, v.code_seq]);
      if (sent === 1) return { done: smsSent(this.d.config.codeTtlSeconds, this.d.config.resendSeconds) };
      // Not the row's latest code any more: corrected details started over (decide again), or this request's lease ran
      // out and another one sent a newer code (whose lease stands).
      const [row] = await this.sql<{ generation: number }>(undefined, 'SELECT generation FROM verifications WHERE id = $1', [v.id]);
      return row?.generation === v.generation ? { done: smsSent(this.d.config.codeTtlSeconds, this.d.config.resendSeconds) } : undefined;
    }
    return this.d.db.transaction(async (t): Promise<Step | undefined> => {
      // Locks the row and ends this request's lease, if the row is still in the generation the call was made for; a
      // review's result is recorded in the same statement.
      const review = step.call === 'auth' && !error ? ((result as AuthResult).approved ? 'APPROVED' : 'REJECTED') : null;
      const [cur] = await this.sql(t, `UPDATE verifications SET busy_until = NULL, auth_status = coalesce($3, auth_status), updated_at = $4
        WHERE id = $1 AND generation = $2 RETURNING ${VERIFICATION}`, [v.id, v.generation, review, this.d.now()]);
      if (!cur) return error ? { done: error } : undefined;
      if (error) return { done: error };
      if (step.call === 'auth') return this.afterReview(t, k, cur); // which looks at ownership again before an SMS
      return { done: await this.commitBinding(t, cur, card, b, (result as { agreementNo: string }).agreementNo) };
    });
  }

  /** The last phase: person, card and binding commit together, and the code is consumed. */
  private async commitBinding(t: Transaction, v: V, c: NewCard, b: BindCardRequest, agreementNo: string): Promise<Outcome> {
    const vault = this.d.vault;
    const now = this.d.now();
    // Each insert returns the row there if there is one (the no-op update also waits for one being committed).
    const [person] = await this.sql<{ id: string }>(t, `INSERT INTO persons (id_number_hash, id_number_enc, name_enc, key_id, created_at)
      VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id_number_hash) DO UPDATE SET id_number_hash = EXCLUDED.id_number_hash RETURNING id`,
    [v.id_number_hash, vault.encrypt(c.idNumber), vault.encrypt(c.name), vault.keyId, now]);
    const [card] = await this.sql<{ id: string; person_id: string }>(t, `INSERT INTO cards (id, card_hash, card_enc, mobile_enc, key_id,
        person_id, masked, open_bank, bank_card_type, bank_address, agreement_no, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
      ON CONFLICT (card_hash) DO UPDATE SET card_hash = EXCLUDED.card_hash RETURNING id, person_id`,
    ['card_' + randomBytes(8).toString('hex'), v.card_hash, vault.encrypt(c.card), vault.encrypt(c.mobile), vault.keyId, person.id,
      maskCard(c.card), c.bank, c.cardType, b.bank_address ?? null, agreementNo, now]);
    if (card.person_id !== person.id) return failure('CARD_BOUND_TO_OTHER'); // another person's confirmation committed first
    await this.sql(t, `INSERT INTO bindings (channel, user_id, card_id, created_at, confirmed_at) VALUES ($1, $2, $3, $4, $4)
      ON CONFLICT DO NOTHING`, [v.channel, v.user_id, card.id, now]);
    await this.update(t, v, { bound_card_id: card.id, code_hash: null });
    return bound(card.id);
  }

  /**
   * The request's last write, committed synchronously whatever its session's mode: when it returns, the WAL is on disk
   * up to its commit, and with it every commit the request made or read before (see connect). So no answer says what
   * a crash could take back, and the request's other transactions may commit asynchronously.
   */
  private async audit(channel: string, b: BindCardRequest, o: Outcome): Promise<void> {
    const event = b.bind_card_src === 2 ? 'EXISTING_CARD' : b.verify_code ? 'NEW_CARD_CONFIRM' : 'NEW_CARD_REQUEST';
    const data = o.data as { card_id?: string; sub_code?: string; status?: string };
    await this.sql(undefined,
      `INSERT INTO audit_events (at, channel, user_id, event, card_masked, card_id, result_code, sub_code)
       SELECT $1::timestamptz, $2::text, $3::text, $4::text, $5::text, $6::text, $7::int, $8::text
         FROM (SELECT set_config('synchronous_commit', 'on', true)) durable`,
      [this.d.now(), channel, b.user_id, data.status ? `${event}:${data.status}` : event,
        /^[0-9]{12,19}$/.test(b.bank_card) ? maskCard(b.bank_card) : b.bank_card, data.card_id ?? null, o.code, data.sub_code ?? null]);
  }
}

/** The card with this hash, if bound: whether to the same person, and whether to this user ($1 id hash, $2 channel, $3 user, $4 card hash). */
const OWNER = `SELECT c.id, p.id_number_hash = $1 AS same_person,
    EXISTS (SELECT 1 FROM bindings b WHERE b.channel = $2 AND b.user_id = $3 AND b.card_id = c.id) AS mine
  FROM cards c JOIN persons p ON p.id = c.person_id WHERE c.card_hash = $4`;
interface Owner { id: string; same_person: boolean; mine: boolean }

function ownerOutcome(card: Owner | null | undefined): Outcome | undefined {
  if (!card) return undefined;
  if (!card.same_person) return failure('CARD_BOUND_TO_OTHER');
  return card.mine ? bound(card.id) : undefined;
}

interface Key {
  channel: string;
  userId: string;
  cardHash: string;
  idHash: string;
  mobileHash: string;
  detailsHash: string;
}

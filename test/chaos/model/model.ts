// The reference model: what the partner documentation (docs/partners.md) promises, as a small state machine over
// plain data. Each request is applied to the model, which says the answer to expect and changes as the service should.
// Business time is the model's `now`: the driver sends it with every request (X-Bindcard-Clock). Times the service
// reports (bound_at, unbound_at, code_expires_at) are business time plus the few milliseconds the request took, so the
// model checks them within a tolerance the first time and expects the same value ever after.
import { failure, type SubCode } from '../../../src/domain/outcomes.ts';
import type { World } from './world.ts';

export const CODE_TTL_MS = 300_000;
export const CODE_MAX_ATTEMPTS = 5;
export const RESEND_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
export const SMS_PER_MOBILE_HOUR = 5;
export const SMS_PER_MOBILE_DAY = 10;
export const SMS_PER_CARD_HOUR = 5;
/**
 * Card reviews a card, ID number or mobile may have in a rolling day. The documented default is 10; the test's service
 * runs with 4 (AUTH_REVIEWS_PER_*_DAY, see SERVICE_LIMITS), so that sequences of 30 steps reach it.
 */
export const REVIEWS_PER_DAY = 4;
export const PROBES_PER_CARD = 3;
/** The settings the service runs with: the model's own numbers. */
export const SERVICE_LIMITS: Record<string, string> = {
  CODE_TTL_SECONDS: String(CODE_TTL_MS / 1000),
  CODE_MAX_ATTEMPTS: String(CODE_MAX_ATTEMPTS),
  SMS_RESEND_SECONDS: String(RESEND_MS / 1000),
  SMS_PER_MOBILE_HOUR: String(SMS_PER_MOBILE_HOUR),
  SMS_PER_MOBILE_DAY: String(SMS_PER_MOBILE_DAY),
  SMS_PER_CARD_HOUR: String(SMS_PER_CARD_HOUR),
  AUTH_REVIEWS_PER_CARD_DAY: String(REVIEWS_PER_DAY),
  AUTH_REVIEWS_PER_ID_DAY: String(REVIEWS_PER_DAY),
  AUTH_REVIEWS_PER_MOBILE_DAY: String(REVIEWS_PER_DAY),
  OWNERSHIP_PROBES_PER_CARD: String(PROBES_PER_CARD),
};
/** how long after the business time it was sent with a request may report a time of its own */
export const TIME_TOLERANCE_MS = 5_000;

/** A request's details beside the card: as the user gives them, with the other mobile, or with a bank the BIN contradicts. */
export type Variant = 'normal' | 'other-mobile' | 'wrong-bank';

/** A request as sent: every choice made, so that sending it again sends the same thing. */
export type Request =
  | { op: 'first'; user: number; card: number; variant: Variant; codeField: 'absent' | 'null' | 'empty' }
  | { op: 'confirm'; user: number; card: number; variant: Variant; code: string }
  | { op: 'malformed'; user: number; card: number; code: string | number }
  | { op: 'existing'; user: number; card: number; wrongBank: boolean; tokenRow?: number }
  | { op: 'list'; user: number }
  | { op: 'query'; user: number; card: number; row?: number }
  | { op: 'unbind'; user: number; card: number; row?: number; by: 'number' | 'id' | 'token' };

export type Status =
  | { status: 'NONE' }
  | { status: 'BOUND'; row: number; binding: number }
  | { status: 'SMS_SENT'; flow: string }
  | { status: 'FAILED'; sub: string }
  | { status: 'UNBOUND'; row: number; unbinding: string };

export type Expected =
  | { kind: 'sms-sent' }
  | { kind: 'bound'; row: number }
  | { kind: 'refused'; sub: SubCode }
  | { kind: 'bad-request'; field: string }
  | { kind: 'unbound'; row: number; unbinding: string }
  | { kind: 'unbind-refused'; sub: 'CARD_NOT_OWNED' | 'PROVIDER_ERROR' }
  | { kind: 'status'; of: Status }
  | { kind: 'cards'; user: number; rows: number[] };

/** A time the service reports: the business time it happened at, and once seen, the exact text. */
interface Stamp {
  t: number;
  exact?: string;
}

/** The new-card flow of one (user, card): the service's verifications row. */
interface Flow {
  mobile: number;
  generation: number;
  auth: null | 'APPROVED' | 'REJECTED';
  seq: number;
  hasCode: boolean;
  /** the code's value, read from the sandbox phone after the step that sent it */
  code?: string;
  sentAt?: number;
  expires?: Stamp;
  attempts: number;
  tried: string[];
  /** the card row this flow bound (bound_card_id) */
  boundRow: number | null;
  pastCodes: string[];
}

/** A card row: one per card and holder; another person taking the card over releases it and gets a new one. */
interface Row {
  card: number;
  person: number;
  agreement: string | null;
  released: boolean;
  id?: string;
}

export interface Binding {
  user: number;
  row: number;
  at: Stamp;
}

interface Unbinding {
  unbound: Stamp | null;
  /** the agreement this unbinding set out to end; kept while its ending is in doubt */
  agreement: string | null;
}

export interface State {
  now: number;
  flows: Record<string, Flow>;
  rows: Row[];
  /** in the order they were made (the card list's tie-break) */
  bindings: (Binding | null)[];
  unbindings: Record<string, Unbinding>;
  failures: Record<string, { sub: SubCode; at: number }>;
  probes: Record<string, number>;
  sms: { mobile: number; card: number; at: number; flow: string }[];
  reviews: { card: number; person: number; mobile: number; at: number }[];
  /** agreements whose ending the sandbox's bank has been asked for (a 0003 card fails the first) */
  unsignTried: string[];
  /** extra_info tokens read from card lists, by user and row */
  tokens: Record<string, string>;
}

export const flowKey = (user: number, card: number) => `${user}/${card}`;
const unbindingKey = (user: number, row: number) => `${user}/${row}`;

export function emptyState(now: number): State {
  return {
    now,
    flows: {},
    rows: [],
    bindings: [],
    unbindings: {},
    failures: {},
    probes: {},
    sms: [],
    reviews: [],
    unsignTried: [],
    tokens: {},
  };
}

export class Model {
  constructor(
    readonly world: World,
    public s: State,
  ) {}

  clone(): Model {
    return new Model(this.world, structuredClone(this.s));
  }

  /** The answer a request should get, changing the model as the service should change. */
  apply(r: Request): Expected {
    switch (r.op) {
      case 'first':
      case 'confirm':
        return this.newCard(r);
      case 'malformed':
        return { kind: 'bad-request', field: 'body.verify_code' };
      case 'existing':
        return this.existing(r);
      case 'list':
        return { kind: 'cards', user: r.user, rows: this.listed(r.user) };
      case 'query':
        return { kind: 'status', of: this.query(r) };
      case 'unbind':
        return this.unbind(r);
    }
  }

  // ---- reading the state

  mobileOf(user: number, variant: Variant): number {
    const own = this.world.users[user].mobile;
    return variant === 'other-mobile' ? 1 - own : own;
  }

  personOf(user: number): number {
    return this.world.users[user].person;
  }

  bindingOf(user: number, row: number): number | undefined {
    const i = this.s.bindings.findIndex((b) => b?.user === user && b.row === row);
    return i < 0 ? undefined : i;
  }

  /** The card's row held now (at most one is not released). */
  heldRow(card: number): number | undefined {
    const i = this.s.rows.findIndex((row) => row.card === card && !row.released);
    return i < 0 ? undefined : i;
  }

  /** Who owns the card: its held row, if some binding of it is left in any channel. */
  owner(user: number, card: number): { row: number; mine: boolean; samePerson: boolean } | undefined {
    const row = this.heldRow(card);
    if (row === undefined || !this.s.bindings.some((b) => b?.row === row)) return undefined;
    return { row, mine: this.bindingOf(user, row) !== undefined, samePerson: this.s.rows[row].person === this.personOf(user) };
  }

  /** Of a card's rows, the one this user has or had, else the one held now, else the newest (cardPreference). */
  preferredRow(user: number, card: number): number | undefined {
    const rows = this.s.rows.map((row, i) => ({ row, i })).filter(({ row }) => row.card === card);
    const had = (i: number) => this.bindingOf(user, i) !== undefined || this.s.unbindings[unbindingKey(user, i)] !== undefined;
    rows.sort((a, b) => Number(had(b.i)) - Number(had(a.i)) || Number(!b.row.released) - Number(!a.row.released) || b.i - a.i);
    return rows[0]?.i;
  }

  listed(user: number): number[] {
    return this.s.bindings
      .map((b, order) => ({ b, order }))
      .filter(({ b }) => b?.user === user)
      .sort((x, y) => y.b!.at.t - x.b!.at.t || y.order - x.order)
      .map(({ b }) => b!.row);
  }

  /** Texts sent to a mobile, or for a card, after `since`. */
  smsCount(since: number, which: { mobile?: number; card?: number }): number {
    return this.s.sms.filter((m) => m.at > since && (which.mobile ?? m.mobile) === m.mobile && (which.card ?? m.card) === m.card).length;
  }

  // ---- bindCard, new card

  private refuse(user: number, card: number, sub: SubCode): Expected {
    this.s.failures[flowKey(user, card)] = { sub, at: this.s.now };
    return { kind: 'refused', sub };
  }

  /** A card bound to someone: this user's (BOUND), another person's (502), or this person's under another user id. */
  private ownership(user: number, card: number): Expected | undefined {
    const owner = this.owner(user, card);
    if (!owner) return undefined;
    if (owner.mine) return { kind: 'bound', row: owner.row };
    const person = this.personOf(user);
    if (!owner.samePerson) this.s.probes[`${card}/${person}`] = this.s.now;
    const tried = Object.entries(this.s.probes).filter(([key, at]) => key.startsWith(`${card}/`) && at > this.s.now - DAY_MS).length;
    if (!owner.samePerson || tried >= PROBES_PER_CARD) return this.refuse(user, card, 'CARD_BOUND_TO_OTHER');
    return undefined;
  }

  private newCard(r: Extract<Request, { op: 'first' | 'confirm' }>): Expected {
    const { user, card } = r;
    // the bank named is not the card's: refused before anything else, as one attempt per details
    if (r.variant === 'wrong-bank') return this.refuse(user, card, 'BIN_BANK_MISMATCH');
    const mobile = this.mobileOf(user, r.variant);
    if (r.op === 'confirm') {
      const owned = this.ownership(user, card);
      return owned ?? this.confirm(user, card, mobile, r.code);
    }
    const key = flowKey(user, card);
    this.s.flows[key] ??= {
      mobile,
      generation: 0,
      auth: null,
      seq: 0,
      hasCode: false,
      attempts: 0,
      tried: [],
      boundRow: null,
      pastCodes: [],
    };
    const owned = this.ownership(user, card);
    if (owned) return owned;
    const flow = this.s.flows[key];
    if (flow.mobile !== mobile) {
      // corrected details start the review over
      Object.assign(flow, { mobile, generation: flow.generation + 1, auth: null, hasCode: false, attempts: 0, tried: [] });
      delete flow.code;
      delete flow.sentAt;
      delete flow.expires;
    }
    return this.afterReview(user, card, flow);
  }

  private afterReview(user: number, card: number, flow: Flow): Expected {
    const { now } = this.s;
    if (flow.auth === 'REJECTED') return this.refuse(user, card, 'AUTH_REJECTED');
    const live = flow.hasCode && flow.attempts < CODE_MAX_ATTEMPTS;
    if (live && flow.sentAt !== undefined && now - flow.sentAt < RESEND_MS) return { kind: 'sms-sent' };
    if (
      this.smsCount(now - HOUR_MS, { mobile: flow.mobile }) >= SMS_PER_MOBILE_HOUR ||
      this.smsCount(now - DAY_MS, { mobile: flow.mobile }) >= SMS_PER_MOBILE_DAY ||
      this.smsCount(now - HOUR_MS, { card }) >= SMS_PER_CARD_HOUR
    ) {
      return { kind: 'refused', sub: 'SMS_RATE_LIMITED' };
    }
    const person = this.personOf(user);
    if (flow.auth === null) {
      const reviews = (match: (r: State['reviews'][number]) => boolean) =>
        this.s.reviews.filter((r) => r.at > now - DAY_MS && match(r)).length;
      if (
        reviews((r) => r.card === card) >= REVIEWS_PER_DAY ||
        reviews((r) => r.person === person) >= REVIEWS_PER_DAY ||
        reviews((r) => r.mobile === flow.mobile) >= REVIEWS_PER_DAY
      ) {
        return { kind: 'refused', sub: 'AUTH_RATE_LIMITED' };
      }
      this.s.reviews.push({ card, person, mobile: flow.mobile, at: now });
      flow.auth = this.world.cards[card].behaviour === 'rejected' ? 'REJECTED' : 'APPROVED';
      return this.afterReview(user, card, flow);
    }
    if (flow.code !== undefined) flow.pastCodes.push(flow.code);
    Object.assign(flow, { seq: flow.seq + 1, hasCode: true, sentAt: now, expires: { t: now + CODE_TTL_MS }, attempts: 0, tried: [] });
    delete flow.code; // read from the phone after the step
    this.s.sms.push({ mobile: flow.mobile, card, at: now, flow: flowKey(user, card) });
    return { kind: 'sms-sent' };
  }

  private confirm(user: number, card: number, mobile: number, code: string): Expected {
    const flow = this.s.flows[flowKey(user, card)] as Flow | undefined;
    const same = flow !== undefined && flow.mobile === mobile;
    // the code was spent on a binding removed since: a retry must not bind the card again
    if (same && !flow.hasCode && flow.boundRow !== null) return { kind: 'refused', sub: 'CARD_UNBOUND' };
    if (!same || !flow.hasCode) return { kind: 'refused', sub: 'CODE_NOT_ISSUED' };
    const dead = flow.attempts >= CODE_MAX_ATTEMPTS;
    const expired = this.s.now >= flow.expires!.t;
    if (code === flow.code) {
      if (dead) return this.refuse(user, card, 'CODE_ATTEMPTS_EXCEEDED');
      if (expired) return { kind: 'refused', sub: 'CODE_EXPIRED' };
      return this.bind(user, card, flow);
    }
    if (dead) return this.refuse(user, card, 'CODE_ATTEMPTS_EXCEEDED');
    if (expired) return { kind: 'refused', sub: 'CODE_EXPIRED' };
    if (flow.tried.includes(code)) return { kind: 'refused', sub: 'CODE_INCORRECT' };
    flow.tried.push(code);
    flow.attempts++;
    return flow.attempts >= CODE_MAX_ATTEMPTS
      ? this.refuse(user, card, 'CODE_ATTEMPTS_EXCEEDED')
      : { kind: 'refused', sub: 'CODE_INCORRECT' };
  }

  /** The right code: bind on the person's live agreement for the card, else sign a new one; the code is spent. */
  private bind(user: number, card: number, flow: Flow): Expected {
    const person = this.personOf(user);
    let row = this.heldRow(card);
    const held = row === undefined ? undefined : this.s.rows[row];
    const inDoubt = (i: number, agreement: string | null) =>
      Object.entries(this.s.unbindings).some(([key, u]) => key.endsWith(`/${i}`) && u.unbound === null && u.agreement === agreement);
    const live = held && held.person === person && held.agreement !== null && !inDoubt(row!, held.agreement);
    const agreement = live ? held.agreement! : `${flowKey(user, card)}#${flow.seq}`;
    if (held && held.person !== person) {
      if (this.s.bindings.some((b) => b?.row === row)) return this.refuse(user, card, 'CARD_BOUND_TO_OTHER');
      held.released = true; // the old holder's history
      row = undefined;
    }
    if (row === undefined) {
      this.s.rows.push({ card, person, agreement, released: false });
      row = this.s.rows.length - 1;
    } else if (held!.agreement === null || inDoubt(row, held!.agreement)) {
      held!.agreement = agreement;
    }
    if (this.bindingOf(user, row) === undefined) this.s.bindings.push({ user, row, at: { t: this.s.now } });
    flow.boundRow = row;
    flow.hasCode = false;
    return { kind: 'bound', row };
  }

  // ---- bindCard, existing card

  private existing(r: Extract<Request, { op: 'existing' }>): Expected {
    const row =
      r.tokenRow !== undefined
        ? this.bindingOf(r.user, r.tokenRow) !== undefined
          ? r.tokenRow
          : undefined
        : this.s.bindings.find((b) => b?.user === r.user && this.s.rows[b.row].card === r.card)?.row;
    if (row === undefined) return { kind: 'refused', sub: 'CARD_NOT_OWNED' };
    if (r.wrongBank) return { kind: 'refused', sub: 'BIN_BANK_MISMATCH' };
    return { kind: 'bound', row };
  }

  // ---- queryBinding

  private query(r: Extract<Request, { op: 'query' }>): Status {
    const { user } = r;
    const row = r.row ?? this.preferredRow(user, r.card);
    const card = r.row === undefined ? r.card : this.s.rows[r.row].card;
    const binding = row === undefined ? undefined : this.bindingOf(user, row);
    const ukey = row === undefined ? '' : unbindingKey(user, row);
    const unbinding = this.s.unbindings[ukey] as Unbinding | undefined;
    const flow = this.s.flows[flowKey(user, card)] as Flow | undefined;
    const had = binding !== undefined || unbinding !== undefined || (row !== undefined && flow?.boundRow === row);
    // a card id names only this user's own cards
    if (r.row !== undefined && !had) return { status: 'NONE' };
    if (binding !== undefined && had) return { status: 'BOUND', row: row!, binding };
    const { now } = this.s;
    const issued = flow !== undefined && flow.hasCode && flow.sentAt !== undefined && flow.attempts < CODE_MAX_ATTEMPTS;
    const valid = issued && now < flow.expires!.t;
    const past: { at: number; status: Status }[] = [];
    if (valid) past.push({ at: flow.sentAt!, status: { status: 'SMS_SENT', flow: flowKey(user, card) } });
    if (issued && !valid) past.push({ at: flow.expires!.t, status: { status: 'FAILED', sub: 'CODE_EXPIRED' } });
    const failed = this.s.failures[flowKey(user, card)];
    if (failed) past.push({ at: failed.at, status: { status: 'FAILED', sub: failed.sub } });
    if (unbinding?.unbound && had) past.push({ at: unbinding.unbound.t, status: { status: 'UNBOUND', row: row!, unbinding: ukey } });
    past.sort((a, b) => b.at - a.at);
    return past[0]?.status ?? { status: 'NONE' };
  }

  // ---- unbindCard

  private unbind(r: Extract<Request, { op: 'unbind' }>): Expected {
    const { user } = r;
    const row = r.row ?? this.preferredRow(user, r.card);
    if (row === undefined) return { kind: 'unbind-refused', sub: 'CARD_NOT_OWNED' };
    const ukey = unbindingKey(user, row);
    const binding = this.bindingOf(user, row);
    if (binding === undefined) {
      const done = this.s.unbindings[ukey] as Unbinding | undefined;
      return done?.unbound ? { kind: 'unbound', row, unbinding: ukey } : { kind: 'unbind-refused', sub: 'CARD_NOT_OWNED' };
    }
    const u = (this.s.unbindings[ukey] ??= { unbound: null, agreement: null });
    const others = this.s.bindings.some((b, i) => b?.row === row && i !== binding);
    const unfinished = u.unbound === null ? u.agreement : null;
    const agreement = unfinished ?? (others ? null : this.s.rows[row].agreement);
    u.unbound = null;
    u.agreement = agreement;
    if (agreement !== null) {
      const first = !this.s.unsignTried.includes(agreement);
      this.s.unsignTried.push(agreement);
      // the sandbox's bank fails the first ending of each agreement of a card ending 0003; the binding stays
      if (first && this.world.cards[this.s.rows[row].card].behaviour === 'unsign-fails-once') {
        return { kind: 'unbind-refused', sub: 'PROVIDER_ERROR' };
      }
    }
    this.s.bindings[binding] = null;
    u.unbound = { t: this.s.now };
    if (agreement !== null && this.s.rows[row].agreement === agreement) this.s.rows[row].agreement = null;
    u.agreement = null;
    return { kind: 'unbound', row, unbinding: ukey };
  }

  // ---- comparing an answer with what was expected

  /**
   * Undefined when the answer is the one expected, else what differs. Card ids, times and tokens seen for the first
   * time are learnt (into this model, which may be a trial copy).
   */
  check(e: Expected, status: number, body: unknown): string | undefined {
    const b = body as { code?: number; message?: string; data?: Record<string, unknown> };
    const data = b?.data ?? {};
    const want = (ok: boolean, what: string) => (ok ? undefined : what);
    if (e.kind === 'bad-request') {
      const errors = (data.errors ?? []) as { field: string }[];
      return want(status === 400 && b.code === 400 && errors.some((x) => x.field === e.field), `400 naming ${e.field}`);
    }
    if (status !== 200) return `HTTP 200, got ${status}`;
    switch (e.kind) {
      case 'sms-sent':
        return want(
          b.code === 200 &&
            data.status === 'SMS_SENT' &&
            data.code_ttl_seconds === CODE_TTL_MS / 1000 &&
            data.resend_after_seconds === RESEND_MS / 1000,
          `200 SMS_SENT (ttl ${CODE_TTL_MS / 1000}, resend ${RESEND_MS / 1000})`,
        );
      case 'bound':
        return want(b.code === 200 && data.status === 'BOUND', '200 BOUND') ?? this.sameId(e.row, data.card_id);
      case 'refused': {
        const f = failure(e.sub);
        return want(b.code === f.code && data.sub_code === e.sub && b.message === f.message, `${f.code} ${e.sub} "${f.message}"`);
      }
      case 'unbind-refused':
        return want(b.code === 505 && data.sub_code === e.sub, `505 ${e.sub}`);
      case 'unbound':
        return (
          want(b.code === 200 && data.status === 'UNBOUND', '200 UNBOUND') ??
          this.sameId(e.row, data.card_id) ??
          this.sameTime(this.s.unbindings[e.unbinding].unbound!, data.unbound_at, 'unbound_at')
        );
      case 'status':
        return want(b.code === 200, '200') ?? this.sameStatus(e.of, data);
      case 'cards': {
        const cards = (data.cards ?? []) as {
          card_id: string;
          bank_card: string;
          open_bank: string;
          bank_card_type: number;
          extra_info?: { card_token?: string };
        }[];
        if (cards.length !== e.rows.length) return `${e.rows.length} cards, got ${cards.length}`;
        for (const [i, row] of e.rows.entries()) {
          const c = cards[i];
          const problem = this.sameId(row, c.card_id) ?? this.sameCard(row, c) ?? this.sameToken(e.user, row, c.extra_info?.card_token);
          if (problem) return `card ${i + 1}: ${problem}`;
        }
        return undefined;
      }
    }
  }

  /** The card fields every answer shows of a row. */
  private sameCard(row: number, shown: Record<string, unknown>): string | undefined {
    const card = this.world.cards[this.s.rows[row].card];
    return shown.bank_card === card.masked && shown.open_bank === 'ICBC' && shown.bank_card_type === 0
      ? undefined
      : `card ${card.masked} ICBC debit, got ${JSON.stringify(shown)}`;
  }

  private sameId(row: number, id: unknown): string | undefined {
    const known = this.s.rows[row].id;
    if (known !== undefined) return known === id ? undefined : `card_id ${known} (row ${row}), got ${String(id)}`;
    if (typeof id !== 'string' || !/^card_[0-9a-f]{16}$/.test(id)) return `a card_id, got ${String(id)}`;
    if (this.s.rows.some((r) => r.id === id)) return `a new card_id for row ${row}, got ${id}, another row's`;
    this.s.rows[row].id = id;
    return undefined;
  }

  /** A user's token for a card is the same every time the list shows it. */
  private sameToken(user: number, row: number, token: unknown): string | undefined {
    const key = unbindingKey(user, row);
    const known = this.s.tokens[key];
    if (known !== undefined) return known === token ? undefined : `extra_info.card_token ${known} as before, got ${String(token)}`;
    if (typeof token !== 'string' || !token.startsWith(`v1.${this.s.rows[row].id}.`))
      return `a card_token naming ${this.s.rows[row].id}, got ${String(token)}`;
    this.s.tokens[key] = token;
    return undefined;
  }

  private sameTime(stamp: Stamp, text: unknown, field: string): string | undefined {
    if (stamp.exact !== undefined) return stamp.exact === text ? undefined : `${field} ${stamp.exact} as before, got ${String(text)}`;
    const at = typeof text === 'string' ? Date.parse(text) : NaN;
    if (!(at >= stamp.t && at <= stamp.t + TIME_TOLERANCE_MS))
      return `${field} about ${new Date(stamp.t).toISOString()}, got ${String(text)}`;
    stamp.exact = text as string;
    return undefined;
  }

  private sameStatus(of: Status, data: Record<string, unknown>): string | undefined {
    const keys = (...names: string[]) =>
      JSON.stringify(Object.keys(data).sort()) === JSON.stringify(['status', ...names].sort())
        ? undefined
        : `fields ${['status', ...names].join(', ')}, got ${JSON.stringify(data)}`;
    if (data.status !== of.status) return `status ${of.status}${of.status === 'FAILED' ? ` ${of.sub}` : ''}, got ${JSON.stringify(data)}`;
    switch (of.status) {
      case 'NONE':
        return keys();
      case 'FAILED':
        return keys('sub_code') ?? (data.sub_code === of.sub ? undefined : `FAILED ${of.sub}, got ${JSON.stringify(data)}`);
      case 'SMS_SENT':
        return keys('code_expires_at') ?? this.sameTime(this.s.flows[of.flow].expires!, data.code_expires_at, 'code_expires_at');
      case 'BOUND':
        return (
          keys('card_id', 'bank_card', 'open_bank', 'bank_card_type', 'bound_at') ??
          this.sameId(of.row, data.card_id) ??
          this.sameCard(of.row, data) ??
          this.sameTime(this.s.bindings[of.binding]!.at, data.bound_at, 'bound_at')
        );
      case 'UNBOUND':
        return (
          keys('card_id', 'bank_card', 'open_bank', 'bank_card_type', 'unbound_at') ??
          this.sameId(of.row, data.card_id) ??
          this.sameCard(of.row, data) ??
          this.sameTime(this.s.unbindings[of.unbinding].unbound!, data.unbound_at, 'unbound_at')
        );
    }
  }
}

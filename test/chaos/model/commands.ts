// The commands fast-check strings into sequences: one request, duplicates of one request sent together (same nonce or
// new nonces), different users' requests sent together, a request of the history sent again, and business time moving
// on. After each step the answers must be those the model predicts (for requests sent together: those of some order
// of them), and the invariants hold.
import fc from 'fast-check';
import type pg from 'pg';
import { Driver, transient, type Answer, type Sent } from './driver.ts';
import {
  CODE_MAX_ATTEMPTS,
  CODE_TTL_MS,
  DAY_MS,
  flowKey,
  HOUR_MS,
  Model,
  SMS_PER_CARD_HOUR,
  SMS_PER_MOBILE_DAY,
  SMS_PER_MOBILE_HOUR,
  type Expected,
  type Request,
  type Variant,
} from './model.ts';
import { USERS } from './world.ts';

/**
 * Business time moves by 11 s before every step, and by multiples of 11 s when a command says so: 11 divides none of
 * the windows (60 s resend, 300 s code, 1 h, 1 day), so no two events are ever within 3 s of a window's edge, and the
 * milliseconds a request takes never decide which side of it they fall.
 */
export const TICK_MS = 11_000;

/** A request before it is sent: what to do, with the concrete values (which code, which card id) chosen at send time. */
export type Spec =
  | { op: 'first'; user: number; card: number; target: Target; variant: Variant; codeField: 'absent' | 'null' | 'empty' }
  | { op: 'confirm'; user: number; card: number; target: Target; variant: Variant; code: 'right' | 'wrong' | 'stale'; wrong: number }
  | { op: 'malformed'; user: number; card: number; bad: number }
  | { op: 'existing'; user: number; card: number; target: Target; wrongBank: boolean; byToken: boolean }
  | { op: 'list'; user: number }
  | { op: 'query'; user: number; card: number; target: Target; byId: boolean }
  | { op: 'unbind'; user: number; card: number; target: Target; by: 'number' | 'id' | 'token' };

type Target = 'any' | 'latest';

const WRONG_CODES = ['111111', '222222', '333333', '444444', '555555', '666666', '777777'];
const MALFORMED_CODES: (string | number)[] = ['12345', '1234567', 'abcdef', '１２３４５６', 123456];

export interface Entry {
  request: Request;
  sent: Sent;
  answer: Answer;
}

/** What the test knows: the model, the requests sent (for retries), and a ledger of codes kept apart from the model. */
export interface Ctx {
  model: Model;
  history: Entry[];
  ledger: Ledger;
  /** business time at the sequence's start */
  start: number;
  /** each step with its requests and answers, printed with a failure */
  transcript: string[];
  steps: number;
}

export interface Real {
  driver: Driver;
  db: pg.Client;
}

// ---- choosing and describing requests

const user = fc.integer({ min: 0, max: 3 });
// the plain card most, the one whose agreement's first ending fails next, the rejected one least
const card = fc.oneof(
  { arbitrary: fc.constant(0), weight: 5 },
  { arbitrary: fc.constant(1), weight: 4 },
  { arbitrary: fc.constant(2), weight: 1 },
);
/** 'latest': the (user, card) of the newest text (first call, confirmation) or binding (the others), if any */
const target = fc.oneof(
  { arbitrary: fc.constant<'any' | 'latest'>('latest'), weight: 4 },
  { arbitrary: fc.constant<'any' | 'latest'>('any'), weight: 1 },
);
const variant = fc.oneof(
  { arbitrary: fc.constant<Variant>('normal'), weight: 8 },
  { arbitrary: fc.constant<Variant>('other-mobile'), weight: 2 },
  { arbitrary: fc.constant<Variant>('wrong-bank'), weight: 1 },
);

export const specArb: fc.Arbitrary<Spec> = fc.oneof(
  {
    arbitrary: fc.record({ op: fc.constant('first'), user, card, target, variant, codeField: fc.constantFrom('absent', 'null', 'empty') }),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      op: fc.constant('confirm'),
      user,
      card,
      target,
      variant,
      code: fc.constantFrom('right', 'right', 'right', 'wrong', 'wrong', 'stale'),
      wrong: fc.nat(6),
    }),
    weight: 7,
  },
  { arbitrary: fc.record({ op: fc.constant('malformed'), user, card, bad: fc.nat(MALFORMED_CODES.length - 1) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('existing'), user, card, target, wrongBank: fc.boolean(), byToken: fc.boolean() }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('list'), user }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('query'), user, card, target, byId: fc.boolean() }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('unbind'), user, card, target, by: fc.constantFrom('number', 'id', 'token') }), weight: 3 },
);

/** The mobile a bindCard spec texts (the same in every world), or undefined. */
function mobileOf(spec: Spec): number | undefined {
  if (spec.op !== 'first' && spec.op !== 'confirm') return undefined;
  return spec.variant === 'other-mobile' ? 1 - USERS[spec.user].mobile : USERS[spec.user].mobile;
}

export function describe(spec: Spec): string {
  const latest = 'target' in spec && spec.target === 'latest';
  const who = latest ? 'newest flow:' : `u${spec.user + 1}`;
  if (spec.op === 'list') return `${who} list`;
  const c = latest ? '' : ` C${spec.card + 1}`;
  const v = 'variant' in spec && spec.variant !== 'normal' ? ` ${spec.variant}` : '';
  switch (spec.op) {
    case 'first':
      return `${who} first${c}${v}${spec.codeField === 'absent' ? '' : ` (verify_code ${spec.codeField})`}`;
    case 'confirm':
      return `${who} confirm${c}${v} ${spec.code === 'wrong' ? `wrong#${spec.wrong}` : `${spec.code} code`}`;
    case 'malformed':
      return `${who} confirm${c} malformed code ${JSON.stringify(MALFORMED_CODES[spec.bad])}`;
    case 'existing':
      return `${who} existing${c}${spec.byToken ? ' by extra_info' : ''}${spec.wrongBank ? ' wrong bank' : ''}`;
    case 'query':
      return `${who} query${c}${spec.byId ? ' by card_id' : ''}`;
    case 'unbind':
      return `${who} unbind${c} by ${spec.by}`;
  }
}

/** Of a card's rows, the one a card_id or token names for this user: one they have or had, else any seen. */
function rowFor(model: Model, user: number, card: number, need: 'id' | 'token'): number | undefined {
  const rows = model.s.rows.map((row, i) => ({ row, i })).filter(({ row }) => row.card === card && row.id !== undefined);
  const ok = rows.filter(({ i }) => (need === 'token' ? model.s.tokens[`${user}/${i}`] !== undefined : true));
  const mine = ok.filter(({ i }) => model.bindingOf(user, i) !== undefined || model.s.unbindings[`${user}/${i}`] !== undefined);
  return (mine.at(-1) ?? (need === 'id' ? ok.at(-1) : undefined))?.i;
}

/**
 * A spec aimed at 'latest' is about the newest flow texted (first calls and confirmations, with that flow's mobile) or
 * the newest binding (the others), so that sequences go on with what they started instead of mostly naming nothing.
 */
function retarget(model: Model, spec: Spec): Spec {
  if (!('target' in spec) || spec.target === 'any') return spec;
  const texted = model.s.sms.at(-1)?.flow;
  const bound = model.s.bindings.filter((b) => b !== null).at(-1);
  if (spec.op === 'first' || spec.op === 'confirm') {
    if (!texted) return spec;
    const [u, c] = texted.split('/').map(Number);
    const own = model.world.users[u].mobile === model.s.flows[texted].mobile;
    return { ...spec, user: u, card: c, variant: spec.variant === 'wrong-bank' ? 'wrong-bank' : own ? 'normal' : 'other-mobile' };
  }
  if (!bound) return spec;
  return { ...spec, user: bound.user, card: model.s.rows[bound.row].card };
}

/** The concrete request: the code the phone showed, a card id or token the user was given (else the number). */
export function resolve(model: Model, given: Spec): Request {
  const spec = retarget(model, given);
  switch (spec.op) {
    case 'first':
      return { op: 'first', user: spec.user, card: spec.card, variant: spec.variant, codeField: spec.codeField };
    case 'list':
      return spec;
    case 'malformed':
      return { op: 'malformed', user: spec.user, card: spec.card, code: MALFORMED_CODES[spec.bad] };
    case 'confirm': {
      const flow = model.s.flows[flowKey(spec.user, spec.card)];
      const current = flow?.code;
      let code = WRONG_CODES[spec.wrong % WRONG_CODES.length];
      if (code === current) code = WRONG_CODES[(spec.wrong + 1) % WRONG_CODES.length];
      if (spec.code === 'right' && current !== undefined) code = current;
      if (spec.code === 'stale' && flow?.pastCodes.length) code = flow.pastCodes.at(-1)!;
      return { op: 'confirm', user: spec.user, card: spec.card, variant: spec.variant, code };
    }
    case 'existing': {
      const row = spec.byToken ? rowFor(model, spec.user, spec.card, 'token') : undefined;
      return {
        op: 'existing',
        user: spec.user,
        card: spec.card,
        wrongBank: spec.wrongBank,
        ...(row === undefined ? {} : { tokenRow: row }),
      };
    }
    case 'query': {
      const row = spec.byId ? rowFor(model, spec.user, spec.card, 'id') : undefined;
      return { op: 'query', user: spec.user, card: spec.card, ...(row === undefined ? {} : { row }) };
    }
    case 'unbind': {
      const row = spec.by === 'number' ? undefined : rowFor(model, spec.user, spec.card, spec.by);
      return row === undefined
        ? { op: 'unbind', user: spec.user, card: spec.card, by: 'number' }
        : { op: 'unbind', user: spec.user, card: spec.card, by: spec.by, row };
    }
  }
}

// ---- the ledger: the invariants on codes, kept from the answers alone

interface IssuedCode {
  value: string;
  issuedAt: number;
  wrong: string[];
  used: boolean;
}

export class Ledger {
  codes: Record<string, IssuedCode[]> = {};
  /** (user/card) seen bound by the answers */
  bound = new Set<string>();

  issued(flow: string, value: string, at: number): void {
    (this.codes[flow] ??= []).push({ value, issuedAt: at, wrong: [], used: false });
  }

  /** A code works at most once, only while it is the flow's newest, before it expires and before its attempts run out. */
  answered(r: Request, a: Answer, now: number, cardOf: (masked: string) => number): void {
    const body = a.body as { code?: number; data?: { status?: string; sub_code?: string; cards?: { bank_card: string }[] } };
    const key = 'card' in r ? flowKey(r.user, r.card) : '';
    if (r.op === 'confirm') {
      const newest = this.codes[key]?.at(-1);
      if (body.data?.status === 'BOUND' && !this.bound.has(key)) {
        const broken = !newest
          ? 'no code was ever sent for this flow'
          : newest.value !== r.code
            ? `the code ${r.code} is not the flow's newest (${newest.value})`
            : newest.used
              ? `the code ${r.code} bound the card once already`
              : now >= newest.issuedAt + CODE_TTL_MS
                ? `the code ${r.code} expired at ${new Date(newest.issuedAt + CODE_TTL_MS).toISOString()}`
                : new Set(newest.wrong).size >= CODE_MAX_ATTEMPTS
                  ? `the code ${r.code} was killed by ${CODE_MAX_ATTEMPTS} wrong values`
                  : undefined;
        if (broken) throw new Error(`invariant: a code works at most once, never after expiry or its attempt limit: ${broken}`);
        newest!.used = true;
      }
      if (newest && r.code !== newest.value && ['CODE_INCORRECT', 'CODE_ATTEMPTS_EXCEEDED'].includes(body.data?.sub_code ?? '')) {
        newest.wrong.push(r.code);
      }
    }
    if ((r.op === 'confirm' || r.op === 'first' || r.op === 'existing') && body.data?.status === 'BOUND') this.bound.add(key);
    if (r.op === 'unbind' && body.data?.status === 'UNBOUND') this.bound.delete(key);
    if (r.op === 'list' && body.data?.cards) {
      for (const k of [...this.bound].filter((k) => k.startsWith(`${r.user}/`))) this.bound.delete(k);
      for (const c of body.data.cards) this.bound.add(flowKey(r.user, cardOf(c.bank_card)));
    }
  }
}

// ---- running a step

function permutations(n: number): number[][] {
  if (n <= 1) return [[...Array(n).keys()]];
  return permutations(n - 1).flatMap((p) => [...Array(n).keys()].map((i) => [...p.slice(0, i), n - 1, ...p.slice(i)]));
}

function show(a: Answer): string {
  return `${a.status} ${a.text}`;
}

function showExpected(e: Expected, model: Model): string {
  const id = (row: number) => model.s.rows[row]?.id ?? `row ${row} (no card_id seen yet)`;
  switch (e.kind) {
    case 'bound':
      return `BOUND ${id(e.row)}`;
    case 'unbound':
      return `UNBOUND ${id(e.row)}`;
    case 'refused':
    case 'unbind-refused':
      return e.sub;
    case 'status':
      return `status ${e.of.status}${e.of.status === 'FAILED' ? ` ${e.of.sub}` : ''}${'row' in e.of ? ` ${id(e.of.row)}` : ''}`;
    case 'cards':
      return `cards [${e.rows.map(id).join(', ')}]`;
    default:
      return e.kind;
  }
}

/**
 * The model after requests that ran together (or one alone), if some order of them explains every answer: each request
 * gets the model's answer for it in that order. Throws what each order got wrong otherwise.
 */
function linearize(ctx: Ctx, items: { request: Request; label: string; answer: Answer }[]): Model {
  const misses: string[] = [];
  for (const order of permutations(items.length)) {
    const m = ctx.model.clone();
    let miss: string | undefined;
    for (const i of order) {
      const { request, label, answer } = items[i];
      const before = m.clone();
      const e = m.apply(request);
      const problem = m.check(e, answer.status, answer.body);
      if (problem) {
        miss = `${label}: expected ${showExpected(e, before)} (${problem}); got ${show(answer)}`;
        break;
      }
    }
    if (!miss) {
      for (const i of order) {
        ctx.ledger.answered(items[i].request, items[i].answer, m.s.now, (masked) => cardIndex(m, masked));
        count(items[i].request, items[i].answer);
      }
      return m;
    }
    misses.push(items.length > 1 ? `in the order ${order.map((i) => i + 1).join(',')}: ${miss}` : miss);
  }
  throw new Error(`answer differs from the model at business time +${elapsed(ctx)}:\n  ${misses.join('\n  ')}`);
}

/** How often each operation got each answer: what the sequences reached. */
export const coverage = new Map<string, number>();

function count(r: Request, a: Answer): void {
  const b = a.body as { code?: number; data?: { status?: string; sub_code?: string } };
  const what = `${r.op} → ${a.status === 200 ? (b.data?.status ?? '') : a.status} ${b.data?.sub_code ?? ''}`.trim();
  coverage.set(what, (coverage.get(what) ?? 0) + 1);
}

function cardIndex(model: Model, masked: string): number {
  return model.world.cards.findIndex((c) => c.masked === masked);
}

function elapsed(ctx: Ctx): string {
  return `${(ctx.model.s.now - ctx.start) / 1000}s`;
}

/** After each step: codes read from the phone, texts counted against the model and the limits, one owner per card. */
async function afterStep(ctx: Ctx, real: Real, smsBefore: number): Promise<void> {
  const { model } = ctx;
  const { now } = model.s;
  const sent = model.s.sms.slice(smsBefore);
  for (const [m, mobile] of model.world.mobiles.entries()) {
    const messages = await real.driver.phone(mobile, now);
    const expected = model.s.sms.filter((x) => x.mobile === m).length;
    if (messages.length !== expected) {
      throw new Error(
        `invariant: SMS sent equals the model's: mobile ${m + 1} has ${messages.length} texts, the model expects ${expected}`,
      );
    }
    const within = (ms: number) => messages.filter((x) => Date.parse(x.sent_at) > now - ms).length;
    if (within(HOUR_MS) > SMS_PER_MOBILE_HOUR || within(DAY_MS) > SMS_PER_MOBILE_DAY) {
      throw new Error(`invariant: SMS limits: mobile ${m + 1} got ${within(HOUR_MS)} texts in the last hour, ${within(DAY_MS)} in the day`);
    }
    const mine = sent.filter((x) => x.mobile === m);
    if (mine.length > 1) throw new Error(`two texts to mobile ${m + 1} in one step: the model cannot tell their codes apart`);
    if (mine.length === 1) {
      const flow = model.s.flows[mine[0].flow];
      flow.code = messages[0].code;
      ctx.ledger.issued(mine[0].flow, messages[0].code, now);
    }
  }
  for (const c of model.world.cards.keys()) {
    if (model.smsCount(now - HOUR_MS, { card: c }) > SMS_PER_CARD_HOUR)
      throw new Error(`invariant: SMS limits: card ${c + 1} over ${SMS_PER_CARD_HOUR} an hour`);
  }
  const { rows } = await real.db.query<{ card_hash: string }>(
    `SELECT c.card_hash FROM bindings b JOIN cards c ON c.id = b.card_id GROUP BY c.card_hash HAVING count(DISTINCT c.person_id) > 1`,
  );
  if (rows.length) throw new Error(`invariant: at most one owner per card: ${rows.length} cards are bound to two people`);
}

/** A request and its answer, as the transcript shows them. */
function note(ctx: Ctx, request: Request, answer: Answer): void {
  const { body } = request.op === 'list' ? { body: { user_id: ctx.model.world.users[request.user].id } } : { body: request };
  ctx.transcript.push(`     ${JSON.stringify(body)} → ${show(answer)}`);
}

function remember(ctx: Ctx, entry: Entry): void {
  ctx.history.push(entry);
  if (ctx.history.length > 12) ctx.history.shift();
}

abstract class Step implements fc.AsyncCommand<Ctx, Real> {
  /** Every step can run in any state (the model says what its answer should be); a repeat needs a request to repeat. */
  check(ctx: Readonly<Ctx>): boolean {
    return ctx.steps >= 0;
  }

  async run(ctx: Ctx, real: Real): Promise<void> {
    ctx.model.s.now += TICK_MS;
    ctx.transcript.push(`${++ctx.steps}. [+${elapsed(ctx)}] ${this.toString()}`);
    const smsBefore = ctx.model.s.sms.length;
    try {
      await this.act(ctx, real);
      await afterStep(ctx, real, smsBefore);
    } catch (e) {
      if (e instanceof Error) e.message += `\nThe sequence, as run:\n  ${ctx.transcript.join('\n  ')}`;
      throw e;
    }
  }

  abstract act(ctx: Ctx, real: Real): Promise<void>;
  abstract toString(): string;
}

/** One request. */
export class Send extends Step {
  constructor(readonly spec: Spec) {
    super();
  }

  async act(ctx: Ctx, real: Real): Promise<void> {
    const request = resolve(ctx.model, this.spec);
    const sent = real.driver.prepare(ctx.model, request);
    const answer = await real.driver.send(sent, ctx.model.s.now);
    note(ctx, request, answer);
    ctx.model = linearize(ctx, [{ request, label: describe(this.spec), answer }]);
    remember(ctx, { request, sent, answer });
  }

  toString(): string {
    return describe(this.spec);
  }
}

/** Past the resend window, the newest flow texted asks again: a new code, until the SMS limits say no. */
export class Resend extends Step {
  async act(ctx: Ctx, real: Real): Promise<void> {
    ctx.model.s.now += 6 * TICK_MS;
    await new Send({ op: 'first', user: 0, card: 0, target: 'latest', variant: 'normal', codeField: 'absent' }).act(ctx, real);
  }

  toString(): string {
    return `resend after ${(7 * TICK_MS) / 1000}s for the newest flow texted`;
  }
}

/** Wrong codes one after another for the newest flow texted: distinct values, so the attempt limit is reached. */
export class WrongCodes extends Step {
  constructor(readonly count: number) {
    super();
  }

  async act(ctx: Ctx, real: Real): Promise<void> {
    for (let i = 0; i < this.count; i++) {
      await new Send({ op: 'confirm', user: 0, card: 0, target: 'latest', variant: 'normal', code: 'wrong', wrong: i }).act(ctx, real);
    }
  }

  toString(): string {
    return `${this.count} distinct wrong codes for the newest flow texted`;
  }
}

/** Copies of one request sent at once: with one nonce (one is processed, the others get its answer) or new nonces. */
export class Duplicates extends Step {
  constructor(
    readonly spec: Spec,
    readonly copies: number,
    readonly sameNonce: boolean,
  ) {
    super();
  }

  async act(ctx: Ctx, real: Real): Promise<void> {
    const request = resolve(ctx.model, this.spec);
    const first = real.driver.prepare(ctx.model, request);
    const sents = [...Array(this.copies).keys()].map((i) => (this.sameNonce || i === 0 ? first : real.driver.prepare(ctx.model, request)));
    const answers = await Promise.all(sents.map((s) => real.driver.send(s, ctx.model.s.now)));
    for (const answer of answers) note(ctx, request, answer);
    // a repeated request gets the same answer, transient answers excepted
    const kept = answers.filter((a) => !transient(a));
    const differ = this.sameNonce
      ? kept.some((a) => a.text !== kept[0].text)
      : kept.some((a) => JSON.stringify(a.body) !== JSON.stringify(kept[0].body));
    if (differ) throw new Error(`invariant: duplicates sent together get the same answer; got\n  ${answers.map(show).join('\n  ')}`);
    // with one nonce, every answer after the first kept one is that one's, replayed
    const processed = this.sameNonce ? [...answers.filter(transient), ...kept.slice(0, 1)] : answers;
    ctx.model = linearize(
      ctx,
      processed.map((answer, i) => ({ request, label: `copy ${i + 1} of ${describe(this.spec)}`, answer })),
    );
    remember(ctx, { request, sent: first, answer: kept[0] ?? answers[0] });
  }

  toString(): string {
    return `${this.copies} × ${describe(this.spec)} together (${this.sameNonce ? 'one nonce' : 'new nonces'})`;
  }
}

/** Different users' requests sent at once. */
export class Together extends Step {
  constructor(readonly specs: Spec[]) {
    super();
  }

  async act(ctx: Ctx, real: Real): Promise<void> {
    const requests = this.specs.map((s) => resolve(ctx.model, s));
    const sents = requests.map((r) => real.driver.prepare(ctx.model, r));
    const answers = await Promise.all(sents.map((s) => real.driver.send(s, ctx.model.s.now)));
    requests.forEach((request, i) => note(ctx, request, answers[i]));
    ctx.model = linearize(
      ctx,
      requests.map((request, i) => ({ request, label: describe(this.specs[i]), answer: answers[i] })),
    );
    requests.forEach((request, i) => remember(ctx, { request, sent: sents[i], answer: answers[i] }));
  }

  toString(): string {
    return `together [${this.specs.map(describe).join(' | ')}]`;
  }
}

/** A request sent before, again: its very bytes and nonce (its stored answer, byte for byte), or signed anew. */
export class Repeat extends Step {
  constructor(
    readonly back: number,
    readonly sameNonce: boolean,
  ) {
    super();
  }

  check(ctx: Readonly<Ctx>): boolean {
    return ctx.history.length > 0;
  }

  async act(ctx: Ctx, real: Real): Promise<void> {
    const entry = ctx.history[ctx.history.length - 1 - (this.back % ctx.history.length)];
    const label = `${this.sameNonce ? 'same nonce' : 'new nonce'}: ${JSON.stringify(entry.request)}`;
    if (this.sameNonce) {
      const answer = await real.driver.send(entry.sent, ctx.model.s.now);
      note(ctx, entry.request, answer);
      if (!transient(entry.answer)) {
        if (answer.text !== entry.answer.text || answer.status !== entry.answer.status) {
          throw new Error(
            `invariant: a retry with the same nonce gets the stored answer: first ${show(entry.answer)}, retry ${show(answer)}`,
          );
        }
        return;
      }
      // a transient answer is not kept: the same bytes are processed afresh
      ctx.model = linearize(ctx, [{ request: entry.request, label, answer }]);
      entry.answer = answer;
      return;
    }
    const sent = real.driver.prepare(ctx.model, entry.request);
    const answer = await real.driver.send(sent, ctx.model.s.now);
    note(ctx, entry.request, answer);
    ctx.model = linearize(ctx, [{ request: entry.request, label, answer }]);
    remember(ctx, { request: entry.request, sent, answer });
  }

  toString(): string {
    return `repeat request -${this.back + 1} (${this.sameNonce ? 'same nonce' : 'new nonce'})`;
  }
}

/** Business time moves on: past the resend window, a code's life, the hourly or the daily limits. */
export class Advance extends Step {
  constructor(readonly ticks: number) {
    super();
  }

  async run(ctx: Ctx): Promise<void> {
    ctx.model.s.now += this.ticks * TICK_MS;
    ctx.transcript.push(`${++ctx.steps}. ${this.toString()}`);
  }

  act(): Promise<void> {
    return Promise.resolve();
  }

  toString(): string {
    return `advance ${(this.ticks * TICK_MS) / 1000}s`;
  }
}

const bindOrUnbind = specArb.filter((s) => ['first', 'confirm', 'existing', 'unbind'].includes(s.op));

/** Requests of different users; the first calls and confirmations among them text different mobiles. */
const togetherArb = fc
  .array(
    bindOrUnbind.map((s) => ({ ...s, target: 'any' }) as Spec),
    { minLength: 2, maxLength: 3 },
  )
  .filter((specs) => {
    const users = specs.map((s) => s.user);
    const mobiles = specs.map(mobileOf).filter((m) => m !== undefined);
    return new Set(users).size === users.length && new Set(mobiles).size === mobiles.length;
  });

export const commandArbs: fc.Arbitrary<fc.AsyncCommand<Ctx, Real>>[] = [
  specArb.map((s) => new Send(s)),
  specArb.map((s) => new Send(s)),
  specArb.map((s) => new Send(s)),
  specArb.map((s) => new Send(s)),
  fc.tuple(bindOrUnbind, fc.integer({ min: 2, max: 3 }), fc.boolean()).map(([s, n, same]) => new Duplicates(s, n, same)),
  togetherArb.map((specs) => new Together(specs)),
  fc.tuple(fc.nat(3), fc.boolean()).map(([back, same]) => new Repeat(back, same)),
  // 66 s: past the resend window; 308 s: past a code's life; 3608 s: past the hour; 86405 s: past the day
  fc.constantFrom(1, 6, 6, 6, 28, 328, 7855).map((ticks) => new Advance(ticks)),
  fc.integer({ min: 2, max: 5 }).map((n) => new WrongCodes(n)),
  fc.constant(null).map(() => new Resend()),
  fc.constant(null).map(() => new Resend()),
];

export function newCtx(model: Model): Ctx {
  return { model, history: [], ledger: new Ledger(), start: model.s.now, transcript: [], steps: 0 };
}

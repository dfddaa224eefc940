import type { components } from '../../generated/api-types.ts';
import { randomInt } from 'node:crypto';
import type { Vault } from '../crypto/vault.ts';
import type { Config } from '../config.ts';
import { crashPoint } from '../faults.ts';
import type { Logger } from '../log.ts';
import {
  ProviderRefused,
  ProviderTimeout,
  withDeadline,
  type AuthResult,
  type CardAuthenticator,
  type CardDetails,
  type SmsSender,
} from '../providers/provider-types.ts';
import { poll } from '../lib/poll.ts';
import { maskCard, normalizeNewCard, reviewCard, type NewCard } from './card-rules.ts';
import type { Channel } from './channel.ts';
import { eventKey } from './events.ts';
import { bound, failure, smsSent, type Outcome, type SubCode } from './outcomes.ts';
import type { BindingStores, FlowKey, LifecycleEvent, Owner, Tx, Verification } from './stores.ts';

/** What the new-card flow reads of a bindCard request. */
export type NewCardRequest = Pick<
  components['schemas']['BindCardRequest'],
  | 'user_id'
  | 'bank_card'
  | 'open_bank'
  | 'user_name'
  | 'id_number'
  | 'user_mobile'
  | 'bank_address'
  | 'bank_card_type'
  | 'verify_code'
  | 'notify_url'
>;

/** What the flow reads of the channel: its card types, and where its events go when the flow names no address. */
export type FlowChannel = Pick<Channel, 'code' | 'cardTypes' | 'defaultNotifyUrl'>;

export interface NewCardDeps {
  stores: BindingStores;
  vault: Vault;
  auth: CardAuthenticator;
  sms: SmsSender;
  /** business time: code expiry, SMS windows, leases */
  now: () => Date;
  log: Logger;
  /** told of what operations count (metrics); optional */
  observe?: { smsRefused(limit: 'mobile_hour' | 'mobile_day' | 'card_hour'): void };
  config: Pick<
    Config,
    | 'providerTimeoutMs'
    | 'codeTtlSeconds'
    | 'codeMaxAttempts'
    | 'resendSeconds'
    | 'smsPerMobileHour'
    | 'smsPerMobileDay'
    | 'smsPerCardHour'
    | 'authReviewsPerCardDay'
    | 'authReviewsPerIdDay'
    | 'authReviewsPerMobileDay'
    | 'ownershipProbesPerCard'
  >;
}

/** What a phase decided: an answer, wait for the request holding the lease, or an outside call to make. */
type Step = Decided | { wait: true };
type Decided = { done: Outcome } | OutsideCall;
type OutsideCall =
  { call: 'auth'; flow: Verification } | { call: 'sms'; flow: Verification; code: string } | { call: 'sign'; flow: Verification };

/** How often a request waiting for another one's lease looks again. */
const POLL_MS = 25;
/** Kept free of the deadline for recording a call's result and answering. */
const ANSWER_MARGIN_MS = 100;

/** What the request says about the card, in the forms the flow uses. */
interface Request {
  key: FlowKey;
  card: NewCard;
  details: CardDetails;
  bankAddress: string | null;
  /** the callback address this request gives, if any */
  notifyUrl: string | null;
  channel: FlowChannel;
}

/**
 * The new-card flow (bind_card_src=1). One verification row per (channel, user, card) advances through atomic phases:
 * card review, code by SMS, confirmation and agreement signing. No transaction spans an outside call: a request about
 * to call out takes a lease on the row (busy_until) and commits; a duplicate arriving meanwhile waits for the lease to
 * end and then answers from the row, so it gets the same answer and causes no second call.
 */
export class NewCardFlow {
  constructor(private readonly deps: NewCardDeps) {}

  /** `deadline` (epoch ms): when the answer must be ready. */
  async run(channel: FlowChannel, body: NewCardRequest, deadline: number): Promise<Outcome> {
    const card = normalizeNewCard(body, this.deps.now());
    const request = this.describe(channel, body, card);
    const { stores } = this.deps;
    const refused = reviewCard(card, channel.cardTypes, body.bank_card_type != null);
    // the same refusal of the same details is one failed attempt, however often it is sent
    if (refused) {
      return stores.transaction(async (tx) => {
        // the address it gives is the flow's newest all the same
        if (request.notifyUrl) await stores.verifications.rememberNotifyUrl(tx, request.key, request.notifyUrl);
        return this.fail(tx, request, refused, `details:${request.key.detailsHash}`);
      });
    }
    const code = body.verify_code || undefined;
    // A confirmation retried after the binding (or for a card bound to someone else) is answered without a lock.
    if (code !== undefined) {
      const owner = await stores.bindings.ownerOf(request.key);
      if (owner?.mine) return bound(owner.cardId);
      const owned = owner && (await stores.transaction((tx) => this.ownership(owner, request, tx)));
      if (owned) return owned;
    }
    // Decides the next step, waiting out another request's lease (past the deadline: undefined).
    const decide = () =>
      poll(
        async () => {
          const step = await stores.transaction((tx) =>
            code === undefined ? this.decideFirstCall(tx, request, deadline) : this.decideConfirmation(tx, request, code),
          );
          return 'wait' in step ? undefined : step;
        },
        { intervalMs: POLL_MS, deadline },
      );
    let step = await decide();
    while (step && !('done' in step)) step = (await this.callAndRecord(step, request, deadline)) ?? (await decide());
    return step ? step.done : failure('PROVIDER_TIMEOUT');
  }

  /**
   * A bound card is final: bound to this user (the same answer again), or to another person (502). The holder adding it
   * under another account goes on, unless the card has been tried with too many other people's ID numbers in the last
   * day: then every such request is 502 whatever its ID number, so the answers cannot tell which ID is the holder's.
   */
  private async ownership(owner: Owner | undefined, request: Request, tx: Tx): Promise<Outcome | undefined> {
    if (!owner) return undefined;
    if (owner.mine) return bound(owner.cardId);
    const { key } = request;
    const others = await this.deps.stores.bindings.countProbes(tx, key, !owner.samePerson, this.deps.now());
    if (!owner.samePerson || others >= this.deps.config.ownershipProbesPerCard) {
      return this.fail(tx, request, 'CARD_BOUND_TO_OTHER', `owner:${key.idHash}:${owner.cardId}`);
    }
    return undefined;
  }

  /**
   * A refused attempt: kept as the card's last refusal for queryBinding, and told to the partner (binding.failed) in
   * the same transaction. `attempt` names what failed: the event is sent once per attempt, not again for its repeats.
   */
  private async fail(tx: Tx, request: Request, sub: SubCode, attempt: string, flow?: Verification): Promise<Outcome> {
    const { stores, vault } = this.deps;
    const { key, card } = request;
    const now = this.deps.now();
    await stores.bindings.recordFailure(tx, { channel: key.channel, userId: key.userId, cardHash: key.cardHash }, sub, now);
    const event: LifecycleEvent = {
      key: eventKey(vault, `failed:${key.channel}:${key.userId}:${key.cardHash}:${attempt}:${sub}`),
      type: 'binding.failed',
      channel: key.channel,
      userId: key.userId,
      created: now,
      data: { card_id: null, bank_card: maskCard(card.card), open_bank: card.bank, bank_card_type: card.cardType, sub_code: sub },
    };
    await stores.events.emit(tx, event, await this.notifyUrlOf(tx, request, flow));
    return failure(sub);
  }

  /**
   * Where the flow's events go: the newest address given for it, else the channel's default. The flow's row is read
   * without a lock: this runs where other locks are held, and a lock taken here would take them in another order.
   */
  private async notifyUrlOf(tx: Tx, request: Request, flow?: Verification): Promise<string | null> {
    const given = request.notifyUrl ?? (flow ? flow.notify_url : await this.deps.stores.verifications.notifyUrlOf(tx, request.key));
    return given ?? request.channel.defaultNotifyUrl;
  }

  private describe(channel: FlowChannel, body: NewCardRequest, card: NewCard): Request {
    const { vault } = this.deps;
    const bankAddress = body.bank_address ?? null;
    return {
      // as a URL reads it (host in lower case and punycode): the address kept and delivered to is the one checked
      notifyUrl: body.notify_url === undefined ? null : new URL(body.notify_url).href,
      channel,
      key: {
        channel: channel.code,
        userId: body.user_id,
        cardHash: vault.hash('card', card.card),
        idHash: vault.hash('id', card.idNumber),
        mobileHash: vault.hash('mobile', card.mobile),
        detailsHash: vault.hash(
          'details',
          JSON.stringify([card.idNumber, card.name, card.mobile, card.bank, card.cardType, bankAddress ?? '']),
        ),
      },
      card,
      details: {
        cardNumber: card.card,
        idNumber: card.idNumber,
        name: card.name,
        mobile: card.mobile,
        bank: card.bank,
        cardType: card.cardType,
      },
      bankAddress,
    };
  }

  private busy(flow: Verification): boolean {
    return flow.busy_until !== null && flow.busy_until > this.deps.now();
  }

  /** A lease outlasts the outside call it covers. */
  private lease(): Date {
    return new Date(this.deps.now().getTime() + this.deps.config.providerTimeoutMs + 500);
  }

  private async decideFirstCall(tx: Tx, request: Request, deadline: number): Promise<Step> {
    const { verifications } = this.deps.stores;
    const { key } = request;
    // The row's lock is taken with a snapshot older than any lock wait, so a binding committed meanwhile may be missed
    // here: the SMS decision reads ownership again after its own lock, so at worst a card review is wasted.
    const opened = await verifications.openForFirstCall(tx, key, this.deps.now());
    let flow = await this.remember(tx, opened.flow, request);
    if (this.busy(flow)) return { wait: true };
    const owned = await this.ownership(opened.owner, request, tx);
    if (owned) return { done: owned };
    if (flow.details_hash !== key.detailsHash) {
      // Corrected details start the review over; the SMS limits still count what was sent.
      flow = await verifications.update(
        tx,
        flow,
        {
          details_hash: key.detailsHash,
          id_number_hash: key.idHash,
          mobile_hash: key.mobileHash,
          generation: flow.generation + 1,
          auth_status: null,
          code_hash: null,
          code_enc: null,
          code_expires_at: null,
          code_sent_at: null,
          code_attempts: 0,
          code_tried: [],
          code_verified_at: null,
        },
        this.deps.now(),
      );
    }
    return this.afterReview(tx, request, flow, deadline);
  }

  /** Keeps the callback address a request gives as the flow's newest. */
  private async remember(tx: Tx, flow: Verification, request: Request): Promise<Verification> {
    if (request.notifyUrl === null || request.notifyUrl === flow.notify_url) return flow;
    return this.deps.stores.verifications.update(tx, flow, { notify_url: request.notifyUrl }, this.deps.now());
  }

  /**
   * The first call's next step once the row is ours: the card review, then a code by SMS (or the one just sent). Both
   * outside calls spend a limit, so each is decided under the mobile's lock, with ownership read again: a card review
   * is paid per call and tells whether four elements match, so none is made when no text could follow it.
   */
  private async afterReview(tx: Tx, request: Request, flow: Verification, deadline: number): Promise<Decided> {
    const { config, stores } = this.deps;
    const { key } = request;
    const now = this.deps.now();
    if (flow.auth_status === 'REJECTED')
      return { done: await this.fail(tx, request, 'AUTH_REJECTED', `review:${flow.id}:${flow.generation}`, flow) };
    const live = flow.code_hash !== null && flow.code_attempts < config.codeMaxAttempts;
    if (live && flow.code_sent_at && now.getTime() - flow.code_sent_at.getTime() < config.resendSeconds * 1000) {
      return { done: this.codeSent() };
    }
    const { owner, counts } = await stores.limits.lockMobileAndCount(tx, key, now);
    const owned = await this.ownership(owner, request, tx);
    if (owned) return { done: owned }; // bound meanwhile, by another flow for this card
    // A code whose text is not known to have gone (the send timed out, got no answer or died with its process) goes
    // again, the same code under the same request number: the gateway sends one text for it, and whichever arrives
    // works. Its send was counted when it was issued. A send the gateway refused is forgotten (code_enc cleared in
    // record): the same number would be refused again, so a new code is issued under a new one, counted as usual.
    const unsent = live && flow.code_sent_at === null && now < flow.code_expires_at! ? this.openCode(flow) : undefined;
    const smsLimit =
      counts.smsMobileHour >= config.smsPerMobileHour
        ? 'mobile_hour'
        : counts.smsMobileDay >= config.smsPerMobileDay
          ? 'mobile_day'
          : counts.smsCardHour >= config.smsPerCardHour
            ? 'card_hour'
            : undefined;
    if (smsLimit && !unsent) {
      this.deps.observe?.smsRefused(smsLimit);
      return { done: failure('SMS_RATE_LIMITED') };
    }
    // too late for a call: spend no review and no text on it
    if (deadline - Date.now() - ANSWER_MARGIN_MS <= 0) return { done: failure('PROVIDER_TIMEOUT') };
    if (flow.auth_status === null) {
      if (
        counts.reviewsCardDay >= config.authReviewsPerCardDay ||
        counts.reviewsIdDay >= config.authReviewsPerIdDay ||
        counts.reviewsMobileDay >= config.authReviewsPerMobileDay
      ) {
        return { done: failure('AUTH_RATE_LIMITED') };
      }
      return { call: 'auth', flow: await stores.verifications.startReview(tx, flow, this.lease(), now) };
    }
    if (unsent) {
      // good until the expiry it was issued with: sent again as often as partners retry, it never lives longer
      return { call: 'sms', flow: await stores.verifications.update(tx, flow, { busy_until: this.lease() }, now), code: unsent };
    }
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const seq = flow.code_seq + 1;
    const issued = await stores.verifications.issueCode(
      tx,
      flow,
      {
        code_seq: seq,
        code_hash: this.codeHash(flow.id, seq, code),
        code_enc: this.deps.vault.seal(code),
        code_expires_at: new Date(now.getTime() + config.codeTtlSeconds * 1000),
        code_sent_at: null,
        code_attempts: 0,
        code_tried: [],
        code_verified_at: null,
        busy_until: this.lease(),
      },
      now,
    );
    return { call: 'sms', flow: issued, code };
  }

  private codeSent(): Outcome {
    return smsSent(this.deps.config.codeTtlSeconds, this.deps.config.resendSeconds);
  }

  private codeHash(verificationId: string, seq: number, code: string): string {
    return this.deps.vault.hash('code', `${verificationId}:${seq}:${code}`);
  }

  /** The flow's current code in clear, if it can be had (not kept before migration 008, or its key is retired). */
  private openCode(flow: Verification): string | undefined {
    if (flow.code_enc === null) return undefined;
    try {
      return this.deps.vault.open(flow.code_enc);
    } catch {
      return undefined;
    }
  }

  // The confirmation locks the row before it looks at ownership, so a binding that commits meanwhile is seen.
  private async decideConfirmation(tx: Tx, request: Request, code: string): Promise<Step> {
    const { config, stores } = this.deps;
    const { key } = request;
    const locked = await stores.verifications.lockForConfirmation(tx, key);
    if (locked && this.busy(locked)) return { wait: true };
    const flow = locked && (await this.remember(tx, locked, request));
    const owned = await this.ownership(await stores.bindings.ownerOf(key, tx), request, tx);
    if (owned) return { done: owned };
    // the code was spent on a binding that has been removed since: a retry must not bind the card again
    if (flow && flow.details_hash === key.detailsHash && flow.code_hash === null && flow.bound_card_id !== null) {
      return { done: failure('CARD_UNBOUND') };
    }
    if (!flow || flow.details_hash !== key.detailsHash || flow.code_hash === null) return { done: failure('CODE_NOT_ISSUED') };
    const now = this.deps.now();
    const dead = flow.code_attempts >= config.codeMaxAttempts;
    const expired = now >= flow.code_expires_at!;
    const given = this.codeHash(flow.id, flow.code_seq, code);
    const killed = () => this.fail(tx, request, 'CODE_ATTEMPTS_EXCEEDED', `code:${flow.id}:${flow.code_seq}`, flow);
    if (given === flow.code_hash) {
      if (dead) return { done: await killed() };
      // A code verified in time stays good for the signing retries that follow a gateway timeout.
      if (expired && !flow.code_verified_at) return { done: failure('CODE_EXPIRED') };
      // One agreement serves all of a person's bindings of a card: a live one binds without signing again.
      const agreement = await stores.bindings.agreementFor(tx, key, now);
      if (agreement.state === 'unsigning') return { wait: true }; // an unbinding is ending it: then sign anew
      if (agreement.state === 'live') return { done: await this.commitBinding(tx, flow, request, agreement.agreementNo) };
      return {
        call: 'sign',
        flow: await stores.verifications.update(
          tx,
          flow,
          { code_verified_at: flow.code_verified_at ?? now, busy_until: this.lease() },
          now,
        ),
      };
    }
    if (dead) return { done: await killed() };
    if (expired) return { done: failure('CODE_EXPIRED') };
    if (flow.code_tried.includes(given)) return { done: failure('CODE_INCORRECT') }; // a retry counts once
    const attempts = flow.code_attempts + 1;
    const spent = attempts >= config.codeMaxAttempts;
    // a dead code is never sent again: its sealed copy goes
    await stores.verifications.update(
      tx,
      flow,
      { code_attempts: attempts, code_tried: [...flow.code_tried, given], ...(spent ? { code_enc: null } : {}) },
      now,
    );
    return { done: spent ? await killed() : failure('CODE_INCORRECT') };
  }

  /**
   * Makes the outside call the phase asked for, then records its result in a phase of its own, which also decides the
   * step after an approved review (the SMS). Undefined: the details changed meanwhile, decide again.
   */
  private async callAndRecord(step: OutsideCall, request: Request, deadline: number): Promise<Decided | undefined> {
    const { stores, config } = this.deps;
    const budget = Math.min(config.providerTimeoutMs, deadline - Date.now() - ANSWER_MARGIN_MS);
    const { flow } = step;
    let result: AuthResult | { agreementNo: string } | undefined;
    let error: Outcome | undefined;
    let refused = false;
    try {
      result = await withDeadline(budget, (signal) => this.call(step, request.details, signal));
      crashPoint(step.call === 'auth' ? 'crash-after-card-auth' : step.call === 'sms' ? 'crash-after-sms' : 'crash-after-sign');
    } catch (e) {
      this.deps.log.warn({ call: step.call, verification: flow.id, err: e }, 'provider call failed');
      error = failure(e instanceof ProviderTimeout ? 'PROVIDER_TIMEOUT' : 'PROVIDER_ERROR');
      refused = e instanceof ProviderRefused;
    }
    try {
      return await this.record(step, request, result, error, deadline, refused);
    } catch (e) {
      // The partner's retry must find the row free, not wait out a lease that no request holds any more.
      await stores.verifications.releaseLease(flow).catch(() => undefined);
      throw e;
    }
  }

  /** Records an outside call's result (or failure) and decides what follows. */
  private async record(
    step: OutsideCall,
    request: Request,
    result: AuthResult | { agreementNo: string } | undefined,
    error: Outcome | undefined,
    deadline: number,
    refused: boolean,
  ): Promise<Decided | undefined> {
    const { stores } = this.deps;
    const { flow } = step;
    if (!error && step.call === 'sms') {
      if (await stores.verifications.markCodeSent(flow, this.deps.now())) return { done: this.codeSent() };
      // Not the row's latest code any more: corrected details started over (decide again), or this request's lease ran
      // out and another one sent a newer code (whose lease stands).
      return (await stores.verifications.generationOf(flow.id)) === flow.generation ? { done: this.codeSent() } : undefined;
    }
    const decided = await stores.transaction(async (tx): Promise<Decided | undefined> => {
      const review = step.call === 'auth' && !error ? ((result as AuthResult).approved ? 'APPROVED' : 'REJECTED') : null;
      const current = await stores.verifications.endLease(tx, flow, review, this.deps.now());
      // the gateway refused this code's text: no retry may send it again (see afterReview)
      if (refused && step.call === 'sms' && current?.code_seq === flow.code_seq) {
        await stores.verifications.update(tx, current, { code_enc: null }, this.deps.now());
      }
      if (error) return { done: error };
      if (!current) return undefined;
      if (step.call === 'auth') return this.afterReview(tx, request, current, deadline); // which looks at ownership again before an SMS
      return { done: await this.commitBinding(tx, current, request, (result as { agreementNo: string }).agreementNo) };
    });
    if (step.call === 'sign' && !error) crashPoint('crash-after-bind-commit');
    return decided;
  }

  private async call(
    step: OutsideCall,
    details: CardDetails,
    signal: AbortSignal,
  ): Promise<AuthResult | { agreementNo: string } | undefined> {
    const { flow } = step;
    // Request numbers are stable per row, generation and code, so a gateway can recognise a retried call.
    if (step.call === 'auth') return this.deps.auth.verify(`A${flow.id}-${flow.generation}`, details, signal);
    if (step.call === 'sign') return this.deps.auth.sign(`G${flow.id}-${flow.code_seq}`, details, signal);
    await this.deps.sms.send(
      `S${flow.id}-${flow.code_seq}`,
      details.mobile,
      step.code,
      smsText(step.code, this.deps.config.codeTtlSeconds),
      signal,
    );
    return undefined;
  }

  /** The last phase: person, card and binding commit together, and the code is consumed. */
  private async commitBinding(tx: Tx, flow: Verification, request: Request, agreementNo: string): Promise<Outcome> {
    const { stores } = this.deps;
    const { card } = request;
    const now = this.deps.now();
    const made = await stores.bindings.bind(
      tx,
      {
        channel: flow.channel,
        userId: flow.user_id,
        idHash: flow.id_number_hash,
        idNumber: card.idNumber,
        name: card.name,
        cardHash: flow.card_hash,
        cardNumber: card.card,
        mobile: card.mobile,
        masked: maskCard(card.card),
        bank: card.bank,
        cardType: card.cardType,
        bankAddress: request.bankAddress,
        agreementNo,
        notifyUrl: flow.notify_url,
      },
      now,
    );
    // another person's confirmation committed first
    if (!made.samePerson) return this.fail(tx, request, 'CARD_BOUND_TO_OTHER', `owner:${flow.id_number_hash}:${made.cardId}`, flow);
    await stores.verifications.update(tx, flow, { bound_card_id: made.cardId, code_hash: null, code_enc: null }, now);
    const event: LifecycleEvent = {
      key: eventKey(this.deps.vault, `bound:${flow.id}:${flow.code_seq}`),
      type: 'binding.bound',
      channel: flow.channel,
      userId: flow.user_id,
      created: now,
      data: { card_id: made.cardId, bank_card: maskCard(card.card), open_bank: card.bank, bank_card_type: card.cardType },
    };
    await stores.events.emit(tx, event, flow.notify_url ?? request.channel.defaultNotifyUrl);
    return bound(made.cardId);
  }
}

/** The text the borrower receives. */
export function smsText(code: string, ttlSeconds: number): string {
  return `【还呗】您的绑卡验证码为${code}，${Math.round(ttlSeconds / 60)}分钟内有效，请勿泄露。`;
}

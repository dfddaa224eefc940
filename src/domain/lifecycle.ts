import type { components } from '../../generated/api-types.ts';
import type { Config } from '../config.ts';
import type { Vault } from '../crypto/vault.ts';
import { crashPoint } from '../faults.ts';
import type { Logger } from '../log.ts';
import { poll } from '../lib/poll.ts';
import { ProviderTimeout, withDeadline, type CardAuthenticator } from '../providers/provider-types.ts';
import { readCardToken } from './card-token.ts';
import type { Channel } from './channel.ts';
import { cardData, eventKey } from './events.ts';
import { RequestError } from './outcomes.ts';
import type { BindingStores, CardFacts, Unbinding } from './stores.ts';

export type QueryBindingRequest = components['schemas']['QueryBindingRequest'];
export type UnbindCardRequest = components['schemas']['UnbindCardRequest'];
export type BindingStatus = components['schemas']['QueryBindingResponse']['data'];
export type UnbindOutcome =
  | { code: 200; message: 'success'; data: { status: 'UNBOUND'; card_id: string; unbound_at: string } }
  | { code: 505; message: string; data: { sub_code: UnbindFailure } };
type UnbindFailure = 'CARD_NOT_OWNED' | 'PROVIDER_TIMEOUT' | 'PROVIDER_ERROR';

const UNBIND_FAILURES: Record<UnbindFailure, string> = {
  CARD_NOT_OWNED: '解绑失败：该卡不在用户的银行卡列表中',
  PROVIDER_TIMEOUT: '解绑失败：银行通道超时，请重试',
  PROVIDER_ERROR: '解绑失败：银行通道异常，请重试',
};

function unbindFailure(sub: UnbindFailure): UnbindOutcome {
  return { code: 505, message: UNBIND_FAILURES[sub], data: { sub_code: sub } };
}

export interface LifecycleDeps {
  stores: BindingStores;
  vault: Vault;
  auth: CardAuthenticator;
  now: () => Date;
  log: Logger;
  config: Pick<Config, 'providerTimeoutMs' | 'codeMaxAttempts'>;
}

const POLL_MS = 25;
const ANSWER_MARGIN_MS = 100;

/**
 * Where a card stands for a (channel, user), from what is known of it. A binding is the present; so is a gateway call
 * in progress or a code that is valid. Otherwise the newest of what happened: a refusal, a code that expired unused,
 * an unbinding.
 */
export function statusOf(facts: CardFacts, now: Date, codeMaxAttempts: number): BindingStatus {
  const { card, flow, unbinding, failure } = facts;
  const shown = card && {
    card_id: card.id,
    bank_card: card.masked,
    open_bank: card.open_bank,
    bank_card_type: card.bank_card_type as 0 | 1,
  };
  const busy = (until: Date | null | undefined) => until != null && until > now;
  // an unbinding of the binding, ending its agreement at the gateway now
  if (busy(unbinding?.busy_until) && !unbinding?.unbound_at) return { status: 'PROCESSING' };
  if (facts.boundAt && shown) return { status: 'BOUND', ...shown, bound_at: facts.boundAt.toISOString() };
  if (busy(flow?.busy_until)) return { status: 'PROCESSING' };
  // A code verified in time stays good for the signing's retries: valid, never expired unused.
  const issued = flow && flow.code_hash !== null && flow.code_sent_at !== null && flow.code_attempts < codeMaxAttempts;
  const valid = issued && (flow.code_verified_at !== null || now < flow.code_expires_at!);
  const past: { at: Date; status: BindingStatus }[] = [];
  if (valid) past.push({ at: flow.code_sent_at!, status: { status: 'SMS_SENT', code_expires_at: flow.code_expires_at!.toISOString() } });
  if (issued && !valid) past.push({ at: flow.code_expires_at!, status: { status: 'FAILED', sub_code: 'CODE_EXPIRED' } });
  if (failure) past.push({ at: failure.at, status: { status: 'FAILED', sub_code: failure.subCode as 'AUTH_REJECTED' } });
  if (unbinding?.unbound_at && shown) {
    past.push({ at: unbinding.unbound_at, status: { status: 'UNBOUND', ...shown, unbound_at: unbinding.unbound_at.toISOString() } });
  }
  past.sort((a, b) => b.at.getTime() - a.at.getTime());
  return past[0]?.status ?? { status: 'NONE' };
}

/** The card a request names: by exactly one of card_id, bank_card (full) and, where allowed, extra_info. */
function namedCard(
  body: { card_id?: string; bank_card?: string; extra_info?: { card_token: string } },
  allowed: string[],
): { cardId: string } | { number: string } | { token: string } {
  const given = allowed.filter((field) => body[field as keyof typeof body] !== undefined);
  if (given.length !== 1) {
    const names = allowed.join('、');
    throw new RequestError(
      `body.${given[1] ?? allowed[0]}`,
      'oneOf',
      `须且只须给出 ${names} 之一 / give exactly one of ${allowed.join(', ')}`,
    );
  }
  if (body.card_id !== undefined) return { cardId: body.card_id };
  if (body.bank_card !== undefined) return { number: body.bank_card };
  return { token: body.extra_info!.card_token };
}

/** After a binding: where it stands (queryBinding) and its end (unbindCard). */
export class CardLifecycle {
  constructor(private readonly deps: LifecycleDeps) {}

  async query(channel: string, body: QueryBindingRequest): Promise<BindingStatus> {
    const named = namedCard(body, ['card_id', 'bank_card']);
    const ref = 'cardId' in named ? named : { cardHash: this.deps.vault.hash('card', (named as { number: string }).number) };
    const facts = await this.deps.stores.bindings.factsOf(channel, body.user_id, ref);
    return statusOf(facts, this.deps.now(), this.deps.config.codeMaxAttempts);
  }

  /**
   * Removes the (channel, user)'s binding of the card in atomic phases, as binding does: take the unbinding's lease,
   * end the agreement at the gateway when this is the card's last binding (no transaction spans the call), then remove
   * the binding, emit binding.unbound and audit, together. `deadline` (epoch ms): when the answer must be ready.
   */
  async unbind(channel: Pick<Channel, 'code' | 'defaultNotifyUrl'>, body: UnbindCardRequest, deadline: number): Promise<UnbindOutcome> {
    const { outcome, masked } = await this.unbindOnce(channel, body, deadline);
    await this.deps.stores.audit.appendDurably({
      at: this.deps.now(),
      channel: channel.code,
      userId: body.user_id,
      event: outcome.code === 200 ? 'UNBIND:UNBOUND' : 'UNBIND',
      cardMasked: masked ?? '',
      cardId: outcome.code === 200 ? outcome.data.card_id : (body.card_id ?? null),
      resultCode: outcome.code,
      subCode: outcome.code === 200 ? null : outcome.data.sub_code,
    });
    return outcome;
  }

  /** The outcome, and the card as masked once it is known (for the audit). */
  private async unbindOnce(
    channel: Pick<Channel, 'code' | 'defaultNotifyUrl'>,
    body: UnbindCardRequest,
    deadline: number,
  ): Promise<{ outcome: UnbindOutcome; masked?: string }> {
    const { stores, vault, config } = this.deps;
    const named = namedCard(body, ['card_id', 'bank_card', 'extra_info']);
    const cardId =
      'token' in named
        ? readCardToken(vault, channel.code, body.user_id, named.token)
        : await stores.unbindings.cardIdOf(
            channel.code,
            body.user_id,
            'cardId' in named ? named : { cardHash: vault.hash('card', named.number) },
          );
    if (!cardId) return { outcome: unbindFailure('CARD_NOT_OWNED') };
    for (;;) {
      const lease = new Date(this.deps.now().getTime() + config.providerTimeoutMs + 500);
      const opening = await poll(
        async () => {
          const found = await stores.transaction((tx) =>
            stores.unbindings.open(tx, channel.code, body.user_id, cardId, this.deps.now(), lease),
          );
          return found.state === 'busy' ? undefined : found;
        },
        { intervalMs: POLL_MS, deadline },
      );
      if (!opening) return { outcome: unbindFailure('PROVIDER_TIMEOUT') };
      if (opening.state === 'none') return { outcome: unbindFailure('CARD_NOT_OWNED') };
      if (opening.state === 'unbound') {
        return { outcome: unbound(opening.unbinding.card_id, opening.unbinding.unbound_at!), masked: opening.card.masked };
      }
      const { unbinding, card } = opening;
      const failed = await this.unsign(unbinding, card.masked, deadline);
      if (failed) {
        await stores.unbindings.release(unbinding).catch(() => undefined);
        return { outcome: failed, masked: card.masked };
      }
      const done = await stores.transaction(async (tx) => {
        const finished = await stores.unbindings.finish(tx, unbinding, this.deps.now());
        // the lease lapsed and another request took the unbinding over, or this binding turned out to be the card's
        // last (another channel's unbinding finished first): look again
        if (!finished || finished === 'again') return undefined;
        const event = {
          key: eventKey(vault, `unbound:${unbinding.id}:${unbinding.cycle}`),
          type: 'binding.unbound' as const,
          channel: channel.code,
          userId: body.user_id,
          created: finished.unbound_at,
          data: cardData(card),
        };
        await stores.events.emit(tx, event, finished.notifyUrl ?? channel.defaultNotifyUrl);
        return unbound(card.id, finished.unbound_at);
      });
      if (done) return { outcome: done, masked: card.masked };
    }
  }

  /** Ends the card's agreement at the gateway when this unbinding removes its last binding; a failure to answer. */
  private async unsign(unbinding: Unbinding, masked: string, deadline: number): Promise<UnbindOutcome | undefined> {
    if (unbinding.agreement_no === null) return undefined;
    const budget = Math.min(this.deps.config.providerTimeoutMs, deadline - Date.now() - ANSWER_MARGIN_MS);
    try {
      // stable per unbinding, so a retry after a timeout or a crash is recognised by the gateway
      await withDeadline(budget, (signal) =>
        this.deps.auth.unsign(`U${unbinding.id}-${unbinding.cycle}`, unbinding.agreement_no!, masked, signal),
      );
      crashPoint('crash-after-unsign');
      return undefined;
    } catch (e) {
      this.deps.log.warn({ call: 'unsign', unbinding: unbinding.id, err: e }, 'provider call failed');
      return unbindFailure(e instanceof ProviderTimeout ? 'PROVIDER_TIMEOUT' : 'PROVIDER_ERROR');
    }
  }
}

function unbound(cardId: string, at: Date): UnbindOutcome {
  return { code: 200, message: 'success', data: { status: 'UNBOUND', card_id: cardId, unbound_at: at.toISOString() } };
}

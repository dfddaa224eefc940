import type { components } from '../../generated/api-types.ts';
import { maskCard } from './card-rules.ts';
import { cardToken, readCardToken } from './card-token.ts';
import { notifyUrlProblem, type Channel } from './channel.ts';
import { NewCardFlow, type NewCardDeps } from './new-card-flow.ts';
import { bound, failure, RequestError, type Outcome } from './outcomes.ts';
import type { CardRef } from './stores.ts';

export type BindCardRequest = components['schemas']['BindCardRequest'];
export type BankCard = components['schemas']['BankCard'];

export type BindingDeps = NewCardDeps;

/**
 * Card binding: a new card through its flow (NewCardFlow), a card from the user's list at once; and the list. Every
 * bindCard answer is audited last, durably, so nothing answered can be undone by a crash.
 */
export class BindingService {
  private readonly newCard: NewCardFlow;

  constructor(private readonly deps: BindingDeps) {
    this.newCard = new NewCardFlow(deps);
  }

  /** `deadline` (epoch ms): when the answer must be ready. */
  async bindCard(
    channel: Pick<Channel, 'code' | 'cardTypes' | 'callbackHosts' | 'defaultNotifyUrl'>,
    body: BindCardRequest,
    deadline: number,
  ): Promise<Outcome> {
    const problem = body.notify_url === undefined ? undefined : notifyUrlProblem(body.notify_url, channel);
    if (problem) throw new RequestError('body.notify_url', 'callback', problem);
    const outcome =
      body.bind_card_src === 2 ? await this.existingCard(channel.code, body) : await this.newCard.run(channel, body, deadline);
    await this.audit(channel.code, body, outcome);
    return outcome;
  }

  async listCards(channel: string, userId: string): Promise<BankCard[]> {
    const cards = await this.deps.stores.bindings.listForUser(channel, userId);
    return cards.map((card) => ({
      card_id: card.id,
      bank_card: card.masked,
      open_bank: card.open_bank,
      bank_card_type: card.bank_card_type as 0 | 1,
      extra_info: { card_token: cardToken(this.deps.vault, channel, userId, card.id) },
    }));
  }

  /** An existing card (bind_card_src=2) must be in this user's list: named by extra_info, or by the full number. */
  private async existingCard(channel: string, body: BindCardRequest): Promise<Outcome> {
    const cardHash = this.deps.vault.hash('card', body.bank_card);
    let ref: CardRef = { cardHash };
    if (body.extra_info != null && Object.keys(body.extra_info).length > 0) {
      const cardId = readCardToken(this.deps.vault, channel, body.user_id, body.extra_info.card_token);
      if (!cardId) return failure('CARD_NOT_OWNED');
      ref = { cardId, number: body.bank_card, cardHash }; // the number as listed (masked) or in full
    } else if (body.bank_card.includes('*')) {
      throw new RequestError(
        'body.bank_card',
        'extra_info',
        '脱敏卡号须与 extra_info 一起提交 / a masked number needs the extra_info from the card list',
      );
    }
    // The binding is there already, so confirming it writes nothing but the audit event, which records it.
    const card = await this.deps.stores.bindings.findForUser(channel, body.user_id, ref);
    if (!card) return failure('CARD_NOT_OWNED');
    if (card.open_bank !== body.open_bank.toUpperCase()) return failure('BIN_BANK_MISMATCH');
    if (body.bank_card_type != null && card.bank_card_type !== body.bank_card_type) return failure('CARD_TYPE_MISMATCH');
    return bound(card.id);
  }

  private async audit(channel: string, body: BindCardRequest, outcome: Outcome): Promise<void> {
    const event = body.bind_card_src === 2 ? 'EXISTING_CARD' : body.verify_code ? 'NEW_CARD_CONFIRM' : 'NEW_CARD_REQUEST';
    const data = outcome.data as { card_id?: string; sub_code?: string; status?: string };
    await this.deps.stores.audit.appendDurably({
      at: this.deps.now(),
      channel,
      userId: body.user_id,
      event: data.status ? `${event}:${data.status}` : event,
      cardMasked: /^[0-9]{12,19}$/.test(body.bank_card) ? maskCard(body.bank_card) : body.bank_card,
      cardId: data.card_id ?? null,
      resultCode: outcome.code,
      subCode: data.sub_code ?? null,
    });
  }
}

import type { Vault } from '../crypto/vault.ts';
import type { BoundCard, LifecycleEvent } from './stores.ts';

/**
 * An event's id: derived from what makes it one event (a binding's code, a failed attempt, an unbinding's cycle), so
 * that emitting it again, from a retry or from a second instance, keeps the first.
 */
export function eventId(vault: Vault, identity: string): string {
  return 'evt_' + vault.hash('event', identity).slice(0, 20);
}

/** The card as events show it: masked, never in full. */
export function cardData(card: BoundCard): LifecycleEvent['data'] {
  return { card_id: card.id, bank_card: card.masked, open_bank: card.open_bank, bank_card_type: card.bank_card_type };
}

import type { Vault } from '../crypto/vault.ts';
import type { BoundCard, LifecycleEvent } from './stores.ts';

/**
 * What makes an event one (a binding's code, a failed attempt, an unbinding's cycle), as a keyed hash: emitting it
 * again, from a retry or from a second instance, keeps the first. The id partners see is random, so it never repeats,
 * not even across databases that reuse row ids.
 */
export function eventKey(vault: Vault, identity: string): string {
  return vault.hash('event', identity);
}

/** The card as events show it: masked, never in full. */
export function cardData(card: BoundCard): LifecycleEvent['data'] {
  return { card_id: card.id, bank_card: card.masked, open_bank: card.open_bank, bank_card_type: card.bank_card_type };
}

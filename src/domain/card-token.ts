import type { Vault } from '../crypto/vault.ts';

// The card list's extra_info.card_token: names a card for one (channel, user) only, and cannot be forged.

const CARD_TOKEN = /^v1\.(card_[0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;

export function cardToken(vault: Vault, channel: string, userId: string, cardId: string): string {
  return `v1.${cardId}.${vault.sign('extra_info', `${channel}|${userId}|${cardId}`)}`;
}

/** The card a token names, if it is a token of this (channel, user). */
export function readCardToken(vault: Vault, channel: string, userId: string, token: unknown): string | undefined {
  const parts = typeof token === 'string' ? CARD_TOKEN.exec(token) : null;
  if (!parts || !vault.verify('extra_info', `${channel}|${userId}|${parts[1]}`, parts[2])) return undefined;
  return parts[1];
}

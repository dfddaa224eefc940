import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Vault } from '../crypto/vault.ts';
import type { SandboxStore } from '../store/sandbox-store.ts';
import { ProviderError, type AuthResult, type CardAuthenticator, type CardDetails, type SmsSender } from './provider-types.ts';

/**
 * Sandbox card authentication: approves every card except these last four digits:
 * 0501 rejected; 0505 gateway error; 0002 answers after 3 s the first time for a card, at once afterwards. Unsigning:
 * 0003 fails the first time for an agreement, 0004 answers after 3 s the first time.
 */
export class SandboxCardAuthenticator implements CardAuthenticator {
  constructor(
    private readonly store: SandboxStore,
    private readonly vault: Vault,
  ) {}

  async verify(_requestNo: string, card: CardDetails, signal: AbortSignal): Promise<AuthResult> {
    const last4 = card.cardNumber.slice(-4);
    if (last4 === '0501') return { approved: false, reason: 'sandbox: card rejected by issuer' };
    if (last4 === '0505') throw new ProviderError('sandbox: gateway error');
    if (last4 === '0002' && (await this.store.firstSeenSlowCard(this.vault.hash('card', card.cardNumber))))
      await sleep(3000, undefined, { signal }).catch(() => {});
    return { approved: true };
  }

  sign(requestNo: string): Promise<{ agreementNo: string }> {
    // Stable per request number, as a real gateway answers a retried call.
    return Promise.resolve({ agreementNo: 'SBX' + createHash('sha256').update(requestNo).digest('hex').slice(0, 20).toUpperCase() });
  }

  /** Ends every agreement, except the first unsigning of an agreement of a card ending 0003 (fails) or 0004 (3 s). */
  async unsign(_requestNo: string, agreementNo: string, masked: string, signal: AbortSignal): Promise<void> {
    const last4 = masked.slice(-4);
    if (last4 !== '0003' && last4 !== '0004') return;
    if (!(await this.store.firstSeenSlowCard(`unsign:${agreementNo}`))) return;
    if (last4 === '0003') throw new ProviderError('sandbox: unsigning failed');
    await sleep(3000, undefined, { signal }).catch(() => {});
  }
}

/** Sandbox SMS: the simulated phone. Its table is the one place a code exists in clear. */
export class SandboxSmsSender implements SmsSender {
  constructor(
    private readonly store: SandboxStore,
    private readonly vault: Vault,
    private readonly now: () => Date,
  ) {}

  async send(requestNo: string, mobile: string, code: string, text: string): Promise<void> {
    await this.store.keepSms(requestNo, this.vault.hash('mobile', mobile), code, text, this.now());
  }

  async inbox(mobile: string): Promise<{ mobile: string; code: string; text: string; sent_at: string }[]> {
    const messages = await this.store.inbox(this.vault.hash('mobile', mobile));
    return messages.map((m) => ({ mobile, code: m.code, text: m.text, sent_at: m.sent_at.toISOString() }));
  }
}

import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Sequelize } from 'sequelize';
import type { Vault } from '../crypto/vault.ts';
import { sql } from '../store/sql.ts';
import { ProviderError, type AuthResult, type CardAuthenticator, type CardDetails, type SmsSender } from './provider-types.ts';

/**
 * Sandbox card authentication: approves every card except these last four digits:
 * 0501 rejected; 0505 gateway error; 0002 answers after 3 s the first time for a card, at once afterwards.
 */
export class SandboxCardAuthenticator implements CardAuthenticator {
  constructor(private readonly db: Sequelize, private readonly vault: Vault) {}

  async verify(_requestNo: string, card: CardDetails, signal: AbortSignal): Promise<AuthResult> {
    const last4 = card.cardNumber.slice(-4);
    if (last4 === '0501') return { approved: false, reason: 'sandbox: card rejected by issuer' };
    if (last4 === '0505') throw new ProviderError('sandbox: gateway error');
    if (last4 === '0002' && (await this.firstSeen(card.cardNumber))) await sleep(3000, undefined, { signal }).catch(() => {});
    return { approved: true };
  }

  async sign(requestNo: string): Promise<{ agreementNo: string }> {
    // Stable per request number, as a real gateway answers a retried call.
    return { agreementNo: 'SBX' + createHash('sha256').update(requestNo).digest('hex').slice(0, 20).toUpperCase() };
  }

  private async firstSeen(cardNumber: string): Promise<boolean> {
    const [rows] = await this.db.query(
      'INSERT INTO sandbox_slow_cards (card_hash) VALUES (:h) ON CONFLICT DO NOTHING RETURNING card_hash',
      { replacements: { h: this.vault.hash('card', cardNumber) } },
    );
    return rows.length > 0;
  }
}

/** Sandbox SMS: the simulated phone. Its table is the one place a code exists in clear. */
export class SandboxSmsSender implements SmsSender {
  constructor(private readonly db: Sequelize, private readonly vault: Vault, private readonly now: () => Date) {}

  async send(requestNo: string, mobile: string, code: string, text: string): Promise<void> {
    await sql(this.db, undefined, `INSERT INTO sandbox_sms (request_no, mobile_hash, code, text, sent_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (request_no) DO NOTHING`, [requestNo, this.vault.hash('mobile', mobile), code, text, this.now()]);
  }

  async inbox(mobile: string): Promise<{ mobile: string; code: string; text: string; sent_at: string }[]> {
    const rows = await sql<{ code: string; text: string; sent_at: Date }>(this.db, undefined,
      'SELECT code, text, sent_at FROM sandbox_sms WHERE mobile_hash = $1 ORDER BY sent_at DESC, id DESC LIMIT 50', [this.vault.hash('mobile', mobile)]);
    return rows.map((r) => ({
      mobile, code: r.code, text: r.text, sent_at: new Date(r.sent_at).toISOString(),
    }));
  }
}

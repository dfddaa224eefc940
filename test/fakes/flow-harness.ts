import { loadConfig } from '../../src/config.ts';
import { vaultFor } from '../../src/crypto/vault.ts';
import { BindingService } from '../../src/domain/binding-service.ts';
import { DEMO, type Channel } from '../../src/domain/channel.ts';
import { CardLifecycle } from '../../src/domain/lifecycle.ts';
import type { Outcome } from '../../src/domain/outcomes.ts';
import { createLogger } from '../../src/log.ts';
import type { AuthResult, CardAuthenticator, CardDetails, SmsSender } from '../../src/providers/provider-types.ts';
import { MemoryStores } from './memory-stores.ts';
import { seedNewCard } from '../setup/seed.ts';

// The binding flows on the in-memory stores, with card authentication and the phone scripted by the test: what the
// unit tests of the flows' rules run on.

export const config = loadConfig({ NODE_ENV: 'test' });
export const vault = vaultFor(config);

/** A gateway call the test finishes when it chooses (tests that hold one give the call a long budget). */
export function held<T>() {
  let finish!: (value: T | Error) => void;
  const done = new Promise<T>((resolve, reject) => {
    finish = (value) => (value instanceof Error ? reject(value) : resolve(value));
  });
  let called!: () => void;
  const started = new Promise<void>((resolve) => {
    called = resolve;
  });
  return { done, started, finish, called: () => called() };
}

/** Card authentication as a test scripts it: approve unless the next script says otherwise. */
export class ScriptedAuth implements CardAuthenticator {
  reviews = 0;
  signs = 0;
  nextReview: ((signal: AbortSignal) => Promise<AuthResult>)[] = [];
  nextSign: ((signal: AbortSignal) => Promise<{ agreementNo: string }>)[] = [];
  async verify(_requestNo: string, _card: CardDetails, signal: AbortSignal): Promise<AuthResult> {
    this.reviews++;
    return (this.nextReview.shift() ?? (async () => ({ approved: true as const })))(signal);
  }
  async sign(requestNo: string, _card: CardDetails, signal: AbortSignal): Promise<{ agreementNo: string }> {
    this.signs++;
    return (this.nextSign.shift() ?? (async () => ({ agreementNo: `AG-${requestNo}` })))(signal);
  }
  unsigned: string[] = [];
  nextUnsign: ((signal: AbortSignal) => Promise<void>)[] = [];
  async unsign(_requestNo: string, agreementNo: string, _masked: string, signal: AbortSignal): Promise<void> {
    await (this.nextUnsign.shift() ?? (async () => undefined))(signal);
    this.unsigned.push(agreementNo);
  }
}

/** The borrower's phone. */
export class Phone implements SmsSender {
  /** the texts the gateway accepted */
  texts: { requestNo: string; mobile: string; code: string }[] = [];
  /** every send asked for, accepted or not */
  sends: { requestNo: string; code: string }[] = [];
  next: ((signal: AbortSignal) => Promise<void>)[] = [];
  async send(requestNo: string, mobile: string, code: string, _text: string, signal: AbortSignal): Promise<void> {
    this.sends.push({ requestNo, code });
    await this.next.shift()?.(signal);
    this.texts.push({ requestNo, mobile, code });
  }
  latest(): string {
    return this.texts.at(-1)!.code;
  }
}

/** Never answers: the call ends when its deadline aborts it. */
export const hangs = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));

export function setUp(overrides: Partial<typeof config> = {}) {
  const stores = new MemoryStores();
  const auth = new ScriptedAuth();
  const phone = new Phone();
  let time = Date.parse('2026-12-01T08:00:00Z');
  const deps = {
    stores,
    vault,
    auth,
    sms: phone,
    now: () => new Date(time),
    log: createLogger('silent'),
    config: { ...config, providerTimeoutMs: 50, ...overrides },
  };
  const service = new BindingService(deps);
  const lifecycle = new CardLifecycle(deps);
  /** The channel the requests come from: the sandbox's, unless a test gives another. */
  const channel = (given: Partial<Channel> = {}): Channel => ({ ...DEMO, ...given });
  const bind = (body: Record<string, unknown>, deadlineMs = 2_000, on: Partial<Channel> = {}): Promise<Outcome> =>
    service.bindCard(channel(on), { ...SEED, ...body } as never, Date.now() + deadlineMs);
  const unbind = (body: Record<string, unknown>, deadlineMs = 2_000, on: Partial<Channel> = {}) =>
    lifecycle.unbind(channel(on), { user_id: SEED.user_id, ...body } as never, Date.now() + deadlineMs);
  const query = (body: Record<string, unknown>, on: Partial<Channel> = {}) =>
    lifecycle.query(channel(on).code, { user_id: SEED.user_id, ...body } as never);
  return {
    stores,
    auth,
    phone,
    bind,
    unbind,
    query,
    service,
    lifecycle,
    now: () => new Date(time),
    advance: (seconds: number) => {
      time += seconds * 1000;
    },
  };
}

export const SEED = seedNewCard();
export const OTHER_PERSON = { user_id: 'other-user', id_number: '11010519491231002X', user_name: '李四', user_mobile: '13900000000' };

/** An answer's status, or its sub_code when it failed. */
export const status = (o: { data: object }) => {
  const data = o.data as { status?: string; sub_code?: string };
  return data.status ?? data.sub_code;
};

// Outside gateways. Every call carries a stable request number (a gateway can deduplicate a retried call) and an
// abort signal that fires at the caller's deadline.

/** An outside gateway over HTTP: where it is, the client id we sign as, and the secret we share with it. */
export interface Gateway {
  url: string;
  clientId: string;
  secret: string;
}

export interface CardDetails {
  cardNumber: string;
  idNumber: string;
  name: string;
  mobile: string;
  bank: string;
  cardType: number;
}

export type AuthResult = { approved: true } | { approved: false; reason: string };

export interface CardAuthenticator {
  /** Four-element authentication of the card. */
  verify(requestNo: string, card: CardDetails, signal: AbortSignal): Promise<AuthResult>;
  /** Protocol-payment signing; returns the agreement number later repayments use. */
  sign(requestNo: string, card: CardDetails, signal: AbortSignal): Promise<{ agreementNo: string }>;
  /**
   * Ends a protocol-payment agreement; an agreement ended already counts as ended. `masked` is the card as shown
   * (the sandbox's rules read its last four digits).
   */
  unsign(requestNo: string, agreementNo: string, masked: string, signal: AbortSignal): Promise<void>;
}

export interface SmsSender {
  send(requestNo: string, mobile: string, code: string, text: string, signal: AbortSignal): Promise<void>;
}

/** The gateway failed or refused to answer; the partner may retry. */
export class ProviderError extends Error {}
/**
 * The gateway answered, and not with success (an HTTP error, an answer we cannot read, a refusal): the call did not
 * do its work, and the same request number would get the same answer again. Any other ProviderError, and a
 * ProviderTimeout, leave the call in doubt: it may have done its work.
 */
export class ProviderRefused extends ProviderError {}
/** The gateway did not answer before our deadline; the partner may retry. */
export class ProviderTimeout extends Error {}

/** Runs a provider call under a deadline; past it the call is aborted and ProviderTimeout thrown. */
export async function withDeadline<T>(ms: number, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (ms <= 0) throw new ProviderTimeout('no time left for the call');
  const ctl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ctl.abort();
      reject(new ProviderTimeout(`no answer within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([call(ctl.signal), timeout]);
  } catch (e) {
    if (e instanceof ProviderTimeout || e instanceof ProviderError) throw e;
    throw new ProviderError((e as Error).message);
  } finally {
    clearTimeout(timer);
  }
}

import type { Metrics } from '../ops/metrics.ts';
import type { CardAuthenticator, SmsSender } from './provider-types.ts';

/** Counts and times one gateway call: ok, error, or timeout (our deadline aborted it). */
async function observed<T>(metrics: Metrics, gateway: string, call: string, signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  const stop = metrics.gatewayLatency.startTimer({ gateway, call });
  try {
    const result = await work();
    metrics.gatewayCalls.inc({ gateway, call, outcome: 'ok' });
    return result;
  } catch (e) {
    metrics.gatewayCalls.inc({ gateway, call, outcome: signal.aborted ? 'timeout' : 'error' });
    throw e;
  } finally {
    stop();
  }
}

/** The card-auth gateway with its calls counted and timed. */
export function instrumentedAuth(auth: CardAuthenticator, metrics: Metrics): CardAuthenticator {
  return {
    verify: (no, card, signal) => observed(metrics, 'card_auth', 'verify', signal, () => auth.verify(no, card, signal)),
    sign: (no, card, signal) => observed(metrics, 'card_auth', 'sign', signal, () => auth.sign(no, card, signal)),
    unsign: (no, agreement, masked, signal) =>
      observed(metrics, 'card_auth', 'unsign', signal, () => auth.unsign(no, agreement, masked, signal)),
  };
}

/** The SMS gateway with its sends counted and timed. */
export function instrumentedSms(sms: SmsSender, metrics: Metrics): SmsSender {
  return {
    send: (no, mobile, code, text, signal) => observed(metrics, 'sms', 'send', signal, () => sms.send(no, mobile, code, text, signal)),
  };
}

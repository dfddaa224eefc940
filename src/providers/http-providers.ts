import { requestContext } from '../log.ts';
import { signedHeaders } from '../sdk/sign.ts';
import {
  ProviderError,
  ProviderRefused,
  type AuthResult,
  type Gateway,
  type CardAuthenticator,
  type CardDetails,
  type SmsSender,
} from './provider-types.ts';

/**
 * POSTs JSON to a gateway and returns its JSON object. Signed the way partners sign requests to us (src/sdk/sign.ts),
 * with our client id in X-Channel; the request number goes as Idempotency-Key and in the body, so a retried call
 * gets the first call's answer. Anything but a 2xx JSON object (of at most 64 KiB) is a ProviderError naming the path and what was
 * wrong, never the body (a gateway may echo personal data back).
 */
async function post(gw: Gateway, path: string, requestNo: string, fields: object, signal: AbortSignal): Promise<Record<string, unknown>> {
  const url = new URL(gw.url.replace(/\/+$/, '') + path);
  const bytes = JSON.stringify({ request_no: requestNo, ...fields });
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      body: bytes,
      signal,
      headers: {
        'content-type': 'application/json',
        'idempotency-key': requestNo,
        // the partner's request this call serves, for tracing one request across both sides
        ...(requestContext.getStore() ? { 'x-request-id': requestContext.getStore()!.reqId } : {}),
        ...signedHeaders(gw.clientId, gw.secret, 'POST', url.pathname + url.search, bytes),
      },
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new ProviderError(`${path}: no answer (${cause?.code ?? cause?.message ?? (e as Error).name})`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new ProviderRefused(`${path}: HTTP ${res.status}`);
  }
  const text = await readLimited(res, path);
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new ProviderRefused(`${path}: the answer is not JSON`);
  }
  if (answer === null || typeof answer !== 'object' || Array.isArray(answer))
    throw new ProviderRefused(`${path}: the answer is not a JSON object`);
  return answer as Record<string, unknown>;
}

/** A gateway's answers are small: past ANSWER_LIMIT bytes it is read no further and the call has failed. */
const ANSWER_LIMIT = 64 * 1024;

async function readLimited(res: Response, path: string): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body ?? []) {
    size += chunk.length;
    // leaving the loop cancels the stream: the rest of the answer is not read
    if (size > ANSWER_LIMIT) throw new ProviderRefused(`${path}: the answer is over ${ANSWER_LIMIT} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function fourElements(card: CardDetails): object {
  return {
    card_no: card.cardNumber,
    id_number: card.idNumber,
    name: card.name,
    mobile: card.mobile,
    bank: card.bank,
    card_type: card.cardType,
  };
}

/**
 * The card-auth gateway over HTTP:
 * `POST /v1/card-auth/verify` → `{"result": "APPROVED"}` or `{"result": "REJECTED", "reason": "…"}`;
 * `POST /v1/card-auth/sign` → `{"agreement_no": "…"}`, the protocol number later repayments use;
 * `POST /v1/card-auth/unsign` with `agreement_no` → `{"result": "UNSIGNED" | "ALREADY_UNSIGNED"}`.
 */
export class HttpCardAuthenticator implements CardAuthenticator {
  constructor(private readonly gw: Gateway) {}

  async verify(requestNo: string, card: CardDetails, signal: AbortSignal): Promise<AuthResult> {
    const answer = await post(this.gw, '/v1/card-auth/verify', requestNo, fourElements(card), signal);
    if (answer.result === 'APPROVED') return { approved: true };
    if (answer.result === 'REJECTED')
      return { approved: false, reason: typeof answer.reason === 'string' ? answer.reason.slice(0, 200) : 'rejected' };
    throw new ProviderRefused('/v1/card-auth/verify: result is neither APPROVED nor REJECTED');
  }

  async sign(requestNo: string, card: CardDetails, signal: AbortSignal): Promise<{ agreementNo: string }> {
    const answer = await post(this.gw, '/v1/card-auth/sign', requestNo, fourElements(card), signal);
    if (typeof answer.agreement_no !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(answer.agreement_no)) {
      throw new ProviderRefused('/v1/card-auth/sign: no valid agreement_no');
    }
    return { agreementNo: answer.agreement_no };
  }

  /** `POST /v1/card-auth/unsign` → `{"result": "UNSIGNED"}` or `{"result": "ALREADY_UNSIGNED"}`. */
  async unsign(requestNo: string, agreementNo: string, _masked: string, signal: AbortSignal): Promise<void> {
    const answer = await post(this.gw, '/v1/card-auth/unsign', requestNo, { agreement_no: agreementNo }, signal);
    if (answer.result !== 'UNSIGNED' && answer.result !== 'ALREADY_UNSIGNED') {
      throw new ProviderRefused('/v1/card-auth/unsign: result is neither UNSIGNED nor ALREADY_UNSIGNED');
    }
  }
}

/** The SMS gateway over HTTP: `POST /v1/sms/send` with the mobile and the text → `{"accepted": true}`. */
export class HttpSmsSender implements SmsSender {
  constructor(private readonly gw: Gateway) {}

  async send(requestNo: string, mobile: string, _code: string, text: string, signal: AbortSignal): Promise<void> {
    const answer = await post(this.gw, '/v1/sms/send', requestNo, { mobile, text }, signal);
    if (answer.accepted !== true) throw new ProviderRefused('/v1/sms/send: not accepted');
  }
}

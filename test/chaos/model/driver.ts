// The real side: requests to one running service over HTTP, signed as the sandbox channel DEMO, each carrying the
// model's business time in X-Bindcard-Clock (honoured with FAULTS=chaos). Every answer is checked against the document.
import { backendFor } from '../../../src/http/api.ts';
import { signedHeaders } from '../../../src/sdk/sign.ts';
import type { Model, Request } from './model.ts';

export interface Sent {
  path: string;
  bytes: string;
  /** the signed headers: sending them again is a retry with the same nonce */
  headers: Record<string, string>;
}

export interface Answer {
  status: number;
  text: string;
  body: unknown;
}

const PATHS: Record<Request['op'], string> = {
  first: 'bindCard',
  confirm: 'bindCard',
  malformed: 'bindCard',
  existing: 'bindCard',
  list: 'bankCardList',
  query: 'queryBinding',
  unbind: 'unbindCard',
};

/** Answers that say "retry" without the model having predicted them: the service was busy, not wrong (docs/partners.md). */
export function unexpectedTransient(a: Answer): boolean {
  const sub = (a.body as { data?: { sub_code?: string } } | undefined)?.data?.sub_code;
  return a.status === 503 || a.status === 429 || (a.status === 200 && sub === 'PROVIDER_TIMEOUT');
}

/** Answers the service does not keep under their nonce: the very same bytes sent again are processed afresh. */
export function transient(a: Answer): boolean {
  const b = a.body as { code?: number; data?: { sub_code?: string } } | undefined;
  return (
    a.status === 500 ||
    a.status === 429 ||
    a.status === 503 ||
    (b?.code === 505 && ['PROVIDER_TIMEOUT', 'PROVIDER_ERROR'].includes(b.data?.sub_code ?? ''))
  );
}

const checker = backendFor();
const ready = checker.init();

export class Driver {
  /** unexpected transient answers met (and retried) */
  transients = 0;

  constructor(readonly url: string) {}

  /** The body of a request, as the model's world names it. */
  body(model: Model, r: Request): Record<string, unknown> {
    const { world } = model;
    if (r.op === 'list') return { user_id: world.users[r.user].id };
    const user = world.users[r.user];
    const card = world.cards[r.card];
    const rowId = (row: number) => model.s.rows[row].id!;
    const token = (row: number) => model.s.tokens[`${r.user}/${row}`];
    switch (r.op) {
      case 'first':
      case 'confirm':
      case 'malformed': {
        const variant = r.op === 'malformed' ? 'normal' : r.variant;
        const person = world.persons[user.person];
        const code =
          r.op === 'first' ? { absent: {}, null: { verify_code: null }, empty: { verify_code: '' } }[r.codeField] : { verify_code: r.code };
        return {
          user_id: user.id,
          bank_card: card.number,
          open_bank: variant === 'wrong-bank' ? 'ABC' : 'ICBC',
          user_name: person.name,
          id_number: person.idNumber,
          user_mobile: world.mobiles[model.mobileOf(r.user, variant)],
          bank_address: '北京市 市辖区',
          bank_card_type: 0,
          bind_card_src: 1,
          ...code,
        };
      }
      case 'existing':
        return {
          user_id: user.id,
          bank_card: r.tokenRow === undefined ? card.number : card.masked,
          open_bank: r.wrongBank ? 'ABC' : 'ICBC',
          bind_card_src: 2,
          ...(r.tokenRow === undefined ? {} : { extra_info: { card_token: token(r.tokenRow) } }),
        };
      case 'query':
        return r.row === undefined ? { user_id: user.id, bank_card: card.number } : { user_id: user.id, card_id: rowId(r.row) };
      case 'unbind':
        if (r.by === 'id') return { user_id: user.id, card_id: rowId(r.row!) };
        if (r.by === 'token') return { user_id: user.id, extra_info: { card_token: token(r.row!) } };
        return { user_id: user.id, bank_card: card.number };
    }
  }

  /** A request signed afresh (a new nonce). */
  prepare(model: Model, r: Request): Sent {
    const path = `/demochannel/${PATHS[r.op]}?r_c=DEMO`;
    const bytes = JSON.stringify(this.body(model, r));
    return { path, bytes, headers: signedHeaders('DEMO', 'demo-secret', 'POST', path, bytes) };
  }

  /** Sends at business time `now`; an unexpected transient answer is retried with the same nonce, as partners do. */
  async send(sent: Sent, now: number): Promise<Answer> {
    for (let attempt = 1; ; attempt++) {
      const answer = await this.post(sent, now);
      if (!unexpectedTransient(answer) || attempt === 4) return answer;
      this.transients++;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }

  private async post(sent: Sent, now: number): Promise<Answer> {
    const res = await fetch(this.url + sent.path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-bindcard-clock': String(now), ...sent.headers },
      body: sent.bytes,
    });
    const text = await res.text();
    const body: unknown = text ? JSON.parse(text) : undefined;
    await ready;
    const op = checker.router.matchOperation({ method: 'post', path: sent.path.split('?')[0], headers: {}, query: {} });
    const problems = op ? checker.validateResponse(body, op, res.status).errors : [{ message: 'no operation' }];
    if (problems) throw new Error(`answer ${res.status} to ${sent.path} breaks the document: ${JSON.stringify(problems)} body=${text}`);
    return { status: res.status, text, body };
  }

  /** The sandbox phone: texts to a mobile, newest first. */
  async phone(mobile: string, now: number): Promise<{ code: string; sent_at: string }[]> {
    const res = await fetch(`${this.url}/sandbox/sms?mobile=${mobile}`, { headers: { 'x-bindcard-clock': String(now) } });
    if (res.status !== 200) throw new Error(`sandbox phone answered ${res.status}`);
    return ((await res.json()) as { messages: { code: string; sent_at: string }[] }).messages;
  }
}

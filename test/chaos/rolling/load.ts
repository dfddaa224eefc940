// The rolling stage's partner traffic through HAProxy: new-card flows (first call, the code from the sandbox phone,
// confirmation, the confirmation again), existing-card binds, card lists and queries, each request signed as DEMO, each
// with an X-Request-Id of its own that the service keeps and HAProxy logs, so every request can be followed.
import { setTimeout as sleep } from 'node:timers/promises';
import { signedHeaders } from '../../../src/sdk/sign.ts';
import { maskCard } from '../../../src/domain/card-rules.ts';
import { withCheckChar, withLuhnDigit } from '../../setup/seed.ts';

const BIND = '/demochannel/bindCard?r_c=DEMO';
const LIST = '/demochannel/bankCardList?r_c=DEMO';
const QUERY = '/demochannel/queryBinding?r_c=DEMO';
/** The client gives up on an answer after this long (HAProxy's server timeout is 5 s). */
const ABORT_MS = 8000;
/** A partner retries one step at most this often before the flow counts as failed. */
const MAX_TRIES = 40;

/** What the client saw of one request. */
export type Verdict =
  | 'ok' // the service's answer (its JSON, our X-Request-Id), not 5xx
  | 'service503' // the service's 503 (overload, database, stopping)
  | 'service5xx' // the service's other 5xx
  | 'haproxy503' // HAProxy's own 503 (no server): not the service's JSON
  | 'proxy-error' // any other answer that is not the service's (502, 504, …)
  | 'reset' // no answer: the connection broke
  | 'timeout'; // no answer within ABORT_MS

export interface Sent {
  id: string;
  what: string;
  status?: number;
  verdict: Verdict;
  ms: number;
  error?: string;
}

interface Answer {
  status: number;
  json: { code?: number; message?: string; data?: Record<string, unknown> } & Record<string, unknown>;
}

interface Flow {
  k: number;
  user: string;
  card: string;
  masked: string;
  mobile: string;
  body: Record<string, unknown>;
  cardId?: string;
  state: 'running' | 'bound' | 'failed';
}

// The sandbox's bank fails cards by their last four digits; the load keeps clear of them.
const SANDBOX_SPECIAL = new Set(['0501', '0505', '0002', '0003', '0004']);

/** An ICBC debit number (19 digits, Luhn valid) of flow k, never one of the sandbox's failing cards. */
function cardOf(k: number): string {
  for (const lead of ['5', '6', '7']) {
    const card = withLuhnDigit(`622202${lead}${String(k).padStart(11, '0')}`);
    if (!SANDBOX_SPECIAL.has(card.slice(-4))) return card;
  }
  throw new Error(`no card for ${k}`);
}

/** A valid resident ID for user u: a real birth date from 1970 on, the serial 001, the right check character. */
function idOf(u: number): string {
  const born = new Date(Date.UTC(1970, 0, 1) + u * 86_400_000).toISOString().slice(0, 10).replaceAll('-', '');
  return withCheckChar(`110108${born}001`);
}

export class Load {
  readonly sent: Sent[] = [];
  readonly flows: Flow[] = [];
  readonly users = new Map<string, Flow[]>();
  readonly bound: Flow[] = [];
  readonly problems: string[] = [];
  inconsistent = 0;
  providerRetries = 0;
  /** first calls answered 505 PROVIDER_*: the text may have gone out, and the retry sends a new code */
  firstCallProviderRetries = 0;
  private seq = 0;
  private stopping = false;
  private workers: Promise<void>[] = [];

  constructor(
    private readonly base: string,
    private readonly tag: string,
  ) {}

  start(concurrency: number): void {
    for (let w = 0; w < concurrency; w++) this.workers.push(this.worker());
  }

  /** Stops starting new work; resolves once every worker has finished the flow or call it was in. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers);
  }

  private inconsistency(detail: string): void {
    this.inconsistent++;
    if (this.problems.length < 30) this.problems.push(detail);
  }

  private async worker(): Promise<void> {
    while (!this.stopping) {
      const r = Math.random();
      if (r < 0.45 || this.bound.length < 8) await this.newCardFlow();
      else if (r < 0.65) await this.existingCard(this.pick());
      else if (r < 0.85) await this.cardList(this.pick().user);
      else await this.query(this.pick());
    }
  }

  private pick(): Flow {
    return this.bound[Math.floor(Math.random() * this.bound.length)];
  }

  /** One request; the client's view of it is recorded. */
  async send(what: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer | undefined> {
    const id = `${this.tag}-${++this.seq}`;
    const bytes = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { 'X-Request-Id': id };
    if (bytes !== undefined)
      Object.assign(headers, { 'content-type': 'application/json' }, signedHeaders('DEMO', 'demo-secret', method, path, bytes));
    const started = performance.now();
    const record: Sent = { id, what, verdict: 'reset', ms: 0 };
    this.sent.push(record);
    try {
      const res = await fetch(this.base + path, { method, headers, body: bytes, signal: AbortSignal.timeout(ABORT_MS) });
      const text = await res.text();
      record.ms = performance.now() - started;
      record.status = res.status;
      let json: Answer['json'] | undefined;
      try {
        json = JSON.parse(text) as Answer['json'];
      } catch {
        json = undefined;
      }
      const fromService = res.headers.get('x-request-id') === id && json !== undefined;
      if (fromService) {
        record.verdict = res.status === 503 ? 'service503' : res.status >= 500 ? 'service5xx' : 'ok';
        if (record.verdict === 'ok') return { status: res.status, json: json! };
      } else {
        record.verdict = res.status === 503 ? 'haproxy503' : 'proxy-error';
      }
      return undefined;
    } catch (e) {
      record.ms = performance.now() - started;
      const err = e as Error & { cause?: { code?: string; message?: string } };
      record.verdict = err.name === 'TimeoutError' ? 'timeout' : 'reset';
      record.error = err.cause?.code ?? err.cause?.message ?? err.message;
      return undefined;
    }
  }

  /**
   * A step as a partner makes it: sent again (same body, new nonce) after a 503, an error or no answer, until the
   * service answers and `done` accepts the answer; undefined when it never did.
   */
  private async step(
    what: string,
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    done: (a: Answer) => boolean,
  ): Promise<Answer | undefined> {
    for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
      const answer = await this.send(what, method, path, body);
      if (answer && done(answer)) return answer;
      if (answer && answer.json.code === 505 && /^PROVIDER_/.test(String(answer.json.data?.sub_code))) {
        this.providerRetries++;
        if (what === 'first call') this.firstCallProviderRetries++;
      } else if (answer) {
        this.inconsistency(`${what}: unexpected answer ${answer.status} ${JSON.stringify(answer.json).slice(0, 200)}`);
        return undefined;
      }
      await sleep(150 + Math.random() * 250);
    }
    this.inconsistency(`${what}: no good answer after ${MAX_TRIES} tries`);
    return undefined;
  }

  private newFlow(): Flow {
    const k = this.flows.length;
    const u = Math.floor(k / 2); // two cards per user
    const user = `roll-${this.tag}-${u}`;
    const card = cardOf(k);
    const mobile = `139${String(k).padStart(8, '0')}`;
    const body = {
      user_id: user,
      bank_card: card,
      open_bank: 'ICBC',
      user_name: '测试',
      id_number: idOf(u),
      user_mobile: mobile,
      bank_address: '北京市 市辖区',
      bank_card_type: 0,
      bind_card_src: 1,
    };
    const flow: Flow = {
      k,
      user,
      card,
      masked: maskCard(card),
      mobile,
      body,
      state: 'running',
    };
    this.flows.push(flow);
    this.users.set(user, [...(this.users.get(user) ?? []), flow]);
    return flow;
  }

  private async newCardFlow(): Promise<void> {
    const flow = this.newFlow();
    const fail = () => void (flow.state = 'failed');
    const first = await this.step('first call', 'POST', BIND, flow.body, (a) => a.json.code === 200 && a.json.data?.status === 'SMS_SENT');
    if (!first) return fail();
    const inbox = await this.step('sms', 'GET', `/sandbox/sms?mobile=${flow.mobile}`, undefined, (a) => Array.isArray(a.json.messages));
    if (!inbox) return fail();
    const code = (inbox.json.messages as { code?: string }[])[0]?.code;
    if (!code) {
      this.inconsistency(`sms: SMS_SENT but no text for ${flow.mobile}`);
      return fail();
    }
    const confirmBody = { ...flow.body, verify_code: code };
    const bound = (a: Answer) => a.json.code === 200 && a.json.data?.status === 'BOUND' && typeof a.json.data.card_id === 'string';
    const confirm = await this.step('confirm', 'POST', BIND, confirmBody, bound);
    if (!confirm) return fail();
    const cardId = confirm.json.data!.card_id as string;
    const again = await this.step('confirm again', 'POST', BIND, confirmBody, bound);
    if (!again) return fail();
    if (again.json.data!.card_id !== cardId) {
      this.inconsistency(`confirm again: card_id ${String(again.json.data!.card_id)}, first confirmation ${cardId}`);
      return fail();
    }
    flow.cardId = cardId;
    flow.state = 'bound';
    this.bound.push(flow);
  }

  private async existingCard(flow: Flow): Promise<void> {
    const body = { user_id: flow.user, bank_card: flow.card, open_bank: 'ICBC', bind_card_src: 2 };
    const a = await this.step('existing card', 'POST', BIND, body, (a) => a.json.code === 200);
    if (a && (a.json.data?.status !== 'BOUND' || a.json.data.card_id !== flow.cardId))
      this.inconsistency(`existing card: ${JSON.stringify(a.json.data)} for ${flow.cardId}`);
  }

  private async query(flow: Flow): Promise<void> {
    const a = await this.step('query', 'POST', QUERY, { user_id: flow.user, bank_card: flow.card }, (a) => a.json.code === 200);
    if (a && (a.json.data?.status !== 'BOUND' || a.json.data.card_id !== flow.cardId))
      this.inconsistency(`query: ${JSON.stringify(a.json.data)} for ${flow.cardId}`);
  }

  /** The list holds every card the driver knows bound for the user, and nothing but the user's own cards. */
  async cardList(user: string, final = false): Promise<void> {
    const known = new Set((this.users.get(user) ?? []).filter((f) => f.state === 'bound').map((f) => f.cardId));
    const a = await this.step(final ? 'final card list' : 'card list', 'POST', LIST, { user_id: user }, (a) => a.json.code === 200);
    if (!a) return;
    const listed = ((a.json.data?.cards ?? []) as { card_id: string; bank_card: string }[]).map((c) => ({
      id: c.card_id,
      masked: c.bank_card,
    }));
    const mine = this.users.get(user) ?? [];
    const missing = [...known].filter((id) => !listed.some((c) => c.id === id));
    const strange = listed.filter(
      (c) => !mine.some((f) => f.cardId === c.id || (!final && f.state === 'running' && f.masked === c.masked)),
    );
    const twice = listed.length !== new Set(listed.map((c) => c.id)).size;
    if (missing.length || strange.length || twice)
      this.inconsistency(
        `${final ? 'final ' : ''}card list of ${user}: missing ${missing.join(',')} strange ${JSON.stringify(strange)} listed twice ${twice}`,
      );
  }
}

import { notifyUrlProblem } from '../domain/channel.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../ops/metrics.ts';
import { signedHeaders } from '../sdk/sign.ts';
import type { ChannelStore } from '../store/channel-store.ts';
import type { Claimed, OutboxStore } from '../store/outbox-store.ts';
import type { SandboxStore } from '../store/sandbox-store.ts';
import { postCallback, type PostResult } from './post.ts';

export interface WorkerDeps {
  outbox: OutboxStore;
  channels: ChannelStore;
  log: Logger;
  /** the clock events were written with (tests move it) */
  now: () => Date;
  config: {
    /** seconds before each retry; past the last, the event is dead */
    retrySeconds: number[];
    timeoutMs: number;
    pollMs: number;
    /** production: internal addresses are refused */
    refuseInternal: boolean;
  };
  /** with the sandbox on, every try is kept for GET /sandbox/callbacks */
  sandbox?: SandboxStore;
  /** tries counted by outcome */
  metrics?: Metrics;
}

/** How many events one pass claims, and so posts at once. */
const BATCH = 16;

/**
 * Delivers the outbox: every instance runs one. Each pass claims due events (no two workers claim the same try),
 * posts each, signed with its channel's newest secret as partners sign requests (a fresh timestamp and nonce per try),
 * and records the outcome: delivered on any 2xx, else due again after the next delay of the schedule (with ±20 %
 * jitter), else dead.
 */
export class CallbackWorker {
  constructor(private readonly deps: WorkerDeps) {}

  /** One pass; returns how many tries it made. */
  async deliverDue(): Promise<number> {
    const { config, outbox } = this.deps;
    const now = this.deps.now();
    // a try outlasts its POST: a worker that dies mid-try leaves the event due again after this
    const lease = new Date(now.getTime() + config.timeoutMs + 5000);
    const claimed = await outbox.claim(now, lease, BATCH);
    await Promise.all(claimed.map((event) => this.deliver(event)));
    return claimed.length;
  }

  private async deliver(event: Claimed): Promise<void> {
    const { config, outbox, log } = this.deps;
    const channel = await this.deps.channels.find(event.channel);
    const url = new URL(event.url);
    // the address is checked again: a host the channel no longer has gets nothing more
    const refusal = !channel
      ? `channel ${event.channel} is not active`
      : notifyUrlProblem(event.url, channel) && `refused: ${url.hostname} is not among the channel's callback hosts`;
    const headers =
      channel && !refusal ? signedHeaders(event.channel, channel.secrets[0], 'POST', url.pathname + url.search, event.body) : {};
    const result: PostResult = refusal
      ? { status: null, body: null, error: refusal }
      : await postCallback(event.url, event.body, headers, { timeoutMs: config.timeoutMs, refuseInternal: config.refuseInternal });
    const delivered = result.status !== null && result.status >= 200 && result.status < 300;
    const delay = config.retrySeconds[event.attempts - 1];
    const now = this.deps.now();
    const retryAt = delivered || delay === undefined ? null : new Date(now.getTime() + delay * 1000 * (0.8 + Math.random() * 0.4));
    const error = delivered ? null : (result.error ?? `HTTP ${result.status}`);
    await outbox.record(event, { delivered, status: result.status, error, retryAt }, now);
    this.deps.metrics?.callbackTries.inc({ outcome: delivered ? 'delivered' : retryAt ? 'retry' : 'dead' });
    const fields = { event: event.id, type: event.type, channel: event.channel, attempt: event.attempts, status: result.status };
    if (delivered) log.info(fields, 'callback delivered');
    else if (retryAt) log.warn({ ...fields, error, retry_at: retryAt.toISOString() }, 'callback not acknowledged; will retry');
    else log.error({ ...fields, error }, 'callback dead-lettered after its last try');
    await this.deps.sandbox
      ?.keepCallback({ ...event, attempt: event.attempts, at: now, headers, result })
      .catch((err) => log.warn({ err }, 'the sandbox could not keep a callback try'));
  }

  /** Runs passes every pollMs (and again at once while they find a full batch); returns a stop function. */
  start(): () => Promise<void> {
    let stopped = false;
    let running: Promise<void> = Promise.resolve();
    const pass = async () => {
      try {
        while (!stopped && (await this.deliverDue()) === BATCH);
      } catch (err) {
        this.deps.log.warn({ err }, 'callback delivery pass failed; will retry');
      }
    };
    const timer = setInterval(() => {
      running = running.then(pass);
    }, this.deps.config.pollMs);
    timer.unref();
    return async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    };
  }
}

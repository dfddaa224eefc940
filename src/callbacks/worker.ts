import { LOOPBACK, notifyUrlProblem } from '../domain/channel.ts';
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

/** How many tries one instance has in flight at most: a slow or silent partner holds one each, not the others. */
const CONCURRENCY = 16;

/**
 * Delivers the outbox: every instance runs one. Each pass claims due events (no two workers claim the same try),
 * posts each, signed with its channel's newest secret as partners sign requests (a fresh timestamp and nonce per try),
 * and records the outcome: delivered on any 2xx, else due again after the next delay of the schedule (with ±20 %
 * jitter), else dead.
 */
export class CallbackWorker {
  constructor(private readonly deps: WorkerDeps) {}

  /** One pass, waiting for its tries (tests run passes themselves); returns how many tries it made. */
  async deliverDue(): Promise<number> {
    const claimed = await this.claim(CONCURRENCY);
    await Promise.all(claimed.map((event) => this.deliver(event)));
    return claimed.length;
  }

  private claim(limit: number): Promise<Claimed[]> {
    const now = this.deps.now();
    // a try outlasts its POST: a worker that dies mid-try leaves the event due again after this
    return this.deps.outbox.claim(now, new Date(now.getTime() + this.deps.config.timeoutMs + 5000), limit);
  }

  /** One try, whatever happens to it: an error of ours leaves the event to its lease, due again after it. */
  private async deliver(event: Claimed): Promise<void> {
    try {
      await this.tryOnce(event);
    } catch (err) {
      this.deps.log.warn({ err, event: event.id }, 'callback try failed on our side; due again after its lease');
    }
  }

  private async tryOnce(event: Claimed): Promise<void> {
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
    // A loopback address is the sandbox's own machine, not a partner's: its answer's body is not shown to whoever asks
    // (the sandbox channel is public), only its status.
    const shown = LOOPBACK.has(url.hostname) ? { ...result, body: null } : result;
    await this.deps.sandbox
      ?.keepCallback({ ...event, attempt: event.attempts, at: now, headers, result: shown })
      .catch((err) => log.warn({ err }, 'the sandbox could not keep a callback try'));
  }

  /**
   * Keeps up to CONCURRENCY tries in flight: it claims what is due whenever a place is free, and looks every pollMs;
   * a try that ends frees its place at once. Returns a stop function, which waits for the tries in flight.
   */
  start(): () => Promise<void> {
    const inFlight = new Set<Promise<void>>();
    let stopped = false;
    let looking = false;
    const look = async () => {
      if (stopped || looking) return;
      looking = true;
      try {
        while (!stopped && inFlight.size < CONCURRENCY) {
          const claimed = await this.claim(CONCURRENCY - inFlight.size);
          for (const event of claimed) {
            const attempt: Promise<void> = this.deliver(event).finally(() => {
              inFlight.delete(attempt);
              void look();
            });
            inFlight.add(attempt);
          }
          if (claimed.length === 0) break;
        }
      } catch (err) {
        this.deps.log.warn({ err }, 'looking for due callbacks failed; will look again');
      } finally {
        looking = false;
      }
    };
    const timer = setInterval(() => void look(), this.deps.config.pollMs);
    timer.unref();
    return async () => {
      stopped = true;
      clearInterval(timer);
      while (looking || inFlight.size > 0) await Promise.race([...inFlight, new Promise((r) => setTimeout(r, 10))]);
    };
  }
}

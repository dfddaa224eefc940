/** A request that starts within this of its arrival did not wait: the process is keeping up. */
export const PROMPT_MS = 5;
/** After a refusal, a request that finds every place taken is refused at once for this long (sustained overload). */
export const CALM_MS = 1000;

/** Where Admission reads the time and sets its timers; tests give their own to move time by hand. */
export interface AdmissionClock {
  now(): number;
  setTimeout(fire: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

const systemClock: AdmissionClock = {
  now: () => Date.now(),
  setTimeout: (fire, ms) => setTimeout(fire, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

/**
 * How many requests one process works on at once. When every place is taken, a request waits for one, first come
 * first served, behind at most `maxQueued` others and for at most `maxWaitMs`: a short stall (a slow WAL flush, a
 * pause) then costs latency, not errors. But once no request has started promptly for `maxWaitMs`, or one was
 * refused in the last CALM_MS, it is refused with 503 at once: under sustained overload, a request held in a queue
 * holds a partner's connection, and a partner with a pool of connections then backs up behind it. (The controlled
 * delay of "Fail at Scale", ACM Queue 13(8), 2015, keys on when the queue was last empty; under overload it empties
 * each time it sheds, and a 128-connection client at twice our maximum then waited 5 s: docs/decisions/003-admission-rule.md.)
 */
export class Admission {
  private working = 0;
  private readonly waiting: (() => void)[] = [];
  private promptAt: number;
  private refusedAt = -Infinity;

  constructor(
    private readonly limit: number,
    private readonly maxQueued: number,
    private readonly maxWaitMs: number,
    private readonly clock: AdmissionClock = systemClock,
  ) {
    this.promptAt = clock.now();
  }

  /** Resolves true once the request may start (it must then call `leave`), false when it is refused. */
  enter(): Promise<boolean> {
    const { clock } = this;
    const arrived = clock.now();
    if (this.working < this.limit) {
      this.working++;
      this.promptAt = arrived;
      return Promise.resolve(true);
    }
    if (this.waiting.length >= this.maxQueued || arrived - this.promptAt > this.maxWaitMs || arrived - this.refusedAt < CALM_MS) {
      this.refusedAt = arrived;
      return Promise.resolve(false);
    }
    return new Promise((resolve) => {
      const timer = clock.setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(wake), 1);
        this.refusedAt = clock.now();
        resolve(false);
      }, this.maxWaitMs);
      const wake = () => {
        clock.clearTimeout(timer);
        const now = clock.now();
        if (now - arrived <= PROMPT_MS) this.promptAt = now;
        resolve(true);
      };
      this.waiting.push(wake);
    });
  }

  /** Requests working and waiting now (metrics). */
  get load(): { inflight: number; queued: number } {
    return { inflight: this.working, queued: this.waiting.length };
  }

  /** Hands the place to the longest-waiting request, if any. */
  leave(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.working--;
  }
}

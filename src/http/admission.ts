/** A request that starts within this of its arrival did not wait: the process is keeping up. */
const PROMPT_MS = 5;
/** After a refusal, a request that finds every place taken is refused at once for this long (sustained overload). */
const CALM_MS = 1000;

/**
 * How many requests one process works on at once. When every place is taken, a request waits for one, first come
 * first served, behind at most `maxQueued` others and for at most `maxWaitMs`: a short stall (a slow WAL flush, a
 * pause) then costs latency, not errors. But once no request has started promptly for `maxWaitMs`, or one was
 * refused in the last CALM_MS, it is refused with 503 at once: under sustained overload, a request held in a queue
 * holds a partner's connection, and a partner with a pool of connections then backs up behind it. (The controlled
 * delay of "Fail at Scale", ACM Queue 13(8), 2015, keys on when the queue was last empty; under overload it empties
 * each time it sheds, and a 128-connection client at twice our maximum then waited 5 s: README, Performance.)
 */
export class Admission {
  private working = 0;
  private readonly waiting: (() => void)[] = [];
  private promptAt = Date.now();
  private refusedAt = -Infinity;

  constructor(private readonly limit: number, private readonly maxQueued: number, private readonly maxWaitMs: number) {}

  /** Resolves true once the request may start (it must then call `leave`), false when it is refused. */
  enter(): Promise<boolean> {
    const arrived = Date.now();
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
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(wake), 1);
        this.refusedAt = Date.now();
        resolve(false);
      }, this.maxWaitMs);
      const wake = () => {
        clearTimeout(timer);
        if (Date.now() - arrived <= PROMPT_MS) this.promptAt = Date.now();
        resolve(true);
      };
      this.waiting.push(wake);
    });
  }

  /** Hands the place to the longest-waiting request, if any. */
  leave(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.working--;
  }
}

/** With every place taken, no request finished for this long: the process is stalled, not overloaded. */
export const STALL_MS = 20;

/**
 * How many requests one process works on at once. When every place is taken, a request is refused with 503 at once
 * while requests keep finishing (overload: waiting would hold a partner's connection and only add to its backlog),
 * but waits for a place, first come first served, behind at most `maxQueued` others and for at most `maxWaitMs`,
 * when none has finished for STALL_MS (a slow WAL flush, a pause): a short stall then costs latency, not errors.
 */
export class Admission {
  private working = 0;
  private readonly waiting: (() => void)[] = [];
  private finishedAt = 0;

  constructor(private readonly limit: number, private readonly maxQueued: number, private readonly maxWaitMs: number) {}

  /** Resolves true once the request may start (it must then call `leave`), false when it is refused. */
  enter(): Promise<boolean> {
    if (this.working < this.limit) {
      this.working++;
      return Promise.resolve(true);
    }
    if (this.waiting.length >= this.maxQueued || Date.now() - this.finishedAt < STALL_MS) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(wake), 1);
        resolve(false);
      }, this.maxWaitMs);
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.waiting.push(wake);
    });
  }

  /** Hands the place to the longest-waiting request, if any. */
  leave(): void {
    this.finishedAt = Date.now();
    const next = this.waiting.shift();
    if (next) next();
    else this.working--;
  }
}

/**
 * How many requests one process works on at once. Past `limit`, a request waits for a place, first come first
 * served, but at most `maxWaitMs` and behind at most `maxQueued` others: a short stall of the database is absorbed
 * instead of answered with 503, while sustained overload still gets 503 at once for everything past the queue.
 */
export class Admission {
  private working = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number, private readonly maxQueued: number, private readonly maxWaitMs: number) {}

  /** Resolves true once the request may start (it must then call `leave`), false when it is refused. */
  enter(): Promise<boolean> {
    if (this.working < this.limit) {
      this.working++;
      return Promise.resolve(true);
    }
    if (this.waiting.length >= this.maxQueued) return Promise.resolve(false);
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
    const next = this.waiting.shift();
    if (next) next();
    else this.working--;
  }
}

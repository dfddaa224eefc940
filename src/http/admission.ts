/** How long a request may wait for a place while the queue stands (see Admission). */
export const STANDING_WAIT_MS = 5;

/**
 * How many requests one process works on at once. Past `limit`, a request waits for a place, first come first
 * served, behind at most `maxQueued` others. How long it may wait depends on the queue, as in the controlled-delay
 * queues of Facebook's services ("Fail at Scale", ACM Queue 13(8), 2015): a queue that was empty within the last `maxWaitMs` is a
 * stall (a slow flush, a pause), and a request waits up to `maxWaitMs` for it to pass; a queue that has stood
 * longer is overload, and a request waits only STANDING_WAIT_MS before 503. So a short stall costs latency, not
 * errors, and under sustained overload the excess is still refused at once, whatever the client's concurrency.
 */
export class Admission {
  private working = 0;
  private readonly waiting: (() => void)[] = [];
  /** the last moment the queue was seen empty */
  private emptyAt = Date.now();

  constructor(private readonly limit: number, private readonly maxQueued: number, private readonly maxWaitMs: number) {}

  /** Resolves true once the request may start (it must then call `leave`), false when it is refused. */
  enter(): Promise<boolean> {
    const now = Date.now();
    if (this.waiting.length === 0) this.emptyAt = now;
    if (this.working < this.limit) {
      this.working++;
      return Promise.resolve(true);
    }
    if (this.waiting.length >= this.maxQueued) return Promise.resolve(false);
    const wait = now - this.emptyAt > this.maxWaitMs ? STANDING_WAIT_MS : this.maxWaitMs;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(wake), 1);
        if (this.waiting.length === 0) this.emptyAt = Date.now();
        resolve(false);
      }, wait);
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
    if (this.waiting.length === 0) this.emptyAt = Date.now();
  }
}

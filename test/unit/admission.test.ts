import { expect } from 'chai';
import { Admission, CALM_MS, PROMPT_MS, type AdmissionClock } from '../../src/http/admission.ts';

/** Time that moves only when the test moves it; a timer fires when time passes it, in order. */
class ManualClock implements AdmissionClock {
  private t = 0;
  readonly timers: { at: number; fire: () => void }[] = [];
  now = () => this.t;
  setTimeout = (fire: () => void, ms: number) => {
    const timer = { at: this.t + ms, fire };
    this.timers.push(timer);
    return timer;
  };
  clearTimeout = (timer: unknown) => {
    const i = this.timers.indexOf(timer as ManualClock['timers'][number]);
    if (i >= 0) this.timers.splice(i, 1);
  };
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      const due = this.timers.filter((timer) => timer.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers.splice(this.timers.indexOf(due), 1);
      this.t = due.at;
      due.fire();
    }
    this.t = until;
  }
}

/** What a promise has settled to so far, without waiting for it: 'pending' until then. */
function peek<T>(p: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending')))]);
}

// "At once" below means: settled while the clock stood still.
describe('admission', () => {
  let clock: ManualClock;
  beforeEach(() => {
    clock = new ManualClock();
  });

  it('admits up to the limit at once, then queues first come first served', async () => {
    const a = new Admission(2, 2, 1000, clock);
    expect(await peek(a.enter())).to.equal(true);
    expect(await peek(a.enter())).to.equal(true);
    const third = a.enter();
    const fourth = a.enter();
    clock.advance(999);
    expect(await peek(third)).to.equal('pending'); // no place yet
    expect(await peek(fourth)).to.equal('pending');
    a.leave();
    expect(await peek(third)).to.equal(true);
    expect(await peek(fourth)).to.equal('pending');
    a.leave();
    expect(await peek(fourth)).to.equal(true);
    expect(clock.timers).to.deep.equal([]); // a request given a place leaves no timer to refuse it later
  });

  it('refuses at once past the queue', async () => {
    const a = new Admission(1, 1, 100, clock);
    expect(await peek(a.enter())).to.equal(true);
    const queued = a.enter();
    expect(await peek(a.enter())).to.equal(false);
    a.leave();
    expect(await peek(queued)).to.equal(true);
  });

  it('refuses a queued request once its longest wait is over, and then at once for CALM_MS', async () => {
    const a = new Admission(1, 1, 100, clock);
    expect(await peek(a.enter())).to.equal(true);
    const queued = a.enter();
    clock.advance(99);
    expect(await peek(queued)).to.equal('pending');
    clock.advance(1);
    expect(await peek(queued)).to.equal(false);
    // the queue is empty and 100 ms without a prompt start is not yet too long: only that refusal refuses this one
    expect(await peek(a.enter())).to.equal(false);
    a.leave();
    expect(await peek(a.enter())).to.equal(true); // a free place is always taken, even just after refusals
  });

  it('once no request has started promptly for the longest wait, refuses at once', async () => {
    const a = new Admission(1, 10, 100, clock);
    expect(await peek(a.enter())).to.equal(true); // a prompt start at 0
    const first = a.enter();
    clock.advance(60);
    const second = a.enter();
    a.leave();
    expect(await peek(first)).to.equal(true); // it waited 60 ms: not a prompt start
    clock.advance(40);
    const third = a.enter(); // 100 ms since the last prompt start: may still wait
    expect(await peek(third)).to.equal('pending');
    clock.advance(1);
    expect(await peek(a.enter())).to.equal(false); // 101 ms
    a.leave();
    expect(await peek(second)).to.equal(true);
    a.leave();
    expect(await peek(third)).to.equal(true);
  });

  it(`counts a start on a free place, and a queued request given a place within ${PROMPT_MS} ms, as prompt starts`, async () => {
    const a = new Admission(1, 10, 100, clock);
    clock.advance(500);
    expect(await peek(a.enter())).to.equal(true); // a prompt start at 500
    clock.advance(90);
    const woken = a.enter(); // 90 ms since it
    clock.advance(PROMPT_MS);
    a.leave();
    expect(await peek(woken)).to.equal(true); // a prompt start at 595
    clock.advance(100);
    const next = a.enter(); // 100 ms since the prompt start at 595, 195 since the one at 500
    expect(await peek(next)).to.equal('pending');
    a.leave();
    expect(await peek(next)).to.equal(true);
  });

  it('for CALM_MS after a refusal, refuses at once rather than queue', async () => {
    const a = new Admission(1, 1, 2 * CALM_MS, clock);
    expect(await peek(a.enter())).to.equal(true);
    const queued = a.enter();
    expect(await peek(a.enter())).to.equal(false); // the queue is full
    a.leave();
    expect(await peek(queued)).to.equal(true); // started promptly
    expect(await peek(a.enter())).to.equal(false); // it would have queued but for the refusal just before
    clock.advance(CALM_MS);
    const calm = a.enter(); // CALM_MS after the last refusal: it queues again
    expect(await peek(calm)).to.equal('pending');
    a.leave();
    expect(await peek(calm)).to.equal(true);
  });

  it('with no queue, refuses at once (on the system clock, as the app makes it)', async () => {
    const a = new Admission(1, 0, 1000);
    expect(await peek(a.enter())).to.equal(true);
    expect(await peek(a.enter())).to.equal(false);
  });
});

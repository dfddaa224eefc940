import { expect } from 'chai';
import { Admission } from '../../src/http/admission.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('admission', () => {
  it('admits up to the limit at once, then queues first come first served', async () => {
    const a = new Admission(2, 2, 1000);
    expect(await a.enter()).to.equal(true);
    expect(await a.enter()).to.equal(true);
    const order: string[] = [];
    const third = a.enter().then((ok) => order.push(`third ${ok}`));
    const fourth = a.enter().then((ok) => order.push(`fourth ${ok}`));
    await sleep(20);
    expect(order).to.deep.equal([]); // no place yet
    a.leave();
    await third;
    expect(order).to.deep.equal(['third true']);
    a.leave();
    await fourth;
    expect(order).to.deep.equal(['third true', 'fourth true']);
  });

  it('refuses at once past the queue, and a queued request after its longest wait', async () => {
    const a = new Admission(1, 1, 100);
    expect(await a.enter()).to.equal(true);
    const started = Date.now();
    const queued = a.enter();
    expect(await a.enter()).to.equal(false); // the queue is full
    expect(Date.now() - started).to.be.below(50);
    expect(await queued).to.equal(false);
    expect(Date.now() - started).to.be.within(90, 400);
    // the timed-out request left the queue, and a place freed with nobody waiting is free again
    const next = a.enter();
    a.leave();
    expect(await next).to.equal(true);
    a.leave();
    expect(await a.enter()).to.equal(true);
  });

  it('once the queue has stood longer than the longest wait, lets a new request wait only a few milliseconds', async () => {
    const a = new Admission(1, 10, 100);
    expect(await a.enter()).to.equal(true);
    const first = a.enter(); // the queue was empty: a stall, waits up to 100 ms
    await sleep(60);
    const second = a.enter(); // the queue stood 60 ms: still up to 100 ms
    await sleep(60);
    expect(await first).to.equal(false); // timed out at ~100 ms; `second` keeps the queue standing
    const started = Date.now();
    expect(await a.enter()).to.equal(false); // stood 120 ms: overload, refused after STANDING_WAIT_MS
    expect(Date.now() - started).to.be.below(60);
    a.leave();
    expect(await second).to.equal(true); // the place went to the one still waiting
    a.leave();
    await sleep(150);
    // the queue emptied: the next wait is a stall's again
    expect(await a.enter()).to.equal(true);
    const third = a.enter();
    await sleep(40);
    a.leave();
    expect(await third).to.equal(true);
  });

  it('with no queue, refuses at once', async () => {
    const a = new Admission(1, 0, 1000);
    expect(await a.enter()).to.equal(true);
    expect(await a.enter()).to.equal(false);
  });
});

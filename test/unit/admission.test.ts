import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { Admission } from '../../src/http/admission.ts';

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

  it('refuses at once past the queue, a queued request after its longest wait, and then at once for CALM_MS', async () => {
    const a = new Admission(1, 1, 100);
    expect(await a.enter()).to.equal(true);
    const started = Date.now();
    const queued = a.enter();
    expect(await a.enter()).to.equal(false); // the queue is full
    expect(Date.now() - started).to.be.below(50);
    expect(await queued).to.equal(false);
    expect(Date.now() - started).to.be.within(90, 400);
    const again = Date.now();
    expect(await a.enter()).to.equal(false); // refused a moment ago: overload, no queueing
    expect(Date.now() - again).to.be.below(50);
    a.leave();
    expect(await a.enter()).to.equal(true); // a free place is always taken
  });

  it('once no request has started promptly for the longest wait, refuses at once', async () => {
    const a = new Admission(1, 10, 100);
    expect(await a.enter()).to.equal(true);
    const first = a.enter();
    await sleep(60);
    const second = a.enter(); // 60 ms since a prompt start: may still wait
    a.leave();
    expect(await first).to.equal(true); // it waited 60 ms: not a prompt start
    await sleep(60);
    const started = Date.now();
    expect(await a.enter()).to.equal(false); // 120 ms without a prompt start: overload
    expect(Date.now() - started).to.be.below(50);
    a.leave();
    expect(await second).to.equal(true);
  });

  it('for CALM_MS after a refusal, refuses at once rather than queue', async () => {
    const a = new Admission(1, 1, 1000);
    expect(await a.enter()).to.equal(true);
    const queued = a.enter();
    expect(await a.enter()).to.equal(false); // the queue is full
    a.leave();
    expect(await queued).to.equal(true); // started promptly
    const started = Date.now();
    expect(await a.enter()).to.equal(false); // it would have queued but for the refusal just before
    expect(Date.now() - started).to.be.below(50);
  });

  it('with no queue, refuses at once', async () => {
    const a = new Admission(1, 0, 1000);
    expect(await a.enter()).to.equal(true);
    expect(await a.enter()).to.equal(false);
  });
});

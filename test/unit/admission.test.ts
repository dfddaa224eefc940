import { expect } from 'chai';
import { Admission, STALL_MS } from '../../src/http/admission.ts';

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

  it('refuses at once while requests keep finishing (overload), queues once none has for STALL_MS (a stall)', async () => {
    const a = new Admission(1, 10, 1000);
    expect(await a.enter()).to.equal(true);
    const queued = a.enter(); // nothing has finished yet: a stall
    a.leave();
    expect(await queued).to.equal(true);
    const started = Date.now();
    expect(await a.enter()).to.equal(false); // a request finished just now: overload
    expect(Date.now() - started).to.be.below(STALL_MS);
    await sleep(STALL_MS + 10);
    const later = a.enter(); // none finished for over STALL_MS: waits
    await sleep(20);
    a.leave();
    expect(await later).to.equal(true);
  });

  it('with no queue, refuses at once', async () => {
    const a = new Admission(1, 0, 1000);
    expect(await a.enter()).to.equal(true);
    expect(await a.enter()).to.equal(false);
  });
});

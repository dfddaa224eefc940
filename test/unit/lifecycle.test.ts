import { expect } from 'chai';
import { statusOf } from '../../src/domain/lifecycle.ts';
import type { CardFacts, Verification } from '../../src/domain/stores.ts';
import { ProviderError } from '../../src/providers/provider-types.ts';
import { held, hangs, OTHER_PERSON, SEED, setUp, status } from '../fakes/flow-harness.ts';

// The lifecycle's rules on the in-memory stores: the events a flow emits, where a card stands, and unbinding.

const HOOK = 'https://hooks.acme.example/bindcard';
const ACME = { code: 'ACME', callbackHosts: ['hooks.acme.example'], defaultNotifyUrl: 'https://hooks.acme.example/default' };

/** Binds the seed's card for a user (first call, code, confirmation). */
async function bindFor(t: ReturnType<typeof setUp>, body: Record<string, unknown> = {}, on = {}) {
  const first = await t.bind(body, 2_000, on);
  if (status(first) !== 'SMS_SENT') return first;
  return t.bind({ ...body, verify_code: t.phone.latest() }, 2_000, on);
}

describe('lifecycle: events (in-memory stores)', () => {
  it('emits binding.bound once, in the binding, to the newest address given for the flow', async () => {
    const t = setUp();
    await t.bind({ notify_url: `${HOOK}/first` }, 2_000, ACME);
    // a new address on the confirmation is where the flow's events go; it does not make the code wrong
    const bound = await t.bind({ verify_code: t.phone.latest(), notify_url: `${HOOK}/newer` }, 2_000, ACME);
    expect(status(bound)).to.equal('BOUND');
    await t.bind({ verify_code: t.phone.latest() }, 2_000, ACME); // a retry emits nothing more
    expect(t.stores.tables.events.map((e) => [e.type, e.url, e.data.card_id])).to.deep.equal([
      ['binding.bound', `${HOOK}/newer`, (bound.data as { card_id: string }).card_id],
    ]);
    const [event] = t.stores.tables.events;
    expect(event.id).to.match(/^evt_[0-9a-f]{20}$/);
    expect(JSON.stringify(event)).not.to.include(SEED.bank_card).and.not.to.include(SEED.id_number).and.not.to.include(SEED.user_mobile);
    expect(event.data).to.deep.include({ bank_card: '622202*********2723', open_bank: 'ICBC', bank_card_type: 0 });
  });

  it("keeps the address a refused request gives as the flow's newest", async () => {
    const t = setUp();
    await t.bind({ notify_url: `${HOOK}/A` }, 2_000, ACME);
    const code = t.phone.latest();
    expect(status(await t.bind({ verify_code: code, open_bank: 'ABC', notify_url: `${HOOK}/B` }, 2_000, ACME))).to.equal(
      'BIN_BANK_MISMATCH',
    );
    await t.bind({ verify_code: code }, 2_000, ACME);
    expect(t.stores.tables.events.map((e) => [e.type, e.url])).to.deep.equal([
      ['binding.failed', `${HOOK}/B`],
      ['binding.bound', `${HOOK}/B`],
    ]);
  });

  it("sends a flow's events to the channel's default address when it names none, and nowhere without one", async () => {
    const t = setUp();
    await bindFor(t, {}, ACME);
    await bindFor(t, { user_id: 'demo-user' });
    expect(t.stores.tables.events.map((e) => [e.channel, e.url])).to.deep.equal([['ACME', ACME.defaultNotifyUrl]]);
  });

  it('refuses a callback address that is not https to a registered host (400 naming the field); DEMO may use loopback', async () => {
    const t = setUp();
    for (const url of ['http://hooks.acme.example/x', 'https://evil.example/x', 'https://user:pw@hooks.acme.example/', 'not a url']) {
      const refused = await t.bind({ notify_url: url }, 2_000, ACME).then(
        () => undefined,
        (e: { field?: string }) => e.field,
      );
      expect(refused, url).to.equal('body.notify_url');
    }
    expect(status(await t.bind({ notify_url: 'https://hooks.acme.example:8443/x' }, 2_000, ACME))).to.equal('SMS_SENT');
    expect(status(await t.bind({ user_id: 'd', notify_url: 'http://127.0.0.1:9000/x' }))).to.equal('SMS_SENT');
    expect(t.stores.tables.verifications).to.have.length(2); // nothing half-written for the refused ones
  });

  it('emits binding.failed once per failed attempt: a refusal repeated is the same attempt, corrected details are a new one', async () => {
    const t = setUp();
    const wrongBank = { open_bank: 'ABC', notify_url: HOOK };
    expect(status(await t.bind(wrongBank, 2_000, ACME))).to.equal('BIN_BANK_MISMATCH');
    expect(status(await t.bind(wrongBank, 2_000, ACME))).to.equal('BIN_BANK_MISMATCH');
    expect(status(await t.bind({ ...wrongBank, open_bank: 'CMB' }, 2_000, ACME))).to.equal('BIN_BANK_MISMATCH');
    expect(t.stores.tables.events.map((e) => [e.type, e.data.sub_code])).to.deep.equal([
      ['binding.failed', 'BIN_BANK_MISMATCH'],
      ['binding.failed', 'BIN_BANK_MISMATCH'],
    ]);
    expect(t.stores.tables.events[0].data.card_id).to.equal(null);
  });

  it('emits binding.failed for a rejected review once, and for the wrong code that kills the code, not for the ones before', async () => {
    const t = setUp({ codeMaxAttempts: 2 });
    t.auth.nextReview.push(async () => ({ approved: false, reason: 'no' }));
    expect(status(await t.bind({ user_id: 'r', notify_url: HOOK }, 2_000, ACME))).to.equal('AUTH_REJECTED');
    expect(status(await t.bind({ user_id: 'r', notify_url: HOOK }, 2_000, ACME))).to.equal('AUTH_REJECTED');
    await t.bind({ notify_url: HOOK }, 2_000, ACME);
    expect(status(await t.bind({ verify_code: '000000' }, 2_000, ACME))).to.equal('CODE_INCORRECT');
    expect(status(await t.bind({ verify_code: '000001' }, 2_000, ACME))).to.equal('CODE_ATTEMPTS_EXCEEDED');
    expect(status(await t.bind({ verify_code: '000002' }, 2_000, ACME))).to.equal('CODE_ATTEMPTS_EXCEEDED');
    expect(t.stores.tables.events.map((e) => [e.userId, e.data.sub_code])).to.deep.equal([
      ['r', 'AUTH_REJECTED'],
      [SEED.user_id, 'CODE_ATTEMPTS_EXCEEDED'],
    ]);
  });

  it("emits binding.failed for 502, never naming the other person's card", async () => {
    const t = setUp();
    await bindFor(t);
    expect(status(await t.bind({ ...OTHER_PERSON, notify_url: HOOK }, 2_000, ACME))).to.equal('CARD_BOUND_TO_OTHER');
    const failed = t.stores.tables.events.filter((e) => e.type === 'binding.failed');
    expect(failed.map((e) => [e.userId, e.data.sub_code, e.data.card_id])).to.deep.equal([['other-user', 'CARD_BOUND_TO_OTHER', null]]);
  });
});

describe('lifecycle: where a card stands (in-memory stores)', () => {
  const at = (minute: number) => new Date(Date.parse('2026-12-01T08:00:00Z') + minute * 60_000);
  const flow = (changes: Partial<Verification>): Verification =>
    ({
      code_hash: 'h',
      code_sent_at: at(0),
      code_expires_at: at(5),
      code_attempts: 0,
      code_verified_at: null,
      busy_until: null,
      ...changes,
    }) as Verification;
  const card = { id: 'card_0000000000000001', masked: '622202*********2723', open_bank: 'ICBC', bank_card_type: 0 };
  const cases: [string, CardFacts, number, string, string?][] = [
    ['nothing known', {}, 0, 'NONE'],
    ['a binding, whatever else is known', { card, boundAt: at(1), failure: { subCode: 'AUTH_REJECTED', at: at(9) } }, 10, 'BOUND'],
    ['a gateway call in progress', { flow: flow({ busy_until: at(2) }) }, 1, 'PROCESSING'],
    ['a valid code', { flow: flow({}) }, 1, 'SMS_SENT'],
    ['a code expired unused', { flow: flow({}) }, 6, 'FAILED', 'CODE_EXPIRED'],
    [
      'a code killed by wrong attempts, then expired',
      { flow: flow({ code_attempts: 5 }), failure: { subCode: 'CODE_ATTEMPTS_EXCEEDED', at: at(1) } },
      9,
      'FAILED',
      'CODE_ATTEMPTS_EXCEEDED',
    ],
    [
      'a refusal after a code was sent',
      { flow: flow({}), failure: { subCode: 'CARD_BOUND_TO_OTHER', at: at(2) } },
      3,
      'FAILED',
      'CARD_BOUND_TO_OTHER',
    ],
    ['an unbinding after an expired code', { card, flow: flow({}), unbinding: { busy_until: null, unbound_at: at(8) } }, 9, 'UNBOUND'],
    ['an unbinding in progress', { card, boundAt: undefined, unbinding: { busy_until: at(2), unbound_at: null } }, 1, 'PROCESSING'],
  ];
  for (const [name, facts, minute, want, sub] of cases) {
    it(`${want}${sub ? ` ${sub}` : ''}: ${name}`, () => {
      const got = statusOf(facts, at(minute), 5);
      expect(got.status).to.equal(want);
      if (sub) expect(got.sub_code).to.equal(sub);
    });
  }

  it('tells the flow as it goes: NONE, SMS_SENT, BOUND, UNBOUND, and FAILED for a refusal', async () => {
    const t = setUp();
    expect((await t.query({ bank_card: SEED.bank_card })).status).to.equal('NONE');
    await t.bind({});
    const sent = await t.query({ bank_card: SEED.bank_card });
    expect(sent).to.deep.equal({ status: 'SMS_SENT', code_expires_at: new Date(t.now().getTime() + 300_000).toISOString() });
    const bound = await t.bind({ verify_code: t.phone.latest() });
    const cardId = (bound.data as { card_id: string }).card_id;
    expect(await t.query({ card_id: cardId })).to.deep.include({ status: 'BOUND', card_id: cardId, bank_card: '622202*********2723' });
    await t.unbind({ card_id: cardId });
    expect(await t.query({ card_id: cardId })).to.deep.include({ status: 'UNBOUND', card_id: cardId });
    // the card has no owner left: another person's flow goes on (not refused), and the old card id is not theirs
    await t.bind({ ...OTHER_PERSON });
    expect((await t.query({ user_id: OTHER_PERSON.user_id, bank_card: SEED.bank_card })).status).to.equal('SMS_SENT');
    expect(await t.query({ user_id: OTHER_PERSON.user_id, card_id: cardId })).to.deep.equal({ status: 'NONE' });
    await t.bind({ user_id: 'third', open_bank: 'ABC' });
    expect(await t.query({ user_id: 'third', bank_card: SEED.bank_card })).to.deep.equal({
      status: 'FAILED',
      sub_code: 'BIN_BANK_MISMATCH',
    });
  });

  it('names the card by exactly one of card_id and bank_card (400 naming the field)', async () => {
    const t = setUp();
    for (const body of [{}, { card_id: 'card_0000000000000001', bank_card: SEED.bank_card }]) {
      const field = await t.query(body).then(
        () => undefined,
        (e: { field?: string; rule?: string }) => `${e.field} ${e.rule}`,
      );
      expect(field).to.match(/^body\.(card_id|bank_card) oneOf$/);
    }
  });
});

describe('lifecycle: unbinding (in-memory stores)', () => {
  it('unbinds: the agreement is ended, the card leaves the list, repeats answer the same, binding.unbound is emitted once', async () => {
    const t = setUp();
    const bound = await bindFor(t, { notify_url: HOOK }, ACME);
    const cardId = (bound.data as { card_id: string }).card_id;
    const first = await t.unbind({ card_id: cardId }, 2_000, ACME);
    expect(first).to.deep.include({ code: 200, data: { status: 'UNBOUND', card_id: cardId, unbound_at: t.now().toISOString() } });
    expect(t.auth.unsigned).to.deep.equal([`AG-G1-1`]);
    expect(await t.service.listCards('ACME', String(SEED.user_id))).to.deep.equal([]);
    // every repeat, by any name of the card, answers the same and ends nothing more
    expect(await t.unbind({ card_id: cardId }, 2_000, ACME)).to.deep.equal(first);
    expect(await t.unbind({ bank_card: SEED.bank_card }, 2_000, ACME)).to.deep.equal(first);
    expect(t.auth.unsigned).to.have.length(1);
    const unbound = t.stores.tables.events.filter((e) => e.type === 'binding.unbound');
    expect(unbound.map((e) => [e.url, e.data.card_id])).to.deep.equal([[HOOK, cardId]]);
    expect(t.stores.tables.audit.filter((e) => e.event.startsWith('UNBIND')).map((e) => e.resultCode)).to.deep.equal([200, 200, 200]);
  });

  it('answers CARD_NOT_OWNED for a card the user never had, by any name', async () => {
    const t = setUp();
    const bound = await bindFor(t);
    const cardId = (bound.data as { card_id: string }).card_id;
    const [listed] = await t.service.listCards('DEMO', String(SEED.user_id));
    for (const body of [
      { user_id: 'stranger', card_id: cardId },
      { user_id: 'stranger', bank_card: SEED.bank_card },
      { user_id: 'stranger', extra_info: listed.extra_info },
      { card_id: 'card_ffffffffffffffff' },
    ]) {
      expect((await t.unbind(body)).data, JSON.stringify(body)).to.deep.equal({ sub_code: 'CARD_NOT_OWNED' });
    }
    expect(status(await t.bind({ verify_code: t.phone.latest() }))).to.equal('BOUND'); // still bound
  });

  it('ends the agreement only when the last binding of the card, in any channel, goes', async () => {
    const t = setUp();
    const inDemo = await bindFor(t);
    const inAcme = await bindFor(t, {}, ACME);
    expect(inAcme.data).to.deep.equal(inDemo.data); // one card, one person, two channels
    const cardId = (inDemo.data as { card_id: string }).card_id;
    expect(status(await t.unbind({ card_id: cardId }))).to.equal('UNBOUND');
    expect(t.auth.unsigned).to.deep.equal([]);
    expect(status(await t.unbind({ card_id: cardId }, 2_000, ACME))).to.equal('UNBOUND');
    expect(t.auth.unsigned).to.have.length(1);
  });

  it('ends the agreement when the last two bindings of a card are unbound at the same time', async () => {
    const t = setUp();
    const cardId = ((await bindFor(t)).data as { card_id: string }).card_id;
    await bindFor(t, {}, ACME);
    // each opens while the other's binding is still there; the one that finishes second is the last
    const both = await Promise.all([t.unbind({ card_id: cardId }), t.unbind({ card_id: cardId }, 2_000, ACME)]);
    expect(both.map(status)).to.deep.equal(['UNBOUND', 'UNBOUND']);
    expect(t.auth.unsigned).to.have.length(1);
    expect(t.stores.tables.cards[0].agreementNo).to.equal(null);
  });

  it("binds a person's card in a second channel on the agreement there is, without signing again", async () => {
    const t = setUp();
    await bindFor(t);
    await bindFor(t, {}, ACME);
    expect(t.auth.signs).to.equal(1);
    expect(t.stores.tables.bindings).to.have.length(2);
  });

  it('ends, on the retry, the agreement whose ending timed out, though another binding came meanwhile (signed anew)', async () => {
    const t = setUp();
    const cardId = ((await bindFor(t)).data as { card_id: string }).card_id;
    t.auth.nextUnsign.push(hangs); // it may have ended at the bank
    expect((await t.unbind({ card_id: cardId })).data).to.deep.equal({ sub_code: 'PROVIDER_TIMEOUT' });
    // the same person binds in another channel: its agreement may be over, so this binding signs anew
    await bindFor(t, {}, ACME);
    expect(t.auth.signs).to.equal(2);
    const renewed = t.stores.tables.cards[0].agreementNo;
    expect(renewed).not.to.equal('AG-G1-1');
    // the new agreement is live: a third binding of the card uses it, whatever became of the old one
    await bindFor(t, { user_id: 'third-account' }, ACME);
    expect(t.auth.signs).to.equal(2);
    // the retry ends the agreement it set out to end, and leaves the new one to the binding that has it
    expect(status(await t.unbind({ card_id: cardId }))).to.equal('UNBOUND');
    expect(t.auth.unsigned).to.deep.equal(['AG-G1-1']);
    expect(t.stores.tables.cards[0].agreementNo).to.equal(renewed);
  });

  it('keeps the binding when the gateway fails or times out (505, retryable), and unbinds on the retry', async () => {
    const t = setUp();
    const cardId = ((await bindFor(t)).data as { card_id: string }).card_id;
    t.auth.nextUnsign.push(() => Promise.reject(new ProviderError('down')), hangs);
    expect((await t.unbind({ card_id: cardId })).data).to.deep.equal({ sub_code: 'PROVIDER_ERROR' });
    expect((await t.unbind({ card_id: cardId })).data).to.deep.equal({ sub_code: 'PROVIDER_TIMEOUT' });
    expect(await t.service.listCards('DEMO', String(SEED.user_id))).to.have.length(1);
    expect((await t.query({ card_id: cardId })).status).to.equal('BOUND');
    expect(status(await t.unbind({ card_id: cardId }))).to.equal('UNBOUND');
  });

  it('afterwards: an existing-card confirmation is CARD_NOT_OWNED, a retried confirmation CARD_UNBOUND, a new flow binds the same card_id', async () => {
    const t = setUp();
    const bound = await bindFor(t);
    const code = t.phone.latest();
    const cardId = (bound.data as { card_id: string }).card_id;
    const [listed] = await t.service.listCards('DEMO', String(SEED.user_id));
    await t.unbind({ card_id: cardId });
    const existing = { bank_card: listed.bank_card, bind_card_src: 2, extra_info: listed.extra_info };
    expect(status(await t.bind(existing))).to.equal('CARD_NOT_OWNED');
    expect(await t.bind({ verify_code: code })).to.deep.include({ code: 505, data: { sub_code: 'CARD_UNBOUND' } });
    expect(await t.bind({ verify_code: code })).to.deep.include({ code: 505, data: { sub_code: 'CARD_UNBOUND' } });
    const again = await bindFor(t);
    expect(again.data).to.deep.equal({ status: 'BOUND', card_id: cardId });
    expect(t.phone.texts).to.have.length(2);
    expect(t.auth.signs).to.equal(2); // signed again: the old agreement was ended
    // and unbinding it again is a new cycle: a new gateway request, ending the new agreement
    await t.unbind({ card_id: cardId });
    expect(t.auth.unsigned).to.deep.equal(['AG-G1-1', 'AG-G1-2']);
  });

  it('lets another person bind the card once no binding of it is left, under a new card_id; the old holder keeps its history', async () => {
    const t = setUp();
    const cardId = ((await bindFor(t)).data as { card_id: string }).card_id;
    expect(status(await bindFor(t, OTHER_PERSON))).to.equal('CARD_BOUND_TO_OTHER');
    const unbound = await t.unbind({ card_id: cardId });
    const theirs = await bindFor(t, OTHER_PERSON);
    expect(status(theirs)).to.equal('BOUND');
    expect((theirs.data as { card_id: string }).card_id).not.to.equal(cardId);
    // the old holder's repeats answer as before, by either name of the card, and its query still tells of it
    expect(await t.unbind({ card_id: cardId })).to.deep.equal(unbound);
    expect(await t.unbind({ bank_card: SEED.bank_card })).to.deep.equal(unbound);
    expect(await t.query({ card_id: cardId })).to.deep.include({ status: 'UNBOUND', card_id: cardId });
    expect(await t.query({ bank_card: SEED.bank_card })).to.deep.include({ status: 'UNBOUND', card_id: cardId });
    expect(await t.query({ user_id: OTHER_PERSON.user_id, bank_card: SEED.bank_card })).to.deep.include({ status: 'BOUND' });
  });

  it('holds the card while its agreement is being ended: a confirmation of it in another channel waits, then binds anew', async () => {
    const t = setUp({ providerTimeoutMs: 1_000 });
    const cardId = ((await bindFor(t)).data as { card_id: string }).card_id;
    await t.bind({}, 2_000, ACME); // a code for the same card and person in another channel
    const code = t.phone.latest();
    const unsign = held<void>();
    t.auth.nextUnsign.push(() => {
      unsign.called();
      return unsign.done;
    });
    const unbinding = t.unbind({ card_id: cardId }, 3_000);
    await unsign.started;
    const confirming = t.bind({ verify_code: code }, 3_000, ACME);
    await new Promise((r) => setTimeout(r, 100));
    expect(t.auth.signs).to.equal(1); // not signed while the agreement is being ended
    unsign.finish(undefined);
    expect(status(await unbinding)).to.equal('UNBOUND');
    expect((await confirming).data).to.deep.equal({ status: 'BOUND', card_id: cardId });
    expect(t.auth.signs).to.equal(2);
    // the card keeps the new signing's agreement, not the one ended
    const acmeFlow = t.stores.tables.verifications.find((v) => v.channel === 'ACME')!;
    expect(t.auth.unsigned).to.deep.equal(['AG-G1-1']);
    expect(t.stores.tables.cards[0].agreementNo).to.equal(`AG-G${acmeFlow.id}-1`);
  });
});

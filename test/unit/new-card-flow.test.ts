import { expect } from 'chai';
import { ProviderError, ProviderRefused, type AuthResult } from '../../src/providers/provider-types.ts';
import { DEMO } from '../../src/domain/channel.ts';
import { held, hangs, OTHER_PERSON, SEED, setUp, status } from '../fakes/flow-harness.ts';
import { withCheckChar } from '../setup/seed.ts';

// The new-card state machine's rules, on the in-memory stores and scripted gateways: every branch, no database.

describe('new-card flow (in-memory stores)', () => {
  it('reviews the card, texts a code, binds on the code; a retried confirmation changes and calls nothing', async () => {
    const { bind, auth, phone, stores } = setUp();
    expect(await bind({})).to.deep.include({ code: 200, data: { status: 'SMS_SENT', code_ttl_seconds: 300, resend_after_seconds: 60 } });
    expect([auth.reviews, phone.texts.length]).to.deep.equal([1, 1]);
    const bound = await bind({ verify_code: phone.latest() });
    expect(status(bound)).to.equal('BOUND');
    const before = structuredClone(stores.tables.bindings);
    expect(await bind({ verify_code: phone.latest() })).to.deep.equal(bound);
    expect([auth.reviews, auth.signs, phone.texts.length]).to.deep.equal([1, 1, 1]);
    expect(stores.tables.bindings).to.deep.equal(before);
    expect(stores.tables.audit.map((e) => e.event)).to.deep.equal([
      'NEW_CARD_REQUEST:SMS_SENT',
      'NEW_CARD_CONFIRM:BOUND',
      'NEW_CARD_CONFIRM:BOUND',
    ]);
  });

  it('repeats SMS_SENT within the resend window without a text; after it, a new code replaces the old', async () => {
    const { bind, phone, advance } = setUp();
    await bind({});
    const first = phone.latest();
    advance(59);
    expect(status(await bind({}))).to.equal('SMS_SENT');
    expect(phone.texts).to.have.length(1);
    advance(2);
    expect(status(await bind({}))).to.equal('SMS_SENT');
    expect(phone.texts).to.have.length(2);
    expect(phone.texts[1].requestNo).not.to.equal(phone.texts[0].requestNo);
    // codes are hashed with their sequence number: the older one is wrong even if the two happen to be equal
    expect(status(await bind({ verify_code: first === phone.latest() ? nextCode(first) : first }))).to.equal('CODE_INCORRECT');
    expect(status(await bind({ verify_code: phone.latest() }))).to.equal('BOUND');
  });

  it('kills a code at the 5th distinct wrong value; a retried wrong value counts once; the right one is then refused', async () => {
    const { bind, phone } = setUp();
    await bind({});
    const wrong = ['000001', '000002', '000003', '000004', '000005', '000006'].filter((code) => code !== phone.latest()).slice(0, 5);
    for (const code of wrong.slice(0, 4)) expect(status(await bind({ verify_code: code }))).to.equal('CODE_INCORRECT');
    expect(status(await bind({ verify_code: wrong[0] }))).to.equal('CODE_INCORRECT'); // the same wrong value again
    expect(status(await bind({ verify_code: wrong[4] }))).to.equal('CODE_ATTEMPTS_EXCEEDED');
    expect(status(await bind({ verify_code: phone.latest() }))).to.equal('CODE_ATTEMPTS_EXCEEDED');
  });

  it('expires a code after its time; a wrong code then says expired too', async () => {
    const { bind, phone, advance } = setUp();
    await bind({});
    advance(300);
    expect(status(await bind({ verify_code: phone.latest() }))).to.equal('CODE_EXPIRED');
    expect(status(await bind({ verify_code: nextCode(phone.latest()) }))).to.equal('CODE_EXPIRED');
  });

  it('keeps a code verified in time good for the signing retry after a gateway timeout, even past its expiry', async () => {
    const { bind, phone, auth, advance } = setUp();
    await bind({});
    auth.nextSign.push(hangs);
    expect(status(await bind({ verify_code: phone.latest() }))).to.equal('PROVIDER_TIMEOUT');
    advance(301);
    expect(status(await bind({ verify_code: phone.latest() }))).to.equal('BOUND');
    expect(auth.signs).to.equal(2);
  });

  it('answers CODE_NOT_ISSUED to a confirmation with no first call, or with other details than the first call', async () => {
    const { bind, phone } = setUp();
    expect(status(await bind({ verify_code: '123456' }))).to.equal('CODE_NOT_ISSUED');
    await bind({});
    expect(status(await bind({ verify_code: phone.latest(), user_name: '张三丰' }))).to.equal('CODE_NOT_ISSUED');
  });

  it('answers PROVIDER_TIMEOUT to a review that outlives its budget, ends the lease, and the retry reviews again', async () => {
    const { bind, auth, phone } = setUp();
    auth.nextReview.push(hangs);
    expect(status(await bind({}))).to.equal('PROVIDER_TIMEOUT');
    expect(status(await bind({}))).to.equal('SMS_SENT');
    expect([auth.reviews, phone.texts.length]).to.deep.equal([2, 1]);
  });

  it('answers PROVIDER_ERROR to a failing gateway and tries again on the retry; a rejection is kept and not asked again', async () => {
    const { bind, auth } = setUp();
    auth.nextReview.push(async () => {
      throw new ProviderError('down');
    });
    expect(status(await bind({}))).to.equal('PROVIDER_ERROR');
    auth.nextReview.push(async () => ({ approved: false, reason: 'lost card' }));
    expect(status(await bind({}))).to.equal('AUTH_REJECTED');
    expect(status(await bind({}))).to.equal('AUTH_REJECTED');
    expect(auth.reviews).to.equal(2);
  });

  it('answers PROVIDER_ERROR to a failing SMS gateway; the retry texts a code', async () => {
    const { bind, phone } = setUp();
    phone.next.push(async () => {
      throw new ProviderError('sms down');
    });
    expect(status(await bind({}))).to.equal('PROVIDER_ERROR');
    expect(status(await bind({}))).to.equal('SMS_SENT');
    expect(phone.texts).to.have.length(1);
  });

  it('sends a code whose send timed out again: the same code under the same request number, counted once; it binds', async () => {
    const { bind, phone, stores } = setUp();
    phone.next.push(hangs);
    expect(status(await bind({}))).to.equal('PROVIDER_TIMEOUT');
    expect(status(await bind({}))).to.equal('SMS_SENT');
    const [first, again] = phone.sends;
    expect(again).to.deep.equal(first);
    expect(stores.tables.smsSends).to.have.length(1);
    expect(status(await bind({ verify_code: first.code }))).to.equal('BOUND');
  });

  it('sends the same code again after a failed send, even at the SMS limit; the code is kept encrypted, never in clear', async () => {
    const { bind, phone, stores } = setUp({ smsPerMobileHour: 1 });
    phone.next.push(async () => {
      throw new ProviderError('sms down');
    });
    expect(status(await bind({}))).to.equal('PROVIDER_ERROR');
    const [row] = stores.tables.verifications;
    expect(row.code_enc).to.be.a('string').and.not.contain(phone.sends[0].code);
    expect(status(await bind({}))).to.equal('SMS_SENT');
    expect(phone.sends.map((s) => s.requestNo)).to.deep.equal([phone.sends[0].requestNo, phone.sends[0].requestNo]);
    expect(status(await bind({ verify_code: phone.latest() }))).to.equal('BOUND');
    expect(stores.tables.verifications[0].code_enc).to.equal(null); // spent with the binding
  });

  it('keeps the expiry an unsent code was issued with, however often it is sent again; past it a retry makes a new code', async () => {
    const { bind, phone, stores, advance } = setUp();
    phone.next.push(hangs);
    await bind({});
    advance(200);
    await bind({}); // sent again at 200 s: still good until 300 s, not longer
    expect(stores.tables.verifications[0].code_enc, 'sent: its sealed copy goes').to.equal(null);
    advance(101);
    expect(status(await bind({ verify_code: phone.latest() }))).to.equal('CODE_EXPIRED');
    expect(stores.tables.smsSends).to.have.length(1);

    const other = setUp();
    other.phone.next.push(hangs);
    await other.bind({});
    other.advance(300);
    expect(status(await other.bind({}))).to.equal('SMS_SENT');
    const [first, second] = other.phone.sends;
    expect(second.requestNo).not.to.equal(first.requestNo);
    expect(other.stores.tables.smsSends).to.have.length(2);
    expect(stores.tables.smsSends).to.have.length(1);
  });

  it('sends no code the gateway refused again: the retry issues a new code under a new request number, counted by the limits', async () => {
    const { bind, phone, stores } = setUp({ smsPerMobileHour: 1 });
    phone.next.push(async () => {
      throw new ProviderRefused('/v1/sms/send: not accepted');
    });
    expect(status(await bind({}))).to.equal('PROVIDER_ERROR');
    expect(stores.tables.verifications[0].code_enc, 'a refused code is forgotten').to.equal(null);
    // the refused code counted toward the limit: at 1 an hour the new one is refused by the limit, not sent
    expect(status(await bind({}))).to.equal('SMS_RATE_LIMITED');

    const other = setUp();
    other.phone.next.push(async () => {
      throw new ProviderRefused('/v1/sms/send: HTTP 500');
    });
    await other.bind({});
    expect(status(await other.bind({}))).to.equal('SMS_SENT');
    const [first, second] = other.phone.sends;
    expect(second.requestNo).not.to.equal(first.requestNo);
    expect(other.stores.tables.smsSends).to.have.length(2);
    expect(status(await other.bind({ verify_code: second.code }))).to.equal('BOUND');
  });

  it('makes a duplicate wait for the lease holder and answer from the row: one review, one text', async () => {
    const { bind, auth, phone } = setUp({ providerTimeoutMs: 2_000 });
    const review = held<AuthResult>();
    auth.nextReview.push(() => {
      review.called();
      return review.done;
    });
    const first = bind({});
    await review.started;
    const duplicate = bind({});
    review.finish({ approved: true });
    expect((await Promise.all([first, duplicate])).map(status)).to.deep.equal(['SMS_SENT', 'SMS_SENT']);
    expect([auth.reviews, phone.texts.length]).to.deep.equal([1, 1]);
  });

  it('answers PROVIDER_TIMEOUT at the deadline while another request holds the lease, and takes over once it has lapsed', async () => {
    const { bind, stores, phone, advance, now } = setUp();
    await bind({});
    advance(61);
    // an instance died while it held the lease for a resend
    stores.tables.verifications[0].busy_until = new Date(now().getTime() + 2_000);
    expect(status(await bind({}, 150))).to.equal('PROVIDER_TIMEOUT');
    expect(phone.texts).to.have.length(1);
    advance(2);
    expect(status(await bind({}))).to.equal('SMS_SENT');
    expect(phone.texts).to.have.length(2);
  });

  it('starts over for corrected details: a new generation; a call made for the older one is not recorded as its answer', async () => {
    const { bind, auth, phone, stores, advance } = setUp({ providerTimeoutMs: 2_000 });
    const review = held<AuthResult>();
    auth.nextReview.push(() => {
      review.called();
      return review.done;
    });
    const stale = bind({}, 5_000);
    await review.started;
    advance(3); // the stale request's lease lapses; the partner corrects the name
    expect(status(await bind({ user_name: '张三丰' }))).to.equal('SMS_SENT');
    expect(stores.tables.verifications[0].generation).to.equal(2);
    review.finish({ approved: true }); // the stale review comes back: its row has moved on, so it decides again
    expect(status(await stale)).to.equal('SMS_SENT');
    expect(stores.tables.verifications[0].generation).to.equal(3);
    expect(auth.reviews).to.equal(3);
    // the row is now the stale request's details: its code binds, the corrected one's does not
    expect(status(await bind({ user_name: '张三丰', verify_code: phone.texts[0].code }))).to.equal('CODE_NOT_ISSUED');
    expect(status(await bind({ verify_code: phone.latest() }))).to.equal('BOUND');
  });

  it('sends no text past the SMS limits: 5 per mobile an hour', async () => {
    const { bind, phone, advance } = setUp();
    for (let i = 0; i < 5; i++) {
      expect(status(await bind({ user_id: `u${i}` }))).to.equal('SMS_SENT');
      advance(1);
    }
    expect(status(await bind({ user_id: 'u5' }))).to.equal('SMS_RATE_LIMITED');
    expect(phone.texts).to.have.length(5);
    advance(3600);
    expect(status(await bind({ user_id: 'u5' }))).to.equal('SMS_SENT');
  });

  it('answers 502 at once, with no review and no text, for a card another person holds', async () => {
    const { bind, auth, phone } = setUp();
    await bind({});
    await bind({ verify_code: phone.latest() });
    expect(status(await bind(OTHER_PERSON))).to.equal('CARD_BOUND_TO_OTHER');
    expect(status(await bind({ ...OTHER_PERSON, verify_code: '123456' }))).to.equal('CARD_BOUND_TO_OTHER');
    expect([auth.reviews, phone.texts.length]).to.deep.equal([1, 1]);
  });

  it('gives one of two people confirming the same card at once BOUND, the other 502, and one binding', async () => {
    const { bind, phone, stores } = setUp();
    await bind({});
    const mine = phone.latest();
    await bind(OTHER_PERSON);
    const theirs = phone.latest();
    const answers = await Promise.all([bind({ verify_code: mine }), bind({ ...OTHER_PERSON, verify_code: theirs })]);
    expect(answers.map(status).sort()).to.deep.equal(['BOUND', 'CARD_BOUND_TO_OTHER']);
    expect(stores.tables.bindings).to.have.length(1);
  });

  it('answers a 502 when another person binds the card while this first call is in review, and sends no text', async () => {
    const { bind, auth, phone } = setUp({ providerTimeoutMs: 2_000 });
    await bind(OTHER_PERSON);
    const review = held<AuthResult>();
    auth.nextReview.push(() => {
      review.called();
      return review.done;
    });
    const mine = bind({}, 5_000);
    await review.started;
    expect(status(await bind({ ...OTHER_PERSON, verify_code: phone.latest() }))).to.equal('BOUND');
    review.finish({ approved: true });
    expect(status(await mine)).to.equal('CARD_BOUND_TO_OTHER');
    expect(phone.texts).to.have.length(1);
  });

  it('lets the same person bind the card for another user, with the same card_id', async () => {
    const { bind, phone } = setUp();
    await bind({});
    const first = await bind({ verify_code: phone.latest() });
    await bind({ user_id: 'second-account' });
    const second = await bind({ user_id: 'second-account', verify_code: phone.latest() });
    expect(second).to.deep.equal(first);
  });

  it('binds an existing card from the list by its token, and refuses one the user does not have', async () => {
    const { bind, phone, service } = setUp();
    await bind({});
    const bound = await bind({ verify_code: phone.latest() });
    const [listed] = await service.listCards('DEMO', String(SEED.user_id));
    const existing = {
      user_id: String(SEED.user_id),
      bank_card: listed.bank_card,
      open_bank: 'ICBC',
      bind_card_src: 2,
      extra_info: listed.extra_info,
    };
    expect(await service.bindCard(DEMO, existing as never, Date.now() + 500)).to.deep.equal(bound);
    const stranger = { ...existing, user_id: 'stranger' };
    expect(status(await service.bindCard(DEMO, stranger as never, Date.now() + 500))).to.equal('CARD_NOT_OWNED');
  });

  it('releases the lease when recording a gateway call fails, so the retry goes on at once', async () => {
    const { bind, phone, stores } = setUp();
    await bind({});
    const bindForReal = stores.bindings.bind;
    stores.bindings.bind = () => Promise.reject(new Error('the database went away'));
    const failed = await bind({ verify_code: phone.latest() }).catch((e: Error) => e);
    expect(failed).to.be.instanceOf(Error);
    expect(stores.tables.verifications[0].busy_until).to.equal(null);
    stores.bindings.bind = bindForReal;
    expect(status(await bind({ verify_code: phone.latest() }, 300))).to.equal('BOUND');
  });

  it('makes no card review when no text could follow it (SMS limit), and none past the daily review limits', async () => {
    const { bind, auth, advance } = setUp({ authReviewsPerCardDay: 2, smsPerMobileHour: 1 });
    expect(status(await bind({ user_id: 'a' }))).to.equal('SMS_SENT');
    expect(status(await bind({ user_id: 'b' }))).to.equal('SMS_RATE_LIMITED');
    expect(auth.reviews).to.equal(1);
    advance(3600);
    expect(status(await bind({ user_id: 'c' }))).to.equal('SMS_SENT');
    advance(3600);
    expect(status(await bind({ user_id: 'd' }))).to.equal('AUTH_RATE_LIMITED');
    expect(auth.reviews).to.equal(2);
  });

  it('answers 502 to the holder under a new account once the card has drawn too many other ID numbers in a day', async () => {
    const { bind, auth, phone, advance } = setUp({ ownershipProbesPerCard: 2 });
    await bind({});
    await bind({ verify_code: phone.latest() });
    const stranger = (id: string) => bind({ user_id: 'stranger', id_number: id, user_mobile: '13900000000' });
    expect(status(await stranger('11010519491231002X'))).to.equal('CARD_BOUND_TO_OTHER');
    expect(status(await bind({ user_id: 'second-account' }))).to.equal('SMS_SENT'); // one other ID: the holder goes on
    expect(status(await stranger(withCheckChar('11010519491231001')))).to.equal('CARD_BOUND_TO_OTHER');
    const [reviews, texts] = [auth.reviews, phone.texts.length];
    expect(status(await bind({ user_id: 'third-account' }))).to.equal('CARD_BOUND_TO_OTHER');
    expect(status(await bind({ user_id: 'second-account', verify_code: phone.latest() }))).to.equal('CARD_BOUND_TO_OTHER');
    expect([auth.reviews, phone.texts.length]).to.deep.equal([reviews, texts]);
    expect(status(await bind({ verify_code: phone.texts[0].code }))).to.equal('BOUND'); // the binding itself is unaffected
    advance(24 * 3600 + 1);
    expect(status(await bind({ user_id: 'third-account' }))).to.equal('SMS_SENT');
  });

  it('spends no card review and no text on a request with no time left for the call', async () => {
    const { bind, auth, phone, stores } = setUp();
    expect(status(await bind({}, 50))).to.equal('PROVIDER_TIMEOUT'); // under the 100 ms kept for answering
    expect([auth.reviews, stores.tables.reviews.length, stores.tables.verifications[0].busy_until]).to.deep.equal([0, 0, null]);
    expect(status(await bind({}))).to.equal('SMS_SENT');
    expect(status(await bind({ user_id: 'other' }, 50))).to.equal('PROVIDER_TIMEOUT');
    expect([stores.tables.smsSends.length, phone.texts.length]).to.deep.equal([1, 1]);
  });
});

/** Another six-digit code than this one. */
function nextCode(code: string): string {
  return String((Number(code) + 1) % 1_000_000).padStart(6, '0');
}

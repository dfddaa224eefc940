import { expect } from 'chai';
import type { FakeAnswer } from '../fakes/fake-gateway.ts';
import { testDb } from '../setup/database.ts';
import { seedNewCard, serviceOnFakeGateway } from '../setup/service.ts';

const BODY = seedNewCard();
const MOBILE = BODY.user_mobile as string;

/**
 * The service against a misbehaving gateway over HTTP (test/fakes/fake-gateway.ts, which answers a request number it
 * has seen with its first answer): each fault gets its documented 505 within 2 s, and the partner's retry completes
 * with no second review, text or signing.
 */
describe('gateway faults (HTTP gateways, sandbox off)', () => {
  const on = serviceOnFakeGateway();
  const bind = (body: Record<string, unknown>) => on.svc.bind(body, 'ACME');

  describe('one code per text', () => {
    it('an SMS gateway that times out and delivers after all: the retry sends the same request number, one text, its code binds', async () => {
      on.fake.script('/v1/sms/send', () => ({ body: { accepted: true }, delayMs: 3000 }));
      const slow = await bind(BODY);
      expect([slow.body.code, slow.body.data.sub_code]).to.deep.equal([505, 'PROVIDER_TIMEOUT']);
      expect(slow.ms).to.be.below(2000);
      on.fake.script('/v1/sms/send');
      expect((await bind(BODY)).body.data.status).to.equal('SMS_SENT');
      const [first, again] = on.fake.requestNumbers('/v1/sms/send');
      expect(again).to.equal(first);
      expect(on.fake.smsTo(MOBILE)).to.have.length(1); // the gateway sent the text once
      expect((await bind({ ...BODY, verify_code: on.fake.codeFor(MOBILE) })).body.data.status).to.equal('BOUND');
    });

    it('a text refused before it was sent (connection reset): the retry sends the same code under the same number', async () => {
      on.fake.script('/v1/sms/send', () => ({ body: null, reset: true, keep: false }));
      expect((await bind(BODY)).body.data.sub_code).to.equal('PROVIDER_ERROR');
      on.fake.script('/v1/sms/send');
      expect((await bind(BODY)).body.data.status).to.equal('SMS_SENT');
      const [first, again] = on.fake.callsTo('/v1/sms/send');
      expect([again.body.request_no, again.body.text]).to.deep.equal([first.body.request_no, first.body.text]);
      expect(on.fake.smsTo(MOBILE)).to.have.length(1); // the first was refused before it was sent: this one is the text
      expect((await bind({ ...BODY, verify_code: on.fake.codeFor(MOBILE) })).body.data.status).to.equal('BOUND');
    });

    it('a text the gateway refused, and refuses again under that number: the retry texts a new code under a new number', async () => {
      on.fake.script('/v1/sms/send', () => ({ status: 500, body: { error: 'mobile unreachable' }, keep: true }));
      expect((await bind(BODY)).body.data.sub_code).to.equal('PROVIDER_ERROR');
      on.fake.script('/v1/sms/send');
      expect((await bind(BODY)).body.data.status).to.equal('SMS_SENT');
      const [first, again] = on.fake.requestNumbers('/v1/sms/send');
      expect(again, 'a new request number: the refused one would be refused again').not.to.equal(first);
      expect(on.fake.smsTo(MOBILE)).to.have.length(1);
      expect((await bind({ ...BODY, verify_code: on.fake.codeFor(MOBILE) })).body.data.status).to.equal('BOUND');
    });

    it('keeps the code sealed, never in clear, while its text is in doubt, and drops it once the text is known to have gone', async () => {
      on.fake.script('/v1/sms/send', () => ({ body: { accepted: true }, delayMs: 3000 }));
      await bind(BODY);
      const code = on.fake.codeFor(MOBILE);
      const sealed = async () =>
        ((await testDb().query('SELECT code_enc FROM verifications')) as [{ code_enc: string | null }[], unknown])[0][0];
      expect((await sealed()).code_enc)
        .to.match(/^[A-Za-z0-9_-]+:/)
        .and.not.contain(code);
      on.fake.script('/v1/sms/send');
      expect((await bind(BODY)).body.data.status).to.equal('SMS_SENT');
      expect((await sealed()).code_enc).to.equal(null);
    });
  });

  describe('each fault: the documented 505 within 2 s, and the retry completes under the same request number', () => {
    const VERIFY = '/v1/card-auth/verify';
    const SMS = '/v1/sms/send';
    const SIGN = '/v1/card-auth/sign';
    const UNSIGN = '/v1/card-auth/unsign';
    type Step = 'review' | 'text' | 'sign' | 'unsign';
    const cases: [string, Step, string, FakeAnswer, string][] = [
      ['a connection reset before the review', 'review', VERIFY, { body: null, reset: true, keep: false }, 'PROVIDER_ERROR'],
      ['a garbage body to the review', 'review', VERIFY, { body: '<html>busy</html>', keep: false }, 'PROVIDER_ERROR'],
      ['a review answered after our deadline', 'review', VERIFY, { body: { result: 'APPROVED' }, delayMs: 3000 }, 'PROVIDER_TIMEOUT'],
      ['a text sent, then the connection reset', 'text', SMS, { body: { accepted: true }, reset: true }, 'PROVIDER_ERROR'],
      ['a garbage body to the signing', 'sign', SIGN, { body: 'agreement: yes', keep: false }, 'PROVIDER_ERROR'],
      [
        'a signing done, then the connection reset',
        'sign',
        SIGN,
        { body: { agreement_no: 'AG-LOST-ANSWER' }, reset: true },
        'PROVIDER_ERROR',
      ],
      ['a signing answered after our deadline', 'sign', SIGN, { body: { agreement_no: 'AG-LATE' }, delayMs: 3000 }, 'PROVIDER_TIMEOUT'],
      ['an unsigning done, then the connection reset', 'unsign', UNSIGN, { body: { result: 'UNSIGNED' }, reset: true }, 'PROVIDER_ERROR'],
      ['an unsigning answered after our deadline', 'unsign', UNSIGN, { body: { result: 'UNSIGNED' }, delayMs: 3000 }, 'PROVIDER_TIMEOUT'],
    ];
    for (const [fault, step, path, answer, sub] of cases) {
      it(`${fault}: 505 ${sub}`, async () => {
        const confirm = { ...BODY, verify_code: '' };
        let cardId = '';
        if (step === 'sign' || step === 'unsign') {
          await bind(BODY);
          confirm.verify_code = on.fake.codeFor(MOBILE);
        }
        if (step === 'unsign') cardId = (await bind(confirm)).body.data.card_id;
        const run = () =>
          step === 'unsign' ? on.svc.unbind({ user_id: BODY.user_id, card_id: cardId }, 'ACME') : bind(step === 'sign' ? confirm : BODY);
        on.fake.script(path, () => answer);
        const failed = await run();
        expect([failed.body.code, failed.body.data.sub_code]).to.deep.equal([505, sub]);
        expect(failed.ms).to.be.below(2000);
        on.fake.script(path);
        const done = await run();
        expect(done.body.data.status).to.equal({ review: 'SMS_SENT', text: 'SMS_SENT', sign: 'BOUND', unsign: 'UNBOUND' }[step]);
        expect(new Set(on.fake.requestNumbers(path)).size, 'one request number').to.equal(1);
        expect(on.fake.callsTo(path)).to.have.length(2);
        if (step === 'review' || step === 'text') expect(on.fake.smsTo(MOBILE)).to.have.length(1);
        if (step === 'sign') {
          const [cards] = (await testDb().query('SELECT agreement_no FROM cards')) as [{ agreement_no: string }[], unknown];
          expect(cards).to.have.length(1);
          // a signing the gateway kept (done, its answer lost or late) is the card's agreement: no second signing
          if (answer.keep !== false) expect(cards[0].agreement_no).to.equal((answer.body as { agreement_no: string }).agreement_no);
        }
      });
    }
  });
});

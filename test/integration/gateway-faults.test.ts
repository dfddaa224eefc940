import { expect } from 'chai';
import { FakeGateway } from '../fakes/fake-gateway.ts';
import { resetDb, testDb } from '../setup/database.ts';
import { seedNewCard, startService, type Service } from '../setup/service.ts';

const BODY = seedNewCard();
const MOBILE = BODY.user_mobile as string;

/**
 * The service against a misbehaving gateway over HTTP (test/fakes/fake-gateway.ts, which answers a request number it
 * has seen with its first answer): each fault gets its documented 505 within 2 s, and the partner's retry completes
 * with no second review, text or signing.
 */
describe('gateway faults (HTTP gateways, sandbox off)', () => {
  let fake: FakeGateway;
  let svc: Service;
  before(async () => {
    fake = await new FakeGateway().start();
    svc = await startService({
      SANDBOX: 'false',
      CARD_AUTH_URL: fake.url,
      CARD_AUTH_SECRET: fake.secret,
      SMS_URL: fake.url,
      SMS_SECRET: fake.secret,
    });
  });
  after(async () => {
    await svc.stop();
    await fake.stop();
  });
  beforeEach(async () => {
    await resetDb();
    fake.reset();
    await svc.addChannel('ACME');
  });
  const bind = (body: Record<string, unknown>) => svc.bind(body, 'ACME');
  const calls = (path: string) => fake.calls.filter((c) => c.path === path);
  const requestNumbers = (path: string) => calls(path).map((c) => c.body.request_no);

  describe('one code per text', () => {
    it('an SMS gateway that times out and delivers after all: the retry sends the same request number, one text, its code binds', async () => {
      fake.script('/v1/sms/send', () => ({ body: { accepted: true }, delayMs: 3000 }));
      const slow = await bind(BODY);
      expect([slow.body.code, slow.body.data.sub_code]).to.deep.equal([505, 'PROVIDER_TIMEOUT']);
      expect(slow.ms).to.be.below(2000);
      fake.script('/v1/sms/send');
      expect((await bind(BODY)).body.data.status).to.equal('SMS_SENT');
      const [first, again] = requestNumbers('/v1/sms/send');
      expect(again).to.equal(first);
      expect(fake.smsTo(MOBILE)).to.have.length(1); // the gateway sent the text once
      expect((await bind({ ...BODY, verify_code: fake.codeFor(MOBILE) })).body.data.status).to.equal('BOUND');
    });

    it('a text refused before it was sent (connection reset): the retry sends the same code under the same number', async () => {
      fake.script('/v1/sms/send', () => ({ body: null, reset: true, keep: false }));
      expect((await bind(BODY)).body.data.sub_code).to.equal('PROVIDER_ERROR');
      fake.script('/v1/sms/send');
      expect((await bind(BODY)).body.data.status).to.equal('SMS_SENT');
      const [first, again] = calls('/v1/sms/send');
      expect([again.body.request_no, again.body.text]).to.deep.equal([first.body.request_no, first.body.text]);
      expect(fake.smsTo(MOBILE)).to.have.length(2); // the gateway did not keep the first: it sends now
      expect((await bind({ ...BODY, verify_code: fake.codeFor(MOBILE) })).body.data.status).to.equal('BOUND');
    });

    it('keeps the code encrypted in the row, never in clear, and spends it with the binding', async () => {
      await bind(BODY);
      const code = fake.codeFor(MOBILE);
      const [[row]] = (await testDb().query('SELECT code_enc FROM verifications')) as [{ code_enc: string }[], unknown];
      expect(row.code_enc)
        .to.match(/^[A-Za-z0-9_-]+:/)
        .and.not.contain(code);
      await bind({ ...BODY, verify_code: code });
      const [[spent]] = (await testDb().query('SELECT code_enc FROM verifications')) as [{ code_enc: null }[], unknown];
      expect(spent.code_enc).to.equal(null);
    });
  });
});

import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { HttpCardAuthenticator, HttpSmsSender } from '../../src/providers/http-providers.ts';
import type { Gateway } from '../../src/providers/provider-types.ts';
import { ProviderError, ProviderTimeout, withDeadline, type CardDetails } from '../../src/providers/provider-types.ts';
import { FakeGateway } from '../fakes/fake-gateway.ts';
import { resetDb } from '../setup/database.ts';
import { seedNewCard, serviceOnFakeGateway } from '../setup/service.ts';

const CARD: CardDetails = {
  cardNumber: '6222022005001212723',
  idNumber: '110108198802019650',
  name: '张三',
  mobile: '13420504517',
  bank: 'ICBC',
  cardType: 0,
};
const PERSONAL = [CARD.cardNumber, CARD.idNumber, CARD.mobile];

describe('HTTP gateway adapters against a fake gateway over HTTP', () => {
  let fake: FakeGateway;
  let gw: Gateway;
  let closedPort: string;
  before(async () => {
    fake = await new FakeGateway().start();
    gw = { url: fake.url, clientId: fake.clientId, secret: fake.secret };
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    closedPort = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise((r) => probe.close(r));
  });
  after(() => fake.stop());
  beforeEach(() => fake.reset());
  const within = <T>(ms: number, call: (s: AbortSignal) => Promise<T>) => withDeadline(ms, call);

  it('sends the four elements signed, with the request number as Idempotency-Key, and reads the review', async () => {
    const auth = new HttpCardAuthenticator(gw);
    expect(await within(1000, (s) => auth.verify('A1-0', CARD, s))).to.deep.equal({ approved: true });
    const [call] = fake.calls;
    expect(call.path).to.equal('/v1/card-auth/verify');
    expect(call.headers['idempotency-key']).to.equal('A1-0');
    expect(call.body).to.deep.equal({
      request_no: 'A1-0',
      card_no: CARD.cardNumber,
      id_number: CARD.idNumber,
      name: '张三',
      mobile: CARD.mobile,
      bank: 'ICBC',
      card_type: 0,
    });

    fake.script('/v1/card-auth/verify', () => ({ body: { result: 'REJECTED', reason: 'card reported lost' } }));
    expect(await within(1000, (s) => auth.verify('A2-0', CARD, s))).to.deep.equal({ approved: false, reason: 'card reported lost' });
  });

  it('signs the protocol and gets the same agreement number for a retried request number', async () => {
    const auth = new HttpCardAuthenticator(gw);
    const first = await within(1000, (s) => auth.sign('G7-1', CARD, s));
    expect(first.agreementNo).to.match(/^AG/);
    expect(await within(1000, (s) => auth.sign('G7-1', CARD, s))).to.deep.equal(first);
    expect((await within(1000, (s) => auth.sign('G7-2', CARD, s))).agreementNo).not.to.equal(first.agreementNo);
  });

  it('ends an agreement: UNSIGNED and ALREADY_UNSIGNED are both success, anything else a ProviderError', async () => {
    const auth = new HttpCardAuthenticator(gw);
    await within(1000, (s) => auth.unsign('U1-1', 'AG123', '622202*********2723', s));
    const [call] = fake.calls;
    expect([call.path, call.headers['idempotency-key'], call.body]).to.deep.equal([
      '/v1/card-auth/unsign',
      'U1-1',
      { request_no: 'U1-1', agreement_no: 'AG123' }, // the agreement only: no card, ID or mobile
    ]);
    fake.script('/v1/card-auth/unsign', () => ({ body: { result: 'ALREADY_UNSIGNED' } }));
    await within(1000, (s) => auth.unsign('U2-1', 'AG123', '622202*********2723', s));
    fake.script('/v1/card-auth/unsign', () => ({ body: { result: 'PENDING' } }));
    const refused = await within(1000, (s) => auth.unsign('U3-1', 'AG123', '622202*********2723', s)).catch((e: Error) => e);
    expect(refused).to.be.instanceOf(ProviderError);
    expect((refused as Error).message).to.equal('/v1/card-auth/unsign: result is neither UNSIGNED nor ALREADY_UNSIGNED');
  });

  it('sends the SMS text to the mobile', async () => {
    await within(1000, (s) => new HttpSmsSender(gw).send('S1-1', CARD.mobile, '123456', '验证码123456', s));
    expect(fake.smsTo(CARD.mobile)).to.deep.equal(['验证码123456']);
  });

  it('turns every answer it cannot trust into a ProviderError that names no personal data', async () => {
    const auth = new HttpCardAuthenticator(gw);
    const cases: [string, () => Promise<unknown>, string][] = [
      [
        'HTTP 500',
        () => (
          fake.script('/v1/card-auth/verify', () => ({ status: 500, body: { echo: CARD } })),
          within(1000, (s) => auth.verify('x1', CARD, s))
        ),
        'HTTP 500',
      ],
      [
        'not JSON',
        () => (fake.script('/v1/card-auth/verify', () => ({ body: '<html>' })), within(1000, (s) => auth.verify('x2', CARD, s))),
        'not JSON',
      ],
      [
        'an array',
        () => (fake.script('/v1/card-auth/verify', () => ({ body: [CARD.cardNumber] })), within(1000, (s) => auth.verify('x3', CARD, s))),
        'not a JSON object',
      ],
      [
        'an unknown result',
        () => (fake.script('/v1/card-auth/verify', () => ({ body: { result: 'MAYBE' } })), within(1000, (s) => auth.verify('x4', CARD, s))),
        'neither',
      ],
      [
        'no agreement number',
        () => (fake.script('/v1/card-auth/sign', () => ({ body: { agreement_no: '' } })), within(1000, (s) => auth.sign('x5', CARD, s))),
        'agreement_no',
      ],
      [
        'an answer over 64 KiB',
        () => (
          fake.script('/v1/card-auth/verify', () => ({ body: { result: 'APPROVED', pad: 'x'.repeat(70_000) } })),
          within(1000, (s) => auth.verify('x9', CARD, s))
        ),
        'over 65536 bytes',
      ],
      [
        'SMS not accepted',
        () => (
          fake.script('/v1/sms/send', () => ({ body: { accepted: false } })),
          within(1000, (s) => new HttpSmsSender(gw).send('x6', CARD.mobile, '1', 't', s))
        ),
        'not accepted',
      ],
      [
        'a wrong secret',
        () => within(1000, (s) => new HttpCardAuthenticator({ ...gw, secret: 'another-secret-0000' }).verify('x7', CARD, s)),
        'HTTP 401',
      ],
      [
        'nothing listening',
        () => within(1000, (s) => new HttpCardAuthenticator({ ...gw, url: closedPort }).verify('x8', CARD, s)),
        'ECONNREFUSED',
      ],
    ];
    for (const [what, call, says] of cases) {
      const err = await call().then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err, what).to.be.instanceOf(ProviderError);
      expect(err!.message, what).to.contain(says);
      for (const p of PERSONAL) expect(err!.message, what).not.to.contain(p);
    }
  });

  it('aborts the call at the deadline: a gateway that takes 3 s is a ProviderTimeout after 300 ms', async () => {
    fake.script('/v1/card-auth/verify', () => ({ body: { result: 'APPROVED' }, delayMs: 3000 }));
    const started = performance.now();
    const err = await within(300, (s) => new HttpCardAuthenticator(gw).verify('slow', CARD, s)).catch((e: Error) => e);
    expect(err).to.be.instanceOf(ProviderTimeout);
    expect(performance.now() - started).to.be.below(2000); // cut off, not waited out: the gateway answers at 3 s
    while (fake.aborted === 0 && performance.now() - started < 3000) await sleep(5); // the fake sees the close before it would answer
    expect(fake.aborted).to.equal(1);
    expect(fake.calls).to.have.length(1);
  });
});

describe('the service with HTTP gateways (sandbox off)', () => {
  const on = serviceOnFakeGateway();
  const BODY = seedNewCard();
  const paths = () => on.fake.calls.map((c) => c.path);

  it('binds the seed card through the gateways: review, SMS, then signing; a retried confirmation calls none again', async () => {
    const first = await on.svc.bind(BODY, 'ACME');
    expect(first.body.data.status).to.equal('SMS_SENT');
    expect(paths()).to.deep.equal(['/v1/card-auth/verify', '/v1/sms/send']);
    const code = on.fake.codeFor('13420504517');

    const done = await on.svc.bind({ ...BODY, verify_code: code }, 'ACME');
    expect(done.body.data.status).to.equal('BOUND');
    expect(paths()).to.deep.equal(['/v1/card-auth/verify', '/v1/sms/send', '/v1/card-auth/sign']);
    expect((await on.svc.bind({ ...BODY, verify_code: code }, 'ACME')).body).to.deep.equal(done.body);
    expect(on.fake.calls).to.have.length(3);
    expect((await on.svc.list(BODY.user_id as string, 'ACME')).body.data.cards[0].card_id).to.equal(done.body.data.card_id);
  });

  it("answers 505 PROVIDER_TIMEOUT before 2 s to a gateway that takes 3 s; the retry gets the gateway's stored answer", async () => {
    on.fake.script('/v1/card-auth/verify', () => ({ body: { result: 'APPROVED' }, delayMs: 3000 }));
    const slow = await on.svc.bind(BODY, 'ACME');
    expect(slow.body).to.deep.include({ code: 505 });
    expect(slow.body.data.sub_code).to.equal('PROVIDER_TIMEOUT');
    expect(slow.ms).to.be.below(2000);
    const retry = await on.svc.bind(BODY, 'ACME');
    expect(retry.body.data.status).to.equal('SMS_SENT');
    const reviews = on.fake.calls.filter((c) => c.path === '/v1/card-auth/verify');
    expect(reviews.map((c) => c.body.request_no))
      .to.have.length(2)
      .and.satisfy(([a, b]: string[]) => a === b); // one request number
  });

  it('answers 501 AUTH_REJECTED to a rejected card and 505 PROVIDER_ERROR to a failing SMS gateway, logging no personal data', async () => {
    on.fake.script('/v1/card-auth/verify', () => ({ body: { result: 'REJECTED', reason: 'stolen card' } }));
    expect((await on.svc.bind(BODY, 'ACME')).body.data.sub_code).to.equal('AUTH_REJECTED');
    await resetDb();
    await on.svc.addChannel('ACME');
    on.fake.reset();
    on.fake.script('/v1/sms/send', () => ({ status: 503, body: { echo: BODY } }));
    const failed = await on.svc.bind(BODY, 'ACME');
    expect(failed.body.data.sub_code).to.equal('PROVIDER_ERROR');
    const logs = on.svc.logs.join('');
    expect(logs).to.contain('/v1/sms/send: HTTP 503');
    for (const p of PERSONAL) expect(logs).not.to.contain(p);
  });
});

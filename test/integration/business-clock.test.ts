import { expect } from 'chai';
import { resetDb } from '../setup/database.ts';
import { seedNewCard, startService, type Service } from '../setup/service.ts';

const BIND = '/demochannel/bindCard?r_c=DEMO';

/** The fault switch's business clock (X-Bindcard-Clock, src/faults.ts): set per request, only with FAULTS=chaos. */
describe('the business clock on the fault switch', () => {
  let on: Service;
  let off: Service;
  before(async () => {
    [on, off] = await Promise.all([startService({ FAULTS: 'chaos' }), startService()]);
  });
  after(async () => {
    await Promise.all([on.stop(), off.stop()]);
  });
  beforeEach(resetDb);

  const at = (ms: number) => ({ 'X-Bindcard-Clock': String(ms) });

  it('with the switch on, a clock moved past CODE_TTL makes the code expired for that request only', async () => {
    expect((await on.bind(seedNewCard())).body.data.status).to.equal('SMS_SENT');
    const [{ code }] = await on.inbox('13420504517');
    const late = await on.request('POST', BIND, seedNewCard({ verify_code: code }), at(Date.now() + 301_000));
    expect(late.body.data.sub_code).to.equal('CODE_EXPIRED');
    // the next request without the header is on the service's own clock again: the code is still good
    expect((await on.bind(seedNewCard({ verify_code: code }))).body.data.status).to.equal('BOUND');
  });

  it('with the switch on, a clock past the resend window sends a new code', async () => {
    await on.bind(seedNewCard());
    expect(await on.inbox('13420504517')).to.have.length(1);
    expect((await on.bind(seedNewCard())).body.data.status).to.equal('SMS_SENT'); // within the window: no new text
    expect(await on.inbox('13420504517')).to.have.length(1);
    expect((await on.request('POST', BIND, seedNewCard(), at(Date.now() + 61_000))).body.data.status).to.equal('SMS_SENT');
    expect(await on.inbox('13420504517')).to.have.length(2);
  });

  it('with the switch on, a malformed clock is 400 naming the header', async () => {
    for (const bad of ['soon', '-5', '1.5', '9'.repeat(16)]) {
      const refused = await on.request('POST', BIND, seedNewCard(), { 'X-Bindcard-Clock': bad });
      expect(refused.status, bad).to.equal(400);
      expect(refused.body.data.errors[0]).to.deep.include({ field: 'header.X-Bindcard-Clock', rule: 'format' });
    }
  });

  it('with the switch off, the header does nothing, malformed or not', async () => {
    await off.bind(seedNewCard());
    const [{ code }] = await off.inbox('13420504517');
    expect((await off.request('POST', BIND, seedNewCard(), { 'X-Bindcard-Clock': 'soon' })).body.data.status).to.equal('SMS_SENT');
    const confirmed = await off.request('POST', BIND, seedNewCard({ verify_code: code }), at(Date.now() + 301_000));
    expect(confirmed.body.data.status).to.equal('BOUND');
  });
});

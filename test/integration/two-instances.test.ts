import { expect } from 'chai';
import { embeddedRun, poolMax, resetDb, testDatabaseUrl, testDb } from '../setup/database.ts';
import { requester, seedNewCard } from '../setup/service.ts';
import { startListening, type Listening } from '../setup/service-process.ts';

/** Starts the real entry point as its own process on the run's database. */
const startProcess = () =>
  startListening('src/main.ts', {
    DATABASE_URL: testDatabaseUrl(),
    PORT: '0',
    ADMIN_PORT: '0',
    NODE_ENV: 'test',
    DB_POOL_MAX: String(poolMax),
  });

const post = async (base: string, body: unknown) => (await requester(base)('POST', '/demochannel/bindCard?r_c=DEMO', body)).body;

describe('two instances on one database behave like one', function () {
  this.timeout(30_000);
  let a: Listening;
  let b: Listening;
  before(async function () {
    // Two instances need a PostgreSQL server: the embedded database is one session for one process.
    if (embeddedRun) return this.skip();
    [a, b] = await Promise.all([startProcess(), startProcess()]);
  });
  after(async () => {
    await Promise.all([a, b].map((p) => p?.stop())); // unset when skipped
  });
  beforeEach(resetDb);

  it('sends one SMS and makes one binding when duplicates land on different instances', async () => {
    const first = await Promise.all([post(a.url, seedNewCard()), post(b.url, seedNewCard()), post(a.url, seedNewCard())]);
    expect(first.map((r) => r.data.status)).to.deep.equal(['SMS_SENT', 'SMS_SENT', 'SMS_SENT']);
    const [sms] = (await testDb().query('SELECT code FROM sandbox_sms')) as [{ code: string }[], unknown];
    expect(sms).to.have.length(1);
    const confirm = seedNewCard({ verify_code: sms[0].code });
    const done = await Promise.all([post(a.url, confirm), post(b.url, confirm)]);
    expect(done.map((r) => r.data.status)).to.deep.equal(['BOUND', 'BOUND']);
    expect(done[0].data.card_id).to.equal(done[1].data.card_id);
    const [rows] = await testDb().query('SELECT count(*)::int AS n FROM bindings');
    expect(rows).to.deep.equal([{ n: 1 }]);
  });

  it('counts wrong codes across instances', async () => {
    await post(a.url, seedNewCard());
    const [sms] = (await testDb().query('SELECT code FROM sandbox_sms')) as [{ code: string }[], unknown];
    const wrong = ['111111', '222222', '333333', '444444', '555555'].filter((c) => c !== sms[0].code).slice(0, 4);
    for (const [i, code] of wrong.entries()) {
      const r = await post(i % 2 ? a.url : b.url, seedNewCard({ verify_code: code }));
      expect(r.code).to.equal(801);
    }
    const last = await post(b.url, seedNewCard({ verify_code: sms[0].code === '666666' ? '777777' : '666666' }));
    expect((last.data as { sub_code?: string }).sub_code).to.equal('CODE_ATTEMPTS_EXCEEDED');
  });
});

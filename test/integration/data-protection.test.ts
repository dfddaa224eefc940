import { expect } from 'chai';
import { resetDb, testDb } from '../setup/database.ts';
import { bindNewCard, seedExistingCard, seedNewCard, startService, type Service } from '../setup/service.ts';

const SECRETS = ['6222022005001212723', '110108198802019650', '13420504517', '张三'];

describe('personal data never leaks', () => {
  let svc: Service;
  before(async () => {
    svc = await startService({ LOG_LEVEL: 'debug' });
  });
  after(() => svc.stop());
  beforeEach(resetDb);

  it('keeps card, ID, mobile and name out of logs, answers and every business table, failing paths included', async () => {
    const answers = [
      await bindNewCard(svc, seedNewCard()),
      await svc.bind(seedNewCard({ verify_code: '000000', user_id: 'u2' })),
      await svc.bind(seedExistingCard),
      await svc.bind(seedNewCard({ open_bank: 'ABC' })),
      await svc.bind(seedNewCard({ id_number: '110108198802019651' })),
      await svc.request('POST', '/demochannel/bindCard?r_c=DEMO', `{"bank_card":"${SECRETS[0]}","id_number":"${SECRETS[1]}"`),
      await svc.list('246964109149933'),
    ];
    // the sandbox phone's query string carries a mobile: the access log keeps the path only
    answers.push(await svc.request('GET', '/sandbox/sms?mobile=13420504517'));
    answers.push(
      await svc.request('POST', '/demochannel/bindCard?r_c=DEMO', seedNewCard(), {
        'x-signature': 'f'.repeat(64),
        'x-channel': 'DEMO',
        'x-timestamp': '1',
        'x-nonce': 'n'.repeat(20),
      }),
    );
    const logs = svc.logs.join('');
    const seen = JSON.stringify(answers.slice(0, -2).map((a) => a.body)) + logs;
    for (const s of SECRETS) expect(seen, s).not.to.contain(s);
    for (const s of ['demo-secret', 'f'.repeat(64), 'n'.repeat(20)]) expect(logs, s).not.to.contain(s);
    expect(svc.logs.length).to.be.greaterThan(5);

    for (const table of ['persons', 'cards', 'bindings', 'verifications', 'sms_sends', 'audit_events']) {
      const [rows] = await testDb().query(`SELECT * FROM ${table}`);
      const dump = JSON.stringify(rows);
      for (const s of SECRETS) expect(dump, `${s} in ${table}`).not.to.contain(s);
    }
  });

  it('encrypts card, ID, mobile and name with a key id beside them', async () => {
    await bindNewCard(svc, seedNewCard());
    const [[card]] = (await testDb().query('SELECT card_enc, mobile_enc, key_id, masked FROM cards')) as [
      Record<string, string>[],
      unknown,
    ];
    const [[person]] = (await testDb().query('SELECT id_number_enc, name_enc, key_id FROM persons')) as [Record<string, string>[], unknown];
    expect(card.key_id).to.equal('dev1');
    expect(person.key_id).to.equal('dev1');
    expect(card.masked).to.equal('622202*********2723');
    for (const v of [card.card_enc, card.mobile_enc, person.id_number_enc, person.name_enc])
      expect(v).to.match(/^[A-Za-z0-9+/=]+\.[A-Za-z0-9+/=]+\.[A-Za-z0-9+/=]+$/);
  });

  it('writes an append-only audit trail with masked values', async () => {
    await bindNewCard(svc, seedNewCard());
    await svc.bind(seedExistingCard);
    const [rows] = await testDb().query('SELECT event, card_masked, result_code, sub_code FROM audit_events ORDER BY id');
    expect(rows).to.deep.equal([
      { event: 'NEW_CARD_REQUEST:SMS_SENT', card_masked: '622202*********2723', result_code: 200, sub_code: null },
      { event: 'NEW_CARD_CONFIRM:BOUND', card_masked: '622202*********2723', result_code: 200, sub_code: null },
      { event: 'EXISTING_CARD:BOUND', card_masked: '622202*********2723', result_code: 200, sub_code: null },
    ]);
    let refused = '';
    await testDb()
      .query('UPDATE audit_events SET result_code = 500')
      .catch((e: Error) => {
        refused = e.message;
      });
    expect(refused).to.contain('append-only');
    await testDb()
      .query('DELETE FROM audit_events')
      .catch((e: Error) => {
        refused = e.message + '!';
      });
    expect(refused).to.contain('append-only!');
  });
});

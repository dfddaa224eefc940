import { expect } from 'chai';
import { resetDb, testDb } from '../setup/database.ts';
import { seedNewCard, startService, type Service } from '../setup/service.ts';

const BIND = '/demochannel/bindCard?r_c=DEMO';

describe('protocol errors: documented body, HTTP status = code, checked in order', () => {
  let svc: Service;
  before(async () => {
    svc = await startService();
  });
  after(() => svc.stop());
  beforeEach(resetDb);

  const notFound: [string, string][] = [
    ['an unknown route', '/nothing/here'],
    ['an unknown channel', '/foochannel/bindCard?r_c=FOO'],
    ['a path and r_c that disagree', '/demochannel/bindCard?r_c=OTHER'],
    ['a missing r_c', '/demochannel/bindCard'],
    ['a lower-case r_c', '/demochannel/bindCard?r_c=demo'],
    ['an upper-case path', '/DEMOchannel/bindCard?r_c=DEMO'],
  ];
  for (const [what, path] of notFound) {
    it(`404 for ${what}`, async () => {
      const a = await svc.request('POST', path, seedNewCard());
      expect(a.status).to.equal(404);
      expect(a.body).to.deep.equal({ code: 404, message: '接口或渠道不存在' });
    });
  }

  it('an unknown route is 404 before 405, 405 before 413, and 413 before what needs the database (an unknown channel)', async () => {
    expect((await svc.request('GET', '/nothing/here')).status).to.equal(404);
    const a = await svc.request('PUT', BIND, 'x'.repeat(70_000));
    expect(a.status).to.equal(405);
    expect(a.body).to.deep.equal({ code: 405, message: '请求方法不允许' });
    expect((await svc.request('GET', '/foochannel/bindCard?r_c=FOO')).status).to.equal(405);
    expect((await svc.request('POST', '/foochannel/bindCard?r_c=FOO', 'x'.repeat(70_000))).status).to.equal(413);
  });

  it('413 for a body over 64 KiB, before 415', async () => {
    const a = await svc.request('POST', BIND, 'x'.repeat(65 * 1024), { 'content-type': 'text/plain' });
    expect(a.status).to.equal(413);
    expect(a.body.code).to.equal(413);
  });

  it('415 for a body that is not JSON, before 400', async () => {
    const a = await svc.request('POST', BIND, '{bad', { 'content-type': 'text/plain' });
    expect(a.status).to.equal(415);
  });

  it('400 for malformed JSON, without echoing it', async () => {
    const a = await svc.request('POST', BIND, '{"bank_card":"6222022005001212723",');
    expect(a.status).to.equal(400);
    expect(a.body.message).to.equal('请求体不是合法的 JSON');
    expect(JSON.stringify(a.body)).not.to.contain('6222022005001212723');
  });

  const invalid: [string, Record<string, unknown>, string, string][] = [
    ['a missing user_id', { user_id: undefined }, 'body.user_id', 'required'],
    ['a string bind_card_src (no coercion)', { bind_card_src: '1' }, 'body.bind_card_src', 'type'],
    ['an unknown bind_card_src', { bind_card_src: 3 }, 'body.bind_card_src', 'enum'],
    ['letters in bank_card', { bank_card: '6222abc005001212723' }, 'body.bank_card', 'pattern'],
    ['a short bank_card', { bank_card: '62220220050' }, 'body.bank_card', 'pattern'],
    ['a bad mobile', { user_mobile: '23420504517' }, 'body.user_mobile', 'pattern'],
    ['a bad bank_card_type', { bank_card_type: 2 }, 'body.bank_card_type', 'maximum'],
    ['an unknown field', { card_cvv: '123' }, 'body.card_cvv', 'additionalProperties'],
    ['contacts that are not an object', { contacts: 'x' }, 'body.contacts', 'type'],
    ['a new card without user_mobile', { user_mobile: undefined }, 'body.user_mobile', 'required'],
    ['a new card without id_number', { id_number: '' }, 'body.id_number', 'required'],
    ['a new card without user_name', { user_name: '  ' }, 'body.user_name', 'required'],
    ['an ID with a wrong check character', { id_number: '110108198802019651' }, 'body.id_number', 'checksum'],
    ['a new card with a masked number', { bank_card: '622202*********2723' }, 'body.bank_card', 'pattern'],
  ];
  for (const [what, change, field, rule] of invalid) {
    it(`400 naming ${field} (${rule}) for ${what}; nothing is written`, async () => {
      const a = await svc.request('POST', BIND, seedNewCard(change));
      expect(a.status).to.equal(400);
      expect(a.body.code).to.equal(400);
      expect(a.body.message).to.contain(field);
      expect(a.body.data.errors.map((e: { field: string; rule: string }) => `${e.field}:${e.rule}`)).to.include(`${field}:${rule}`);
      const [rows] = await testDb().query('SELECT (SELECT count(*) FROM verifications) + (SELECT count(*) FROM sandbox_sms) AS n');
      expect(Number((rows[0] as { n: string }).n)).to.equal(0);
    });
  }

  it('400 for a bad user_id in the card list', async () => {
    const a = await svc.request('POST', '/demochannel/bankCardList?r_c=DEMO', { user_id: 'a b' });
    expect(a.status).to.equal(400);
    expect(a.body.data.errors[0]).to.include({ field: 'body.user_id', rule: 'pattern' });
  });

  it('400 naming the query parameter for a missing or malformed one', async () => {
    for (const [query, rule] of [
      ['', 'required'],
      ['?mobile=12345', 'pattern'],
      ['?mobile=13420504517&extra=1', 'additionalProperties'],
    ]) {
      const a = await svc.request('GET', `/sandbox/sms${query}`);
      expect(a.status, query).to.equal(400);
      expect(
        a.body.data.errors.map((e: { field: string; rule: string }) => e.rule),
        query,
      ).to.include(rule);
    }
    expect((await svc.request('GET', '/sandbox/sms?mobile=13420504517')).status).to.equal(200);
  });

  it('accepts contacts as an object and stores nothing of it', async () => {
    const a = await svc.request('POST', BIND, seedNewCard({ contacts: { device: 'secret-device-id-42' } }));
    expect(a.body.data.status).to.equal('SMS_SENT');
    const [rows] = await testDb().query('SELECT * FROM verifications');
    expect(JSON.stringify(rows)).not.to.contain('secret-device-id-42');
  });

  it('400 in the documented shape for a request Node itself refuses', async () => {
    const { request } = await import('node:http');
    const url = new URL(svc.url);
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        { host: url.hostname, port: url.port, method: 'POST', path: BIND, headers: { 'x-big': 'y'.repeat(10_000) } },
        (res) => {
          let body = '';
          res.on('data', (d) => (body += d)).on('end', () => resolve({ status: res.statusCode!, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(answer.status).to.equal(431);
    expect(JSON.parse(answer.body)).to.deep.equal({ code: 431, message: '请求头过大' });
  });

  it('the sandbox inbox exists only while the sandbox is on', async () => {
    const gateways = {
      CARD_AUTH_URL: 'http://127.0.0.1:9',
      CARD_AUTH_SECRET: 'never-called-0123',
      SMS_URL: 'http://127.0.0.1:9',
      SMS_SECRET: 'never-called-0123',
    };
    const prod = await startService({ SANDBOX: 'false', ...gateways });
    try {
      const a = await prod.request('GET', '/sandbox/sms?mobile=13420504517');
      expect(a.status).to.equal(404);
      expect((await prod.request('POST', BIND, seedNewCard())).status).to.equal(404); // no DEMO channel either
    } finally {
      await prod.stop();
    }
  });
});

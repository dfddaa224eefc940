import { connect as connectSocket, type Socket } from 'node:net';
import { expect } from 'chai';
import { loadConfig } from '../../src/config.ts';
import { vaultFor } from '../../src/crypto/vault.ts';
import type { BindingStores } from '../../src/domain/stores.ts';
import { signedHeaders } from '../../src/sdk/sign.ts';
import { createBindingStores } from '../../src/store/stores.ts';
import { countRows, resetDb, testDb } from '../setup/database.ts';
import { bindNewCard, seedExistingCard, seedNewCard, startService, withCheckChar, type Service, type WireBody } from '../setup/service.ts';

// One test (or a few) per finding of the hardening issue; each failed before its fix.

const BIND = '/demochannel/bindCard?r_c=DEMO';
const OWNER_ID = '110108198802019650';
const other = (serial: number) => withCheckChar(`11010819750612${String(serial).padStart(3, '0')}`);

/** Sends the exact bytes with the exact headers, so a test can send the same signed request twice. */
async function sendRaw(svc: Service, path: string, bytes: Buffer | string, headers: Record<string, string>) {
  const res = await fetch(svc.url + path, { method: 'POST', headers, body: typeof bytes === 'string' ? bytes : new Uint8Array(bytes) });
  return { status: res.status, text: await res.text() };
}
const parsed = (answer: { text: string }) => JSON.parse(answer.text) as WireBody;
const signed = (bytes: string, path = BIND): Record<string, string> => ({
  'content-type': 'application/json',
  ...signedHeaders('DEMO', 'demo-secret', 'POST', path, bytes),
});

describe('hardening', () => {
  let svc: Service;
  beforeEach(async () => {
    await resetDb();
    svc = await startService();
  });
  afterEach(() => svc.stop());

  describe('the ID-number oracle is closed (OWNERSHIP_PROBES_PER_CARD)', () => {
    const probe = (serial: number) => svc.bind(seedNewCard({ user_id: 'attacker', id_number: other(serial), user_mobile: '13900000001' }));

    it("after 3 other ID numbers in a day, the holder's own ID gets 502 too, with no SMS and no card review", async () => {
      expect((await bindNewCard(svc, seedNewCard())).body.data.status).to.equal('BOUND');
      for (const serial of [1, 2, 3]) expect((await probe(serial)).body.data.sub_code).to.equal('CARD_BOUND_TO_OTHER');
      const [texts, reviews] = [await countRows('sandbox_sms'), await countRows('auth_reviews')];
      const holder = await svc.bind(seedNewCard({ user_id: 'attacker', id_number: OWNER_ID }));
      expect(holder.body).to.deep.include({ code: 502, data: { sub_code: 'CARD_BOUND_TO_OTHER' } });
      const confirmation = await svc.bind(seedNewCard({ user_id: 'attacker', id_number: OWNER_ID, verify_code: '123456' }));
      expect(confirmation.body.data.sub_code).to.equal('CARD_BOUND_TO_OTHER'); // not 801 CODE_NOT_ISSUED
      expect([await countRows('sandbox_sms'), await countRows('auth_reviews')]).to.deep.equal([texts, reviews]);
      // the holder's existing binding, its replays and existing-card confirmations are unaffected
      expect((await svc.bind(seedNewCard())).body.data.status).to.equal('BOUND');
      expect((await svc.bind(seedExistingCard)).body.data.status).to.equal('BOUND');
      // a day later the window has moved past the probes: the holder may add the card under the new account
      svc.clock.advance(24 * 3600 + 1);
      expect((await svc.bind(seedNewCard({ user_id: 'attacker', id_number: OWNER_ID }))).body.data.status).to.equal('SMS_SENT');
    });

    it('answers the holder as before while fewer other ID numbers were tried', async () => {
      await bindNewCard(svc, seedNewCard());
      for (const serial of [1, 2]) await probe(serial);
      expect((await svc.bind(seedNewCard({ user_id: 'second-account' }))).body.data.status).to.equal('SMS_SENT');
    });

    it('counts probes per card across channels', async () => {
      await bindNewCard(svc, seedNewCard());
      await svc.addChannel('ACME');
      for (const serial of [1, 2, 3]) {
        const answer = await svc.bind(seedNewCard({ user_id: 'attacker', id_number: other(serial), user_mobile: '13900000001' }), 'ACME');
        expect(answer.body.data.sub_code).to.equal('CARD_BOUND_TO_OTHER');
      }
      expect((await svc.bind(seedNewCard({ user_id: 'second-account' }))).body.data.sub_code).to.equal('CARD_BOUND_TO_OTHER');
    });
  });

  describe('characters PostgreSQL cannot store', () => {
    for (const [where, body, field] of [
      ['a string value', seedNewCard({ bank_address: '北京市\u0000海淀区' }), 'body.bank_address'],
      ['a nested value', seedNewCard({ contacts: { list: [{ name: 'a\ud800b' }] } }), 'body.contacts.list.0.name'],
      ['an object key', seedNewCard({ extra_info: { ['k\u0000']: 1 } }), 'body.extra_info'],
      ['a lone low surrogate', seedNewCard({ user_name: '\udc00张三' }), 'body.user_name'],
    ] as const) {
      it(`refuses U+0000 or a lone surrogate in ${where} with a 400 naming ${field}, before anything is sent`, async () => {
        const answer = await svc.bind({ ...body });
        expect(answer.status).to.equal(400);
        expect(answer.body.data.errors[0]).to.include({ field, rule: 'characters' });
        expect([await countRows('verifications'), await countRows('sandbox_sms'), await countRows('auth_reviews')]).to.deep.equal([
          0, 0, 0,
        ]);
      });
    }

    it('releases the lease when recording a gateway call fails, so the retry is not parked until the deadline', async () => {
      const config = loadConfig({ NODE_ENV: 'test' });
      const stores: BindingStores = createBindingStores(testDb(), vaultFor(config));
      const bind = stores.bindings.bind.bind(stores.bindings);
      let failures = 1;
      stores.bindings.bind = (...args) => (failures-- > 0 ? Promise.reject(new Error('the database went away')) : bind(...args));
      const flaky = await startService({}, { stores });
      try {
        await flaky.bind(seedNewCard());
        const [sms] = await flaky.inbox('13420504517');
        expect((await flaky.bind(seedNewCard({ verify_code: sms.code }))).status).to.equal(500);
        // with the lease still held the retry would wait it out and answer 505 PROVIDER_TIMEOUT
        expect((await flaky.bind(seedNewCard({ verify_code: sms.code }))).body.data.status).to.equal('BOUND');
      } finally {
        await flaky.stop();
      }
    });
  });

  describe('answers that say "retry" are not kept under the nonce', () => {
    it('processes the same signed bytes afresh after 505 PROVIDER_TIMEOUT; another signature on the nonce is still 401', async () => {
      const bytes = JSON.stringify(seedNewCard({ bank_card: '6222020000000000002' })); // sandbox: the first review takes 3 s
      const headers = signed(bytes);
      expect(parsed(await sendRaw(svc, BIND, bytes, headers))).to.deep.include({ code: 505 });
      // between the transient answer and the retry, the nonce is retryable: still only for its own signature
      const forged = {
        ...headers,
        'X-Signature': signedHeaders('DEMO', 'demo-secret', 'POST', BIND, bytes + ' ', headers['X-Timestamp'], headers['X-Nonce'])[
          'X-Signature'
        ],
      };
      expect((await sendRaw(svc, BIND, bytes + ' ', forged)).status).to.equal(401);
      const retry = await sendRaw(svc, BIND, bytes, headers);
      expect(parsed(retry)).to.deep.include({ code: 200, data: { status: 'SMS_SENT', code_ttl_seconds: 300, resend_after_seconds: 60 } });
    });

    it('processes the same signed bytes afresh after a 500 and after a 429', async () => {
      const faulty = await startService({ FAULTS: 'on' });
      try {
        const bytes = JSON.stringify(seedNewCard());
        const headers = signed(bytes);
        expect((await sendRaw(faulty, BIND, bytes, { ...headers, 'X-Bindcard-Fault': 'internal-error' })).status).to.equal(500);
        expect(parsed(await sendRaw(faulty, BIND, bytes, headers)).data.status).to.equal('SMS_SENT');
        const list = '/demochannel/bankCardList?r_c=DEMO';
        const listBytes = JSON.stringify({ user_id: '246964109149933' });
        const listHeaders = signed(listBytes, list);
        expect((await sendRaw(faulty, list, listBytes, { ...listHeaders, 'X-Bindcard-Fault': 'rate-limit' })).status).to.equal(429);
        expect((await sendRaw(faulty, list, listBytes, listHeaders)).status).to.equal(200);
      } finally {
        await faulty.stop();
      }
    });

    it('replays every other answer as the very same bytes', async () => {
      const bytes = JSON.stringify(seedNewCard({ verify_code: '123456' }));
      const headers = signed(bytes);
      const first = await sendRaw(svc, BIND, bytes, headers);
      expect(first.text).to.equal('{"code":801,"message":"请先获取验证码","data":{"sub_code":"CODE_NOT_ISSUED"}}');
      expect(await sendRaw(svc, BIND, bytes, headers)).to.deep.equal(first);
    });
  });

  describe('card reviews are limited, and an SMS limit stops a review', () => {
    it('answers SMS_RATE_LIMITED without a review when the mobile is at its limit', async () => {
      for (let i = 0; i < 5; i++) await svc.bind(seedNewCard({ user_id: `u${i}`, bank_card: `62220200000000${i}1234` }));
      const reviews = await countRows('auth_reviews');
      const rejected = await svc.bind(seedNewCard({ user_id: 'u9', bank_card: '6222020000000000501' }));
      expect(rejected.body.data.sub_code).to.equal('SMS_RATE_LIMITED'); // not 501 AUTH_REJECTED: the gateway was not asked
      expect(await countRows('auth_reviews')).to.equal(reviews);
    });

    describe('answers 505 AUTH_RATE_LIMITED past each daily review limit, counted over a rolling day', () => {
      // each case varies everything but the one value its limit counts, so only that limit can refuse it
      const rejected = (n: number) => `6222020000000${String(n).padStart(2, '0')}0501`; // sandbox: rejected, never cached across flows
      const cases: [string, string, (n: number) => Record<string, unknown>][] = [
        [
          'AUTH_REVIEWS_PER_CARD_DAY',
          'the same card',
          (n) => ({ id_number: other(n), user_mobile: `1390000${String(n).padStart(4, '0')}` }),
        ],
        [
          'AUTH_REVIEWS_PER_ID_DAY',
          'the same ID number',
          (n) => ({ bank_card: rejected(n), user_mobile: `1390000${String(n).padStart(4, '0')}` }),
        ],
        ['AUTH_REVIEWS_PER_MOBILE_DAY', 'the same mobile', (n) => ({ bank_card: rejected(n), id_number: other(n) })],
      ];
      for (const [setting, what, vary] of cases) {
        it(`${setting}: the third review of ${what} in a day is refused, and allowed again a day later`, async () => {
          const limited = await startService({ [setting]: '2' });
          try {
            const review = (n: number) =>
              limited.bind(seedNewCard({ user_id: `u${n}`, bank_card: '6222020000000000501', user_mobile: '13900000001', ...vary(n) }));
            for (const n of [1, 2]) expect((await review(n)).body.data.sub_code).to.equal('AUTH_REJECTED');
            expect((await review(3)).body).to.deep.include({ code: 505, data: { sub_code: 'AUTH_RATE_LIMITED' } });
            limited.clock.advance(24 * 3600 + 1);
            expect((await review(4)).body.data.sub_code).to.equal('AUTH_REJECTED');
          } finally {
            await limited.stop();
          }
        });
      }
    });
  });

  describe('request bytes', () => {
    it('answers 415 to a charset other than UTF-8, and takes utf-8 in any spelling', async () => {
      const bytes = JSON.stringify(seedNewCard());
      const headers = (type: string) => ({ ...signed(bytes), 'content-type': type });
      expect((await sendRaw(svc, BIND, bytes, headers('application/json; charset=gbk'))).status).to.equal(415);
      for (const type of ['application/json; charset=UTF-8', 'application/json;charset="utf8"', 'application/json; charset=Utf-8']) {
        expect((await sendRaw(svc, BIND, bytes, headers(type))).status, type).to.equal(200);
      }
    });

    it('answers 400 rule "encoding" to bytes that are not UTF-8 (a GBK name), and binds nothing', async () => {
      const json = JSON.stringify(seedNewCard({ user_name: 'NAME' }));
      const gbk = Buffer.concat([
        Buffer.from(json.slice(0, json.indexOf('NAME'))),
        Buffer.from([0xd5, 0xc5, 0xc8, 0xfd]),
        Buffer.from(json.slice(json.indexOf('NAME') + 4)),
      ]);
      const headers = { 'content-type': 'application/json', ...signedHeaders('DEMO', 'demo-secret', 'POST', BIND, gbk) };
      const answer = await sendRaw(svc, BIND, gbk, headers);
      expect(answer.status).to.equal(400);
      expect(parsed(answer).data.errors[0]).to.include({ field: 'body', rule: 'encoding' });
      expect(await countRows('verifications')).to.equal(0);
    });

    it('answers a body nested thousands deep with a documented answer, never a 500', async () => {
      const deep = (inner: string) => `${'['.repeat(5000)}${inner}${']'.repeat(5000)}`;
      const clean = JSON.stringify(seedNewCard()).replace(/}$/, `,"contacts":{"list":${deep('"a"')}}}`);
      expect((await sendRaw(svc, BIND, clean, signed(clean))).status).to.equal(200);
      const nul = JSON.stringify(seedNewCard({ user_id: 'other' })).replace(/}$/, `,"contacts":{"list":${deep('"a\\u0000"')}}}`);
      const refused = await sendRaw(svc, BIND, nul, signed(nul));
      expect(refused.status).to.equal(400);
      expect(parsed(refused).data.errors[0].rule).to.equal('characters');
    });

    it('matches the path and r_c exactly as sent: a percent-encoded spelling is 404', async () => {
      const bytes = JSON.stringify(seedNewCard());
      for (const path of ['/d%65mochannel/bindCard?r_c=DEMO', '/demochannel/bindCard?r_c=D%45MO', '/demochannel/bank%43ardList?r_c=DEMO']) {
        expect((await sendRaw(svc, path, bytes, signed(bytes, path))).status, path).to.equal(404);
      }
      expect((await sendRaw(svc, BIND, bytes, signed(bytes))).status).to.equal(200);
    });

    /** Sends the signed request's head and part of its body over a raw socket, then acts as the case says. */
    async function abandon(target: Service, behave: (socket: Socket) => void, extraHeaders: Record<string, string> = {}): Promise<void> {
      const bytes = JSON.stringify(seedNewCard());
      const head = Object.entries({ ...signed(bytes), 'content-length': String(bytes.length), host: 'x', ...extraHeaders })
        .map(([name, value]) => `${name}: ${value}`)
        .join('\r\n');
      await new Promise<void>((resolve) => {
        const socket = connectSocket(Number(new URL(target.url).port), '127.0.0.1', () => {
          socket.write(`POST ${BIND} HTTP/1.1\r\n${head}\r\n\r\n`);
          behave(socket);
        });
        socket.on('error', () => undefined);
        socket.on('close', () => resolve());
      });
    }

    /** The request log line with this status, once it is written. */
    async function requestLine(target: Service, status: number): Promise<{ level: number } | undefined> {
      const find = () =>
        target.logs.map((line) => JSON.parse(line) as { level: number; status?: number }).find((line) => line.status === status);
      for (let i = 0; !find() && i < 150; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      return find();
    }
    const errorLines = (target: Service) =>
      target.logs.map((line) => JSON.parse(line) as { level: number }).filter((line) => line.level >= 50);

    it('logs a client that closes before its body arrived as 499 at info, not as a server error', async () => {
      await abandon(svc, (socket) => {
        socket.write('{"user_id"');
        setImmediate(() => socket.destroy());
      });
      expect((await requestLine(svc, 499))?.level).to.equal(30);
      expect(errorLines(svc)).to.deep.equal([]);
    });

    it('logs a client that closes after "Expect: 100-continue" as 499 at info', async () => {
      await abandon(
        svc,
        (socket) => socket.once('data', (data: Buffer) => data.toString().startsWith('HTTP/1.1 100') && socket.destroy()),
        { expect: '100-continue' },
      );
      expect((await requestLine(svc, 499))?.level).to.equal(30);
      expect(errorLines(svc)).to.deep.equal([]);
    });

    it('logs a trickled body cut off by REQUEST_TIMEOUT_MS as the 408 the client got, at info', async () => {
      const strict = await startService({ REQUEST_TIMEOUT_MS: '400', HEADERS_TIMEOUT_MS: '300' });
      try {
        let received = '';
        await abandon(strict, (socket) => {
          socket.on('data', (data: Buffer) => (received += data.toString()));
          const trickle = setInterval(() => socket.write(' '), 50);
          socket.on('close', () => clearInterval(trickle));
        });
        expect(received).to.match(/^HTTP\/1\.1 408/);
        expect((await requestLine(strict, 408))?.level).to.equal(30);
        expect(errorLines(strict)).to.deep.equal([]);
      } finally {
        await strict.stop();
      }
    });
  });

  describe('what the schema and the card rules refuse', () => {
    it('refuses a verify_code that is not six ASCII digits with a 400 that uses no attempt', async () => {
      await svc.bind(seedNewCard());
      for (const code of ['12345', '1234567', 'abcdef', '１２３４５６', ' 123456']) {
        const answer = await svc.bind(seedNewCard({ verify_code: code }));
        expect(answer.status, code).to.equal(400);
        expect(answer.body.data.errors[0].field).to.equal('body.verify_code');
      }
      const [sms] = await svc.inbox('13420504517');
      expect((await svc.bind(seedNewCard({ verify_code: sms.code }))).body.data.status).to.equal('BOUND');
    });

    for (const [what, id] of [
      ['a birth date of 1988-13-45', withCheckChar('11010819881345001')],
      ['a birth date in 3000', withCheckChar('11010830000101001')],
      ['a birth date before 1900', withCheckChar('11010818991231001')],
      ['region 00', withCheckChar('00000000000000000')],
      ['region 16', withCheckChar('16010819880201001')],
    ]) {
      it(`refuses an ID number with ${what} with a 400 naming body.id_number`, async () => {
        const answer = await svc.bind(seedNewCard({ id_number: id }));
        expect(answer.status).to.equal(400);
        expect(answer.body.data.errors[0]).to.include({ field: 'body.id_number', rule: 'id-number' });
      });
    }

    it('takes residence permits (81–83) and the 2023 permanent residence card (9…)', async () => {
      for (const [i, id] of [withCheckChar('81000019880201001'), withCheckChar('93311519880201001')].entries()) {
        expect((await svc.bind(seedNewCard({ id_number: id, user_id: `permit${i}` }))).body.data.status).to.equal('SMS_SENT');
      }
    });
  });

  it('leaves no person row behind for the loser of a confirmation race', async () => {
    const mine = seedNewCard();
    const theirs = seedNewCard({ user_id: 'someone-else', id_number: other(5), user_mobile: '13900000002' });
    await svc.bind(mine);
    await svc.bind(theirs);
    const [myCode] = await svc.inbox('13420504517');
    const [theirCode] = await svc.inbox('13900000002');
    const answers = await Promise.all([
      svc.bind({ ...mine, verify_code: myCode.code }),
      svc.bind({ ...theirs, verify_code: theirCode.code }),
    ]);
    expect(answers.map((a) => a.body.code).sort()).to.deep.equal([200, 502]);
    expect(await countRows('persons')).to.equal(1);
  });
});

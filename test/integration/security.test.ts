import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { signedHeaders } from '../../src/sdk/sign.ts';
import { resetDb, testDb } from '../setup/database.ts';
import { bindNewCard, seedExistingCard, seedNewCard, startService, type Answer, type Service } from '../setup/service.ts';

const BIND = '/demochannel/bindCard?r_c=DEMO';
const now = () => Math.floor(Date.now() / 1000);

const BUSINESS_TABLES = [
  'persons',
  'cards',
  'bindings',
  'verifications',
  'sms_sends',
  'sandbox_sms',
  'auth_reviews',
  'ownership_probes',
  'audit_events',
];

/** Row counts of every business table: a rejected request must leave them as they were. */
async function businessState(): Promise<Record<string, number>> {
  const [rows] = (await testDb().query(
    BUSINESS_TABLES.map((t) => `SELECT '${t}' AS t, count(*)::int AS n FROM ${t}`).join(' UNION ALL '),
  )) as [{ t: string; n: number }[], unknown];
  return Object.fromEntries(rows.map((r) => [r.t, r.n]));
}

/** The tables whose row count changed, and by how much. */
function added(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(BUSINESS_TABLES.filter((t) => after[t] !== before[t]).map((t) => [t, after[t] - before[t]]));
}

describe('partner authentication and abuse limits', () => {
  let svc: Service;
  before(async () => {
    svc = await startService();
  });
  after(() => svc.stop());
  beforeEach(resetDb);

  /** Sends the body with the given signing headers (already lower-case names), unsigned otherwise. */
  const send = (headers: Record<string, string>, body: string = JSON.stringify(seedNewCard()), path = BIND) =>
    svc.request('POST', path, body, { 'x-unsigned': '1', ...headers });
  const signed = (over: Record<string, string> = {}, body = JSON.stringify(seedNewCard()), ts = String(now()), nonce?: string) => ({
    ...signedHeaders('DEMO', 'demo-secret', 'POST', BIND, body, ts, nonce),
    ...over,
  });

  describe('401 in the documented body, and no business state changes', () => {
    const causes: [string, () => Record<string, string>, string][] = [
      ['no signing headers at all', () => ({}), 'header.X-Channel'],
      [
        'no X-Timestamp',
        () => {
          const h = signed();
          delete h['X-Timestamp'];
          return h;
        },
        'header.X-Timestamp',
      ],
      [
        'no X-Nonce',
        () => {
          const h = signed();
          delete h['X-Nonce'];
          return h;
        },
        'header.X-Nonce',
      ],
      [
        'no X-Signature',
        () => {
          const h = signed();
          delete h['X-Signature'];
          return h;
        },
        'header.X-Signature',
      ],
      ['a nonce of 15 characters', () => signed({}, undefined, undefined, 'a'.repeat(15)), 'header.X-Nonce'],
      ['a nonce of 65 characters', () => signed({}, undefined, undefined, 'a'.repeat(65)), 'header.X-Nonce'],
      ['a timestamp in milliseconds-as-letters', () => signed({ 'X-Timestamp': 'yesterday' }), 'header.X-Timestamp'],
      [
        'an upper-case hex signature',
        () => {
          const h = signed();
          return { ...h, 'X-Signature': h['X-Signature'].toUpperCase() };
        },
        'header.X-Signature',
      ],
      ['an unknown channel in X-Channel', () => signed({ 'X-Channel': 'NOSUCH' }), 'header.X-Channel'],
      ['a wrong signature', () => signed({ 'X-Signature': 'a'.repeat(64) }), 'header.X-Signature'],
      [
        'a signature by another secret',
        () => ({ ...signedHeaders('DEMO', 'not-demo-secret', 'POST', BIND, JSON.stringify(seedNewCard())) }),
        'header.X-Signature',
      ],
      ['a timestamp 301 s behind', () => signed({}, undefined, String(now() - 301)), 'header.X-Timestamp'],
      ['a timestamp 301 s ahead', () => signed({}, undefined, String(now() + 301)), 'header.X-Timestamp'],
    ];
    for (const [what, headers, field] of causes) {
      it(`for ${what}`, async () => {
        const before = await businessState();
        const a = await send(headers());
        expect(a.status).to.equal(401);
        expect(a.body.code).to.equal(401);
        expect(a.body.data.errors[0].field).to.equal(field);
        expect(await businessState()).to.deep.equal(before);
      });
    }

    it('accepts a timestamp 299 s off either way', async () => {
      for (const ts of [now() - 299, now() + 299]) {
        expect((await send(signed({}, undefined, String(ts)))).status).to.equal(200);
      }
    });

    it('for a tampered body with the old signature', async () => {
      const h = signed();
      const tampered = JSON.stringify(seedNewCard({ user_mobile: '13900000000' }));
      const before = await businessState();
      expect((await send(h, tampered)).status).to.equal(401);
      expect(await businessState()).to.deep.equal(before);
    });

    it('for a seen nonce with another body, even correctly signed', async () => {
      const nonce = 'n'.repeat(32);
      expect((await send(signed({}, undefined, undefined, nonce))).body.data.status).to.equal('SMS_SENT');
      const other = JSON.stringify(seedNewCard({ user_id: 'someone-else' }));
      const before = await businessState();
      const a = await send(signed({}, other, undefined, nonce), other);
      expect(a.status).to.equal(401);
      expect(a.body.data.errors[0]).to.include({ field: 'header.X-Nonce', rule: 'replay' });
      expect(await businessState()).to.deep.equal(before);
    });

    it("for one channel's credentials on another channel", async () => {
      const secret = await svc.addChannel('ACME');
      const body = JSON.stringify(seedNewCard());
      const before = await businessState();
      const a = await send(signedHeaders('ACME', secret, 'POST', BIND, body), body);
      expect(a.status).to.equal(401);
      expect(await businessState()).to.deep.equal(before);
    });
  });

  it('answers an identical replay with the first answer and changes nothing', async () => {
    const h = signed();
    const first = await send(h);
    const before = await businessState();
    const again = await send(h);
    expect(again.status).to.equal(first.status);
    expect(again.body).to.deep.equal(first.body);
    expect(await businessState()).to.deep.equal(before);
  });

  it('answers a replay to another instance on the same database the same way', async () => {
    const other = await startService();
    try {
      const h = signed();
      const first = await send(h);
      const res = await fetch(other.url + BIND, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...h },
        body: JSON.stringify(seedNewCard()),
      });
      expect(await res.json()).to.deep.equal(first.body);
      expect(await svc.inbox('13420504517')).to.have.length(1);
    } finally {
      await other.stop();
    }
  });

  it("keeps each channel's users apart", async () => {
    await bindNewCard(svc, seedNewCard());
    await svc.addChannel('ACME');
    expect((await svc.list('246964109149933', 'ACME')).body.data.cards).to.deep.equal([]);
    expect((await svc.bind(seedExistingCard, 'ACME')).body.data.sub_code).to.equal('CARD_NOT_OWNED');
  });

  it('keeps a channel working through a secret rotation, then drops the oldest secret', async () => {
    const { ChannelStore } = await import('../../src/store/channel-store.ts');
    const { vaultFor } = await import('../../src/crypto/vault.ts');
    const { loadConfig } = await import('../../src/config.ts');
    const c = loadConfig({ NODE_ENV: 'test' });
    const store = new ChannelStore(testDb(), vaultFor(c), true);
    const first = await svc.addChannel('ACME');
    const second = await store.rotate('ACME');
    for (const secret of [first, second]) {
      svc.secrets.set('ACME', secret);
      expect((await svc.list('u', 'ACME')).status).to.equal(200);
    }
    const third = await store.rotate('ACME');
    svc.secrets.set('ACME', first);
    expect((await svc.list('u', 'ACME')).status).to.equal(401);
    svc.secrets.set('ACME', third);
    expect((await svc.list('u', 'ACME')).status).to.equal(200);
    await store.disable('ACME');
    expect((await svc.list('u', 'ACME')).status).to.equal(404);
  });

  describe('hostile input: a documented answer, never a 500, nothing half-written', () => {
    const values: [string, unknown][] = [
      ['SQL', "1'; DROP TABLE cards; --"],
      ['very long', 'x'.repeat(20_000)],
      ['unicode', '张三😀\u202e\uFEFF'],
      ['control characters', 'a\u0000b\u0007c\n'],
      ['a number', 12345],
      ['an object', { $gt: '' }],
      ['null', null],
    ];
    const fields = [
      'user_id',
      'bank_card',
      'open_bank',
      'user_name',
      'id_number',
      'user_mobile',
      'bank_address',
      'bank_card_type',
      'bind_card_src',
      'verify_code',
      'extra_info',
      'contacts',
    ];
    // Each on an empty database. Some values are valid data (a long name, a number-free SQL string in bank_address): a
    // 200 must then have done what a first call documents, no more; a 400 must have written nothing.
    for (const field of fields) {
      for (const [what, value] of values) {
        it(`in ${field}: ${what}`, async () => {
          const before = await businessState();
          const answer = await svc.bind(seedNewCard({ [field]: value }));
          expect(answer.status).to.be.oneOf([200, 400]);
          const change = added(before, await businessState());
          if (answer.status === 400) {
            expect(answer.body.data.errors.length).to.be.greaterThan(0);
            expect(change).to.deep.equal({});
          } else if (answer.body.data.status === 'SMS_SENT') {
            // the flow's row, the review and the send its limits count, the message, and the audit event; no person, card
            // or binding
            expect(change).to.deep.equal({ verifications: 1, auth_reviews: 1, sms_sends: 1, sandbox_sms: 1, audit_events: 1 });
            expect(await svc.inbox('13420504517')).to.have.length(1);
          } else {
            expect(answer.body.code, JSON.stringify(answer.body)).not.to.equal(200);
            expect(change).to.deep.equal({ audit_events: 1 }); // a business refusal is audited, nothing else
          }
          const [[tables]] = (await testDb().query("SELECT to_regclass('cards') IS NOT NULL AS ok")) as [{ ok: boolean }[], unknown];
          expect(tables.ok).to.equal(true);
        });
      }
    }

    it('refuses strings where numbers belong and the reverse, without coercion', async () => {
      expect((await svc.bind(seedNewCard({ bind_card_src: '1' }))).status).to.equal(400);
      expect((await svc.bind(seedNewCard({ bank_card_type: '0' }))).status).to.equal(400);
      // the seed's card number as a JSON number: a double keeps its first 16 digits
      expect((await svc.bind(seedNewCard({ bank_card: 6222022005001213000 }))).status).to.equal(400);
      expect((await svc.bind(seedNewCard({ user_id: 246964109149933 }))).status).to.equal(400);
    });

    it('refuses duplicate keys in a JSON body', async () => {
      const body = JSON.stringify(seedNewCard()).replace('{', '{"user_id":"someone-else",');
      const before = await businessState();
      const a = await svc.request('POST', BIND, body);
      expect(a.status).to.equal(400);
      expect(a.body.data.errors[0].rule).to.equal('duplicate-key');
      expect(await businessState()).to.deep.equal(before);
      const nested = JSON.stringify(seedNewCard({ contacts: { a: 1 } })).replace('"a":1', '"a":1,"\\u0061":2');
      expect((await svc.request('POST', BIND, nested)).status).to.equal(400);
    });
  });

  describe('rate limit and server limits', () => {
    it("answers 429 with Retry-After past the channel's rate, counted in PostgreSQL", async () => {
      const limited = await startService({ RATE_LIMIT_PER_SECOND: '1' });
      try {
        // one after another: concurrent requests may not see each other's uncommitted counts (the limit can be passed
        // by the number of requests in flight at once); sent until two land in one second, which a slow machine delays
        // only by a request or two
        let refused: Answer | undefined;
        for (let i = 0; i < 20 && !refused; i++) {
          const a = await limited.list('u');
          if (a.status === 429) refused = a;
          else expect(a.status).to.equal(200);
        }
        expect(refused, 'no 429 in 20 requests one after another').not.to.equal(undefined);
        expect(refused!.headers.get('retry-after')).to.equal('1');
        expect(refused!.body).to.deep.equal({ code: 429, message: '请求过于频繁，请稍后重试' });
      } finally {
        await limited.stop();
      }
    });

    it('answers 408 in the documented body to a body that never finishes', async () => {
      const slow = await startService({ REQUEST_TIMEOUT_MS: '500', HEADERS_TIMEOUT_MS: '500' });
      try {
        const { port } = new URL(slow.url);
        const answer = await new Promise<string>((resolve, reject) => {
          const socket = netConnect(Number(port), '127.0.0.1', () => {
            socket.write(`POST ${BIND} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"user_id"`);
          });
          let data = '';
          socket
            .on('data', (d) => (data += d.toString()))
            .on('end', () => resolve(data))
            .on('error', reject);
          setTimeout(() => {
            socket.destroy();
            resolve(data);
          }, 4000);
        });
        expect(answer).to.match(/^HTTP\/1\.1 408/);
        expect(answer).to.contain('{"code":408,"message":"请求超时"}');
      } finally {
        await slow.stop();
      }
    });
  });

  it('serves TLS 1.2 and up with TLS_CERT_FILE and TLS_KEY_FILE', async function () {
    this.timeout(20_000);
    const dir = mkdtempSync(join(tmpdir(), 'bindcard-tls-'));
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
        ],
        { stdio: 'ignore' },
      );
      const tls = await startService({ TLS_CERT_FILE: join(dir, 'cert.pem'), TLS_KEY_FILE: join(dir, 'key.pem') });
      try {
        const { port } = new URL(tls.url);
        const ca = execFileSync('cat', [join(dir, 'cert.pem')]);
        const get = (maxVersion: 'TLSv1.1' | 'TLSv1.3') =>
          new Promise<{ status: number; protocol: string }>((resolve, reject) => {
            const req = httpsRequest(
              { host: '127.0.0.1', port, path: '/sandbox/sms?mobile=13420504517', ca, maxVersion, minVersion: 'TLSv1' },
              (res) => {
                res.resume();
                resolve({ status: res.statusCode!, protocol: (res.socket as import('node:tls').TLSSocket).getProtocol() ?? '' });
              },
            );
            req.on('error', reject);
            req.end();
          });
        expect(await get('TLSv1.3')).to.deep.equal({ status: 200, protocol: 'TLSv1.3' });
        const old = await get('TLSv1.1').then(
          () => 'connected',
          (e: Error) => e.message,
        );
        expect(old).not.to.equal('connected');
      } finally {
        await tls.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

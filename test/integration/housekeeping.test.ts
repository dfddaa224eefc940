import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { Admission } from '../../src/http/admission.ts';
import { signedHeaders } from '../../src/sdk/sign.ts';
import { purgeExpired } from '../../src/store/housekeeping.ts';
import { countRows, resetDb, testDb } from '../setup/database.ts';
import { seedNewCard, startService, type Service } from '../setup/service.ts';

interface Turn {
  admitted: boolean;
  atOnce: boolean;
}

/**
 * An Admission (the app's gate) that records each request's turn in order of arrival: whether it was let in, and
 * whether that was decided at once (settled before the event loop's next turn) or after a wait (a timer or a leave).
 */
function watchedAdmission(limit: number, maxQueued: number, maxWaitMs: number) {
  const admission = new Admission(limit, maxQueued, maxWaitMs);
  const enter = admission.enter.bind(admission);
  const turns: Promise<Turn>[] = [];
  const waiting: { n: number; resolve: () => void }[] = [];
  admission.enter = () => {
    const entered = enter();
    let settled = false;
    void entered.then(() => {
      settled = true;
    });
    const atOnce = new Promise<boolean>((resolve) => setImmediate(() => resolve(settled)));
    turns.push(Promise.all([entered, atOnce]).then(([admitted, atOnce]) => ({ admitted, atOnce })));
    for (const w of waiting.filter((w) => w.n <= turns.length)) w.resolve();
    return entered;
  };
  return {
    admission,
    /** Resolves once n requests have reached the gate. */
    arrivals: (n: number) => new Promise<void>((resolve) => (turns.length >= n ? resolve() : waiting.push({ n, resolve }))),
    /** The i-th request's turn (from 0), once decided. */
    turn: (i: number) => turns[i],
  };
}

/** A signed card-list request whose body has not all arrived: it holds its place until `finish` sends the rest. */
function partialRequest(svc: Service): { finish(): Promise<number> } {
  const path = '/demochannel/bankCardList?r_c=DEMO';
  const body = JSON.stringify({ user_id: 'u' });
  const req = httpRequest(`${svc.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...signedHeaders('DEMO', 'demo-secret', 'POST', path, body),
    },
  });
  const answered = new Promise<number>((resolve, reject) => {
    req
      .on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
      })
      .on('error', reject);
  });
  answered.catch(() => {}); // a test that fails before finish leaves the connection to the service's stop
  req.write(body.slice(0, 5));
  return {
    finish: () => {
      req.end(body.slice(5));
      return answered;
    },
  };
}

describe('housekeeping and overload', () => {
  beforeEach(resetDb);

  it('purges expired nonces, counters, flows, SMS records, card reviews, ownership probes, refusals and callbacks in small batches, and keeps what rules still read', async () => {
    const db = testDb();
    await db.query(`INSERT INTO nonces (channel, nonce, signature, created_at)
      SELECT 'DEMO', 'old-' || g, 's', now() - interval '1 hour' FROM generate_series(1, 25) g`);
    await db.query("INSERT INTO nonces (channel, nonce, signature, created_at) VALUES ('DEMO', 'fresh-nonce-000001', 's', now())");
    await db.query(`INSERT INTO sms_sends (mobile_hash, card_hash, sent_at)
      SELECT 'm', 'c', now() - interval '26 hours' FROM generate_series(1, 7) UNION ALL SELECT 'm', 'c', now() - interval '23 hours'`);
    await db.query(
      `INSERT INTO rate_counters (channel, window_start, slot, count) VALUES ('DEMO', now() - interval '1 hour', 1, 5), ('DEMO', now(), 1, 1)`,
    );
    await db.query(`INSERT INTO ownership_probes (card_hash, id_number_hash, at)
      VALUES ('c', 'old', now() - interval '26 hours'), ('c', 'recent', now() - interval '23 hours')`);
    // refusals stay queryable for 7 days and more; delivered and dead callbacks are kept 30 days, pending ones until done
    await db.query(`INSERT INTO binding_failures (channel, user_id, card_hash, sub_code, at)
      VALUES ('DEMO', 'a', 'c', 'AUTH_REJECTED', now() - interval '9 days'), ('DEMO', 'b', 'c', 'AUTH_REJECTED', now() - interval '6 days')`);
    await db.query(`INSERT INTO callback_events (id, key, channel, type, url, body, status, next_at, created_at, done_at) VALUES
      ('evt_delivered_old', 'k1', 'DEMO', 'binding.bound', 'https://x', '{}', 'DELIVERED', now(), now() - interval '31 days', now() - interval '31 days'),
      ('evt_dead_old', 'k2', 'DEMO', 'binding.bound', 'https://x', '{}', 'DEAD', now(), now() - interval '33 days', now() - interval '31 days'),
      ('evt_delivered_new', 'k3', 'DEMO', 'binding.bound', 'https://x', '{}', 'DELIVERED', now(), now() - interval '29 days', now() - interval '29 days'),
      ('evt_pending_old', 'k4', 'DEMO', 'binding.bound', 'https://x', '{}', 'PENDING', now(), now() - interval '40 days', NULL)`);
    await db.query(`INSERT INTO sandbox_callbacks (channel, event_id, type, attempt, url, at, request_headers, request_body)
      VALUES ('DEMO', 'e', 'binding.bound', 1, 'https://x', now() - interval '26 hours', '{}', '{}')`);
    const svc = await startService();
    try {
      await svc.bind(seedNewCard());
      await svc.bind(seedNewCard({ user_id: 'still-going' }));
    } finally {
      await svc.stop();
    }
    // the first call's card review is a day and more old; the second's is recent
    await db.query("UPDATE auth_reviews SET at = now() - interval '26 hours' WHERE id = (SELECT min(id) FROM auth_reviews)");
    // both flows began 9 days ago (queryBinding tells of them for 7 days); one was last touched then, the other an hour ago
    await db.query(
      "UPDATE verifications SET created_at = now() - interval '9 days', updated_at = now() - interval '9 days' WHERE user_id <> 'still-going'",
    );
    await db.query(
      "UPDATE verifications SET created_at = now() - interval '9 days', updated_at = now() - interval '1 hour' WHERE user_id = 'still-going'",
    );
    const gone = await purgeExpired(db, new Date(), 10);
    expect(gone).to.deep.equal({
      nonces: 25,
      rate_counters: 1,
      verifications: 1,
      sms_sends: 7,
      sandbox_sms: 0,
      auth_reviews: 1,
      ownership_probes: 1,
      binding_failures: 1,
      callback_events: 2,
      sandbox_callbacks: 1,
    });
    const [kept] = (await db.query('SELECT id FROM callback_events ORDER BY id')) as [{ id: string }[], unknown];
    expect(kept.map((e) => e.id)).to.deep.equal(['evt_delivered_new', 'evt_pending_old']);
    expect(await countRows('binding_failures')).to.equal(1);
    expect(await countRows('auth_reviews')).to.equal(1);
    expect(await countRows('ownership_probes')).to.equal(1);
    expect(await countRows('nonces')).to.equal(3); // the fresh one and the binds' own
    expect(await countRows('sms_sends')).to.equal(3);
    expect(await countRows('rate_counters')).to.be.greaterThan(0);
    const [left] = (await db.query('SELECT user_id FROM verifications')) as [{ user_id: string }[], unknown];
    expect(left).to.deep.equal([{ user_id: 'still-going' }]);
  });

  it('indexes no verification column that a flow updates, so those updates can be HOT (no index writes)', async () => {
    const [rows] = (await testDb().query(`SELECT DISTINCT a.attname FROM pg_index i
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) WHERE i.indrelid = 'verifications'::regclass`)) as [
      { attname: string }[],
      unknown,
    ];
    expect(rows.map((r) => r.attname).sort()).to.deep.equal(['card_hash', 'channel', 'created_at', 'id', 'user_id']);
  });

  it('with every place taken, queues up to MAX_QUEUED requests for QUEUE_WAIT_MS, refusing the rest at once with 503 and Retry-After', async () => {
    const gate = watchedAdmission(1, 1, 1000);
    const svc = await startService({ QUEUE_WAIT_MS: '1000' }, { admission: gate.admission });
    try {
      const holder = partialRequest(svc);
      await gate.arrivals(1);
      expect(await gate.turn(0)).to.deep.equal({ admitted: true, atOnce: true });
      const queued = svc.list('u');
      await gate.arrivals(2);
      const shed = await svc.list('u');
      expect(await gate.turn(2)).to.deep.equal({ admitted: false, atOnce: true });
      expect(shed.status).to.equal(503);
      expect(shed.headers.get('retry-after')).to.equal('1');
      expect(shed.body).to.deep.equal({ code: 503, message: '服务繁忙，请稍后重试' });
      const waited = await queued; // refused while the place is still held: by its wait, not by a place freeing
      expect(await gate.turn(1)).to.deep.equal({ admitted: false, atOnce: false });
      expect(waited.status).to.equal(503);
      expect(waited.headers.get('retry-after')).to.equal('1');
      expect(waited.ms).to.be.at.least(1000 - 1); // a lower bound: a slow machine only adds to it (timers count whole ms)
      expect(await holder.finish()).to.equal(200);
      expect((await svc.list('u')).status).to.equal(200);
    } finally {
      await svc.stop();
    }
  });

  it("serves queued requests once a place frees, each one's deadline counted from its arrival", async () => {
    let reviews = 0;
    const gate = watchedAdmission(1, 128, 1000);
    const svc = await startService(
      { QUEUE_WAIT_MS: '1000', REQUEST_DEADLINE_MS: '200' },
      {
        admission: gate.admission,
        auth: {
          verify: () => {
            reviews++;
            return Promise.resolve({ approved: true });
          },
          sign: () => Promise.resolve({ agreementNo: 'AGR1' }),
          unsign: () => Promise.resolve(),
        },
      },
    );
    try {
      const holder = partialRequest(svc);
      await gate.arrivals(1);
      const list = svc.list('u');
      await gate.arrivals(2);
      const bind = svc.bind(seedNewCard());
      await gate.arrivals(3);
      // At least 150 ms of the bind's 200 pass in the queue; with the 100 ms the flow keeps for answering, none is
      // left for its card review (counted from its start instead, the review would have had 100 ms).
      await sleep(150);
      expect(await holder.finish()).to.equal(200);
      expect((await list).status).to.equal(200);
      const late = await bind;
      expect(await gate.turn(2)).to.deep.equal({ admitted: true, atOnce: false });
      expect(late.body.data.sub_code).to.equal('PROVIDER_TIMEOUT');
      expect(reviews).to.equal(0);
    } finally {
      await svc.stop();
    }
  });
});

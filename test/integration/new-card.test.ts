import { expect } from 'chai';
import { testDb, resetDb } from '../setup/database.ts';
import { bindNewCard, idNumber, seedExistingCard, seedNewCard, startService, type Service } from '../setup/service.ts';

const card = (n: number, last4 = '1234') => `622202${String(n).padStart(9, '0')}${last4}`;

/** Counts what happened and lets a test wait for the n-th time, instead of sleeping until it probably has. */
class Happenings {
  count = 0;
  private waiting: { n: number; resolve: () => void }[] = [];
  happened(): void {
    this.count++;
    for (const w of this.waiting.filter((w) => w.n <= this.count)) w.resolve();
    this.waiting = this.waiting.filter((w) => w.n > this.count);
  }
  reach(n: number): Promise<void> {
    return this.count >= n ? Promise.resolve() : new Promise((resolve) => this.waiting.push({ n, resolve }));
  }
}

describe('new card (bind_card_src=1)', () => {
  let svc: Service;
  before(async () => {
    svc = await startService();
  });
  after(() => svc.stop());
  beforeEach(resetDb);

  it('binds the seed example: first call sends a code, the confirmation binds, the card is listed masked', async () => {
    const first = await svc.bind(seedNewCard());
    expect(first.status).to.equal(200);
    expect(first.body).to.deep.equal({
      code: 200,
      message: 'success',
      data: { status: 'SMS_SENT', code_ttl_seconds: 300, resend_after_seconds: 60 },
    });
    const inbox = await svc.inbox('13420504517');
    expect(inbox).to.have.length(1);
    expect(inbox[0].code).to.match(/^\d{6}$/);
    expect(inbox[0].text).to.contain(inbox[0].code);

    const done = await svc.bind(seedNewCard({ verify_code: inbox[0].code }));
    expect(done.body.code).to.equal(200);
    expect(done.body.data.status).to.equal('BOUND');
    expect(done.body.data.card_id).to.match(/^card_[0-9a-f]{16}$/);

    const list = await svc.list('246964109149933');
    expect(list.body.data.cards).to.have.length(1);
    expect(list.body.data.cards[0]).to.include({
      card_id: done.body.data.card_id,
      bank_card: '622202*********2723',
      open_bank: 'ICBC',
      bank_card_type: 0,
    });
    expect(JSON.stringify(list.body)).not.to.contain('6222022005001212723');
  });

  it('answers a confirmation retried after success with the same card_id, never 502 or 801', async () => {
    const done = await bindNewCard(svc, seedNewCard());
    const [msg] = await svc.inbox('13420504517');
    for (let i = 0; i < 3; i++) {
      const again = await svc.bind(seedNewCard({ verify_code: msg.code }));
      expect(again.body).to.deep.equal(done.body);
    }
    // even long after the code would have expired
    svc.clock.advance(3600);
    expect((await svc.bind(seedNewCard({ verify_code: msg.code }))).body).to.deep.equal(done.body);
    const [rows] = await testDb().query('SELECT count(*)::int AS n FROM bindings');
    expect(rows).to.deep.equal([{ n: 1 }]);
  });

  it('answers a first call by a user who already has the card with BOUND and sends nothing', async () => {
    const done = await bindNewCard(svc, seedNewCard());
    const again = await svc.bind(seedNewCard());
    expect(again.body).to.deep.equal(done.body);
    expect(await svc.inbox('13420504517')).to.have.length(1);
  });

  it('treats verify_code absent, null and "" alike as the first call', async () => {
    for (const v of [undefined, null, '']) {
      const a = await svc.bind(seedNewCard(v === undefined ? {} : { verify_code: v }));
      expect(a.body.data.status).to.equal('SMS_SENT');
    }
    expect(await svc.inbox('13420504517')).to.have.length(1);
  });

  it('accepts an ID ending in lower-case x as X', async () => {
    let serial = 0;
    while (!idNumber(serial).endsWith('X')) serial++;
    const withX = idNumber(serial);
    const a = await bindNewCard(svc, seedNewCard({ id_number: withX.toLowerCase() }));
    expect(a.body.data.status).to.equal('BOUND');
  });

  describe('resend', () => {
    it('repeats the same answer within 60 s and sends nothing; after that sends a new code and only it is valid', async () => {
      await svc.bind(seedNewCard());
      svc.clock.advance(59);
      const repeat = await svc.bind(seedNewCard());
      expect(repeat.body.data.status).to.equal('SMS_SENT');
      expect(await svc.inbox('13420504517')).to.have.length(1);
      svc.clock.advance(2);
      expect((await svc.bind(seedNewCard())).body.data.status).to.equal('SMS_SENT');
      let inbox = await svc.inbox('13420504517');
      expect(inbox).to.have.length(2);
      // A new code is random: 1 in 10^6 it repeats the old one, and an old code equal to the valid one proves nothing.
      // Then resend again (up to the card's 5 an hour) until some older code differs from the newest.
      while (inbox.slice(1).every((m) => m.code === inbox[0].code) && inbox.length < 5) {
        svc.clock.advance(61);
        expect((await svc.bind(seedNewCard())).body.data.status).to.equal('SMS_SENT');
        inbox = await svc.inbox('13420504517');
      }
      const [newest, ...older] = inbox;
      const stale = older.find((m) => m.code !== newest.code);
      expect(stale, `${inbox.length} codes sent, all the same`).not.to.equal(undefined);
      expect((await svc.bind(seedNewCard({ verify_code: stale!.code }))).body.data.sub_code).to.equal('CODE_INCORRECT');
      const ok = await svc.bind(seedNewCard({ verify_code: newest.code }));
      expect(ok.body.data.status).to.equal('BOUND');
    });
  });

  describe('codes', () => {
    it('answers CODE_NOT_ISSUED to a confirmation with no first call', async () => {
      const a = await svc.bind(seedNewCard({ verify_code: '123456' }));
      expect(a.body).to.deep.equal({ code: 801, message: '请先获取验证码', data: { sub_code: 'CODE_NOT_ISSUED' } });
    });

    it('answers CODE_NOT_ISSUED when the confirmation carries other details than the first call', async () => {
      await svc.bind(seedNewCard());
      const [msg] = await svc.inbox('13420504517');
      const a = await svc.bind(seedNewCard({ verify_code: msg.code, user_mobile: '13900000000' }));
      expect(a.body.data.sub_code).to.equal('CODE_NOT_ISSUED');
    });

    it('expires a code after 5 minutes', async () => {
      await svc.bind(seedNewCard());
      const [msg] = await svc.inbox('13420504517');
      svc.clock.advance(301);
      const a = await svc.bind(seedNewCard({ verify_code: msg.code }));
      expect(a.body).to.deep.equal({ code: 801, message: '验证码已过期，请重新获取', data: { sub_code: 'CODE_EXPIRED' } });
    });

    it('kills the code at the 5th distinct wrong value; a retried wrong value counts once', async () => {
      await svc.bind(seedNewCard());
      const [msg] = await svc.inbox('13420504517');
      const wrong = ['000001', '000002', '000003', '000004', '000005'].filter((c) => c !== msg.code).slice(0, 5);
      for (let i = 0; i < 4; i++) {
        const a = await svc.bind(seedNewCard({ verify_code: wrong[i] }));
        expect(a.body.data.sub_code).to.equal('CODE_INCORRECT');
        const retry = await svc.bind(seedNewCard({ verify_code: wrong[i] }));
        expect(retry.body.data.sub_code).to.equal('CODE_INCORRECT');
      }
      const fifth = await svc.bind(seedNewCard({ verify_code: wrong.length === 5 ? wrong[4] : '999999' }));
      expect(fifth.body.data.sub_code).to.equal('CODE_ATTEMPTS_EXCEEDED');
      const right = await svc.bind(seedNewCard({ verify_code: msg.code }));
      expect(right.body.data.sub_code).to.equal('CODE_ATTEMPTS_EXCEEDED');
      // a first call now sends a new code at once: the dead one is no reason to wait
      await svc.bind(seedNewCard());
      const [fresh] = await svc.inbox('13420504517');
      expect((await svc.bind(seedNewCard({ verify_code: fresh.code }))).body.data.status).to.equal('BOUND');
    });

    it('stores codes only as hashes', async () => {
      await svc.bind(seedNewCard());
      const [msg] = await svc.inbox('13420504517');
      const [rows] = await testDb().query('SELECT code_hash FROM verifications');
      expect(rows).to.have.length(1);
      expect(JSON.stringify(rows)).not.to.contain(msg.code);
    });
  });

  describe('SMS limits', () => {
    it('sends at most 5 codes per card in a rolling hour', async () => {
      for (let i = 0; i < 5; i++) {
        expect((await svc.bind(seedNewCard())).body.data.status).to.equal('SMS_SENT');
        svc.clock.advance(61);
      }
      const a = await svc.bind(seedNewCard());
      expect(a.body).to.deep.equal({
        code: 505,
        message: '绑卡失败：验证码发送过于频繁，请稍后再试',
        data: { sub_code: 'SMS_RATE_LIMITED' },
      });
      expect(await svc.inbox('13420504517')).to.have.length(5);
      svc.clock.advance(3600 - 5 * 61 + 62);
      expect((await svc.bind(seedNewCard())).body.data.status).to.equal('SMS_SENT');
    });

    it('sends at most 5 codes per mobile an hour and 10 a day, across cards', async () => {
      const body = (n: number) => seedNewCard({ bank_card: card(n), user_id: `u${n}` });
      for (let n = 0; n < 5; n++) expect((await svc.bind(body(n))).body.data.status).to.equal('SMS_SENT');
      expect((await svc.bind(body(5))).body.data.sub_code).to.equal('SMS_RATE_LIMITED');
      svc.clock.advance(3601);
      for (let n = 10; n < 15; n++) expect((await svc.bind(body(n))).body.data.status).to.equal('SMS_SENT');
      svc.clock.advance(3601);
      expect((await svc.bind(body(20))).body.data.sub_code).to.equal('SMS_RATE_LIMITED');
      svc.clock.advance(24 * 3600 - 2 * 3601 + 10);
      expect((await svc.bind(body(21))).body.data.status).to.equal('SMS_SENT');
    });
  });

  describe('card review', () => {
    const cases: [string, Record<string, unknown>, number, string][] = [
      ['an unsupported bank', { open_bank: 'NOSUCHBANK' }, 501, 'BANK_NOT_SUPPORTED'],
      ['a BIN of another bank', { open_bank: 'ABC' }, 501, 'BIN_BANK_MISMATCH'],
      ['a debit BIN declared credit', { bank_card_type: 1 }, 501, 'CARD_TYPE_MISMATCH'],
      ['a card the issuer rejects (sandbox 0501)', { bank_card: card(1, '0501') }, 501, 'AUTH_REJECTED'],
      ['a gateway error (sandbox 0505)', { bank_card: card(1, '0505') }, 505, 'PROVIDER_ERROR'],
    ];
    for (const [what, change, code, sub] of cases) {
      it(`answers ${code} ${sub} to ${what}, before any SMS`, async () => {
        const a = await svc.bind(seedNewCard(change));
        expect(a.body.code).to.equal(code);
        expect(a.body.data.sub_code).to.equal(sub);
        expect(a.body.message).to.match(/[\u4e00-\u9fa5]/);
        expect(await svc.inbox('13420504517')).to.have.length(0);
      });
    }

    it('answers a rejected card the same on a retry without asking the gateway again', async () => {
      let calls = 0;
      const other = await startService(
        {},
        {
          auth: {
            verify: async () => {
              calls++;
              return { approved: false, reason: 'no' };
            },
            sign: async () => ({ agreementNo: 'X' }),
            unsign: () => Promise.resolve(),
          },
        },
      );
      try {
        for (let i = 0; i < 3; i++) expect((await other.bind(seedNewCard())).body.data.sub_code).to.equal('AUTH_REJECTED');
        expect(calls).to.equal(1);
      } finally {
        await other.stop();
      }
    });

    it('answers PROVIDER_TIMEOUT before 2 s to a gateway that takes 3 s, and the retry completes (sandbox 0002)', async () => {
      const body = seedNewCard({ bank_card: card(2, '0002') });
      const first = await svc.bind(body);
      expect(first.body.data.sub_code).to.equal('PROVIDER_TIMEOUT');
      expect(first.body.code).to.equal(505);
      expect(first.ms).to.be.below(2000);
      const retry = await svc.bind(body);
      expect(retry.body.data.status).to.equal('SMS_SENT');
      expect((await bindNewCard(svc, body)).body.data.status).to.equal('BOUND');
    });

    it('refuses a card type the channel does not allow', async () => {
      const acme = await startService();
      await acme.addChannel('ACME', [1]);
      try {
        const a = await acme.bind(seedNewCard(), 'ACME');
        expect(a.body.data.sub_code).to.equal('CARD_TYPE_NOT_ALLOWED');
      } finally {
        await acme.stop();
      }
    });
  });

  describe('ownership', () => {
    it('answers 502 before any SMS when another person owns the card', async () => {
      await bindNewCard(svc, seedNewCard());
      const other = seedNewCard({ user_id: 'other', id_number: idNumber(7), user_name: '李四', user_mobile: '13800000001' });
      const a = await svc.bind(other);
      expect(a.body).to.deep.equal({ code: 502, message: '该卡已被绑定', data: { sub_code: 'CARD_BOUND_TO_OTHER' } });
      expect(await svc.inbox('13800000001')).to.have.length(0);
    });

    it('answers 502 and sends no SMS when another person binds the card while this first call is in review', async () => {
      let release = () => {};
      let gate: Promise<void> | undefined;
      const reviews = new Happenings();
      const gated = await startService(
        {},
        {
          auth: {
            verify: async () => {
              reviews.happened();
              await gate;
              return { approved: true };
            },
            sign: async (requestNo: string) => ({ agreementNo: `AGR-${requestNo}` }),
            unsign: () => Promise.resolve(),
          },
        },
      );
      try {
        const p1 = seedNewCard({ user_id: 'p1' });
        const p2 = seedNewCard({ user_id: 'p2', id_number: idNumber(9), user_name: '赵六', user_mobile: '13800000003' });
        await gated.bind(p1);
        gate = new Promise((r) => {
          release = r;
        });
        const inReview = gated.bind(p2);
        await reviews.reach(2); // p2's card review has begun and waits at the gate
        const [msg] = await gated.inbox('13420504517');
        expect((await gated.bind({ ...p1, verify_code: msg.code })).body.data.status).to.equal('BOUND');
        release();
        expect((await inReview).body).to.deep.equal({ code: 502, message: '该卡已被绑定', data: { sub_code: 'CARD_BOUND_TO_OTHER' } });
        expect(await gated.inbox('13800000003')).to.have.length(0);
      } finally {
        release();
        await gated.stop();
      }
    });

    it('lets the same person bind the card for another partner user, with the same card_id', async () => {
      const a = await bindNewCard(svc, seedNewCard());
      const b = await bindNewCard(svc, seedNewCard({ user_id: 'second-account' }));
      expect(b.body.data.card_id).to.equal(a.body.data.card_id);
      expect((await svc.list('second-account')).body.data.cards).to.have.length(1);
    });

    it('gives one of two people confirming the same card at once 200, the other 502', async () => {
      const p1 = seedNewCard({ user_id: 'p1' });
      const p2 = seedNewCard({ user_id: 'p2', id_number: idNumber(8), user_name: '王五', user_mobile: '13800000002' });
      await svc.bind(p1);
      await svc.bind(p2);
      const [c1] = await svc.inbox('13420504517');
      const [c2] = await svc.inbox('13800000002');
      const answers = await Promise.all([svc.bind({ ...p1, verify_code: c1.code }), svc.bind({ ...p2, verify_code: c2.code })]);
      expect(answers.map((a) => a.body.code).sort()).to.deep.equal([200, 502]);
      const [rows] = await testDb().query('SELECT count(*)::int AS n FROM bindings');
      expect(rows).to.deep.equal([{ n: 1 }]);
    });
  });

  describe('concurrent duplicates', () => {
    it('sends one SMS for a first call that arrives twice at once, and both get the same answer', async () => {
      const answers = await Promise.all([1, 2, 3].map(() => svc.bind(seedNewCard())));
      for (const a of answers)
        expect(a.body.data?.status, JSON.stringify(a.body) + svc.logs.filter((l) => l.includes('"level":50')).join('')).to.equal(
          'SMS_SENT',
        );
      expect(await svc.inbox('13420504517')).to.have.length(1);
    });

    it('makes one binding of a confirmation that arrives twice at once', async () => {
      await svc.bind(seedNewCard());
      const [msg] = await svc.inbox('13420504517');
      const answers = await Promise.all([1, 2, 3].map(() => svc.bind(seedNewCard({ verify_code: msg.code }))));
      const ids = new Set(answers.map((a) => a.body.data.card_id));
      expect(answers.every((a) => a.body.data.status === 'BOUND')).to.equal(true);
      expect(ids.size).to.equal(1);
      const [rows] = await testDb().query('SELECT count(*)::int AS n FROM bindings');
      expect(rows).to.deep.equal([{ n: 1 }]);
    });

    it('makes one gateway call when a slow first call is retried while it runs', async () => {
      let release = () => {};
      const gate = new Promise<void>((r) => {
        release = r;
      });
      const reviews = new Happenings();
      // While the first call waits at the gate it reads no time; the retry reads the business clock as it looks at the
      // row (and locks it), so the first read after the gate closed is the retry finding the first call's lease.
      const clockReads = new Happenings();
      let watching = false;
      const slow = await startService(
        {},
        {
          now: () => {
            if (watching) clockReads.happened();
            return new Date();
          },
          auth: {
            verify: async () => {
              reviews.happened();
              await gate;
              return { approved: true };
            },
            sign: async () => ({ agreementNo: 'AGR1' }),
            unsign: () => Promise.resolve(),
          },
        },
      );
      try {
        const first = slow.bind(seedNewCard());
        await reviews.reach(1); // the first call holds the lease, in its card review
        watching = true;
        const retry = slow.bind(seedNewCard());
        await clockReads.reach(1);
        release();
        const answers = await Promise.all([first, retry]);
        expect(answers.map((a) => a.body.data.status)).to.deep.equal(['SMS_SENT', 'SMS_SENT']);
        expect(reviews.count).to.equal(1);
        expect(await slow.inbox('13420504517')).to.have.length(1);
      } finally {
        await slow.stop();
      }
    });
  });

  it('continues after an instance died holding a lease: duplicates wait it out, then the flow goes on', async () => {
    await svc.bind(seedNewCard());
    // as if another instance had leased the row for its gateway call and then crashed
    await testDb().query('UPDATE verifications SET busy_until = :until', {
      replacements: { until: new Date(svc.clock.now().getTime() + 10_000) },
    });
    const waiting = await svc.bind(seedNewCard());
    expect(waiting.body.data.sub_code).to.equal('PROVIDER_TIMEOUT');
    expect(waiting.ms).to.be.below(2000);
    svc.clock.advance(11);
    const [msg] = await svc.inbox('13420504517');
    expect((await svc.bind(seedNewCard({ verify_code: msg.code }))).body.data.status).to.equal('BOUND');
  });

  it('binds the seed existing-card example once the user has that card', async () => {
    const done = await bindNewCard(svc, seedNewCard());
    const a = await svc.bind(seedExistingCard);
    expect(a.body).to.deep.equal(done.body);
  });
});

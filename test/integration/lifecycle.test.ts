import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { loadConfig } from '../../src/config.ts';
import { vaultFor } from '../../src/crypto/vault.ts';
import { ChannelStore } from '../../src/store/channel-store.ts';
import { countRows, embeddedRun, resetDb, testDatabaseUrl, testDb } from '../setup/database.ts';
import { bindNewCard, seedNewCard, startService, type Service } from '../setup/service.ts';

// queryBinding, unbindCard and callback addresses over HTTP on PostgreSQL (the rules themselves: test/unit/lifecycle.test.ts).

const SEED_CARD = '6222022005001212723';

/** The message a promise is rejected with ('' when it is not). */
const refusal = (p: Promise<unknown>) =>
  p.then(
    () => '',
    (e: Error) => e.message,
  );

describe('lifecycle over HTTP: callback addresses, queryBinding, unbindCard', () => {
  let svc: Service;
  beforeEach(async () => {
    await resetDb();
    svc = await startService();
  });
  afterEach(() => svc.stop());

  it('accepts a notify_url on a registered host only, answering 400 naming the field otherwise', async () => {
    await svc.addChannel('ACME');
    const channels = new ChannelStore(testDb(), vaultFor(loadConfig({ NODE_ENV: 'test' })), true);
    await channels.addCallbackHost('ACME', 'Hooks.Acme.Example');
    for (const url of [
      'https://evil.example/x',
      'http://hooks.acme.example/x',
      'https://hooks.acme.example.evil.example/',
      'https://' + 'a'.repeat(510),
    ]) {
      const refused = await svc.bind(seedNewCard({ notify_url: url }), 'ACME');
      expect(refused.status, url).to.equal(400);
      expect(refused.body.data.errors[0].field).to.equal('body.notify_url');
    }
    expect(await countRows('verifications')).to.equal(0);
    const ok = await svc.bind(seedNewCard({ notify_url: 'https://hooks.acme.example:8443/bindcard?x=1' }), 'ACME');
    expect(ok.body.data.status).to.equal('SMS_SENT');
    // the default address must name a registered host too, and a host cannot go while the default names it
    expect(await refusal(channels.setDefaultNotifyUrl('ACME', 'https://elsewhere.example/'))).to.match(/not among/);
    await channels.setDefaultNotifyUrl('ACME', 'https://hooks.acme.example/default');
    expect(await refusal(channels.removeCallbackHost('ACME', 'hooks.acme.example'))).to.match(/change or clear it first/);
    expect(await channels.callbacksOf('ACME')).to.deep.equal({
      code: 'ACME',
      callbackHosts: ['hooks.acme.example'],
      defaultNotifyUrl: 'https://hooks.acme.example/default',
    });
  });

  it('`npm run channel -- callbacks` adds, lists and removes hosts and sets the default address', async function () {
    if (embeddedRun) return this.skip(); // the CLI opens its own connection
    this.timeout(30_000);
    await svc.addChannel('ACME');
    const run = (...args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/channel.ts', 'callbacks', 'ACME', ...args], {
        env: { ...process.env, DATABASE_URL: testDatabaseUrl(), NODE_ENV: 'test' },
      }).then((r) => r.stdout.trim());
    expect(await run('add', 'hooks.acme.example')).to.equal('channel ACME: callback addresses may now name hooks.acme.example');
    expect(await run('default', 'https://hooks.acme.example/events')).to.include(
      'default callback address https://hooks.acme.example/events',
    );
    expect(await run('list')).to.equal('channel ACME: default https://hooks.acme.example/events\nhost\thooks.acme.example');
    await run('default', 'none');
    await run('remove', 'hooks.acme.example');
    expect(await run('list')).to.equal('channel ACME: default (none)');
    const refused = await run('add', 'https://x.example/path').catch(
      (e: { stderr: string; code: number }) => `${e.code} ${e.stderr.trim()}`,
    );
    expect(refused).to.match(/^2 channel: a host is a name or address only/);
  });

  it('queries where a card stands, in the documented shape, by card_id or by number', async () => {
    const none = await svc.query({ user_id: 'u1', bank_card: SEED_CARD });
    expect(none.body).to.deep.equal({ code: 200, message: 'success', data: { status: 'NONE' } });
    await svc.bind(seedNewCard({ user_id: 'u1' }));
    expect((await svc.query({ user_id: 'u1', bank_card: SEED_CARD })).body.data.status).to.equal('SMS_SENT');
    const bound = await bindNewCard(svc, seedNewCard({ user_id: 'u1' }));
    const cardId = bound.body.data.card_id;
    const byId = await svc.query({ user_id: 'u1', card_id: cardId });
    expect(byId.body.data).to.deep.include({ status: 'BOUND', card_id: cardId, bank_card: '622202*********2723', open_bank: 'ICBC' });
    expect(JSON.stringify(byId.body)).not.to.include(SEED_CARD);
    expect((await svc.query({ user_id: 'someone-else', card_id: cardId })).body.data).to.deep.equal({ status: 'NONE' });
    const both = await svc.query({ user_id: 'u1', card_id: cardId, bank_card: SEED_CARD });
    expect([both.status, both.body.data.errors[0].rule]).to.deep.equal([400, 'oneOf']);
  });

  it('unbinds over HTTP: 200 UNBOUND, repeats with any nonce the same, the list empty, a new flow rebinds the same card_id', async () => {
    const bound = await bindNewCard(svc, seedNewCard());
    const cardId = bound.body.data.card_id;
    const user = { user_id: seedNewCard().user_id };
    const [listed] = (await svc.list(String(user.user_id))).body.data.cards;
    const first = await svc.unbind({ ...user, extra_info: listed.extra_info });
    expect(first.body.data).to.deep.include({ status: 'UNBOUND', card_id: cardId });
    expect((await svc.unbind({ ...user, card_id: cardId })).body).to.deep.equal(first.body);
    expect((await svc.unbind({ ...user, bank_card: SEED_CARD })).body).to.deep.equal(first.body);
    expect((await svc.list(String(user.user_id))).body.data.cards).to.deep.equal([]);
    expect((await svc.query({ ...user, card_id: cardId })).body.data).to.deep.include({
      status: 'UNBOUND',
      unbound_at: first.body.data.unbound_at,
    });
    const again = await bindNewCard(svc, seedNewCard());
    expect(again.body.data).to.deep.equal({ status: 'BOUND', card_id: cardId });
    expect((await svc.inbox(String(seedNewCard().user_mobile))).length).to.equal(2);
  });

  it('sandbox: a card ending 0003 fails its first unsigning (505 PROVIDER_ERROR), 0004 times out (505 PROVIDER_TIMEOUT within 2 s); both unbind on the retry', async function () {
    this.timeout(20_000);
    for (const [serial, sub] of [
      ['0003', 'PROVIDER_ERROR'],
      ['0004', 'PROVIDER_TIMEOUT'],
    ]) {
      const card = seedNewCard({ user_id: `u${serial}`, bank_card: `622202000000000${serial}` });
      const cardId = (await bindNewCard(svc, card)).body.data.card_id;
      const failed = await svc.unbind({ user_id: card.user_id, card_id: cardId });
      expect(failed.body, serial).to.deep.include({ code: 505, data: { sub_code: sub } });
      expect(failed.ms).to.be.below(2000);
      expect((await svc.list(String(card.user_id))).body.data.cards).to.have.length(1); // still bound
      const retried = await svc.unbind({ user_id: card.user_id, card_id: cardId });
      expect(retried.body.data.status, serial).to.equal('UNBOUND');
    }
  });

  it('two unbindings of one binding at once end its agreement once and answer alike', async function () {
    if (embeddedRun) return this.skip(); // one session: nothing runs concurrently there
    await svc.stop();
    const unsigned: string[] = [];
    svc = await startService(
      {},
      {
        auth: {
          verify: () => Promise.resolve({ approved: true }),
          sign: (requestNo) => Promise.resolve({ agreementNo: `AG-${requestNo}` }),
          unsign: async (requestNo) => {
            unsigned.push(requestNo);
            await new Promise((r) => setTimeout(r, 200)); // long enough for the other request to arrive meanwhile
          },
        },
      },
    );
    const cardId = (await bindNewCard(svc, seedNewCard({ user_id: 'racer' }))).body.data.card_id;
    const both = await Promise.all([1, 2].map(() => svc.unbind({ user_id: 'racer', card_id: cardId })));
    expect(both[0].body.data).to.deep.include({ status: 'UNBOUND', card_id: cardId });
    expect(both[1].body).to.deep.equal(both[0].body);
    expect(unsigned).to.have.length(1);
    expect(await countRows('bindings')).to.equal(0);

    // the last two bindings of a card, in two channels, unbound at once: the agreement is ended once, whichever runs
    // first (the interleaving where each opens before the other finishes is pinned in test/unit/lifecycle.test.ts)
    await svc.addChannel('ACME');
    await bindNewCard(svc, seedNewCard({ user_id: 'racer' }));
    await bindNewCard(svc, seedNewCard({ user_id: 'racer' }), 'ACME');
    const [demo, acme] = await Promise.all([
      svc.unbind({ user_id: 'racer', card_id: cardId }),
      svc.unbind({ user_id: 'racer', card_id: cardId }, 'ACME'),
    ]);
    expect([demo.body.data.status, acme.body.data.status]).to.deep.equal(['UNBOUND', 'UNBOUND']);
    expect(unsigned).to.have.length(2);
    const [[card]] = (await testDb().query('SELECT agreement_no FROM cards')) as [{ agreement_no: string | null }[], unknown];
    expect(card.agreement_no).to.equal(null);
  });
});

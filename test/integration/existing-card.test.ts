import { expect } from 'chai';
import { QueryTypes } from 'sequelize';
import { resetDb, testDb } from '../setup/database.ts';
import { bindNewCard, idNumber, seedExistingCard, seedNewCard, startService, type Service } from '../setup/service.ts';

describe('existing card (bind_card_src=2) and the card list', () => {
  let svc: Service;
  let cardId: string;
  before(async () => {
    svc = await startService();
  });
  after(() => svc.stop());
  beforeEach(async () => {
    await resetDb();
    cardId = (await bindNewCard(svc, seedNewCard())).body.data.card_id;
  });

  it('binds by the full number with no SMS', async () => {
    const a = await svc.bind(seedExistingCard);
    expect(a.body).to.deep.equal({ code: 200, message: 'success', data: { status: 'BOUND', card_id: cardId } });
    expect(await svc.inbox('13420504517')).to.have.length(1); // only the new-card flow's code
  });

  it('writes nothing but its audit event: the binding is there already', async () => {
    const before = await testDb().query('SELECT xmin::text, * FROM bindings', { type: QueryTypes.SELECT });
    const audited = await testDb().query('SELECT count(*)::int AS n FROM audit_events', { type: QueryTypes.SELECT });
    expect((await svc.bind(seedExistingCard)).body.data.status).to.equal('BOUND');
    expect(await testDb().query('SELECT xmin::text, * FROM bindings', { type: QueryTypes.SELECT })).to.deep.equal(before);
    expect(
      await testDb().query(`SELECT count(*)::int AS n, (array_agg(event ORDER BY id DESC))[1] AS last FROM audit_events`, {
        type: QueryTypes.SELECT,
      }),
    ).to.deep.equal([{ n: (audited[0] as { n: number }).n + 1, last: 'EXISTING_CARD:BOUND' }]);
  });

  it('binds by the extra_info and masked number the card list returned', async () => {
    const [listed] = (await svc.list('246964109149933')).body.data.cards;
    const a = await svc.bind({ ...seedExistingCard, bank_card: listed.bank_card, extra_info: listed.extra_info });
    expect(a.body.data).to.deep.equal({ status: 'BOUND', card_id: cardId });
    const b = await svc.bind({ ...seedExistingCard, extra_info: listed.extra_info });
    expect(b.body.data.card_id).to.equal(cardId);
  });

  it('answers 400 to a masked number without extra_info', async () => {
    const a = await svc.bind({ ...seedExistingCard, bank_card: '622202*********2723' });
    expect(a.status).to.equal(400);
    expect(a.body.data.errors[0].field).to.equal('body.bank_card');
  });

  const notOwned: [string, () => Promise<Record<string, unknown>>][] = [
    ['a card not in the list', async () => ({ ...seedExistingCard, bank_card: '6222020000000009999' })],
    ["another user's card", async () => ({ ...seedExistingCard, user_id: 'someone-else' })],
    ['a forged extra_info', async () => ({ ...seedExistingCard, extra_info: { card_token: `v1.${cardId}.${'A'.repeat(43)}` } })],
    ['an extra_info without a token', async () => ({ ...seedExistingCard, extra_info: { foo: 'bar' } })],
    [
      "another user's extra_info",
      async () => {
        const [listed] = (await svc.list('246964109149933')).body.data.cards;
        return { ...seedExistingCard, user_id: 'someone-else', bank_card: listed.bank_card, extra_info: listed.extra_info };
      },
    ],
    [
      'extra_info naming one card and a number naming another',
      async () => {
        const [listed] = (await svc.list('246964109149933')).body.data.cards;
        return { ...seedExistingCard, bank_card: '622202*********9999', extra_info: listed.extra_info };
      },
    ],
  ];
  for (const [what, body] of notOwned) {
    it(`answers 505 CARD_NOT_OWNED to ${what}`, async () => {
      const a = await svc.bind(await body());
      expect(a.body).to.deep.equal({ code: 505, message: '绑卡失败：该卡不在用户的银行卡列表中', data: { sub_code: 'CARD_NOT_OWNED' } });
    });
  }

  it('answers 501 when the bank or type differ from the bound card', async () => {
    expect((await svc.bind({ ...seedExistingCard, open_bank: 'ABC' })).body.data.sub_code).to.equal('BIN_BANK_MISMATCH');
    expect((await svc.bind({ ...seedExistingCard, bank_card_type: 1 })).body.data.sub_code).to.equal('CARD_TYPE_MISMATCH');
  });

  it("lists a user's cards newest first and no one else's", async () => {
    const second = seedNewCard({ bank_card: '6222020000000001111', user_mobile: '13420504517' });
    svc.clock.advance(61);
    const b = await bindNewCard(svc, second);
    await bindNewCard(
      svc,
      seedNewCard({ user_id: 'x', bank_card: '6222020000000002222', id_number: idNumber(3), user_mobile: '13800000003' }),
    );
    const cards = (await svc.list('246964109149933')).body.data.cards;
    expect(cards.map((c: { card_id: string }) => c.card_id)).to.deep.equal([b.body.data.card_id, cardId]);
    expect((await svc.list('nobody')).body.data.cards).to.deep.equal([]);
  });
});

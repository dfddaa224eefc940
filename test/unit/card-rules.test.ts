import { expect } from 'chai';
import binTable from '../../src/domain/bins.json' with { type: 'json' };
import { idCheckCharOk, lookupBin, maskCard, normalizeNewCard, reviewCard } from '../../src/domain/card-rules.ts';
import { RequestError } from '../../src/domain/outcomes.ts';

describe('card rules', () => {
  it('checks the ID check character (ISO 7064 MOD 11-2)', () => {
    expect(idCheckCharOk('110108198802019650')).to.equal(true);
    expect(idCheckCharOk('110108198802019651')).to.equal(false);
    expect(idCheckCharOk('11010519491231002X')).to.equal(true);
  });

  it('knows the seed card: ICBC debit, although it fails Luhn', () => {
    expect(lookupBin('6222022005001212723')).to.include({ bank: 'ICBC', type: 0 });
  });

  it('matches BINs by prefix and card length', () => {
    expect(lookupBin('622202200500121')).to.equal(undefined); // 15 digits: no 622202 row of that length
    expect(lookupBin('9999992005001212723')).to.equal(undefined);
  });

  it('keeps every BIN row with where it came from', () => {
    for (const r of binTable.rows) expect(r.source).to.be.a('string').and.not.equal('');
  });

  it('masks all but the first 6 and last 4 digits', () => {
    expect(maskCard('6222022005001212723')).to.equal('622202*********2723');
    expect(maskCard('622202200500')).to.equal('622202**0500');
  });

  it('requires name, ID and mobile for a new card and upper-cases the x', () => {
    const base = {
      bank_card: '6222022005001212723',
      open_bank: 'icbc',
      user_name: '张三',
      id_number: '11010519491231002x',
      user_mobile: '13420504517',
    };
    const c = normalizeNewCard(base, new Date());
    expect(c).to.include({ idNumber: '11010519491231002X', bank: 'ICBC', cardType: 0 });
    expect(() => normalizeNewCard({ ...base, user_mobile: undefined }, new Date()))
      .to.throw(RequestError)
      .with.property('field', 'body.user_mobile');
  });

  it('reviews bank, BIN, type and channel policy in that order', () => {
    const c = { card: '6222022005001212723', bank: 'ICBC', name: 'a', idNumber: 'x', mobile: 'm', cardType: 0 };
    expect(reviewCard(c, [0, 1], true)).to.equal(undefined);
    expect(reviewCard({ ...c, bank: 'XX' }, [0, 1], true)).to.equal('BANK_NOT_SUPPORTED');
    expect(reviewCard({ ...c, bank: 'ABC' }, [0, 1], true)).to.equal('BIN_BANK_MISMATCH');
    expect(reviewCard({ ...c, cardType: 1 }, [0, 1], true)).to.equal('CARD_TYPE_MISMATCH');
    expect(reviewCard(c, [1], true)).to.equal('CARD_TYPE_NOT_ALLOWED');
  });
});

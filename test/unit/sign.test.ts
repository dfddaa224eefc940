import { expect } from 'chai';
import { canonicalString, sign } from '../../src/sdk/sign.ts';
import { duplicateKey } from '../../src/http/json.ts';

describe('request signing', () => {
  it("matches the README's worked example", () => {
    const body = '{"user_id":"246964109149933"}';
    const args = ['POST', '/demochannel/bankCardList?r_c=DEMO', '1795900000', '6f1c2b9a8e7d4c3b5a69788796a5b4c3', body] as const;
    expect(canonicalString(...args)).to.equal(
      'POST\n/demochannel/bankCardList?r_c=DEMO\n1795900000\n6f1c2b9a8e7d4c3b5a69788796a5b4c3\nd7b7d069582be727e20b9aa7d2b1df1139a1ddf4994569aaf69cfd0f6f7d91c1',
    );
    expect(sign('demo-secret', ...args)).to.equal('45c0f2fad499d91331e1d5ae9b2ac9d4c5a57dd66b79ccd6f79401ca1e7bc8c9');
  });
});

describe('duplicate JSON keys', () => {
  it('finds a key twice in one object, however it is escaped, at any depth', () => {
    expect(duplicateKey('{"a":1,"b":2}')).to.equal(undefined);
    expect(duplicateKey('{"a":1,"a":2}')).to.equal('a');
    expect(duplicateKey('{"a":1,"\\u0061":2}')).to.equal('a');
    expect(duplicateKey('{"x":{"a":1,"a":2}}')).to.equal('a');
    expect(duplicateKey('[{"a":1},{"a":2}]')).to.equal(undefined);
    expect(duplicateKey('{"a":"b","c":"a"}')).to.equal(undefined);
    expect(duplicateKey('{"a":"x\\"y","b":["a","a"]}')).to.equal(undefined);
  });
});

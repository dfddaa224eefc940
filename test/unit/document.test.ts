import { expect } from 'chai';
import { loadDocument } from '../../src/http/api.ts';

const CJK = /[\u4e00-\u9fa5]/;
const LATIN = /[A-Za-z]{3,}/;

/** Every place of the document a partner reads: schema properties, parameters, responses. */
function describedThings(node: unknown, path: string, out: [string, unknown][]): [string, unknown][] {
  if (!node || typeof node !== 'object') return out;
  const n = node as Record<string, unknown>;
  if (n.properties && typeof n.properties === 'object') {
    for (const [k, v] of Object.entries(n.properties as Record<string, Record<string, unknown>>)) {
      if (!('$ref' in v)) out.push([`${path}.properties.${k}`, v.description]);
    }
  }
  for (const [k, v] of Object.entries(n)) describedThings(v, `${path}.${k}`, out);
  return out;
}

interface Described {
  description: string;
}

/** The parts of the document these tests read. */
interface ReadDocument {
  components: { parameters: Record<string, Described>; responses: Record<string, Described> };
  paths: {
    '/sandbox/sms': { get: { parameters: Described[] } };
    '/{channel}channel/bindCard': {
      post: {
        requestBody: { content: { 'application/json': { examples: Record<'newCardConfirm' | 'existingCard', { value: object }> } } };
      };
    };
  };
}

describe('the document', () => {
  const doc = loadDocument() as unknown as ReadDocument;

  it('describes every field in Chinese and English', () => {
    const missing = describedThings(doc, '#', []).filter(([, d]) => typeof d !== 'string' || !CJK.test(d) || !LATIN.test(d));
    expect(missing.map(([p]) => p)).to.deep.equal([]);
  });

  it('describes every parameter and response in Chinese and English', () => {
    const params = Object.values(doc.components.parameters).concat(doc.paths['/sandbox/sms'].get.parameters);
    const responses = Object.values(doc.components.responses);
    for (const p of [...params, ...responses]) expect(p.description).to.match(CJK).and.match(LATIN);
  });

  it("carries the seed's two requests as examples, JSON fixed", () => {
    const ex = doc.paths['/{channel}channel/bindCard'].post.requestBody.content['application/json'].examples;
    expect(ex.newCardConfirm.value).to.include({ bank_card: '6222022005001212723', bind_card_src: 1, verify_code: '123456' });
    expect(ex.existingCard.value).to.deep.equal({
      user_id: '246964109149933',
      bank_card: '6222022005001212723',
      open_bank: 'ICBC',
      bind_card_src: 2,
    });
  });
});

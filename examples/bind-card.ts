// A partner's integration end to end against a sandbox service, using only the generated SDK: a callback endpoint
// that verifies our signatures, then a new card bound with notify_url (first call, the code from the sandbox phone,
// confirmation), its binding.bound event, the card list, an existing-card confirmation, queryBinding, unbindCard, its
// binding.unbound event, and queryBinding again.
// usage: node --import tsx examples/bind-card.ts [http://127.0.0.1:8080]
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import {
  bankCardList,
  bindCard,
  client,
  queryBinding,
  sandboxSms,
  unbindCard,
  type BindCardRequest,
  type BindingEvent,
} from '../generated/sdk/src/index.ts';
import { signRequests, verifyRequest } from '../generated/sdk/src/sign.ts';

// The sandbox DEMO channel's secret is published: demo-secret. Our requests are signed with it, and so are its events.
const SECRET = 'demo-secret';
client.setConfig({ baseUrl: process.argv[2] ?? 'http://127.0.0.1:8080' });
client.interceptors.request.use(signRequests('DEMO', SECRET));
const channel = { path: { channel: 'demo' }, query: { r_c: 'DEMO' } };

// The partner's callback endpoint: verify the signature over the raw bytes, dedupe by event id, answer 2xx.
const seen = new Map<string, BindingEvent>();
const waiting: ((event: BindingEvent) => void)[] = [];
const endpoint = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks);
    if (!verifyRequest([SECRET], 'POST', req.url ?? '/', req.headers, raw)) {
      res.writeHead(401).end();
      return;
    }
    const event = JSON.parse(raw.toString('utf8')) as BindingEvent;
    if (!seen.has(event.id)) {
      seen.set(event.id, event);
      waiting.shift()?.(event);
    }
    res.writeHead(204).end();
  });
});
endpoint.listen(0, '127.0.0.1');
await once(endpoint, 'listening');
const notifyUrl = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/bindcard/events`;
const nextEvent = (within = 10_000) =>
  new Promise<BindingEvent>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no event within 10 s')), within);
    waiting.push((event) => {
      clearTimeout(timer);
      resolve(event);
    });
  });

const card: BindCardRequest = {
  user_id: `example-${Date.now()}`,
  bank_card: '6222022005001212723',
  open_bank: 'ICBC',
  user_name: '张三',
  id_number: '110108198802019650',
  user_mobile: '13420504517',
  bank_address: '北京市 市辖区',
  bank_card_type: 0,
  bind_card_src: 1,
  notify_url: notifyUrl,
};

function check(step: string, ok: boolean, answer: unknown): void {
  console.log(`${step}: ${JSON.stringify(answer)}`);
  if (!ok) throw new Error(`${step} did not answer as expected`);
}

try {
  const first = await bindCard({ client, ...channel, body: card, throwOnError: true });
  check('1. first call', first.data.code === 200 && first.data.data?.status === 'SMS_SENT', first.data);

  const inbox = await sandboxSms({ client, query: { mobile: card.user_mobile! }, throwOnError: true });
  const code = inbox.data.messages[0].code;
  check('2. sandbox phone', /^\d{6}$/.test(code), { code });

  const boundEvent = nextEvent();
  const done = await bindCard({ client, ...channel, body: { ...card, verify_code: code }, throwOnError: true });
  check('3. confirmation', done.data.code === 200 && done.data.data?.status === 'BOUND', done.data);
  const cardId = done.data.data!.card_id!;
  const bound = await boundEvent;
  check('4. binding.bound received, signature verified', bound.type === 'binding.bound' && bound.data.card_id === cardId, bound);

  const list = await bankCardList({ client, ...channel, body: { user_id: card.user_id }, throwOnError: true });
  const listed = list.data.data.cards.find((c) => c.card_id === cardId);
  check('5. card list', listed?.bank_card === '622202*********2723', list.data);

  const existing = await bindCard({
    client,
    ...channel,
    throwOnError: true,
    body: {
      user_id: card.user_id,
      bank_card: listed!.bank_card,
      open_bank: listed!.open_bank,
      bind_card_src: 2,
      extra_info: listed!.extra_info,
    },
  });
  check('6. existing card', existing.data.code === 200 && existing.data.data?.card_id === cardId, existing.data);

  const status = await queryBinding({ client, ...channel, body: { user_id: card.user_id, card_id: cardId }, throwOnError: true });
  check('7. queryBinding', status.data.data.status === 'BOUND', status.data);

  const unboundEvent = nextEvent();
  const unbound = await unbindCard({ client, ...channel, body: { user_id: card.user_id, card_id: cardId }, throwOnError: true });
  check('8. unbindCard', unbound.data.code === 200 && unbound.data.data?.status === 'UNBOUND', unbound.data);
  const gone = await unboundEvent;
  check('9. binding.unbound received, signature verified', gone.type === 'binding.unbound' && gone.data.card_id === cardId, gone);

  const after = await queryBinding({ client, ...channel, body: { user_id: card.user_id, bank_card: card.bank_card }, throwOnError: true });
  check('10. queryBinding', after.data.data.status === 'UNBOUND', after.data);
  console.log('example: ok');
} finally {
  endpoint.close();
}

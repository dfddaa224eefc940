// Binds a new card end to end against a sandbox service using only the generated SDK:
// first call (SMS sent), the code from the sandbox phone, confirmation, the card list, an existing-card confirmation.
// usage: node --import tsx examples/bind-card.ts [http://127.0.0.1:8080]
import { bankCardList, bindCard, client, sandboxSms, type BindCardRequest } from '../generated/sdk/src/index.ts';
import { signRequests } from '../generated/sdk/src/sign.ts';

client.setConfig({ baseUrl: process.argv[2] ?? 'http://127.0.0.1:8080' });
// Every request is signed with the channel's secret (the sandbox DEMO channel's is published: demo-secret).
client.interceptors.request.use(signRequests('DEMO', 'demo-secret'));
const channel = { path: { channel: 'demo' }, query: { r_c: 'DEMO' } };

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
};

function check(step: string, ok: boolean, answer: unknown): void {
  console.log(`${step}: ${JSON.stringify(answer)}`);
  if (!ok) throw new Error(`${step} did not answer as expected`);
}

const first = await bindCard({ client, ...channel, body: card, throwOnError: true });
check('1. first call', first.data.code === 200 && first.data.data?.status === 'SMS_SENT', first.data);

const inbox = await sandboxSms({ client, query: { mobile: card.user_mobile! }, throwOnError: true });
const code = inbox.data.messages[0].code;
check('2. sandbox phone', /^\d{6}$/.test(code), { code });

const done = await bindCard({ client, ...channel, body: { ...card, verify_code: code }, throwOnError: true });
check('3. confirmation', done.data.code === 200 && done.data.data?.status === 'BOUND', done.data);
const cardId = done.data.data!.card_id!;

const list = await bankCardList({ client, ...channel, body: { user_id: card.user_id }, throwOnError: true });
const listed = list.data.data.cards.find((c) => c.card_id === cardId);
check('4. card list', listed?.bank_card === '622202*********2723', list.data);

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
check('5. existing card', existing.data.code === 200 && existing.data.data?.card_id === cardId, existing.data);
console.log('example: ok');

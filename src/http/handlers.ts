import type { operations } from '../../generated/api-types.ts';
import type { BindingService } from '../domain/binding-service.ts';
import type { CardLifecycle } from '../domain/lifecycle.ts';
import type { SandboxStore } from '../store/sandbox-store.ts';
import type { Channel } from '../domain/channel.ts';
import type { SandboxSmsSender } from '../providers/sandbox-providers.ts';
import { outcome, success, type Reply } from './replies.ts';

type JsonBody<Op extends keyof operations> = operations[Op] extends { requestBody: { content: { 'application/json': infer B } } }
  ? B
  : never;
type Query<Op extends keyof operations> = operations[Op] extends { parameters: { query: infer Q } } ? Q : never;

/** What a partner operation's handler receives once the pipeline has checked the request against the document. */
export interface PartnerInput<Op extends keyof operations> {
  body: JsonBody<Op>;
  channel: Channel;
  /** epoch ms: when the answer must be ready */
  deadline: number;
}

/** Handlers by operationId: thin, they call the domain and shape its result as the documented answer. */
export interface Handlers {
  bindCard(input: PartnerInput<'bindCard'>): Promise<Reply>;
  bankCardList(input: PartnerInput<'bankCardList'>): Promise<Reply>;
  queryBinding(input: PartnerInput<'queryBinding'>): Promise<Reply>;
  unbindCard(input: PartnerInput<'unbindCard'>): Promise<Reply>;
  sandboxSms(input: { query: Query<'sandboxSms'> }): Promise<Reply>;
  sandboxCallbacks(input: { query: Query<'sandboxCallbacks'> }): Promise<Reply>;
}

export function createHandlers(
  bindings: BindingService,
  lifecycle: CardLifecycle,
  sandbox: { sms: SandboxSmsSender; store: SandboxStore } | undefined,
): Handlers {
  return {
    bindCard: async ({ body, channel, deadline }) => outcome(await bindings.bindCard(channel, body, deadline)),
    bankCardList: async ({ body, channel }) => success({ cards: await bindings.listCards(channel.code, body.user_id) }),
    queryBinding: async ({ body, channel }) => success(await lifecycle.query(channel.code, body)),
    unbindCard: async ({ body, channel, deadline }) => ({ status: 200, body: await lifecycle.unbind(channel, body, deadline) }),
    sandboxSms: async ({ query }) => ({ status: 200, body: { messages: await sandbox!.sms.inbox(query.mobile) } }),
    sandboxCallbacks: async ({ query }) => {
      const tries = await sandbox!.store.callbacks(query.channel);
      return { status: 200, body: { deliveries: tries.map((t) => ({ ...t, at: t.at.toISOString() })) } };
    },
  };
}

import { readFileSync } from 'node:fs';
import type Koa from 'koa';
import yaml from 'js-yaml';
import { OpenAPIBackend, type Document, type Operation, type Request } from 'openapi-backend';
import type { Sequelize } from 'sequelize';
import type { ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { BindingService, BindCardRequest } from '../domain/binding-service.ts';
import { RequestError } from '../domain/outcomes.ts';
import type { SandboxSmsSender } from '../providers/sandbox-providers.ts';
import type { Channel } from '../domain/channel.ts';
import type { ChannelStore } from '../store/channel-store.ts';
import { NonceBook, verifySignature } from './partner-auth.ts';
import { parseJson, readBody } from './body.ts';
import { badRequest, protocolError, type FieldError, type Reply } from './replies.ts';

const METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options'];

export const DOCUMENT_PATH = new URL('../../openapi/openapi.yaml', import.meta.url);

export function loadDocument(): Document {
  return yaml.load(readFileSync(DOCUMENT_PATH, 'utf8')) as Document;
}

/** openapi-backend for the document, with the formats it uses (date-time) known to ajv. */
export function backendFor(): OpenAPIBackend {
  return new OpenAPIBackend({
    definition: loadDocument(),
    strict: true,
    coerceTypes: false,
    ajvOpts: { allErrors: true, coerceTypes: false },
    customizeAjv: (ajv) => {
      addFormats.default(ajv);
      return ajv;
    },
  });
}

export interface ApiDeps {
  config: Pick<Config, 'sandbox' | 'validateResponses' | 'bodyLimitBytes' | 'rateLimitPerSecond' | 'requestDeadlineMs'>;
  log: Logger;
  /** where nonces and rate counts live (see connect's asyncCommit) */
  protocolDb: Sequelize;
  channels: ChannelStore;
  bindings: BindingService;
  sandboxSms?: SandboxSmsSender;
}

/** ajv's errors as the fields and rules a partner's engineer can act on. */
export function fieldErrors(errors: ErrorObject[]): FieldError[] {
  return errors.map((e) => {
    const path = e.instancePath.replace(/^\/requestBody/, 'body').replace(/^\//, '').replace(/\//g, '.');
    const extra = (e.params as { missingProperty?: string; additionalProperty?: string });
    const leaf = extra.missingProperty ?? extra.additionalProperty;
    return { field: leaf ? `${path}.${leaf}` : path, rule: e.keyword, message: e.message ?? e.keyword };
  });
}

type Handler = (input: { body: unknown; query: Record<string, unknown>; deadline: number }, channel: Channel | undefined) => Promise<Reply>;

/** Channel operations answer 404 unless the path names an active channel in lower case and r_c names it in upper case. */
async function channelOf(params: Record<string, unknown>, query: Record<string, unknown>, channels: ChannelStore): Promise<Channel | undefined> {
  const path = params.channel;
  const code = query.r_c;
  if (typeof path !== 'string' || typeof code !== 'string' || path !== code.toLowerCase()) return undefined;
  return channels.find(code);
}

/**
 * The request pipeline, in the documented order: 404 (route, channel), 405, 413, 401 (signature, nonce), 415,
 * 400 (JSON, duplicate keys, schema), 429 (channel rate), then the operation. A signed request's answer is kept
 * with its nonce, so the very same bytes sent again get it again.
 */
export async function createApi(deps: ApiDeps): Promise<(ctx: Koa.Context) => Promise<Reply>> {
  const { config, bindings } = deps;
  const nonces = new NonceBook(deps.protocolDb);
  // Handlers by operationId. The pipeline below routes with openapi-backend's router and validates with its ajv
  // validator once per request (its handleRequest would match and parse the request again, three more times).
  const handlers: Record<string, Handler> = {
    bindCard: async ({ body, deadline }, channel) => ({ status: 200, body: await bindings.bindCard(channel!, body as BindCardRequest, deadline) }),
    bankCardList: async ({ body }, channel) => {
      const cards = await bindings.listCards(channel!.code, (body as { user_id: string }).user_id);
      return { status: 200, body: { code: 200, message: 'success', data: { cards } } };
    },
    sandboxSms: async ({ query }) => ({ status: 200, body: { messages: await deps.sandboxSms!.inbox(String(query.mobile)) } }),
  };
  const api = backendFor();
  await api.init();
  // The document does not change, so neither does the operation (and path parameters) a method and path match: the
  // router re-flattens the document and builds its patterns on every call. Bounded: cleared past 1,000 paths.
  const routes = new Map<string, { operation?: Operation; params: Record<string, unknown> }>();
  const route = (req: Request) => {
    const key = `${req.method} ${req.path}`;
    let found = routes.get(key);
    if (!found) {
      // The path decides 404 (route or channel) before the method decides 405.
      const operation = api.router.matchOperation(req) ?? METHODS.map((method) => api.router.matchOperation({ ...req, method })).find(Boolean);
      found = { operation, params: operation ? api.router.parseRequest(req, operation).params : {} };
      if (routes.size >= 1000) routes.clear();
      routes.set(key, found);
    }
    return found;
  };

  return async (ctx) => {
    // counted from the request's arrival (app.ts), so time spent waiting for a place is part of it
    const deadline = (ctx.state.arrivedAt as number | undefined ?? Date.now()) + config.requestDeadlineMs;
    const req = { method: ctx.method, path: ctx.path, query: ctx.query as Record<string, string>, headers: ctx.headers as Record<string, string> };
    const { operation, params } = route(req);
    if (!operation) return protocolError(404);
    let channel: Channel | undefined;
    if (operation.tags?.includes('sandbox')) {
      if (!config.sandbox || !deps.sandboxSms) return protocolError(404);
    } else {
      channel = await channelOf(params, ctx.query, deps.channels);
      if (!channel) return protocolError(404);
    }
    if (operation.method !== ctx.method.toLowerCase()) return protocolError(405);
    ctx.state.channel = channel?.code;
    let raw: Buffer = Buffer.alloc(0);
    if (operation.requestBody) {
      const read = await readBody(ctx.req, config.bodyLimitBytes);
      if (!Buffer.isBuffer(read)) return read;
      raw = read;
    }
    if (!channel) return answer(api, deps, handlers, operation, params, req, raw, undefined, false, deadline);
    const signed = verifySignature(ctx.method, ctx.req.url ?? ctx.url, ctx.headers, raw, channel);
    if ('status' in signed) return signed;
    const seen = await nonces.claim(channel.code, signed, deadline, config.rateLimitPerSecond);
    if (!('fresh' in seen)) return seen;
    const reply = await answer(api, deps, handlers, operation, params, req, raw, channel, seen.overRate, deadline);
    if (reply.status !== 500) await nonces.record(channel.code, signed.nonce, reply);
    return reply;
  };
}

/**
 * The operation's request validators, compiled by openapi-backend from the document, run on what the pipeline has
 * already parsed: its validateRequest would route and parse the request again (5% of the service's own CPU at
 * full `bankCardList` load went to that, README Performance). Its parameter shape: path, query, header, cookie (none
 * in the document), and the body.
 */
function validateRequest(api: OpenAPIBackend, operation: Operation, params: Record<string, unknown>, req: Request, body: unknown): ErrorObject[] {
  const input = { path: params, query: req.query, header: req.headers, cookie: {}, ...(operation.requestBody ? { requestBody: body } : {}) };
  return (api.validator.getRequestValidatorsForOperation(operation.operationId!) ?? []).flatMap((validate) => (validate(input) ? [] : validate.errors ?? []));
}

/** 415 and 400 (JSON, then the document's schema), then 429 (the request was counted when its nonce was claimed), then the handler. */
async function answer(api: OpenAPIBackend, deps: ApiDeps, handlers: Record<string, Handler>, operation: Operation, params: Record<string, unknown>,
  req: Request, raw: Buffer, channel: Channel | undefined, overRate: boolean, deadline: number): Promise<Reply> {
  let body: unknown;
  if (operation.requestBody) {
    const parsed = parseJson(String(req.headers['content-type'] ?? ''), raw);
    if ('status' in parsed) return parsed;
    body = parsed.value;
  }
  const errors = validateRequest(api, operation, params, req, body);
  if (errors.length) return badRequest(fieldErrors(errors));
  if (overRate) return { ...protocolError(429, '请求过于频繁，请稍后重试'), headers: { 'Retry-After': '1' } };
  let reply: Reply;
  try {
    reply = await handlers[operation.operationId!]({ body, query: req.query as Record<string, unknown>, deadline }, channel);
  } catch (e) {
    if (!(e instanceof RequestError)) throw e;
    reply = badRequest([{ field: e.field, rule: e.rule, message: e.message }]);
  }
  if (deps.config.validateResponses) {
    const check = api.validator.validateResponse(reply.body, operation, reply.status);
    if (check.errors) {
      deps.log.error({ operation: operation.operationId, errors: fieldErrors(check.errors) }, 'response does not match the document');
      return protocolError(500);
    }
  }
  return reply;
}

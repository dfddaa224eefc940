import { readFileSync } from 'node:fs';
import type Koa from 'koa';
import yaml from 'js-yaml';
import { OpenAPIBackend, type Document, type Operation } from 'openapi-backend';
import type { ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { CHANNEL_CODE, type Channel } from '../domain/channel.ts';
import { RequestError } from '../domain/outcomes.ts';
import { InjectedFault, type FaultPoint } from '../faults.ts';
import type { ChannelStore } from '../store/channel-store.ts';
import type { NonceStore } from '../store/nonce-store.ts';
import { parseJson, readBody } from './body.ts';
import type { Handlers } from './handlers.ts';
import { replayed, verifySignature } from './partner-auth.ts';
import { badRequest, isTransient, protocolError, replayOf, retryLater, serialize, type FieldError, type Reply } from './replies.ts';

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

/** ajv's errors as the fields and rules a partner's engineer can act on. */
export function fieldErrors(errors: ErrorObject[]): FieldError[] {
  return errors.map((e) => {
    const path = e.instancePath
      .replace(/^\/requestBody/, 'body')
      .replace(/^\//, '')
      .replace(/\//g, '.');
    const extra = e.params as { missingProperty?: string; additionalProperty?: string };
    const leaf = extra.missingProperty ?? extra.additionalProperty;
    return { field: leaf ? `${path}.${leaf}` : path, rule: e.keyword, message: e.message ?? e.keyword };
  });
}

export interface ApiDeps {
  config: Pick<Config, 'sandbox' | 'validateResponses' | 'bodyLimitBytes' | 'rateLimitPerSecond' | 'requestDeadlineMs'>;
  log: Logger;
  channels: ChannelStore;
  nonces: NonceStore;
  handlers: Handlers;
}

/** What the pipeline knows of one request; each check reads it and adds what it learnt. */
export interface RequestContext {
  koa: Koa.Context;
  /** epoch ms: the answer must be ready then (counted from arrival, time waiting for a place included) */
  deadline: number;
  faults: ReadonlySet<FaultPoint>;
  operation?: Operation;
  params: Record<string, unknown>;
  /** the partner channel of a channel operation */
  channel?: Channel;
  raw: Buffer;
  /** the nonce this request claimed: its answer is kept under it, or released when transient */
  claimed?: { channel: string; nonce: string };
  overRate: boolean;
  body?: unknown;
}

/** A check answers the request (a Reply) or lets it go on (undefined). */
type Check = (request: RequestContext) => Promise<Reply | undefined> | Reply | undefined;

/**
 * The request pipeline, in the documented order: 404 (route), 405, 413, then what needs the database: 404 (channel),
 * 401 (signature, nonce), 415, 400 (JSON, duplicate keys, schema), 429 (channel rate), then the operation. A signed
 * request's answer is kept with its nonce, so the very same bytes sent again get it again.
 */
export async function createApi(
  deps: ApiDeps,
): Promise<(koa: Koa.Context, deadline: number, faults?: ReadonlySet<FaultPoint>) => Promise<Reply>> {
  const { config, channels, nonces, handlers } = deps;
  const api = backendFor();
  await api.init();
  // The document does not change, so neither does the operation (and path parameters) a method and path match: the
  // router re-flattens the document and builds its patterns on every call. Bounded: cleared past 1,000 paths.
  const routes = new Map<string, { operation?: Operation; params: Record<string, unknown> }>();
  const routeOf = (method: string, path: string) => {
    const key = `${method} ${path}`;
    let found = routes.get(key);
    if (!found) {
      const req = { method, path, query: {}, headers: {} };
      // The path decides 404 (route or channel) before the method decides 405.
      const operation =
        api.router.matchOperation(req) ?? METHODS.map((other) => api.router.matchOperation({ ...req, method: other })).find(Boolean);
      found = { operation, params: operation ? (api.router.parseRequest(req, operation).params as Record<string, unknown>) : {} };
      if (routes.size >= 1000) routes.clear();
      routes.set(key, found);
    }
    return found;
  };

  const route: Check = (request) => {
    const { operation, params } = routeOf(request.koa.method, request.koa.path);
    if (!operation) return protocolError(404);
    request.operation = operation;
    request.params = params;
    request.koa.state.operation = operation.operationId;
  };

  /**
   * Sandbox operations exist only with the sandbox on; channel operations need an active channel, named twice: in the
   * path in lower case and in r_c in upper case, both exactly as sent (no percent-decoding, so one spelling each).
   */
  const channel: Check = async (request) => {
    if (request.operation!.tags?.includes('sandbox')) return config.sandbox ? undefined : protocolError(404);
    const [rawPath, rawQuery = ''] = (request.koa.req.url ?? '').split('?');
    const code = rawQuery
      .split('&')
      .find((param) => param.startsWith('r_c='))
      ?.slice(4);
    if (!code || !CHANNEL_CODE.test(code) || request.koa.query.r_c !== code) return protocolError(404);
    if (rawPath.split('/')[1] !== `${code.toLowerCase()}channel`) return protocolError(404);
    request.channel = await channels.find(code);
    if (!request.channel) return protocolError(404);
    request.koa.state.channel = code;
  };

  const method: Check = (request) => (request.operation!.method === request.koa.method.toLowerCase() ? undefined : protocolError(405));

  const body: Check = async (request) => {
    if (!request.operation!.requestBody) return;
    const read = await readBody(request.koa.req, config.bodyLimitBytes);
    if (!read.ok) return read.reply;
    request.raw = read.value;
  };

  /** A channel operation's signature, then its nonce: a fresh one goes on, a retry gets the first answer. */
  const signature: Check = async (request) => {
    if (!request.channel) return;
    const { koa } = request;
    const verdict = verifySignature(koa.method, koa.req.url ?? koa.url, koa.headers, request.raw, request.channel);
    if (!verdict.ok) return verdict.reply;
    const claim = await nonces.claim(request.channel.code, verdict.nonce, verdict.signature, request.deadline, config.rateLimitPerSecond);
    request.koa.state.databaseAnswered = true; // (the outage log's sign that the database is back)
    if ('replay' in claim) return replayed();
    if ('answer' in claim) return replayOf(claim.answer);
    request.claimed = { channel: request.channel.code, nonce: verdict.nonce };
    request.overRate = claim.overRate || request.faults.has('rate-limit');
  };

  const json: Check = (request) => {
    if (!request.operation!.requestBody) return;
    const parsed = parseJson(request.koa.get('content-type'), request.raw);
    if (!parsed.ok) return parsed.reply;
    request.body = parsed.value;
  };

  // The operation's validators, compiled by openapi-backend from the document, run on what the pipeline has already
  // parsed: its validateRequest would route and parse the request again.
  const schema: Check = (request) => {
    const operation = request.operation!;
    const input = {
      path: request.params,
      query: request.koa.query,
      header: request.koa.headers,
      cookie: {},
      ...(operation.requestBody ? { requestBody: request.body } : {}),
    };
    const errors = (api.validator.getRequestValidatorsForOperation(operation.operationId!) ?? []).flatMap((validate) =>
      validate(input) ? [] : (validate.errors ?? []),
    );
    return errors.length ? badRequest(fieldErrors(errors)) : undefined;
  };

  const rate: Check = (request) => (request.overRate ? retryLater(429) : undefined);

  const operate = async (request: RequestContext): Promise<Reply> => {
    if (request.faults.has('internal-error')) throw new InjectedFault('internal-error');
    const input = { body: request.body, channel: request.channel!, deadline: request.deadline, query: request.koa.query };
    try {
      // the document's schema has checked the body against the operation's type
      return await (handlers[request.operation!.operationId as keyof Handlers] as (input: unknown) => Promise<Reply>)(input);
    } catch (e) {
      if (!(e instanceof RequestError)) throw e;
      return badRequest([{ field: e.field, rule: e.rule, message: e.message }]);
    }
  };

  const documented = (request: RequestContext, reply: Reply): Reply => {
    if (!config.validateResponses) return reply;
    const check = api.validator.validateResponse(reply.body, request.operation!, reply.status);
    if (!check.errors) return reply;
    deps.log.error(
      { operation: request.operation!.operationId, errors: fieldErrors(check.errors) },
      'response does not match the document',
    );
    return protocolError(500);
  };

  /**
   * Keeps the answer under its nonce, or marks the nonce retryable when the answer is transient. If keeping it fails,
   * the answer still goes out, and the nonce is released so that a retry of the same bytes runs afresh (the flows'
   * own idempotency then answers it the same) instead of waiting for an answer that will never be stored.
   */
  const keepUnderNonce = async ({ channel, nonce }: { channel: string; nonce: string }, reply: Reply & { text: string }): Promise<void> => {
    try {
      if (isTransient(reply)) await nonces.release(channel, nonce);
      else await nonces.record(channel, nonce, { status: reply.status, text: reply.text });
    } catch (err) {
      deps.log.warn({ err, channel }, 'the answer could not be kept under its nonce');
      await nonces.release(channel, nonce).catch(() => undefined);
    }
  };

  // The checks that need no database come first (unknown route, method, size), so they answer even without it.
  const checks: Check[] = [route, method, body, channel, signature, json, schema, rate];
  return async (koa, deadline, faults = new Set()) => {
    const request: RequestContext = { koa, deadline, faults, params: {}, raw: Buffer.alloc(0), overRate: false };
    let reply: Reply | undefined;
    try {
      for (const check of checks) {
        reply = await check(request);
        if (reply) break;
      }
      reply ??= documented(request, await operate(request));
    } catch (e) {
      // a 500 follows: transient, so the partner's retry of the same bytes runs afresh (if the database lets us say so)
      if (request.claimed) await nonces.release(request.claimed.channel, request.claimed.nonce).catch(() => undefined);
      throw e;
    }
    if (!request.claimed) return reply;
    // serialized once: the bytes kept under the nonce are the bytes sent
    const sent = { ...reply, text: serialize(reply) };
    await keepUnderNonce(request.claimed, sent);
    return sent;
  };
}

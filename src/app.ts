import { randomUUID } from 'node:crypto';
import Koa from 'koa';
import type { Sequelize } from 'sequelize';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import { BindingService } from './domain/binding-service.ts';
import { vaultFor } from './crypto/vault.ts';
import { Admission } from './http/admission.ts';
import { createApi } from './http/api.ts';
import { protocolError, type Reply } from './http/replies.ts';
import type { CardAuthenticator, SmsSender } from './providers/provider-types.ts';
import { HttpCardAuthenticator, HttpSmsSender } from './providers/http-providers.ts';
import { SandboxCardAuthenticator, SandboxSmsSender } from './providers/sandbox-providers.ts';
import { ChannelStore } from './store/channel-store.ts';

export interface AppDeps {
  config: Config;
  db: Sequelize;
  /** Nonces and rate counts (replay protection, not business state); may commit asynchronously. Default: db. */
  protocolDb?: Sequelize;
  log: Logger;
  /** Business time (code expiry, SMS windows, leases); tests move it. */
  now?: () => Date;
  auth?: CardAuthenticator;
  sms?: SmsSender;
}

/** A Koa app wired from real or given parts; it does not listen. */
export async function createApp(deps: AppDeps): Promise<Koa> {
  const { config, db, log } = deps;
  const now = deps.now ?? (() => new Date());
  const vault = vaultFor(config);
  const sandboxSms = config.sandbox ? new SandboxSmsSender(db, vault, now) : undefined;
  // A gateway's URL picks its HTTP adapter; without one the sandbox's (config requires the URLs with the sandbox off).
  const auth = deps.auth ?? (config.cardAuthGateway ? new HttpCardAuthenticator(config.cardAuthGateway)
    : config.sandbox ? new SandboxCardAuthenticator(db, vault) : undefined);
  const sms = deps.sms ?? (config.smsGateway ? new HttpSmsSender(config.smsGateway) : sandboxSms);
  if (!auth || !sms) throw new Error('no card-auth or SMS provider configured (the sandbox is off)');
  const bindings = new BindingService({ db, vault, auth, sms, now, log, config });
  const channels = new ChannelStore(db, vault, config.sandbox);
  const handle = await createApi({ config, log, protocolDb: deps.protocolDb ?? db, channels, bindings, sandboxSms });

  const app = new Koa();
  // Overload gets 503 rather than a wait past the partner's 2 s timeout; a short stall is waited out (see Admission).
  const admission = new Admission(config.maxInflight, config.maxQueued, config.queueWaitMs);
  app.use(async (ctx) => {
    const started = performance.now();
    ctx.state.arrivedAt = Date.now(); // the request's deadline counts from here, time waiting for a place included
    const id = randomUUID();
    let reply: Reply;
    if (!(await admission.enter())) {
      reply = { ...protocolError(503), headers: { 'Retry-After': '1' } };
    } else {
      try {
        reply = await handle(ctx);
      } catch (err) {
        log.error({ err, req_id: id }, 'unexpected error');
        reply = protocolError(500);
      } finally {
        admission.leave();
      }
    }
    ctx.status = reply.status;
    ctx.body = reply.body;
    ctx.set('X-Request-Id', id);
    for (const [k, v] of Object.entries(reply.headers ?? {})) ctx.set(k, v);
    if (reply.status === 413) ctx.set('Connection', 'close');
    const body = reply.body as { code?: number; data?: { sub_code?: string; status?: string } };
    log.info({
      req_id: id, method: ctx.method, path: ctx.path, channel: ctx.state.channel, status: reply.status, code: body.code,
      sub_code: body.data?.sub_code, result: body.data?.status, ms: Math.round(performance.now() - started),
    }, 'request');
  });
  app.on('error', (err) => log.warn({ err }, 'response stream error'));
  return app;
}

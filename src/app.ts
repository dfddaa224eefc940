import { randomUUID } from 'node:crypto';
import Koa from 'koa';
import type { Config } from './config.ts';
import { REQUEST_ID, requestContext, type Logger } from './log.ts';
import { DatabaseOutage, isDatabaseUnavailable } from './ops/database.ts';
import { Metrics } from './ops/metrics.ts';
import { instrumentedAuth, instrumentedSms } from './providers/instrumented.ts';
import { vaultFor } from './crypto/vault.ts';
import { CallbackWorker } from './callbacks/worker.ts';
import { BindingService } from './domain/binding-service.ts';
import { CardLifecycle } from './domain/lifecycle.ts';
import type { BindingStores } from './domain/stores.ts';
import { clockOf, faultsOf, type FaultPoint } from './faults.ts';
import { Admission } from './http/admission.ts';
import { createApi } from './http/api.ts';
import { createHandlers } from './http/handlers.ts';
import { referencePages } from './http/reference.ts';
import { badRequest, protocolError, retryLater, serialize, type Reply } from './http/replies.ts';
import type { CardAuthenticator, SmsSender } from './providers/provider-types.ts';
import { HttpCardAuthenticator, HttpSmsSender } from './providers/http-providers.ts';
import { SandboxCardAuthenticator, SandboxSmsSender } from './providers/sandbox-providers.ts';
import { ChannelStore } from './store/channel-store.ts';
import { NonceStore } from './store/nonce-store.ts';
import { OutboxStore } from './store/outbox-store.ts';
import { SandboxStore } from './store/sandbox-store.ts';
import type { Db } from './store/sql.ts';
import { createBindingStores } from './store/stores.ts';

export interface AppDeps {
  config: Config;
  db: Db;
  /** Nonces and rate counts (replay protection, not business state); may commit asynchronously. Default: db. */
  protocolDb?: Db;
  log: Logger;
  /** Business time (code expiry, SMS windows, leases); tests move it. */
  now?: () => Date;
  auth?: CardAuthenticator;
  sms?: SmsSender;
  /** The binding flows' stores; default: on PostgreSQL (db). */
  stores?: BindingStores;
  /** The gate of requests in flight; default: one sized by MAX_INFLIGHT, MAX_QUEUED and QUEUE_WAIT_MS. */
  admission?: Admission;
  /** Where requests, gateway calls and limits are counted; default: a registry of this app's own. */
  metrics?: Metrics;
  /** The database's outages as the log tells them; default: one of this app's own. */
  outage?: DatabaseOutage;
  /** True once the process is stopping: answers then close their connection. */
  stopping?: () => boolean;
}

/** How long past its deadline a request may still be answered by its own work before 503 answers for it. */
const DEADLINE_GRACE_MS = 100;

/** The client went away before its request was read: nothing to answer, and not our error (nginx's 499). */
const CLIENT_CLOSED: Reply = { status: 499, body: { code: 499, message: 'client closed the request' } };
/** The request was not received within REQUEST_TIMEOUT_MS: the server itself answered 408 and closed the connection. */
const TIMED_OUT: Reply = { status: 408, body: { code: 408, message: 'request timeout' } };

function clientClosed(koa: Koa.Context): boolean {
  return koa.req.destroyed && !koa.req.complete;
}

/** A Koa app wired from real or given parts; it does not listen. */
export async function createApp(deps: AppDeps): Promise<Koa> {
  const { config, db, log } = deps;
  const clock = deps.now ?? (() => new Date());
  // business time: the clock's, unless the request set it (the fault switch's X-Bindcard-Clock)
  const now = () => {
    const shift = requestContext.getStore()?.clockShiftMs;
    return shift === undefined ? clock() : new Date(clock().getTime() + shift);
  };
  const vault = vaultFor(config);
  const sandbox = config.sandbox ? new SandboxStore(db) : undefined;
  const sandboxSms = sandbox && new SandboxSmsSender(sandbox, vault, now);
  // A gateway's URL picks its HTTP adapter; without one the sandbox's (config requires the URLs with the sandbox off).
  const givenAuth =
    deps.auth ??
    (config.cardAuthGateway ? new HttpCardAuthenticator(config.cardAuthGateway) : sandbox && new SandboxCardAuthenticator(sandbox, vault));
  const givenSms = deps.sms ?? (config.smsGateway ? new HttpSmsSender(config.smsGateway) : sandboxSms);
  if (!givenAuth || !givenSms) throw new Error('no card-auth or SMS provider configured (the sandbox is off)');
  // Overload gets 503 rather than a wait past the partner's 2 s timeout; a short stall is waited out (see Admission).
  const admission = deps.admission ?? new Admission(config.maxInflight, config.maxQueued, config.queueWaitMs);
  const metrics = deps.metrics ?? new Metrics({ admission: () => admission.load });
  const outage = deps.outage ?? new DatabaseOutage(log);
  const stopping = deps.stopping ?? (() => false);
  const auth = instrumentedAuth(givenAuth, metrics);
  const sms = instrumentedSms(givenSms, metrics);
  const stores = deps.stores ?? createBindingStores(db, vault);
  const observe = { smsRefused: (limit: string) => metrics.smsRefused.inc({ limit }) };
  const bindings = new BindingService({ stores, vault, auth, sms, now, log, config, observe });
  const lifecycle = new CardLifecycle({ stores, vault, auth, now, log, config });
  const handle = await createApi({
    config,
    log,
    channels: new ChannelStore(db, vault, config.sandbox),
    nonces: new NonceStore(deps.protocolDb ?? db),
    handlers: createHandlers(bindings, lifecycle, sandbox && sandboxSms && { sms: sandboxSms, store: sandbox }),
  });

  const app = new Koa();
  // the API reference and the document, outside the partner API (not signed, not in the document)
  if (config.docs) {
    const reference = referencePages();
    app.use(async (koa, next) => {
      if (!reference(koa)) await next();
    });
  }
  app.use(async (koa) => {
    const reqId = REQUEST_ID.test(koa.get('x-request-id')) ? koa.get('x-request-id') : randomUUID();
    const setClock = clockOf(config.faults, koa.headers);
    const clockShiftMs = typeof setClock === 'number' ? setClock - clock().getTime() : undefined;
    const faults = faultsOf(config.faults, koa.headers);
    await requestContext.run({ reqId, clockShiftMs, faults }, () => serve(koa, reqId, faults, setClock === 'malformed'));
  });
  app.on('error', (err) => log.warn({ err }, 'response stream error'));

  async function serve(koa: Koa.Context, reqId: string, faults: ReadonlySet<FaultPoint>, badClock: boolean): Promise<void> {
    const started = performance.now();
    const arrivedAt = Date.now();
    let reply: Reply;
    if (badClock) {
      reply = badRequest([{ field: 'header.X-Bindcard-Clock', rule: 'format', message: 'epoch milliseconds (digits only)' }]);
    } else if (faults.has('overload') || !(await admission.enter())) {
      metrics.refused.inc();
      reply = retryLater(503);
    } else {
      try {
        reply = await answer(koa, arrivedAt, faults);
      } finally {
        admission.leave();
      }
    }
    if (reply !== CLIENT_CLOSED && reply !== TIMED_OUT) {
      koa.status = reply.status;
      koa.type = 'application/json';
      koa.body = serialize(reply);
      koa.set('X-Request-Id', reqId);
      for (const [name, value] of Object.entries(reply.headers ?? {})) koa.set(name, value);
      if (reply.status === 413 || stopping()) koa.set('Connection', 'close');
    }
    const body = reply.body as { code?: number; data?: { sub_code?: string; status?: string } };
    const operation = (koa.state.operation as string | undefined) ?? 'other';
    metrics.requests.inc({ operation, status: reply.status, code: body.code ?? '', sub_code: body.data?.sub_code ?? '' });
    metrics.latency.observe({ operation }, (performance.now() - started) / 1000);
    log.info(
      {
        method: koa.method,
        path: koa.path,
        operation,
        channel: koa.state.channel,
        status: reply.status,
        code: body.code,
        sub_code: body.data?.sub_code,
        result: body.data?.status,
        ms: Math.round(performance.now() - started),
      },
      'request',
    );
  }

  /**
   * The answer to an admitted request, by its deadline: with the database unreachable (an error saying so, or no
   * answer by the deadline) 503 with Retry-After, never a 500 or a hang; what was still running finishes on its own.
   */
  async function answer(koa: Koa.Context, arrivedAt: number, faults: ReadonlySet<FaultPoint>): Promise<Reply> {
    const deadline = arrivedAt + config.requestDeadlineMs;
    const work = handle(koa, deadline, faults);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), Math.max(0, deadline + DEADLINE_GRACE_MS - Date.now()));
    });
    try {
      const first = await Promise.race([work, late]);
      if (first === 'late') {
        work.then(
          () => undefined,
          (err: unknown) => failed(err),
        );
        return retryLater(503);
      }
      if (koa.state.databaseAnswered) outage.answered(); // its nonce was claimed in the database
      return first;
    } catch (err) {
      if (clientClosed(koa)) return Date.now() - arrivedAt >= config.requestTimeoutMs ? TIMED_OUT : CLIENT_CLOSED;
      return failed(err) ? retryLater(503) : protocolError(500);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Logs a request's failure: an outage once (and counted), anything else as the unexpected error it is. */
  function failed(err: unknown): boolean {
    if (isDatabaseUnavailable(err)) {
      outage.failed(err);
      metrics.databaseErrors.inc();
      return true;
    }
    log.error({ err }, 'unexpected error');
    return false;
  }

  return app;
}

/** The outbox's delivery worker of this process (every instance runs one); `start()` runs it. */
export function createCallbackWorker(deps: Pick<AppDeps, 'config' | 'db' | 'log' | 'now' | 'metrics'>): CallbackWorker {
  const { config, db, log } = deps;
  return new CallbackWorker({
    outbox: new OutboxStore(db),
    channels: new ChannelStore(db, vaultFor(config), config.sandbox),
    log,
    now: deps.now ?? (() => new Date()),
    config: {
      retrySeconds: config.callbackRetrySeconds,
      timeoutMs: config.callbackTimeoutMs,
      pollMs: config.callbackPollMs,
      refuseInternal: config.env === 'production',
    },
    sandbox: config.sandbox ? new SandboxStore(db) : undefined,
    metrics: deps.metrics,
  });
}

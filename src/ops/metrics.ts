import cluster from 'node:cluster';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Seconds; fine around the 2 s budget a partner waits (the deadline answers at 1.8 s). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, 5];
const GATEWAY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3];

/** What a scrape reads at that moment, from the parts that hold it. */
export interface Sources {
  admission?: () => { inflight: number; queued: number };
  pools?: () => { pool: string; inUse: number; waiting: number }[];
  outbox?: () => Promise<{ pending: number; dead: number; oldestDueSeconds: number }>;
}

/**
 * The process's metrics, in a registry of its own (so several services can live in one test process). Counters are
 * counted where things happen; gauges are read at scrape time from `sources`. With WORKERS > 1 each worker answers
 * the primary's aggregation (prom-client's cluster support), so one scrape covers all.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'operation' | 'status' | 'code' | 'sub_code'>;
  readonly latency: Histogram<'operation'>;
  readonly refused: Counter;
  readonly gatewayCalls: Counter<'gateway' | 'call' | 'outcome'>;
  readonly gatewayLatency: Histogram<'gateway' | 'call'>;
  readonly smsRefused: Counter<'limit'>;
  readonly callbackTries: Counter<'outcome'>;
  readonly databaseErrors: Counter;

  constructor(private readonly sources: Sources = {}) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'bindcard_requests_total',
      help: 'Requests answered, by operation (operationId, or "other"), HTTP status, result code and sub_code',
      labelNames: ['operation', 'status', 'code', 'sub_code'],
      registers,
    });
    this.latency = new Histogram({
      name: 'bindcard_request_duration_seconds',
      help: 'Time from arrival to answer, by operation',
      labelNames: ['operation'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.refused = new Counter({ name: 'bindcard_admission_refused_total', help: 'Requests refused by admission (503)', registers });
    this.gatewayCalls = new Counter({
      name: 'bindcard_gateway_calls_total',
      help: 'Calls to the card-auth and SMS gateways, by gateway, call and outcome (ok, error, timeout)',
      labelNames: ['gateway', 'call', 'outcome'],
      registers,
    });
    this.gatewayLatency = new Histogram({
      name: 'bindcard_gateway_call_duration_seconds',
      help: 'Gateway call time, by gateway and call',
      labelNames: ['gateway', 'call'],
      buckets: GATEWAY_BUCKETS,
      registers,
    });
    this.smsRefused = new Counter({
      name: 'bindcard_sms_refused_total',
      help: 'Codes not sent because a limit was reached, by limit',
      labelNames: ['limit'],
      registers,
    });
    this.callbackTries = new Counter({
      name: 'bindcard_callback_tries_total',
      help: 'Callback delivery tries, by outcome (delivered, retry, dead)',
      labelNames: ['outcome'],
      registers,
    });
    this.databaseErrors = new Counter({
      name: 'bindcard_database_unavailable_total',
      help: 'Requests answered 503 because the database could not be reached in time',
      registers,
    });
    this.gauges();
    collectDefaultMetrics({ register: this.registry });
  }

  /** The gauges read from their sources at scrape time. */
  private gauges(): void {
    const { sources } = this;
    const registers = [this.registry];
    new Gauge({
      name: 'bindcard_admission_inflight',
      help: 'Requests being worked on',
      registers,
      collect() {
        this.set(sources.admission?.().inflight ?? 0);
      },
    });
    new Gauge({
      name: 'bindcard_admission_queued',
      help: 'Requests waiting for a place',
      registers,
      collect() {
        this.set(sources.admission?.().queued ?? 0);
      },
    });
    new Gauge({
      name: 'bindcard_db_pool_in_use',
      help: 'Database connections lent out, by pool',
      labelNames: ['pool'],
      registers,
      collect() {
        for (const p of sources.pools?.() ?? []) this.set({ pool: p.pool }, p.inUse);
      },
    });
    new Gauge({
      name: 'bindcard_db_pool_waiting',
      help: 'Requests waiting for a database connection, by pool',
      labelNames: ['pool'],
      registers,
      collect() {
        for (const p of sources.pools?.() ?? []) this.set({ pool: p.pool }, p.waiting);
      },
    });
    // The outbox is one for all instances: every worker reads the same numbers, so aggregation takes one, not the sum.
    const outbox = async () => sources.outbox?.().catch(() => undefined);
    new Gauge({
      name: 'bindcard_callbacks_pending',
      help: 'Callback events not yet delivered nor dead (all instances)',
      aggregator: 'max',
      registers,
      async collect() {
        const o = await outbox();
        if (o) this.set(o.pending);
      },
    });
    new Gauge({
      name: 'bindcard_callbacks_oldest_due_seconds',
      help: 'How long the oldest due callback event has waited for its try (all instances)',
      aggregator: 'max',
      registers,
      async collect() {
        const o = await outbox();
        if (o) this.set(o.oldestDueSeconds);
      },
    });
    new Gauge({
      name: 'bindcard_callbacks_dead',
      help: 'Dead-lettered callback events kept (all instances)',
      aggregator: 'max',
      registers,
      async collect() {
        const o = await outbox();
        if (o) this.set(o.dead);
      },
    });
  }

  /** In a worker of a cluster: answer the primary's scrapes with this registry. */
  joinCluster(): void {
    if (!cluster.isWorker) return;
    new AggregatorRegistry(); // adds the worker's listener
    AggregatorRegistry.setRegistries([this.registry]);
  }
}

/** In the primary of a cluster: one scrape, every worker's metrics aggregated. */
export function clusterMetrics(): () => Promise<{ text: string; type: string }> {
  const aggregator = new AggregatorRegistry();
  return async () => ({ text: await aggregator.clusterMetrics(), type: aggregator.contentType });
}

// Runs of the load generator (load.ts, a process of its own, so it does not share the benchmark's event loop) and
// the medians of several runs.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { takeFreshUsers } from './identities.ts';
import { CONNECTIONS, DURATION, SEED } from './options.ts';
import { CHANNEL, channelSecret } from './service.ts';

export interface Load {
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  total: number;
  statusCodes: Record<string, { count: number }>;
  /** open loop only: per second, 2xx answers, 503s and the slowest answer (ms) */
  timeline?: { ok: number; shed: number; max: number }[];
  /** open loop only: when the timeline's first second began (epoch ms) */
  timelineStart?: number;
  /** open loop only: first answers on connections opened during the run, and answers on open keep-alive ones */
  connections?: { opened: { count: number; max: number }; reused: { count: number; max: number } };
  /** open loop of the mix only: each part's latency */
  byKind?: Record<string, { count: number; p50: number; p99: number }>;
}

export interface LoadOptions {
  connections?: number;
  duration?: number;
  rate?: number;
  autocannonRate?: boolean;
  sockets?: number;
  warmup?: number;
}

/** Closed loop (autocannon) without a rate; with one, an open loop at that fixed arrival rate (see load.ts). */
export async function runLoad(url: string, scenario: string, options: LoadOptions = {}): Promise<Load> {
  const spec = {
    url,
    channel: CHANNEL,
    secret: channelSecret(),
    scenario,
    connections: options.connections ?? CONNECTIONS,
    duration: options.duration ?? DURATION,
    rate: options.rate,
    autocannonRate: options.autocannonRate,
    sockets: options.sockets,
    warmup: options.warmup,
    seeded: [0, SEED],
    fresh: takeFreshUsers(1_000_000),
  };
  const generator = spawn(process.execPath, ['--import', 'tsx', 'test/bench/load.ts', JSON.stringify(spec)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  generator.stdout.on('data', (chunk) => (out += chunk));
  await once(generator, 'exit');
  return JSON.parse(out) as Load;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export function medianLoad(runs: Load[]): Load {
  const keys = ['rps', 'p50', 'p90', 'p99', 'max', 'non2xx', 'errors', 'timeouts', 'total'] as const;
  const middle = [...runs].sort((a, b) => a.p99 - b.p99)[Math.floor(runs.length / 2)]; // its status codes and timeline
  return { ...middle, ...Object.fromEntries(keys.map((key) => [key, median(runs.map((run) => run[key]))])) };
}

// What the service's PostgreSQL sessions wait on while a load runs, and what the cluster wrote meanwhile.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Load } from './load-runs.ts';

/** Each sample: when it was taken, and the wait event of each active session of the service's pools ('CPU' when none). */
export type Waits = { at: number; waits: string[] }[];
/** the cluster's WAL and buffer-write counters: WAL bytes and full-page images, pages written by the checkpointer and by backends evicting dirty pages */
export type Io = { walBytes: number; walFpi: number; checkpoints: number; checkpointerPages: number; backendPages: number };

async function ioCounters(client: pg.Client): Promise<Io> {
  const {
    rows: [row],
  } = await client.query<{
    wal_bytes: string;
    wal_fpi: string;
    checkpoints: string;
    buffers_checkpoint: string;
    buffers_backend: string;
  }>(`SELECT w.wal_bytes, w.wal_fpi, b.checkpoints_timed + b.checkpoints_req AS checkpoints, b.buffers_checkpoint, b.buffers_backend
    FROM pg_stat_wal w, pg_stat_bgwriter b`);
  return {
    walBytes: Number(row.wal_bytes),
    walFpi: Number(row.wal_fpi),
    checkpoints: Number(row.checkpoints),
    checkpointerPages: Number(row.buffers_checkpoint),
    backendPages: Number(row.buffers_backend),
  };
}

/** Samples pg_stat_activity every 10 ms while `during` runs: the wait event of each active session of the service's pools ('CPU' when none). */
export async function sampledWaits<T>(dbUrl: string, during: () => Promise<T>): Promise<{ result: T; samples: Waits; io: Io }> {
  const client = new pg.Client({ connectionString: dbUrl, application_name: 'bench-sampler' });
  await client.connect();
  const before = await ioCounters(client);
  const samples: Waits = [];
  let running = true;
  const sampling = (async () => {
    while (running) {
      const at = Date.now();
      const { rows } = await client.query(`SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS w FROM pg_stat_activity
        WHERE state = 'active' AND application_name LIKE 'bindcard%'`);
      samples.push({ at, waits: rows.map((row: { w: string }) => row.w) });
      await sleep(10);
    }
  })();
  try {
    const result = await during();
    const after = await ioCounters(client); // queued behind the sampler's query on the same client; a later sample falls outside the timeline
    return {
      result,
      samples,
      io: Object.fromEntries(Object.entries(after).map(([key, value]) => [key, value - before[key as keyof Io]])) as Io,
    };
  } finally {
    running = false;
    await sampling;
    await client.end();
  }
}

export interface WaitShares {
  all: Record<string, number>;
  slow: Record<string, number>;
  slowSeconds: number;
}

/** Shares of the sampled waits, overall and in the seconds whose slowest answer took more than `slowMs`. */
export function waitShares(runs: { load: Load; samples: Waits }[], slowMs: number): WaitShares {
  const all: Record<string, number> = {};
  const slow: Record<string, number> = {};
  let slowSeconds = 0;
  for (const { load, samples } of runs) {
    const slowSecond = new Set((load.timeline ?? []).flatMap((second, index) => (second.max > slowMs ? [index] : [])));
    slowSeconds += slowSecond.size;
    for (const { at, waits } of samples) {
      const second = Math.floor((at - (load.timelineStart ?? 0)) / 1000);
      if (second < 0 || second >= (load.timeline?.length ?? 0)) continue;
      for (const wait of waits) {
        all[wait] = (all[wait] ?? 0) + 1;
        if (slowSecond.has(second)) slow[wait] = (slow[wait] ?? 0) + 1;
      }
    }
  }
  const shares = (counts: Record<string, number>) => {
    const total = Object.values(counts).reduce((sum, count) => sum + count, 0) || 1;
    return Object.fromEntries(
      Object.entries(counts)
        .sort((a, b) => b[1] - a[1])
        .map(([wait, count]) => [wait, Math.round((count / total) * 1000) / 10]),
    );
  };
  return { all: shares(all), slow: shares(slow), slowSeconds };
}

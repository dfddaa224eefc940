// The report: a table on stdout, and the results as bench-results/<time>.json and a latency chart (.svg).
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Pass } from './ceilings.ts';
import type { Load } from './load-runs.ts';
import { CONNECTIONS, DURATION, ONLY, OVERLOAD_SECONDS, POOL_SOCKETS, RUNS, SCENARIOS, SLOW_SECOND_MS } from './options.ts';
import type { Io, WaitShares } from './pg-waits.ts';

interface FixedRate {
  maxRps: number;
  half: Load;
  halfWaits: WaitShares;
  halfIo: Io[];
  halfRuns: Load[];
  halfAutocannon: Load;
  over: Load;
  recovery: Load;
  halfEach: Record<string, Load>;
  overWide: Load;
}

function formatLoad(load: Load): string {
  return `${load.rps.toFixed(0).padStart(6)} req/s  p50 ${String(load.p50).padStart(4)}  p90 ${String(load.p90).padStart(4)}  p99 ${String(load.p99).padStart(4)}  max ${String(load.max).padStart(5)} ms  non2xx ${load.non2xx}  errors ${load.errors}`;
}

function svgChart(pass: Pass, title: string): string {
  const rows = SCENARIOS.map((scenario) => [scenario, pass[scenario].load] as const);
  const maxMs = Math.max(...rows.map(([, load]) => load.p99), 1);
  const bar = (x: number, y: number, width: number, color: string) =>
    `<rect x="${x}" y="${y}" width="${Math.max(1, width).toFixed(1)}" height="10" fill="${color}"/>`;
  const body = rows
    .map(([scenario, load], index) => {
      const top = 40 + index * 50;
      const scale = (ms: number) => (ms / maxMs) * 480;
      return (
        `<text x="10" y="${top + 10}" font-size="12">${scenario}</text>` +
        bar(120, top, scale(load.p50), '#4c9') +
        bar(120, top + 12, scale(load.p90), '#fb4') +
        bar(120, top + 24, scale(load.p99), '#e55') +
        `<text x="${130 + scale(load.p99)}" y="${top + 34}" font-size="10">p50 ${load.p50} / p90 ${load.p90} / p99 ${load.p99} ms · ${load.rps.toFixed(0)} req/s</text>`
      );
    })
    .join('');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="820" height="${60 + rows.length * 50}" font-family="sans-serif">` +
    `<text x="10" y="20" font-size="14">${title}: latency (green p50, yellow p90, red p99)</text>${body}</svg>`
  );
}

export function report(results: Record<string, unknown>, started: number): void {
  process.stderr.write('\n');
  const empty = results.empty as Pass;
  const framework = results.frameworkCeiling as Load;
  const lines = [
    `bindcard benchmark · Node ${process.versions.node} · ${RUNS} runs of ${DURATION} s, ${CONNECTIONS} connections, medians · framework ceiling (bare Koa): ${framework.rps.toFixed(0)} req/s`,
  ];
  lines.push('scenario        throughput and latency                                                   db ceiling   ratio');
  for (const scenario of SCENARIOS) {
    const { load, dbCeiling, ratio } = empty[scenario];
    lines.push(`${scenario.padEnd(14)}  ${formatLoad(load)}  ${dbCeiling.toFixed(0).padStart(8)}   ${ratio.toFixed(2)}`);
  }
  if (!ONLY) {
    const fixedRate = results.fixedRate as FixedRate;
    const shed = (load: Load) => load.statusCodes?.['503']?.count ?? 0;
    const seconds = (load: Load) => (load.timeline ?? []).map((second) => `${second.ok}/${second.shed}/${second.max}`).join(' ');
    const parts = (load: Load) =>
      Object.entries(load.byKind ?? {})
        .map(([kind, part]) => `${kind} ${part.p50}/${part.p99}`)
        .join(', ');
    lines.push(
      `fixed rate ${Math.round(fixedRate.maxRps / 2)} req/s (half the mix maximum), open loop after 1 s not counted:  ${formatLoad(fixedRate.half)}  (503: ${shed(fixedRate.half)})`,
    );
    lines.push(`  the mix's parts, p50/p99 ms: ${parts(fixedRate.half)}`);
    const top = (shares: Record<string, number>) =>
      Object.entries(shares)
        .slice(0, 5)
        .map(([wait, share]) => `${wait} ${share}%`)
        .join(', ');
    lines.push(
      `  the service's PostgreSQL sessions, sampled every 10 ms (share of active samples): all seconds: ${top(fixedRate.halfWaits.all)}`,
    );
    lines.push(
      `    the ${fixedRate.halfWaits.slowSeconds} seconds (of ${RUNS * DURATION}) whose slowest answer took over ${SLOW_SECOND_MS} ms: ${top(fixedRate.halfWaits.slow)}`,
    );
    const io = (counters: Io, load: Load) =>
      `p99 ${load.p99} ms; with its warm-up second: WAL ${(counters.walBytes / 1e6).toFixed(1)} MB (${counters.walFpi} full-page images), pages written by the checkpointer ${counters.checkpointerPages}, by backends ${counters.backendPages}, checkpoints ended ${counters.checkpoints}`;
    fixedRate.halfIo.forEach((counters, index) => lines.push(`  run ${index + 1}: ${io(counters, fixedRate.halfRuns[index])}`));
    for (const [name, load] of Object.entries(fixedRate.halfEach))
      lines.push(`  ${name.padEnd(9)} alone at ${load.rps.toFixed(0)} req/s:  ${formatLoad(load)}`);
    lines.push(
      `  the same with autocannon --overallRate (bursts each second, see load.ts):  ${formatLoad(fixedRate.halfAutocannon)}  (503: ${shed(fixedRate.halfAutocannon)})`,
    );
    lines.push(
      `fixed rate ${Math.round(fixedRate.maxRps * 2)} req/s for ${OVERLOAD_SECONDS} s (twice), open loop over ≤ ${POOL_SOCKETS} connections:  ${formatLoad(fixedRate.over)}  (503 shed: ${shed(fixedRate.over)})`,
    );
    lines.push(`  per second, 2xx/503/slowest ms: ${seconds(fixedRate.over)}`);
    const connections = ({ connections: counted }: Load) =>
      counted
        ? `  slowest first answer on the ${counted.opened.count} connections opened meanwhile: ${counted.opened.max} ms; on open keep-alive connections (${counted.reused.count} answers): ${counted.reused.max} ms`
        : '  (no connection counts)';
    lines.push(connections(fixedRate.over));
    lines.push(`recovery at half the maximum right after:  ${formatLoad(fixedRate.recovery)}  (503: ${shed(fixedRate.recovery)})`);
    lines.push(`  per second, 2xx/503/slowest ms: ${seconds(fixedRate.recovery)}`);
    lines.push(
      `twice again over ≤ 1,024 connections (one per request in flight):  ${formatLoad(fixedRate.overWide)}  (503 shed: ${shed(fixedRate.overWide)})`,
    );
    lines.push(connections(fixedRate.overWide));
    const workers = results.workers as { two: Load; gain: number };
    lines.push(`WORKERS=2 mix:  ${formatLoad(workers.two)}  (gain ×${workers.gain.toFixed(2)} over one)`);
    const housekeeping = results.housekeeping as { during: Load; without: Load; expiredLeft: number };
    lines.push(
      `list during purge of 300,000 expired nonces:  ${formatLoad(housekeeping.during)}  (left after ${DURATION} s: ${housekeeping.expiredLeft}; without purge p99 ${housekeeping.without.p99} ms)`,
    );
  }
  if (results.scaled) {
    const scaled = results.scaled as { cards: number; pass: Pass; vsEmpty: Record<string, number> };
    lines.push(`with ${scaled.cards.toLocaleString()} cards:`);
    for (const scenario of SCENARIOS) {
      const { load, dbCeiling, ratio } = scaled.pass[scenario];
      lines.push(
        `${scenario.padEnd(14)}  ${formatLoad(load)}  ${dbCeiling.toFixed(0).padStart(8)}   ${ratio.toFixed(2)}  vs empty ${scaled.vsEmpty[scenario].toFixed(2)}`,
      );
    }
  }
  lines.push(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  console.log(lines.join('\n'));

  mkdirSync('bench-results', { recursive: true });
  const stamp = new Date(started).toISOString().replace(/[:.]/g, '-');
  writeFileSync(`bench-results/${stamp}.json`, JSON.stringify(results, null, 2));
  writeFileSync(`bench-results/${stamp}.svg`, svgChart(empty, `bindcard ${stamp}`));
  console.log(`results: bench-results/${stamp}.json, bench-results/${stamp}.svg`);
}

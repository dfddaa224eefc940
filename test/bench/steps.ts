// The run's progress on stderr: one bar of numbered steps, each named as it begins.
import { showProgress } from '../../src/cli/progress.ts';
import type { Load } from './load-runs.ts';
import { RUNS } from './options.ts';

let done = 0;
let total = 1;

export function planSteps(count: number): void {
  total = count;
}

export function step(label: string): void {
  done++;
  showProgress(done, total, { after: ` ${label.padEnd(48).slice(0, 48)}` });
}

/** --runs runs of one load, each a step. */
export async function repeated(label: string, once: () => Promise<Load>): Promise<Load[]> {
  const runs: Load[] = [];
  for (let run = 1; run <= RUNS; run++) {
    step(`${label}, run ${run}`);
    runs.push(await once());
  }
  return runs;
}

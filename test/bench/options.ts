// The benchmark's settings: those its command line sets, and those fixed for every run.
//   npm run bench [-- --runs 3 --duration 10 --connections 32 --scale [N] --overload-seconds 30 --only list,replay]
const args = process.argv.slice(2);

/** `--<name> <number>`; the default when the flag is absent or no number follows it */
function numberFlag(name: string, fallback: number): number {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  return Number.isFinite(value) && !args[at + 1]?.startsWith('--') ? value : fallback;
}

export const RUNS = numberFlag('runs', 3);
export const DURATION = numberFlag('duration', 10);
export const CONNECTIONS = numberFlag('connections', 32);
/** with --scale: the cards bulk-loaded for the second pass; 0 without it */
export const SCALE = args.includes('--scale') ? numberFlag('scale', 1_000_000) : 0;
export const OVERLOAD_SECONDS = numberFlag('overload-seconds', 30);

export const ALL_SCENARIOS = ['existing', 'newCardFlow', 'replay', 'list', 'mix'] as const;
export type Scenario = (typeof ALL_SCENARIOS)[number];
/** with --only: just these scenarios and their ceilings (a quick check while working on one path) */
export const ONLY = args.includes('--only') ? (args[args.indexOf('--only') + 1]?.split(',') ?? []) : undefined;
if (ONLY?.some((name) => !ALL_SCENARIOS.includes(name as Scenario)))
  throw new Error(`--only takes scenarios among ${ALL_SCENARIOS.join(',')}`);
export const SCENARIOS = ONLY ? ALL_SCENARIOS.filter((scenario) => ONLY.includes(scenario)) : ALL_SCENARIOS;

export const SEED = 5000; // bound users every scenario draws from
export const POOL_SOCKETS = 128; // the open loop's connections, as a partner's HTTP client pool
export const SLOW_SECOND_MS = 40; // a second of the half-rate runs whose slowest answer took longer: where its tail comes from

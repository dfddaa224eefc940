// Start-up time of the service on the embedded database: cold (a new data folder) and warm (the same folder again).
// Time from spawning `node --import tsx src/main.ts` to its "listening" line; median of N runs each.
// usage: node scripts/startup-time.mjs [runs=5]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const runs = Number(process.argv[2] ?? 5);

async function startOnce(dataDir) {
  const started = performance.now();
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { ...process.env, DATABASE_URL: '', DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  for await (const line of createInterface({ input: proc.stdout })) {
    if (line.includes('listening on')) break;
  }
  const ms = performance.now() - started;
  proc.kill('SIGTERM');
  await once(proc, 'exit');
  return ms;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cold = [];
const warm = [];
for (let i = 0; i < runs; i++) {
  const dir = mkdtempSync(join(tmpdir(), 'bindcard-start-'));
  cold.push(await startOnce(dir));
  warm.push(await startOnce(dir));
  rmSync(dir, { recursive: true, force: true });
}
const fmt = (xs) =>
  `median ${(median(xs) / 1000).toFixed(2)} s (min ${(Math.min(...xs) / 1000).toFixed(2)}, max ${(Math.max(...xs) / 1000).toFixed(2)})`;
console.log(`cold start (new data folder): ${fmt(cold)}`);
console.log(`warm start (existing data):   ${fmt(warm)}`);

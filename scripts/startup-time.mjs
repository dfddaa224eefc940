// Start-up time, from spawning the service to its "listening on" line, of `npm start`'s form (TypeScript through tsx)
// and `npm run start:prod`'s (the compiled dist/, built first with `npm run build`); median of N runs each, the two
// interleaved so a busy machine slows both alike. On the embedded database: a new data folder, then the same folder
// again; with DATABASE_URL, also on a throwaway database on that server (migrated by a first, unmeasured start).
// usage: [DATABASE_URL=postgres://...] node scripts/startup-time.mjs [runs=5]
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const runs = Number(process.argv[2] ?? 5);
const FORMS = {
  'npm start (tsx)': ['--import', 'tsx', 'src/main.ts'],
  'start:prod (dist)': ['--enable-source-maps', 'dist/main.js'],
};
if (!existsSync('dist/main.js')) {
  console.error('startup-time: no dist/main.js; run npm run build first');
  process.exit(2);
}

async function startOnce(args, env) {
  const started = performance.now();
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, PORT: '0', ADMIN_PORT: '0', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let ms;
  for await (const line of createInterface({ input: proc.stdout })) {
    if (line.includes('listening on')) {
      ms = performance.now() - started;
      break;
    }
  }
  if (ms === undefined) throw new Error(`${args.join(' ')} exited before listening`);
  proc.kill('SIGTERM');
  if (proc.exitCode === null && proc.signalCode === null) await once(proc, 'exit');
  return ms;
}

const throwaway = (...args) =>
  execFileSync(process.execPath, ['--import', 'tsx', 'test/setup/throwaway-database.ts', ...args], { encoding: 'utf8' }).trim();

/** rows: name → form → milliseconds of each run */
const rows = {};
const record = (row, form, ms) => ((rows[row] ??= {})[form] ??= []).push(ms);

for (let i = 0; i < runs; i++) {
  for (const [form, args] of Object.entries(FORMS)) {
    const dataDir = mkdtempSync(join(tmpdir(), 'bindcard-start-'));
    const env = { DATABASE_URL: '', DATA_DIR: dataDir };
    record('embedded, new data folder', form, await startOnce(args, env));
    record('embedded, existing data folder', form, await startOnce(args, env));
    rmSync(dataDir, { recursive: true, force: true });
  }
}
if (process.env.DATABASE_URL) {
  const url = throwaway('create', 'bindcard_startup');
  try {
    await startOnce(FORMS['start:prod (dist)'], { DATABASE_URL: url });
    for (let i = 0; i < runs; i++) {
      for (const [form, args] of Object.entries(FORMS)) record('PostgreSQL', form, await startOnce(args, { DATABASE_URL: url }));
    }
  } finally {
    throwaway('drop', url);
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = (ms) => (ms / 1000).toFixed(2);
const cell = (xs) => `${s(median(xs))} (${s(Math.min(...xs))}–${s(Math.max(...xs))})`;
const line = (cells) =>
  cells
    .map((c, i) => c.padEnd(i === 0 ? 32 : 22))
    .join('')
    .trimEnd();
console.log(`start-up time, spawn to "listening on", seconds: median of ${runs} (min–max)`);
console.log(line(['', ...Object.keys(FORMS)]));
for (const [row, byForm] of Object.entries(rows)) console.log(line([row, ...Object.keys(FORMS).map((form) => cell(byForm[form]))]));

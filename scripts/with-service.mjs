// Runs a command against a freshly started service, then stops it:
//   node scripts/with-service.mjs <command> [args...]     ("{url}" in an argument becomes the service's base URL)
// The service gets a throwaway database (test/setup/throwaway-database.ts): one created on DATABASE_URL's server and
// dropped afterwards, or, without DATABASE_URL, an embedded one in memory. The command sees BINDCARD_URL and
// BINDCARD_DATABASE_URL.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { tsImport } from 'tsx/esm/api';

// through tsx's API, so plain `node scripts/with-service.mjs` can load the TypeScript helpers, not only `node --import tsx`
const { createThrowawayDatabase } = await tsImport('../test/setup/throwaway-database.ts', import.meta.url);
const { startListening } = await tsImport('../test/setup/service-process.ts', import.meta.url);

export async function withService(run) {
  // embedded: room for the service's two pools (one connection each, DB_POOL_MAX 1) and its migration lock's session
  const database = await createThrowawayDatabase({ prefix: 'bindcard_run', embeddedPool: 3 });
  const service = await startListening(
    'src/main.ts',
    {
      DATABASE_URL: database.url,
      DB_POOL_MAX: database.embedded ? '1' : '3',
      PORT: '0',
      ADMIN_PORT: '0',
      NODE_ENV: 'test',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    },
    true,
  ).catch(async (error) => {
    await database.drop();
    throw error;
  });
  try {
    return await run(service.url, database.url);
  } finally {
    await service.stop();
    await database.drop();
  }
}

export function runCommand(cmd, args, env = {}) {
  const child = spawn(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  return once(child, 'exit').then(([code]) => code ?? 1);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [cmd, ...args] = process.argv.slice(2);
  const code = await withService((url, databaseUrl) =>
    runCommand(
      cmd,
      args.map((arg) => arg.replaceAll('{url}', url)),
      { BINDCARD_URL: url, BINDCARD_DATABASE_URL: databaseUrl },
    ),
  );
  process.exit(code);
}

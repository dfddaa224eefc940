import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface Listening {
  url: string;
  /** the admin listener's base URL, from the start-up lines ('' when none is printed) */
  admin: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Runs a script (`node --import tsx [nodeArgs] <script>`) as its own process and resolves once it prints
 * "listening on http://127.0.0.1:PORT". Its stdout is then drained, or copied to stderr with echo. nodeArgs come after
 * tsx, so a TypeScript module can be preloaded with `--import`.
 */
export async function startListening(
  script: string,
  env: Record<string, string> = {},
  echo = false,
  nodeArgs: string[] = [],
): Promise<Listening> {
  const proc = spawn(process.execPath, ['--import', 'tsx', ...nodeArgs, script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const stop = async () => {
    proc.kill('SIGTERM');
    if (proc.exitCode === null && proc.signalCode === null) await once(proc, 'exit');
  };
  let admin = '';
  for await (const line of createInterface({ input: proc.stdout })) {
    // the admin URL is on the listening line, or a line before it (a cluster's primary)
    admin ||= /admin (https?:\/\/[0-9.]+:\d+)/.exec(line)?.[1] ?? '';
    const url = /listening on (https?:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1];
    if (url) {
      // keep reading, so a full pipe never blocks the process
      if (echo) proc.stdout.pipe(process.stderr);
      else proc.stdout.resume();
      return { url, admin, proc, stop };
    }
  }
  throw new Error(`${script} exited before it listened`);
}

// The processes of the rolling stage: bindcard instances (the real entry point) and HAProxy, each logging to a file
// of the run's folder, each pid written to `pids` so run.sh's trap can end what a crashed driver left.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

function remember(dir: string, proc: ChildProcess): void {
  if (proc.pid) appendFileSync(join(dir, 'pids'), `${proc.pid}\n`);
}

/** Resolves when the process exits, with how it ended. */
function exited(proc: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  return once(proc, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
}

/** SIGTERM, then waits for the exit; after `limitMs` SIGKILL. */
async function stopWithin(proc: ChildProcess, limitMs: number): Promise<Stopped> {
  const started = performance.now();
  proc.kill('SIGTERM');
  const done = exited(proc);
  const killed = (await Promise.race([done, sleep(limitMs).then(() => 'late' as const)])) === 'late';
  if (killed) proc.kill('SIGKILL');
  return { ...(await done), ms: performance.now() - started, killed };
}

export interface Stopped {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** from SIGTERM to exit */
  ms: number;
  /** killed after the stop time limit */
  killed: boolean;
}

/** One bindcard instance on fixed ports: `node --import tsx src/main.ts`. */
export class Instance {
  private proc?: ChildProcess;

  constructor(
    readonly name: string,
    readonly port: number,
    readonly adminPort: number,
    private readonly env: Record<string, string>,
    private readonly dir: string,
    private readonly repo: string,
  ) {}

  /** Starts the process; resolves once it prints its listening line (its partner port and admin port are open). */
  async start(): Promise<void> {
    const log = createWriteStream(join(this.dir, `${this.name}.log`), { flags: 'a' });
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: this.repo,
      env: { ...process.env, ...this.env, PORT: String(this.port), ADMIN_PORT: String(this.adminPort) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    remember(this.dir, proc);
    proc.stderr.pipe(log, { end: false });
    let seen = '';
    const listening = new Promise<void>((resolve, reject) => {
      proc.stdout.on('data', (chunk: Buffer) => {
        log.write(chunk);
        if (seen.length < 100_000) {
          seen += chunk.toString();
          if (seen.includes('bindcard listening on')) resolve();
        }
      });
      proc.once('exit', (code) => reject(new Error(`instance ${this.name} exited (${code}) before it listened; see ${this.name}.log`)));
    });
    const limit = sleep(90_000).then(() => {
      throw new Error(`instance ${this.name} did not listen within 90 s`);
    });
    await Promise.race([listening, limit]);
  }

  /** SIGTERM, then waits for the exit; after `limitMs` it is killed (and that counts as a failed stop). */
  async stop(limitMs: number): Promise<Stopped> {
    const proc = this.proc;
    if (!proc) throw new Error(`instance ${this.name} is not running`);
    const stopped = await stopWithin(proc, limitMs);
    this.proc = undefined;
    return stopped;
  }

  running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  kill(): void {
    if (this.running()) this.proc!.kill('SIGKILL');
  }
}

/** HAProxy in the foreground (-db) on the stage's configuration; its log (stdout) goes to haproxy.log. */
export class Haproxy {
  private proc?: ChildProcess;
  readonly logPath: string;

  constructor(
    private readonly config: string,
    private readonly env: Record<string, string>,
    private readonly dir: string,
    private readonly statsUrl: string,
  ) {
    this.logPath = join(dir, 'haproxy.log');
  }

  async start(): Promise<void> {
    const log = createWriteStream(this.logPath, { flags: 'a' });
    const proc = spawn('haproxy', ['-db', '-f', this.config], { env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    remember(this.dir, proc);
    proc.stdout.pipe(log);
    proc.stderr.pipe(log);
    for (let i = 0; i < 100; i++) {
      if (proc.exitCode !== null) throw new Error(`haproxy exited (${proc.exitCode}); see haproxy.log`);
      try {
        await this.servers();
        return;
      } catch {
        await sleep(100);
      }
    }
    throw new Error('haproxy did not answer on its stats port within 10 s');
  }

  /** Each server's status as HAProxy sees it (UP, DOWN, "UP 1/2", …), from the stats page's CSV. */
  async servers(): Promise<Map<string, string>> {
    const res = await fetch(`${this.statsUrl};csv`, { signal: AbortSignal.timeout(2000) });
    const [header, ...rows] = (await res.text()).trim().split('\n');
    const columns = header.replace(/^# /, '').split(',');
    const [px, sv, status] = ['pxname', 'svname', 'status'].map((c) => columns.indexOf(c));
    const servers = new Map<string, string>();
    for (const row of rows) {
      const cells = row.split(',');
      if (cells[px] === 'bindcard' && !['FRONTEND', 'BACKEND'].includes(cells[sv])) servers.set(cells[sv], cells[status]);
    }
    return servers;
  }

  /** Waits until HAProxy sees the server UP (its checks passed `rise` times); the time it took. */
  async waitUp(server: string, limitMs: number): Promise<number> {
    const started = performance.now();
    while (performance.now() - started < limitMs) {
      if ((await this.servers().catch(() => new Map<string, string>())).get(server) === 'UP') return performance.now() - started;
      await sleep(50);
    }
    throw new Error(`haproxy did not see ${server} UP within ${limitMs} ms`);
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    await stopWithin(proc, 5000); // the load has finished: nothing in flight
    this.proc = undefined;
  }

  kill(): void {
    if (this.proc && this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }

  log(): string {
    return readFileSync(this.logPath, 'utf8');
  }
}

/** One request as HAProxy logged it (log-format in haproxy.cfg). */
export interface Logged {
  status: number;
  server: string;
  /** ms from accepting the request to the end of its answer */
  ta: number;
  termination: string;
  /** HAProxy forwarded it: a server was chosen and connected to (Tc, ms to connect, is -1 when it was not) */
  forwarded: boolean;
}

/** HAProxy's request lines by X-Request-Id, and its other lines (server state changes, alerts). */
export function parseHaproxyLog(text: string): { requests: Map<string, Logged>; other: string[] } {
  const requests = new Map<string, Logged>();
  const other: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^rolling (\d+) \{([^}]*)\} (-?\d+) (\S+) (-?\d+) (-?\d+) (-?\d+) (\S+) (\S+)/.exec(line);
    if (m) {
      const [, , id, status, server, tc, , ta, termination] = m;
      const entry: Logged = {
        status: Number(status),
        server,
        ta: Number(ta),
        termination,
        forwarded: server !== '<NOSRV>' && Number(tc) >= 0,
      };
      if (id) requests.set(id, entry);
    } else if (line.trim()) {
      other.push(line);
    }
  }
  return { requests, other };
}

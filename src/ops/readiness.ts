import { migrationsRun } from '../store/db.ts';
import { dropIdle, type Db } from '../store/sql.ts';

/** How long the database has to answer a readiness probe. */
export const PROBE_MS = 500;

export interface Check {
  name: 'database' | 'migrations' | 'shutdown';
  ok: boolean;
  detail?: string;
}

/**
 * Whether this process should get traffic: the database answers a trivial query within PROBE_MS, every migration this
 * code knows has run (an instance of a newer release waits for its migration), and the process is not stopping.
 */
export class Readiness {
  stopping = false;

  constructor(
    private readonly db: Db,
    private readonly migrations: string[],
  ) {}

  async checks(): Promise<Check[]> {
    const shutdown: Check = { name: 'shutdown', ok: !this.stopping, ...(this.stopping ? { detail: 'stopping (SIGTERM)' } : {}) };
    let timer: NodeJS.Timeout | undefined;
    try {
      const probe = migrationsRun(this.db);
      probe.catch(() => undefined);
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          // a silent server: the idle connections are dead too, so the next look (and request) connects afresh
          dropIdle(this.db);
          reject(new Error(`no answer within ${PROBE_MS} ms`));
        }, PROBE_MS);
      });
      const run = await Promise.race([probe, timeout]);
      const missing = this.migrations.filter((name) => !run.includes(name));
      const migrations: Check = missing.length
        ? { name: 'migrations', ok: false, detail: `not yet run: ${missing.join(', ')}` }
        : { name: 'migrations', ok: true };
      return [{ name: 'database', ok: true }, migrations, shutdown];
    } catch (e) {
      const detail = (e as Error).message || 'unreachable';
      return [{ name: 'database', ok: false, detail }, { name: 'migrations', ok: false, detail: 'unknown: no database' }, shutdown];
    } finally {
      clearTimeout(timer);
    }
  }
}

import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

// PostgreSQL embedded (PGlite) served to `pg` over a loopback socket, so the code path is the production one.
// PGlite runs one query at a time and gives a transaction exclusive use: a local default, not for production load.

export interface Embedded {
  url: string;
  stop(): Promise<void>;
}

export class DataDirBusy extends Error {}

/** One process per data folder: a pid file, taken atomically; a stale one (its process gone) is taken over. */
function takeLock(dir: string): () => void {
  const file = join(dir, 'bindcard.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(file, 'utf8'));
      if (pid && isAlive(pid)) {
        throw new DataDirBusy(
          `another bindcard (pid ${pid}) is already running on ${dir}; stop it first, or set DATA_DIR to another folder`,
        );
      }
      rmSync(file, { force: true });
    }
  }
  throw new DataDirBusy(`could not lock ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Starts PGlite on dataDir (in memory when undefined) behind a socket server on a free loopback port. */
export async function startEmbedded(dataDir: string | undefined, maxConnections: number): Promise<Embedded> {
  let release = () => {};
  if (dataDir) {
    mkdirSync(dataDir, { recursive: true });
    release = takeLock(dataDir);
  }
  try {
    const db = await PGlite.create(dataDir ? join(dataDir, 'pg') : undefined);
    const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections });
    await server.start();
    return {
      url: `postgres://postgres@${server.getServerConn()}/postgres`,
      stop: async () => {
        await server.stop();
        await db.close();
        release();
      },
    };
  } catch (e) {
    release();
    throw e;
  }
}

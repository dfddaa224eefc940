import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { DataDirBusy, startEmbedded } from '../../src/store/embedded.ts';

async function query(url: string, sql: string): Promise<unknown[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<Record<string, unknown>>(sql)).rows;
  } finally {
    await c.end();
  }
}

describe('embedded database', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'bindcard-embedded-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps its data across a stop and start; a second start on the same folder is refused clearly', async () => {
    const first = await startEmbedded(dir, 2);
    try {
      await query(first.url, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')");
      const err = await startEmbedded(dir, 2).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(DataDirBusy);
      const other = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        env: { ...process.env, DATABASE_URL: '', DATA_DIR: dir, PORT: '0', ADMIN_PORT: '0' },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(other.status).to.equal(2);
      expect(other.stderr).to.match(/another bindcard \(pid \d+\) is already running on .*; stop it first, or set DATA_DIR/);
    } finally {
      await first.stop();
    }
    const again = await startEmbedded(dir, 2);
    try {
      expect(await query(again.url, 'SELECT v FROM kept')).to.deep.equal([{ v: 'still here' }]);
    } finally {
      await again.stop();
    }
  });

  it('takes over the lock a dead process left behind, and lets it go when it stops', async () => {
    const pidFile = join(dir, 'bindcard.pid');
    const dead = spawnSync(process.execPath, ['-e', '']).pid; // a process that has exited and been reaped
    writeFileSync(pidFile, String(dead));
    const db = await startEmbedded(dir, 2);
    try {
      expect(readFileSync(pidFile, 'utf8')).to.equal(String(process.pid));
      await query(db.url, 'CREATE TABLE taken_over (v int); INSERT INTO taken_over VALUES (1)');
      expect(await query(db.url, 'SELECT v FROM taken_over')).to.deep.equal([{ v: 1 }]);
    } finally {
      await db.stop();
    }
    expect(existsSync(pidFile)).to.equal(false);
  });
});

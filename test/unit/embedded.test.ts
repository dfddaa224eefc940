import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { DataDirBusy, startEmbedded } from '../../src/store/embedded.ts';

async function query(url: string, sql: string): Promise<unknown[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
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
      const err = await startEmbedded(dir, 2).catch((e) => e);
      expect(err).to.be.instanceOf(DataDirBusy);
      const other = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        env: { ...process.env, DATABASE_URL: '', DATA_DIR: dir, PORT: '0' }, encoding: 'utf8', timeout: 30_000,
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

  it('takes over the lock a dead process left behind', async () => {
    writeFileSync(join(dir, 'bindcard.pid'), '999999');
    const db = await startEmbedded(dir, 2);
    await db.stop();
  });
});

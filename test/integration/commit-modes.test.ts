import { expect } from 'chai';
import { QueryTypes } from 'sequelize';
import { connect } from '../../src/store/db.ts';
import { embeddedRun, testDatabaseUrl, testDb } from '../setup/database.ts';

describe('commit modes', () => {
  it('replay protection commits asynchronously on its own pool; business state commits synchronously', async function () {
    // main.ts opens the asynchronous pool only on a PostgreSQL server; the embedded database is one session for all.
    if (embeddedRun) return this.skip();
    const protocol = connect(testDatabaseUrl(), 1, { asyncCommit: true });
    try {
      const setting = "SELECT current_setting('synchronous_commit') AS mode";
      expect(await protocol.query(setting, { type: QueryTypes.SELECT })).to.deep.equal([{ mode: 'off' }]);
      expect(await testDb().query(setting, { type: QueryTypes.SELECT })).to.deep.equal([{ mode: 'on' }]);
    } finally {
      await protocol.close();
    }
  });
});

import { expect } from 'chai';
import { QueryTypes } from 'sequelize';
import { connect } from '../../src/store/db.ts';
import { embeddedRun, resetDb, testDatabaseUrl, testDb } from '../setup/database.ts';
import { seedExistingCard, seedNewCard, startService } from '../setup/service.ts';

const one = async <T>(text: string, replacements: Record<string, unknown> = {}) =>
  (
    await testDb()
      .query(text, { type: QueryTypes.SELECT, replacements })
      .catch((e: Error & { original?: Error }) => {
        throw new Error(String(e.original ?? e));
      })
  )[0] as T;

describe('commit modes', () => {
  // main.ts opens asynchronous pools only on a PostgreSQL server; the embedded database is one session for all.
  beforeEach(function () {
    if (embeddedRun) this.skip();
  });

  it('an asyncCommit pool runs with synchronous_commit off; the default pool with it on', async () => {
    const async = connect(testDatabaseUrl(), 1, { asyncCommit: true });
    try {
      const setting = "SELECT current_setting('synchronous_commit') AS mode";
      expect(await async.query(setting, { type: QueryTypes.SELECT })).to.deep.equal([{ mode: 'off' }]);
      expect(await testDb().query(setting, { type: QueryTypes.SELECT })).to.deep.equal([{ mode: 'on' }]);
    } finally {
      await async.close();
    }
  });

  it('on asynchronous pools, a bindCard answer comes once the rows it wrote are on disk', async () => {
    await resetDb();
    await testDb().query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
    const db = connect(testDatabaseUrl(), 4, { asyncCommit: true });
    const svc = await startService({}, { db, protocolDb: db });
    try {
      /** Sends the request; then, at once, whether the commits of the given rows' last writes are flushed. */
      const onDisk = async (send: () => Promise<{ status: number }>, rows: string) => {
        const { start } = await one<{ start: string }>('SELECT pg_current_wal_insert_lsn()::text AS start');
        expect((await send()).status).to.equal(200);
        const { flushed } = await one<{ flushed: string }>('SELECT pg_current_wal_flush_lsn()::text AS flushed');
        // each row's xmin is the transaction that wrote it last: is its commit record in the WAL flushed by then?
        return one<{ written: number; durable: number }>(
          `SELECT count(*)::int AS written, count(w.xid)::int AS durable
             FROM (${rows}) r LEFT JOIN pg_get_wal_records_info(CAST(:start AS pg_lsn), CAST(:flushed AS pg_lsn)) w
               ON w.resource_manager = 'Transaction' AND w.record_type = 'COMMIT' AND w.xid::text = r.xmin::text`,
          { start, flushed },
        );
      };
      const user = "user_id = '246964109149933'";
      const first = await onDisk(
        () => svc.bind(seedNewCard()),
        `SELECT xmin FROM verifications WHERE ${user} UNION SELECT xmin FROM sms_sends UNION SELECT xmin FROM audit_events`,
      );
      expect(first).to.deep.equal({ written: 3, durable: 3 });
      const [sms] = await svc.inbox('13420504517');
      const confirmed = await onDisk(
        () => svc.bind(seedNewCard({ verify_code: sms.code })),
        `SELECT xmin FROM bindings WHERE ${user} UNION SELECT xmin FROM cards UNION SELECT xmin FROM verifications WHERE ${user}
         UNION SELECT xmin FROM (SELECT xmin FROM audit_events ORDER BY id DESC LIMIT 1) a`,
      );
      expect(confirmed.written).to.be.greaterThan(1);
      expect(confirmed.durable).to.equal(confirmed.written);
      // an existing card's confirmation writes its audit event only
      const existing = await onDisk(() => svc.bind(seedExistingCard), 'SELECT xmin FROM audit_events ORDER BY id DESC LIMIT 1');
      expect(existing).to.deep.equal({ written: 1, durable: 1 });
    } finally {
      await svc.stop();
      await db.close();
    }
  });
});

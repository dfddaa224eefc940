import { expect } from 'chai';
import pg from 'pg';
import { DataTypes, type Sequelize } from 'sequelize';
import { modelsOf, tables } from '../../src/store/models.ts';
import { connectionManager, connectionOf, sql } from '../../src/store/sql.ts';
import { testDb } from '../setup/database.ts';

/** PostgreSQL's name (information_schema data_type / udt_name) of a model column's type. */
function pgType(type: unknown): string {
  if (type instanceof DataTypes.ARRAY) return `_${pgType((type as unknown as { type: unknown }).type)}`;
  // BIGINT and SMALLINT are kinds of INTEGER in Sequelize: they come first
  const names: [unknown, string][] = [
    [DataTypes.BIGINT, 'int8'],
    [DataTypes.SMALLINT, 'int2'],
    [DataTypes.INTEGER, 'int4'],
    [DataTypes.TEXT, 'text'],
    [DataTypes.DATE, 'timestamptz'],
    [DataTypes.BOOLEAN, 'bool'],
    [DataTypes.JSONB, 'jsonb'],
  ];
  const found = names.find(([dataType]) => type === dataType || type instanceof (dataType as new () => unknown));
  if (!found) throw new Error(`no PostgreSQL name for ${String(type)}`);
  return found[1];
}

describe('Sequelize models and the migrated schema', () => {
  it("has a model for every table, each column with the table's type, nullability and primary key", async () => {
    const db = testDb();
    const columns = await sql<{ table_name: string; column_name: string; udt_name: string; is_nullable: string }>(
      db,
      undefined,
      `SELECT table_name, column_name, udt_name, is_nullable FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name <> 'SequelizeMeta' ORDER BY table_name, ordinal_position`,
    );
    const keys = await sql<{ table_name: string; column_name: string }>(
      db,
      undefined,
      `SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc
         JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name AND kcu.table_name = tc.table_name
        WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public'`,
    );
    const fromSchema = (table: string) =>
      columns
        .filter((c) => c.table_name === table)
        .map((c) => ({
          column: c.column_name,
          type: c.udt_name,
          nullable: c.is_nullable === 'YES',
          primaryKey: keys.some((k) => k.table_name === table && k.column_name === c.column_name),
        }))
        .sort((a, b) => a.column.localeCompare(b.column));
    const modelled = Object.values(tables())
      .map(([table]) => table)
      .sort();
    expect(modelled).to.deep.equal([...new Set(columns.map((c) => c.table_name))].sort());
    for (const [table, attributes] of Object.values(tables())) {
      const fromModel = Object.entries(attributes)
        .map(([column, attribute]) => {
          const { type, allowNull, primaryKey } = attribute as { type: unknown; allowNull?: boolean; primaryKey?: boolean };
          return { column, type: pgType(type), nullable: primaryKey ? false : allowNull !== false, primaryKey: primaryKey === true };
        })
        .sort((a, b) => a.column.localeCompare(b.column));
      expect(fromModel, table).to.deep.equal(fromSchema(table));
    }
  });

  it('reads and writes through a model', async () => {
    const { Channel } = modelsOf(testDb());
    await Channel.create({ code: 'MODEL_CHECK', created_at: new Date() });
    const row = (await Channel.findByPk('MODEL_CHECK'))!.get({ plain: true });
    expect(row).to.include({ code: 'MODEL_CHECK', status: 'ACTIVE' });
    expect(row.card_types).to.deep.equal([0, 1]);
    await Channel.destroy({ where: { code: 'MODEL_CHECK' } });
  });
});

// sql.ts runs hot statements on Sequelize's own connections through two internals. These tests pin exactly those, so a
// Sequelize upgrade that moves them fails here, loudly, rather than in production.
describe("the SQL seam's Sequelize internals", () => {
  const backendPid = async (db: Sequelize, transaction?: unknown) =>
    (
      (await db.query('SELECT pg_backend_pid() AS pid', { plain: true, ...(transaction ? { transaction } : {}) } as object)) as unknown as {
        pid: number;
      }
    ).pid;

  it('connectionManager.getConnection({ type: "write" }) lends a pg.Client of the pool, and releaseConnection takes it back', async () => {
    const db = testDb();
    const manager = connectionManager(db);
    const connection = await manager.getConnection({ type: 'write' });
    try {
      expect(connection).to.be.instanceOf(pg.Client);
      expect((await connection.query('SELECT 1 AS one')).rows).to.deep.equal([{ one: 1 }]);
    } finally {
      manager.releaseConnection(connection);
    }
  });

  it("a transaction's connection is the pg.Client its statements run on", async () => {
    const db = testDb();
    await db.transaction(async (t) => {
      const connection = connectionOf(t);
      expect(connection).to.be.instanceOf(pg.Client);
      const pid = (await connection.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      expect(await backendPid(db, t)).to.equal(pid);
      await connection.query('CREATE TEMP TABLE seam_check (v int) ON COMMIT DROP');
      await db.query('INSERT INTO seam_check VALUES (1)', { transaction: t }); // the same session sees it
    });
  });
});

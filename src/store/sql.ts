import type pg from 'pg';
import type { Sequelize, Transaction } from 'sequelize';
import type { Transactor, Tx } from '../domain/stores.ts';

// The one seam where hot statements bypass Sequelize's model and query layers: a statement with bind parameters
// ($1, $2, …) runs as a named prepared statement on a connection of Sequelize's own pool, in Sequelize's own
// transactions. Sequelize's query layer rewrites the parameters and shapes the result on every call, which costs more
// CPU than the statement itself on these short queries (docs/decisions/001-plain-sql-on-the-hot-path.md).
//
// It needs two Sequelize internals, and only these (test/integration/models.test.ts pins them, so an upgrade that
// changes them fails loudly): `sequelize.connectionManager.getConnection({ type: 'write' })` / `releaseConnection(c)`,
// and `transaction.connection`, both a pg.Client on the postgres dialect.

export type Db = Sequelize;

interface ConnectionManager {
  getConnection(options: { type: 'write' }): Promise<pg.Client>;
  releaseConnection(connection: pg.Client): void;
}

/** The pg connection a Sequelize transaction runs on. */
export function connectionOf(t: Transaction): pg.Client {
  return (t as unknown as { connection: pg.Client }).connection;
}

/** Sequelize's pool of pg connections. */
export function connectionManager(db: Db): ConnectionManager {
  return db.connectionManager as unknown as ConnectionManager;
}

/** The domain's transactions on PostgreSQL: Sequelize transactions (READ COMMITTED). */
export function transactor(db: Db): Transactor {
  return { transaction: (work) => db.transaction((t) => work(t as unknown as Tx)) };
}

// Each distinct statement text gets a name, so each connection parses and plans it once (a prepared statement).
// The texts are this code's own, a few dozen: the map stays small.
const names = new Map<string, string>();

async function run(db: Db, tx: Tx | undefined, text: string, values: unknown[]): Promise<pg.QueryResult> {
  let name = names.get(text);
  if (!name) names.set(text, (name = `bindcard_${names.size}`));
  const statement = { name, text, values };
  if (tx) return connectionOf(tx as unknown as Transaction).query(statement);
  const pool = connectionManager(db);
  const connection = await pool.getConnection({ type: 'write' });
  try {
    return await connection.query(statement);
  } finally {
    pool.releaseConnection(connection);
  }
}

/** The statement's rows. */
export async function sql<T = Record<string, unknown>>(db: Db, tx: Tx | undefined, text: string, values: unknown[] = []): Promise<T[]> {
  return (await run(db, tx, text, values)).rows as T[];
}

/** How many rows the statement changed (UPDATE, DELETE). */
export async function execute(db: Db, tx: Tx | undefined, text: string, values: unknown[] = []): Promise<number> {
  return (await run(db, tx, text, values)).rowCount ?? 0;
}

import type pg from 'pg';
import type { Sequelize, Transaction } from 'sequelize';

interface Connections {
  getConnection(options: { type: 'write' }): Promise<pg.Client>;
  releaseConnection(connection: pg.Client): void;
}

// Each distinct statement text gets a name, so each connection parses and plans it once (a prepared statement).
// The texts are this code's own, a few dozen: the map stays small.
const names = new Map<string, string>();

/**
 * Runs one statement with bind parameters ($1, $2, …) on a connection of Sequelize's pool: the transaction's, or one
 * lent for the statement; results go through the pool's type parsers. The hot paths use this rather than
 * `sequelize.query`, which rewrites the parameters and shapes the result on every call: on this machine 290 µs of
 * CPU per statement against 110 µs for the same statement on the same connection. Sequelize still owns the pool, the
 * transactions and the migrations.
 */
async function run(db: Sequelize, t: Transaction | undefined, text: string, values: unknown[]): Promise<pg.QueryResult> {
  let name = names.get(text);
  if (!name) names.set(text, (name = `bindcard_${names.size}`));
  const statement = { name, text, values };
  if (t) return (t as unknown as { connection: pg.Client }).connection.query(statement);
  const pool = db.connectionManager as unknown as Connections;
  const connection = await pool.getConnection({ type: 'write' });
  try {
    return await connection.query(statement);
  } finally {
    pool.releaseConnection(connection);
  }
}

/** The statement's rows. */
export async function sql<T = Record<string, unknown>>(db: Sequelize, t: Transaction | undefined, text: string, values: unknown[] = []): Promise<T[]> {
  return (await run(db, t, text, values)).rows as T[];
}

/** How many rows the statement changed (UPDATE, DELETE). */
export async function execute(db: Sequelize, t: Transaction | undefined, text: string, values: unknown[] = []): Promise<number> {
  return (await run(db, t, text, values)).rowCount ?? 0;
}

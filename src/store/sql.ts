import type pg from 'pg';
import { Transaction as SequelizeTransaction, type Sequelize, type Transaction } from 'sequelize';
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

/**
 * How long a statement, or a whole transaction, may take before its connection counts as dead: a connection whose
 * server vanished without a word (a black-holed network, a failed-over host) never answers, and would hold its request
 * and its pool slot forever. Past it the connection is destroyed, its work fails with DatabaseTimeout, and the pool
 * replaces it. Far above what any statement here takes; requests have answered by their own deadline long before.
 */
export const STATEMENT_LIMIT_MS = 1_000;

/** A statement or transaction did not finish within STATEMENT_LIMIT_MS: its connection was destroyed. */
export class DatabaseTimeout extends Error {}

/** SQLSTATE read_only_sql_transaction: the server is not (or no longer, or not yet) the primary. */
export const READ_ONLY = '25006';

/** An error and the errors it wraps (Sequelize's parent and original, a cause), outermost first, at most five. */
export function errorChain(error: unknown): Record<string, unknown>[] {
  const chain: Record<string, unknown>[] = [];
  for (let e = error as Record<string, unknown> | undefined; e && chain.length < 5;) {
    chain.push(e);
    e = (e.parent ?? e.original ?? e.cause) as Record<string, unknown> | undefined;
  }
  return chain;
}

/** Whether a write failed because the server is read-only (pg's error, as Sequelize wraps it or not). */
function readOnly(error: unknown): boolean {
  return errorChain(error).some((e) => e.code === READ_ONLY);
}

/** Ends a connection at once: its pending queries fail, and Sequelize's error listener takes it out of the pool. */
export function destroy(connection: pg.Client | undefined): void {
  // not lent again meanwhile: the pool checks the mark, and pg reports the closed socket only later
  if (connection) (connection as unknown as { _invalid: boolean })._invalid = true;
  (connection as unknown as { connection?: { stream?: { destroy(): void } } } | undefined)?.connection?.stream?.destroy();
}

/** Destroys the pool's idle connections (a third Sequelize internal: sequelize-pool's `_availableObjects`). */
export function dropIdle(db: Db): void {
  const pool = (db.connectionManager as unknown as { pool?: { _availableObjects?: { resource: pg.Client }[] } }).pool;
  for (const idle of [...(pool?._availableObjects ?? [])]) destroy(idle.resource);
}

/**
 * Runs `work` on `connection`; past the limit the connection is destroyed and DatabaseTimeout thrown. The pool's idle
 * connections go too: they reach the same server over the same network, and a silent one would hold the next request
 * for the whole limit again, one connection after another, long after the database is back.
 */
async function limited<T>(db: Db, connection: () => pg.Client | undefined, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      destroy(connection());
      dropIdle(db);
      reject(new DatabaseTimeout(`no answer from the database within ${STATEMENT_LIMIT_MS} ms`));
    }, STATEMENT_LIMIT_MS);
  });
  work.catch(() => undefined); // settled after the timeout: nobody is waiting for it any more
  try {
    return await Promise.race([work, timedOut]);
  } catch (e) {
    // A failover left this connection on a read-only server (the old primary, or one not yet promoted); the pool's
    // idle ones reach the same server: new connections go where the database's address leads now. Sequelize's own
    // queries (channels, housekeeping, key rotation) do not pass here: a proxy that cuts a demoted node's sessions
    // (HAProxy's on-marked-down shutdown-sessions) ends theirs.
    if (readOnly(e)) {
      destroy(connection());
      dropIdle(db);
    }
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** The domain's transactions on PostgreSQL: Sequelize transactions (READ COMMITTED), each within STATEMENT_LIMIT_MS. */
export function transactor(db: Db): Transactor {
  return {
    transaction: (work) => {
      // Sequelize's managed transaction, by hand: its connection is known from the moment the pool lends it, so a
      // BEGIN that never returns (a silent server) is destroyed by the limit too, not left holding its connection
      const t = new SequelizeTransaction(db, {});
      const run = async () => {
        await (t as unknown as { prepareEnvironment(cls: boolean): Promise<void> }).prepareEnvironment(false);
        try {
          const result = await work(t as unknown as Tx);
          await t.commit();
          return result;
        } catch (e) {
          await t.rollback().catch(() => undefined);
          throw e;
        }
      };
      return limited(db, () => (t as unknown as { connection?: pg.Client }).connection, run());
    },
  };
}

// Each distinct statement text gets a name, so each connection parses and plans it once (a prepared statement).
// The texts are this code's own, a few dozen: the map stays small.
const names = new Map<string, string>();

async function run(db: Db, tx: Tx | undefined, text: string, values: unknown[]): Promise<pg.QueryResult> {
  let name = names.get(text);
  if (!name) names.set(text, (name = `bindcard_${names.size}`));
  const statement = { name, text, values };
  // in a transaction the transaction's own limit applies (transactor)
  if (tx) return connectionOf(tx as unknown as Transaction).query(statement);
  const pool = connectionManager(db);
  const connection = await pool.getConnection({ type: 'write' });
  try {
    return await limited(db, () => connection, connection.query(statement));
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

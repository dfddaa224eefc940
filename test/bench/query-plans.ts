// The plans of the hot statements, as PostgreSQL runs them on the benchmark's data (with --scale, over many cards).
import pg from 'pg';
import type { ScenarioSql } from './ceilings.ts';

/** EXPLAIN ANALYZE of each distinct recorded query, each in a transaction rolled back, so the data stays as it was. */
export async function explainHot(dbUrl: string, sql: ScenarioSql): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  const plans: Record<string, string> = {};
  try {
    const seen = new Set<string>();
    for (const sequence of [...sql.existing, ...sql.list, ...sql.replay, ...sql.newCardFlow]) {
      for (const statement of sequence) {
        if (!/^\s*(SELECT|UPDATE|INSERT|WITH)/i.test(statement.text) || seen.has(statement.text) || /pg_advisory/.test(statement.text))
          continue;
        seen.add(statement.text);
        await client.query('BEGIN');
        const explained = await client
          .query(`EXPLAIN ANALYZE ${statement.text}`, statement.values)
          .catch((error: Error) => ({ rows: [{ 'QUERY PLAN': `(${error.message})` }] }));
        await client.query('ROLLBACK');
        plans[statement.text.replace(/\s+/g, ' ').slice(0, 160)] = explained.rows
          .map((row: Record<string, string>) => row['QUERY PLAN'])
          .join('\n');
      }
    }
  } finally {
    await client.end();
  }
  return plans;
}

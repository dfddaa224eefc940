import { appendFileSync } from 'node:fs';
import pg from 'pg';

/**
 * Benchmark only (BENCH_RECORD_SQL=file): appends every statement the service sends, with its values, its name when
 * it is prepared, and its session's pool and options, one JSON line each, so the benchmark can replay a
 * scenario's exact SQL against the database alone.
 */
export function recordSql(file: string): void {
  const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const [first, second] = args;
    const text = typeof first === 'string' ? first : (first as { text?: string })?.text;
    const values = typeof first === 'string' ? (Array.isArray(second) ? second : undefined) : (first as { values?: unknown[] })?.values;
    // replayed on a session like this one: of the same pool, with the same options (synchronous_commit)
    const { application_name: pool, options } = (this as unknown as { connectionParameters: { application_name?: string; options?: string } }).connectionParameters;
    const name = typeof first === 'string' ? undefined : (first as { name?: string })?.name; // prepared, replayed prepared
    if (text) appendFileSync(file, JSON.stringify({ text, values, ...(name ? { name } : {}), pool, options }) + '\n');
    return original.apply(this, args);
  } as typeof pg.Client.prototype.query;
}

import { appendFileSync } from 'node:fs';
import pg from 'pg';

/**
 * Benchmark only (BENCH_RECORD_SQL=file): appends every statement the service sends, with its values, its name when
 * it is prepared and whether its session commits asynchronously, one JSON line each, so the benchmark can replay a
 * scenario's exact SQL against the database alone.
 */
export function recordSql(file: string): void {
  const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const [first, second] = args;
    const text = typeof first === 'string' ? first : (first as { text?: string })?.text;
    const values = typeof first === 'string' ? (Array.isArray(second) ? second : undefined) : (first as { values?: unknown[] })?.values;
    // statements sent on an asynchronous-commit session (see connect) are replayed on one
    const asyncCommit = /synchronous_commit=off/.test((this as unknown as { connectionParameters?: { options?: string } }).connectionParameters?.options ?? '');
    const name = typeof first === 'string' ? undefined : (first as { name?: string })?.name; // prepared, replayed prepared
    if (text) appendFileSync(file, JSON.stringify({ text, values, ...(name ? { name } : {}), ...(asyncCommit ? { asyncCommit } : {}) }) + '\n');
    return original.apply(this, args);
  } as typeof pg.Client.prototype.query;
}

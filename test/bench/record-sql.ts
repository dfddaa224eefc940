// Benchmark only, preloaded into the service's process (see startRecordingService in service.ts):
//   node --import tsx --import ./test/bench/record-sql.ts src/main.ts     with BENCH_RECORD_SQL=<file>
// Appends every statement the service sends, with its values, its name when it is prepared, and its session's pool
// and options, one JSON line each, so the benchmark can replay a scenario's exact SQL against the database alone.
import { appendFileSync } from 'node:fs';
import pg from 'pg';

export function recordSql(file: string): void {
  // the unpatched query, typed to run only with a client as `this` (as it does below)
  const original = Reflect.get(pg.Client.prototype, 'query') as (this: pg.Client, ...args: unknown[]) => unknown;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const [first, second] = args;
    const text = typeof first === 'string' ? first : (first as { text?: string })?.text;
    const values = typeof first === 'string' ? (Array.isArray(second) ? second : undefined) : (first as { values?: unknown[] })?.values;
    // replayed on a session like this one: of the same pool, with the same options (synchronous_commit)
    const { application_name: pool, options } = (
      this as unknown as { connectionParameters: { application_name?: string; options?: string } }
    ).connectionParameters;
    const name = typeof first === 'string' ? undefined : (first as { name?: string })?.name; // prepared, replayed prepared
    // written before the statement is sent, so a request's lines are all in the file once its answer arrives
    if (text) appendFileSync(file, JSON.stringify({ text, values, ...(name ? { name } : {}), pool, options }) + '\n');
    return original.apply(this, args);
  } as typeof pg.Client.prototype.query;
}

if (process.env.BENCH_RECORD_SQL) recordSql(process.env.BENCH_RECORD_SQL);

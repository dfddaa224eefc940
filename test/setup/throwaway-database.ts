// A database made for one run and dropped after it, for the tests, scripts/with-service.mjs, the benchmark and CI.
// On a server (DATABASE_URL): `CREATE DATABASE <prefix>_<8 hex digits>`, dropped WITH (FORCE), since a process that
// crashed may still hold connections. Without one: an in-memory embedded PostgreSQL (PGlite) on a loopback port.
//
// CI shares it from the shell (server only):
//   node --import tsx test/setup/throwaway-database.ts create <prefix>    prints the new database's URL
//   node --import tsx test/setup/throwaway-database.ts drop <url>         drops it
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { startEmbedded } from '../../src/store/embedded.ts';

export interface ThrowawayDatabase {
  url: string;
  embedded: boolean;
  drop(): Promise<void>;
}

export interface ThrowawayOptions {
  /** the new database's name is `<prefix>_<8 hex digits>` */
  prefix: string;
  /** the server to create it on; by default DATABASE_URL's */
  serverUrl?: string;
  /** without a server: how many connections the embedded database accepts; without both, a server is required */
  embeddedPool?: number;
}

// The names are spliced into SQL: a prefix of plain identifier characters, and `drop` takes only names this module
// makes, so a mistyped URL cannot drop a database that was not thrown away.
const PREFIX = /^[a-z][a-z0-9_]*$/;
const THROWAWAY_NAME = /^[a-z][a-z0-9_]*_[0-9a-f]{8}$/;

export async function createThrowawayDatabase({
  prefix,
  serverUrl = process.env.DATABASE_URL,
  embeddedPool,
}: ThrowawayOptions): Promise<ThrowawayDatabase> {
  if (serverUrl) return createOnServer(serverUrl, prefix);
  if (embeddedPool === undefined) throw new Error(`a throwaway database for ${prefix} needs a server: set DATABASE_URL`);
  const embedded = await startEmbedded(undefined, embeddedPool);
  return { url: embedded.url, embedded: true, drop: () => embedded.stop() };
}

async function createOnServer(serverUrl: string, prefix: string): Promise<ThrowawayDatabase> {
  if (!PREFIX.test(prefix)) throw new Error(`a database prefix is lower-case letters, digits and _, not ${JSON.stringify(prefix)}`);
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  await onServer(serverUrl, `CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), embedded: false, drop: () => onServer(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** Drops a database made by createThrowawayDatabase, given its URL, from its server's `postgres` database (as dropdb does). */
export async function dropThrowawayDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  if (!THROWAWAY_NAME.test(name)) throw new Error(`${name} is not a throwaway database's name (<prefix>_<8 hex digits>)`);
  url.pathname = '/postgres';
  await onServer(url.toString(), `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

async function onServer(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function cli(args: string[]): Promise<number> {
  const [command, argument] = args;
  if (command === 'create' && argument) {
    if (!process.env.DATABASE_URL) {
      console.error('throwaway-database: create needs DATABASE_URL, the server to create the database on');
      return 2;
    }
    console.log((await createThrowawayDatabase({ prefix: argument })).url);
    return 0;
  }
  if (command === 'drop' && argument) {
    await dropThrowawayDatabase(argument);
    return 0;
  }
  console.error(
    "usage: throwaway-database.ts create <prefix>   (on DATABASE_URL's server; prints the URL)\n" +
      '       throwaway-database.ts drop <url>',
  );
  return 2;
}

// no top-level await: mocha loads this file through require (test/setup/database.ts)
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  cli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: Error) => {
      console.error(`throwaway-database: ${error.message}`);
      process.exitCode = 1;
    },
  );
}

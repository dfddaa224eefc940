// `npm run callbacks -- list [--dead] [--channel C]` · `replay EVENT_ID` · `replay --channel C --since 2026-12-01T00:00:00Z`
// The callback outbox on DATABASE_URL: what is pending (or, with --dead, dead), and delivering events again (from the
// first try of the schedule).
import { loadConfig } from '../config.ts';
import { connect, migrate } from '../store/db.ts';
import { OutboxStore } from '../store/outbox-store.ts';

const USAGE = 'usage: npm run callbacks -- list [--dead] [--channel C] | replay EVENT_ID | replay --channel C --since 2026-12-01T00:00:00Z';

function option(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  if (at < 0) return undefined;
  const value = args[at + 1];
  if (!value || value.startsWith('--')) throw new Error(`${name} needs a value\n${USAGE}`);
  return value;
}

async function run(args: string[], print: (line: string) => void): Promise<void> {
  const config = loadConfig();
  if (!config.databaseUrl) throw new Error("DATABASE_URL is not set: the outbox lives in the service's PostgreSQL");
  const db = connect(config.databaseUrl, 1);
  try {
    await migrate(db, config.databaseUrl);
    const outbox = new OutboxStore(db);
    const [verb, first] = args;
    const channel = option(args, '--channel');
    if (verb === 'list') {
      const rows = await outbox.list({ dead: args.includes('--dead'), channel });
      print('id\tchannel\ttype\tstatus\ttries\tnext/done\tlast error\turl');
      for (const r of rows) {
        const when = (r.status === 'PENDING' ? r.next_at : r.done_at)?.toISOString();
        print(
          [
            r.id,
            r.channel,
            r.type,
            r.status,
            r.attempts,
            when,
            r.last_error ?? (r.last_status ? `HTTP ${r.last_status}` : '-'),
            r.url,
          ].join('\t'),
        );
      }
      print(`${rows.length} event(s)`);
    } else if (verb === 'replay' && first && !first.startsWith('--')) {
      const n = await outbox.replay({ id: first }, new Date());
      if (n === 0) throw new Error(`no event ${first}`);
      print(`event ${first} will be delivered again, from the first try`);
    } else if (verb === 'replay' && channel) {
      const sinceText = option(args, '--since');
      const since = new Date(sinceText ?? '');
      if (!sinceText || Number.isNaN(since.getTime())) throw new Error(`--since needs a time such as 2026-12-01T00:00:00Z\n${USAGE}`);
      const n = await outbox.replay({ channel, since }, new Date());
      print(`${n} event(s) of ${channel} since ${since.toISOString()} will be delivered again, from the first try`);
    } else {
      throw new Error(USAGE);
    }
  } finally {
    await db.close();
  }
}

run(process.argv.slice(2), (line) => console.log(line)).catch((e) => {
  console.error(`callbacks: ${e instanceof Error ? e.message : e}`);
  process.exit(2);
});

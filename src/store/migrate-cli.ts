// `npm run migrate [-- down]`: applies pending migrations (or reverts the last one) on DATABASE_URL.
import { connect, migrate, migrator } from './db.ts';

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('DATABASE_URL is not set');
  process.exit(2);
}
const db = connect(url, 1);
if (process.argv[2] === 'down') await migrator(db).down();
else await migrate(db, url);
console.log('applied:', (await migrator(db).executed()).map((m) => m.name).join(', ') || 'none');
await db.close();

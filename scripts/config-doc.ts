// `npm run docs:config`: writes the settings table of src/config.ts into docs/operations.md, between its markers.
// `npm run docs:config -- --check`: fails when the page and the table disagree (CI runs it).
import { readFileSync, writeFileSync } from 'node:fs';
import { settingsTable } from '../src/config.ts';

const PAGE = 'docs/operations.md';
const START = '<!-- config-table:start -->';
const END = '<!-- config-table:end -->';

const page = readFileSync(PAGE, 'utf8');
const from = page.indexOf(START);
const to = page.indexOf(END);
if (from < 0 || to < from) throw new Error(`${PAGE} lacks the markers ${START} … ${END}`);
const wanted = `${page.slice(0, from + START.length)}\n${settingsTable()}\n${page.slice(to)}`;
if (process.argv.includes('--check')) {
  if (wanted !== page) {
    console.error(`${PAGE}: the configuration table differs from src/config.ts; run npm run docs:config`);
    process.exit(1);
  }
  console.log(`${PAGE}: the configuration table matches src/config.ts`);
} else {
  writeFileSync(PAGE, wanted);
  console.log(`${PAGE}: configuration table written`);
}

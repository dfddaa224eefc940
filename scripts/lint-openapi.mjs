// Lints the document with Redocly's recommended rules and fails on any problem, warnings included.
import { execFileSync } from 'node:child_process';

let out;
try {
  out = execFileSync('npx', ['redocly', 'lint', 'openapi/openapi.yaml', '--format=json'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
} catch (e) {
  out = e.stdout;
}
const report = JSON.parse(out);
for (const p of report.problems) console.error(`${p.severity} ${p.ruleId}: ${p.message} (${p.location?.[0]?.pointer})`);
console.log(`openapi lint: ${report.totals.errors} errors, ${report.totals.warnings} warnings`);
process.exit(report.totals.errors + report.totals.warnings === 0 ? 0 : 1);

// `npm run test:contract`: Dredd 14 against the document. By default it starts the service on a fresh database
// (scripts/with-service.mjs) and stops it afterwards; with DREDD_BASE_URL it checks that running environment
// instead (the 500 cases need DREDD_DATABASE_URL, the database behind it, or they are skipped with the reason).
import { runCommand, withService } from '../../scripts/with-service.mjs';

const dredd = (url, dbUrl) => runCommand('npx', ['dredd', 'openapi/openapi.yaml', url, '--hookfiles=test/contract/hooks.cjs', '--loglevel=warning'],
  { BINDCARD_URL: url, ...(dbUrl ? { BINDCARD_DATABASE_URL: dbUrl } : {}) });

// One request at a time, so the 503 case can fill the service (Dredd itself sends one at a time).
process.env.MAX_INFLIGHT = process.env.MAX_INFLIGHT ?? '1';
const started = performance.now();
const code = process.env.DREDD_BASE_URL
  ? await dredd(process.env.DREDD_BASE_URL, process.env.DREDD_DATABASE_URL)
  : await withService(dredd);
console.log(`contract run: ${((performance.now() - started) / 1000).toFixed(1)} s, exit ${code}`);
process.exit(code);

// `npm run test:contract`: Dredd 14 against the document. By default it starts the service on a throwaway database
// with the test-only fault switch on (scripts/with-service.mjs) and stops it afterwards; with DREDD_BASE_URL it checks
// that running environment instead, where the 500, 503 and 429 cases run only if it has FAULTS=on and DREDD_FAULTS=on
// says so (otherwise they are skipped with the reason). The 200 cases of bindCard and unbindCard bind (and unbind) the
// seed card through the sandbox flow; test/contract/hooks.cjs says what each case writes.
import { runCommand, withService } from '../../scripts/with-service.mjs';

const dredd = (url, faults) =>
  runCommand('npx', ['dredd', 'openapi/openapi.yaml', url, '--hookfiles=test/contract/hooks.cjs', '--loglevel=warning'], {
    BINDCARD_URL: url,
    DREDD_FAULTS: faults,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=tsx`.trim(),
  });

const started = performance.now();
let code;
if (process.env.DREDD_BASE_URL) {
  code = await dredd(process.env.DREDD_BASE_URL, process.env.DREDD_FAULTS ?? 'off');
} else {
  process.env.FAULTS = 'on';
  code = await withService((url) => dredd(url, 'on'));
}
console.log(`contract run: ${((performance.now() - started) / 1000).toFixed(1)} s, exit ${code}`);
process.exit(code);

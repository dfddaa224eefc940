import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import yaml from 'js-yaml';
import { chromium } from 'playwright-core';
import { loadConfig } from '../../src/config.ts';
import { DOCUMENT_PATH, loadDocument } from '../../src/http/api.ts';
import { REFERENCE_PATH } from '../../src/http/reference.ts';
import { startService, type Service } from '../setup/service.ts';

/** Debian's chromium, installed by .ci/browser.sh; these flags keep it off the network it would otherwise call home on. */
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Outside git, so a run leaves the tree clean. */
const SCREENSHOT = join(tmpdir(), 'bindcard-docs.png');
const OPERATIONS = ['bindCard', 'bankCardList', 'queryBinding', 'unbindCard'];

/** An operation's summary, which Redoc shows as its link in the sidebar and its heading. */
function summaryOf(operationId: string): string {
  for (const item of Object.values(loadDocument().paths ?? {})) {
    const op = item?.post ?? item?.get;
    if (op?.operationId === operationId && op.summary) return op.summary;
  }
  throw new Error(`no operation ${operationId} with a summary in the document`);
}

describe('API reference: /docs, /openapi.yaml and /openapi.json', () => {
  let svc: Service;
  before(async () => {
    svc = await startService();
  });
  after(() => svc.stop());

  it('serves the document as its own bytes in YAML, and as the same object in JSON', async () => {
    const asYaml = await fetch(`${svc.url}/openapi.yaml`);
    expect(asYaml.status).to.equal(200);
    expect(asYaml.headers.get('content-type')).to.match(/^application\/yaml/);
    const bytes = Buffer.from(await asYaml.arrayBuffer());
    expect(bytes.equals(readFileSync(DOCUMENT_PATH)), 'the bytes of openapi/openapi.yaml').to.equal(true);

    const asJson = await fetch(`${svc.url}/openapi.json`);
    expect(asJson.status).to.equal(200);
    expect(asJson.headers.get('content-type')).to.match(/^application\/json/);
    expect(await asJson.json()).to.deep.equal(yaml.load(bytes.toString('utf8')));
  });

  it('serves the reference page made by make generate as HTML', async () => {
    const res = await fetch(`${svc.url}/docs`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/html/);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.equals(readFileSync(REFERENCE_PATH)), 'the bytes of generated/reference.html').to.equal(true);
  });

  it('answers 404 in the documented error body for all three with DOCS=off', async () => {
    const off = await startService({ DOCS: 'off' });
    try {
      for (const path of ['/docs', '/openapi.yaml', '/openapi.json']) {
        // request() also checks the body against the document's error shape
        const a = await off.request('GET', path);
        expect([path, a.status, a.body.code]).to.deep.equal([path, 404, 404]);
      }
    } finally {
      await off.stop();
    }
  });

  it('is on with the sandbox, and off in production unless DOCS=on', () => {
    const production = {
      NODE_ENV: 'production',
      DATA_KEYS: `k1:${Buffer.alloc(32, 1).toString('base64')}`,
      HASH_KEY: Buffer.alloc(32, 2).toString('base64'),
      CARD_AUTH_URL: 'https://auth.example.com',
      CARD_AUTH_SECRET: 's'.repeat(16),
      SMS_URL: 'https://sms.example.com',
      SMS_SECRET: 't'.repeat(16),
    };
    expect(loadConfig({}).docs).to.equal(true);
    expect(loadConfig(production).docs).to.equal(false);
    expect(loadConfig({ ...production, DOCS: 'on' }).docs).to.equal(true);
  });

  it('renders the operations, the result codes and signing in headless Chromium, fetching nothing from another host', async function () {
    this.timeout(60_000);
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run .ci/browser.sh (CI does) to install Debian's chromium`);
    const profile = mkdtempSync(join(tmpdir(), 'bindcard-chromium-'));
    const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
    try {
      // every request bound for the network passes here: anything not for this service is refused and remembered
      const outside: string[] = [];
      await browser.route(
        (url) => url.origin !== svc.url,
        (route) => {
          outside.push(route.request().url());
          return route.abort();
        },
      );
      const page = browser.pages()[0] ?? (await browser.newPage());
      page.setDefaultTimeout(20_000);
      await page.goto(`${svc.url}/docs`);

      // the overview: the result-code table from info.description and the signing section
      for (const code of ['501', '502', '505', '801']) await page.getByRole('cell', { name: code, exact: true }).waitFor();
      await page.getByRole('heading', { name: '签名 / Signing' }).waitFor();

      // each operation, opened from the sidebar as a reader would; the picture is of the overview and the first one
      await page.getByRole('link', { name: 'binding', exact: true }).click();
      for (const operationId of OPERATIONS) {
        const summary = summaryOf(operationId);
        await page.getByRole('link', { name: summary }).click();
        await page.getByRole('heading', { name: summary }).waitFor();
        if (operationId === OPERATIONS[0]) await page.screenshot({ path: SCREENSHOT, fullPage: true });
      }
      console.log(`      screenshot: ${SCREENSHOT}`);

      // the signature scheme the signing section points to, with its header
      await page.getByRole('button', { name: 'View security details' }).first().click();
      await page.getByText(/X-Signature = lowercase hex HMAC-SHA256/).waitFor();

      expect(outside, 'requests to other hosts').to.deep.equal([]);
    } finally {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    }
  });
});

import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { expect } from 'chai';
import { Metrics } from '../../src/ops/metrics.ts';
import { HttpCardAuthenticator } from '../../src/providers/http-providers.ts';
import { FakeGateway } from '../fakes/fake-gateway.ts';
import { embeddedRun, resetDb, testDatabaseUrl } from '../setup/database.ts';
import { startListening } from '../setup/service-process.ts';
import { bindNewCard, seedNewCard, startService } from '../setup/service.ts';

// Operations: what the metrics count, request ids, and the admin listener of the real process.

/** The value of each sample of a metric in Prometheus text, by its label set as written. */
function samples(text: string, metric: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${metric}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (m) found.set(m[1] ?? '', Number(m[2]));
  }
  return found;
}

/** The real entry point as its own process on the run's database. */
const spawnService = (env: Record<string, string>) =>
  startListening('src/main.ts', {
    DATABASE_URL: testDatabaseUrl(),
    PORT: '0',
    ADMIN_PORT: '0',
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    ...env,
  });

async function stopProcess(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null) return proc.exitCode;
  proc.kill('SIGTERM');
  const [code] = (await once(proc, 'exit')) as [number | null];
  return code;
}

describe('operations: metrics, request ids, the admin listener', () => {
  beforeEach(resetDb);

  it('counts every request by operation, status, code and sub_code, and every gateway call, as sent', async () => {
    const metrics = new Metrics();
    const svc = await startService({}, { metrics });
    try {
      const card = seedNewCard({ user_id: 'walker' });
      const bound = await bindNewCard(svc, card); // first call, sandbox phone, confirmation
      await svc.list('walker');
      await svc.query({ user_id: 'walker', card_id: bound.body.data.card_id });
      await svc.unbind({ user_id: 'walker', card_id: bound.body.data.card_id });
      await svc.bind(seedNewCard({ user_id: 'walker', open_bank: 'ABC' })); // 501 BIN_BANK_MISMATCH
      await svc.bind({ user_id: 'walker' }); // 400
      await svc.request('POST', '/demochannel/bindCard?r_c=DEMO', card, { 'x-signature': '0'.repeat(64) }); // 401
      await svc.request('GET', '/nothing/here'); // 404, no operation
      const text = await metrics.registry.metrics();
      expect(Object.fromEntries(samples(text, 'bindcard_requests_total'))).to.deep.equal({
        '{operation="bindCard",status="200",code="200",sub_code=""}': 2,
        '{operation="bindCard",status="200",code="501",sub_code="BIN_BANK_MISMATCH"}': 1,
        '{operation="bindCard",status="400",code="400",sub_code=""}': 1,
        '{operation="bindCard",status="401",code="401",sub_code=""}': 1,
        '{operation="sandboxSms",status="200",code="",sub_code=""}': 1,
        '{operation="bankCardList",status="200",code="200",sub_code=""}': 1,
        '{operation="queryBinding",status="200",code="200",sub_code=""}': 1,
        '{operation="unbindCard",status="200",code="200",sub_code=""}': 1,
        '{operation="other",status="404",code="404",sub_code=""}': 1,
      });
      expect(samples(text, 'bindcard_request_duration_seconds_count').get('{operation="bindCard"}')).to.equal(5);
      expect(Object.fromEntries(samples(text, 'bindcard_gateway_calls_total'))).to.deep.equal({
        '{gateway="card_auth",call="verify",outcome="ok"}': 1,
        '{gateway="card_auth",call="sign",outcome="ok"}': 1,
        '{gateway="card_auth",call="unsign",outcome="ok"}': 1,
        '{gateway="sms",call="send",outcome="ok"}': 1,
      });
      expect(text).to.match(/^bindcard_admission_inflight 0$/m);
      expect(text).to.match(/^nodejs_eventloop_lag_seconds /m); // Node's default metrics
    } finally {
      await svc.stop();
    }
  });

  it('counts codes refused by an SMS limit, by limit', async () => {
    const metrics = new Metrics();
    const svc = await startService({ SMS_PER_MOBILE_HOUR: '1' }, { metrics });
    try {
      await svc.bind(seedNewCard({ user_id: 'a' }));
      const refused = await svc.bind(seedNewCard({ user_id: 'b', bank_card: '6222020000000002222' }));
      expect(refused.body.data.sub_code).to.equal('SMS_RATE_LIMITED');
      expect(samples(await metrics.registry.metrics(), 'bindcard_sms_refused_total').get('{limit="mobile_hour"}')).to.equal(1);
    } finally {
      await svc.stop();
    }
  });

  it("keeps a caller's X-Request-Id (else makes one), puts it on every log line of the request and sends it to the gateway", async () => {
    const fake = await new FakeGateway().start();
    fake.script('/v1/card-auth/verify', () => ({ status: 500, body: {} }));
    const svc = await startService(
      {},
      { auth: new HttpCardAuthenticator({ url: fake.url, clientId: fake.clientId, secret: fake.secret }) },
    );
    try {
      const failed = await svc.request('POST', '/demochannel/bindCard?r_c=DEMO', seedNewCard(), { 'x-request-id': 'partner-req.42_A' });
      expect(failed.body.data.sub_code).to.equal('PROVIDER_ERROR');
      expect(failed.headers.get('x-request-id')).to.equal('partner-req.42_A');
      expect(fake.calls[0].headers['x-request-id']).to.equal('partner-req.42_A');
      const lines = svc.logs.map((l) => JSON.parse(l) as { req_id?: string; msg: string });
      const mine = lines.filter((l) => l.req_id === 'partner-req.42_A').map((l) => l.msg);
      expect(mine).to.include.members(['provider call failed', 'request']);
      for (const bad of ['has space', 'x'.repeat(65), '']) {
        const made = await svc.request('GET', '/sandbox/sms?mobile=13420504517', undefined, bad ? { 'x-request-id': bad } : {});
        expect(made.headers.get('x-request-id'), bad).to.match(/^[0-9a-f-]{36}$/);
      }
    } finally {
      await svc.stop();
      await fake.stop();
    }
  });

  it('serves /healthz, /readyz and /metrics on the admin port only, never on the partner port', async function () {
    if (embeddedRun) return this.skip(); // a process of its own needs a database server
    this.timeout(30_000);
    const { url, admin, proc } = await spawnService({});
    try {
      expect(await (await fetch(`${admin}/healthz`)).json()).to.deep.equal({ status: 'ok' });
      const ready = await fetch(`${admin}/readyz`);
      expect(ready.status).to.equal(200);
      expect(((await ready.json()) as { checks: { name: string; ok: boolean }[] }).checks.map((c) => [c.name, c.ok])).to.deep.equal([
        ['database', true],
        ['migrations', true],
        ['shutdown', true],
      ]);
      await fetch(`${url}/sandbox/sms?mobile=13420504517`);
      const scrape = await fetch(`${admin}/metrics`);
      expect(scrape.headers.get('content-type')).to.match(/^text\/plain/);
      expect(
        samples(await scrape.text(), 'bindcard_requests_total').get('{operation="sandboxSms",status="200",code="",sub_code=""}'),
      ).to.equal(1);
      for (const path of ['/healthz', '/readyz', '/metrics']) expect((await fetch(url + path)).status, path).to.equal(404);
    } finally {
      expect(await stopProcess(proc)).to.equal(0);
    }
  });

  it('with WORKERS=2, one scrape of the primary covers every worker', async function () {
    if (embeddedRun) return this.skip(); // WORKERS > 1 needs a database server
    this.timeout(40_000);
    const { url, admin, proc } = await spawnService({ WORKERS: '2', DB_POOL_MAX: '4' });
    try {
      // new connections each: the kernel spreads them over both workers
      const sent = 40;
      await Promise.all(
        Array.from({ length: sent }, () => fetch(`${url}/sandbox/sms?mobile=13420504517`, { headers: { connection: 'close' } })),
      );
      const text = await (await fetch(`${admin}/metrics`)).text();
      expect(samples(text, 'bindcard_requests_total').get('{operation="sandboxSms",status="200",code="",sub_code=""}')).to.equal(sent);
      expect(((await (await fetch(`${admin}/readyz`)).json()) as { status: string }).status).to.equal('ready');
    } finally {
      expect(await stopProcess(proc)).to.equal(0);
    }
  });
});

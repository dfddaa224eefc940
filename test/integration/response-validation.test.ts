import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import Koa from 'koa';
import { expect } from 'chai';
import { loadConfig } from '../../src/config.ts';
import { createApi } from '../../src/http/api.ts';
import type { Handlers } from '../../src/http/handlers.ts';
import { createHttpServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/log.ts';
import { vaultFor } from '../../src/crypto/vault.ts';
import { signedHeaders } from '../../src/sdk/sign.ts';
import { ChannelStore } from '../../src/store/channel-store.ts';
import { NonceStore } from '../../src/store/nonce-store.ts';
import { resetDb, testDb } from '../setup/database.ts';
import { seedNewCard, type WireBody } from '../setup/service.ts';

/** The API layer over a service that answers outside the document, to see what the response check does. */
async function serve(env: Record<string, string>) {
  const logs: string[] = [];
  const config = loadConfig(env);
  const log = createLogger(
    'info',
    new Writable({
      write(c, _e, cb) {
        logs.push(String(c));
        cb();
      },
    }),
  );
  const broken = {
    bindCard: async () => ({ status: 200, body: { code: 200, message: 'success', data: { status: 'MAYBE' } } }),
  } as unknown as Handlers;
  const channels = new ChannelStore(testDb(), vaultFor(config), config.sandbox);
  const [code, secret] = config.sandbox ? ['DEMO', 'demo-secret'] : ['ACME', await channels.add('ACME')];
  const handle = await createApi({ config, log, nonces: new NonceStore(testDb()), channels, handlers: broken });
  const app = new Koa();
  app.use(async (ctx) => {
    const reply = await handle(ctx, Date.now() + config.requestDeadlineMs);
    ctx.status = reply.status;
    ctx.body = reply.body;
  });
  const server = createHttpServer(app, config).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const path = `/${code.toLowerCase()}channel/bindCard?r_c=${code}`;
  const post = async () => {
    const body = JSON.stringify(seedNewCard());
    const headers = { 'content-type': 'application/json', ...signedHeaders(code, secret, 'POST', path, body) };
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`, { method: 'POST', headers, body });
    return { status: res.status, body: (await res.json()) as WireBody };
  };
  return { post, logs, close: () => server.close() };
}

describe('responses are checked against the document outside production', () => {
  beforeEach(resetDb);
  it('turns an answer the document does not allow into a loud 500 in development and test', async () => {
    const s = await serve({ NODE_ENV: 'test' });
    try {
      const a = await s.post();
      expect(a).to.deep.equal({ status: 500, body: { code: 500, message: '系统内部错误' } });
      expect(s.logs.join('')).to.contain('response does not match the document');
    } finally {
      s.close();
    }
  });

  it('skips the check in production', async () => {
    const key = Buffer.alloc(32, 1).toString('base64');
    const gateways = {
      CARD_AUTH_URL: 'https://auth.invalid',
      CARD_AUTH_SECRET: 'never-called-0123',
      SMS_URL: 'https://sms.invalid',
      SMS_SECRET: 'never-called-0123',
    };
    const s = await serve({ NODE_ENV: 'production', DATA_KEYS: `k1:${key}`, HASH_KEY: key, ...gateways });
    try {
      expect((await s.post()).body.data.status).to.equal('MAYBE');
    } finally {
      s.close();
    }
  });
});

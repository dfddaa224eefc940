import { expect } from 'chai';
import { loadConfig, ConfigError } from '../../src/config.ts';
import { clockOf, faultsOf } from '../../src/faults.ts';
import { Vault } from '../../src/crypto/vault.ts';
import { ProviderTimeout, ProviderError, withDeadline } from '../../src/providers/provider-types.ts';

const k = (b: number) => Buffer.alloc(32, b);

describe('vault', () => {
  const vault = new Vault(
    new Map([
      ['a', k(1)],
      ['b', k(2)],
    ]),
    'b',
    k(3),
  );

  it('round-trips under the key id it names and refuses a tampered value', () => {
    const enc = vault.encrypt('6222022005001212723');
    expect(enc).not.to.contain('6222');
    expect(vault.decrypt(enc, 'b')).to.equal('6222022005001212723');
    expect(() => vault.decrypt(enc, 'a')).to.throw();
    const [iv, tag, ct] = enc.split('.');
    const flipped = Buffer.from(ct, 'base64');
    flipped[0] ^= 1;
    expect(() => vault.decrypt([iv, tag, flipped.toString('base64')].join('.'), 'b')).to.throw();
  });

  it('hashes by purpose and verifies signatures', () => {
    expect(vault.hash('card', 'x')).not.to.equal(vault.hash('mobile', 'x'));
    const sig = vault.sign('extra_info', 'DEMO|u|card_1');
    expect(vault.verify('extra_info', 'DEMO|u|card_1', sig)).to.equal(true);
    expect(vault.verify('extra_info', 'DEMO|v|card_1', sig)).to.equal(false);
  });
});

describe('config', () => {
  const fails = (env: Record<string, string>, text: string) => {
    expect(() => loadConfig(env)).to.throw(ConfigError, text);
  };

  it('turns the sandbox on outside production', () => {
    const c = loadConfig({});
    expect(c.sandbox).to.equal(true);
    expect(c.port).to.equal(8080);
    expect(c.tls).to.equal(undefined);
  });

  it('refuses to start production with the sandbox on or without keys', () => {
    const keys = { DATA_KEYS: `k1:${k(1).toString('base64')}`, HASH_KEY: k(2).toString('base64') };
    fails({ NODE_ENV: 'production', SANDBOX: 'true', ...keys }, 'SANDBOX');
    fails({ NODE_ENV: 'production' }, 'HASH_KEY');
    fails({ NODE_ENV: 'production', HASH_KEY: k(2).toString('base64') }, 'DATA_KEYS');
    const gateways = {
      CARD_AUTH_URL: 'https://auth.example.com/base/',
      CARD_AUTH_SECRET: 's'.repeat(16),
      SMS_URL: 'https://sms.example.com',
      SMS_SECRET: 't'.repeat(16),
    };
    const c = loadConfig({ NODE_ENV: 'production', ...keys, ...gateways });
    expect(c.sandbox).to.equal(false);
    expect(c.cardAuthGateway).to.deep.equal({ url: 'https://auth.example.com/base/', clientId: 'BINDCARD', secret: 's'.repeat(16) });
  });

  it('needs both gateways with the sandbox off, https in production, and a secret with each URL', () => {
    const keys = { DATA_KEYS: `k1:${k(1).toString('base64')}`, HASH_KEY: k(2).toString('base64') };
    const auth = { CARD_AUTH_URL: 'https://auth.example.com', CARD_AUTH_SECRET: 's'.repeat(16) };
    fails({ NODE_ENV: 'production', ...keys }, 'CARD_AUTH_URL is required with the sandbox off');
    fails({ NODE_ENV: 'production', ...keys, ...auth }, 'SMS_URL is required with the sandbox off');
    fails(
      { NODE_ENV: 'production', ...keys, ...auth, SMS_URL: 'http://sms.example.com', SMS_SECRET: 't'.repeat(16) },
      'SMS_URL must be https in production',
    );
    fails({ SMS_URL: 'ftp://sms.example.com', SMS_SECRET: 't'.repeat(16) }, 'SMS_URL must be an http(s) URL');
    fails({ SMS_URL: 'not a url' }, 'SMS_URL must be an http(s) URL');
    fails({ SMS_URL: 'http://127.0.0.1:9000' }, 'SMS_SECRET is required with SMS_URL');
    fails({ ...auth, CARD_AUTH_CLIENT_ID: 'lower' }, 'CARD_AUTH_CLIENT_ID');
    // with the sandbox on they are optional: unset means the sandbox's
    expect(loadConfig({}).smsGateway).to.equal(undefined);
    expect(loadConfig({ SMS_URL: 'http://127.0.0.1:9000', SMS_SECRET: 't'.repeat(16) }).smsGateway?.url).to.equal('http://127.0.0.1:9000/');
  });

  it('refuses the test-only fault switch in production; off it ignores the headers, on it allows no crash and no clock', () => {
    const keys = { DATA_KEYS: `k1:${k(1).toString('base64')}`, HASH_KEY: k(2).toString('base64') };
    fails({ NODE_ENV: 'production', FAULTS: 'on', ...keys }, 'FAULTS cannot be on with NODE_ENV=production');
    fails({ NODE_ENV: 'production', FAULTS: 'chaos', ...keys }, 'FAULTS cannot be on with NODE_ENV=production');
    fails({ FAULTS: 'yes' }, 'FAULTS');
    expect(loadConfig({}).faults).to.equal('off');
    const headers = {
      'x-bindcard-fault': 'overload, internal-error,no-such-point,crash-after-sign',
      'x-bindcard-clock': '1800000000000',
    };
    expect([...faultsOf('off', headers)]).to.deep.equal([]);
    expect([...faultsOf('on', headers)]).to.deep.equal(['overload', 'internal-error']);
    expect([...faultsOf('chaos', headers)]).to.deep.equal(['overload', 'internal-error', 'crash-after-sign']);
    expect([clockOf('off', headers), clockOf('on', headers), clockOf('chaos', headers)]).to.deep.equal([
      undefined,
      undefined,
      1_800_000_000_000,
    ]);
  });

  it('names the setting that is wrong', () => {
    fails({ PORT: 'eighty' }, 'PORT');
    fails({ CODE_TTL_SECONDS: '5' }, 'CODE_TTL_SECONDS');
    fails({ RATE_LIMIT_PER_SECOND: '0' }, 'RATE_LIMIT_PER_SECOND');
    fails({ TLS_CERT_FILE: '/nonexistent.pem' }, 'TLS_KEY_FILE');
    fails({ TLS_CERT_FILE: '/nonexistent.pem', TLS_KEY_FILE: '/nonexistent.key' }, 'TLS_CERT_FILE: cannot read');
    fails({ DATA_KEYS: 'k1:short' }, 'DATA_KEYS');
    fails({ DATA_KEYS: `k1:${k(1).toString('base64')}`, DATA_KEY_ID: 'k9' }, 'DATA_KEY_ID');
    fails({ LOG_LEVEL: 'loud' }, 'LOG_LEVEL');
  });
});

describe('provider deadline', () => {
  it('aborts a call that outlives its deadline', async () => {
    let aborted = false;
    const started = Date.now();
    const err = await withDeadline(
      50,
      (signal) =>
        new Promise((resolve) => {
          signal.addEventListener('abort', () => {
            aborted = true;
          });
          setTimeout(resolve, 1000);
        }),
    ).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ProviderTimeout);
    expect(aborted).to.equal(true);
    expect(Date.now() - started).to.be.below(500);
  });

  it('turns any other failure into a ProviderError', async () => {
    const err = await withDeadline(100, async () => {
      throw new TypeError('socket hang up');
    }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ProviderError);
  });
});

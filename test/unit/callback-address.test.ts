import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { isInternal, postCallback } from '../../src/callbacks/post.ts';
import { DEMO, notifyUrlProblem } from '../../src/domain/channel.ts';

// Where a callback may go: the address rules when a request names it, and the ranges refused when it is delivered.

describe('callback addresses', () => {
  const acme = { code: 'ACME', callbackHosts: ['hooks.acme.example', '203.0.113.7'] };

  it('takes https to a registered host on any port, and nothing else', () => {
    for (const ok of ['https://hooks.acme.example/x', 'https://HOOKS.acme.example:8443/a?b=1', 'https://203.0.113.7/cb']) {
      expect(notifyUrlProblem(ok, acme), ok).to.equal(undefined);
    }
    for (const bad of [
      'http://hooks.acme.example/x',
      'https://hooks.acme.example.evil.example/',
      'https://evil.example/?hooks.acme.example',
      'https://user@hooks.acme.example/',
      'ftp://hooks.acme.example/',
      '/relative',
    ]) {
      expect(notifyUrlProblem(bad, acme), bad).to.be.a('string');
    }
  });

  it('lets the sandbox channel use loopback over http, and no one else', () => {
    expect(notifyUrlProblem('http://127.0.0.1:9000/cb', DEMO)).to.equal(undefined);
    expect(notifyUrlProblem('http://[::1]:9000/cb', DEMO)).to.equal(undefined);
    expect(notifyUrlProblem('http://localhost/cb', DEMO)).to.equal(undefined);
    expect(notifyUrlProblem('http://10.0.0.1/cb', DEMO)).to.be.a('string');
    expect(notifyUrlProblem('http://127.0.0.1:9000/cb', acme)).to.be.a('string');
  });

  it('refuses private, loopback, link-local and other non-public addresses at delivery', () => {
    const internal = ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::'];
    const more = [
      'fd00::1',
      'fe80::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::7f00:1',
      '64:ff9b::a9fe:a9fe',
      '224.0.0.1',
      '255.255.255.255',
    ];
    for (const address of [...internal, ...more]) expect(isInternal(address), address).to.equal(true);
    for (const address of ['203.0.113.7', '8.8.8.8', '2001:4860:4860::8888', '::ffff:8.8.8.8']) {
      expect(isInternal(address), address).to.equal(false);
    }
  });

  it('leaves nothing behind after a try to an IP address: the time limit firing later is no error', async () => {
    const partner = createServer((_req, res) => res.writeHead(204).end()).listen(0, '127.0.0.1');
    await once(partner, 'listening');
    const unhandled: unknown[] = [];
    const note = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', note);
    try {
      const url = `http://127.0.0.1:${(partner.address() as AddressInfo).port}/events`;
      expect(await postCallback(url, '{}', {}, { timeoutMs: 100, refuseInternal: false })).to.deep.equal({
        status: 204,
        body: '',
        error: null,
      });
      await sleep(300); // past the try's time limit
      expect(unhandled).to.deep.equal([]);
    } finally {
      process.off('unhandledRejection', note);
      partner.close();
    }
  });
});

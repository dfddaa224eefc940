import { once } from 'node:events';
import net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of the test's PostgreSQL, to take the database away from a service without
 * stopping the machine's server:
 * - pass: bytes go both ways;
 * - cut(): the database host is gone: every open connection is reset and the port refuses new ones (ECONNREFUSED);
 * - blackhole(): a network partition: open connections stay open but nothing gets through either way, and new ones
 *   are accepted and never answered;
 * - restore(): new connections pass again; those that were black-holed stay dead, as after a partition (their peers
 *   have given up on them).
 */
export class TcpProxy {
  private readonly listener: net.Server;
  private readonly pairs = new Set<Pair>();
  private mode: 'pass' | 'cut' | 'blackhole' = 'pass';
  /** connections accepted, by the mode they were accepted in */
  readonly accepted = { pass: 0, blackhole: 0 };
  port = 0;

  private constructor(private readonly upstream: URL) {
    // half-open allowed: a black-holed connection's FIN gets no FIN back (its peer hears nothing), a live one's is passed on
    this.listener = net.createServer({ allowHalfOpen: true }, (client) => this.accept(client));
  }

  /** Starts a proxy to the server of `databaseUrl` (a postgres:// URL). */
  static async start(databaseUrl: string): Promise<TcpProxy> {
    const proxy = new TcpProxy(new URL(databaseUrl));
    await proxy.listen();
    return proxy;
  }

  /** `databaseUrl` (by default the one given to start) with the proxy as its host: same user, password and database. */
  url(databaseUrl: string = this.upstream.toString()): string {
    const url = new URL(databaseUrl);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  /** The database host is gone: open connections are reset, new ones refused. */
  async cut(): Promise<void> {
    this.mode = 'cut';
    for (const pair of this.pairs) this.drop(pair, true);
    if (this.listener.listening) await new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }

  /** A partition: nothing gets through any open connection any more, and new ones are accepted and never answered. */
  blackhole(): void {
    this.mode = 'blackhole';
    for (const pair of this.pairs) pair.dead = true;
  }

  /** The database is back for new connections; black-holed ones stay dead. */
  async restore(): Promise<void> {
    this.mode = 'pass';
    if (!this.listener.listening) await this.listen();
  }

  /** Closes the proxy and every connection through it. */
  async close(): Promise<void> {
    await this.cut();
  }

  private async listen(): Promise<void> {
    this.listener.listen(this.port, '127.0.0.1');
    await once(this.listener, 'listening');
    this.port = (this.listener.address() as net.AddressInfo).port;
  }

  private accept(client: net.Socket): void {
    if (this.mode === 'cut') return void client.resetAndDestroy(); // closed between cut() and the listener's close
    const pair: Pair = { client, dead: this.mode === 'blackhole' };
    this.pairs.add(pair);
    client.on('error', () => this.drop(pair, false));
    client.on('close', () => this.drop(pair, false));
    if (pair.dead) {
      this.accepted.blackhole++;
      client.on('data', () => undefined); // read and thrown away: the peer's packets go nowhere
      return;
    }
    this.accepted.pass++;
    const server = net.connect({ host: this.upstream.hostname, port: Number(this.upstream.port || 5432), allowHalfOpen: true });
    pair.server = server;
    server.on('error', () => this.drop(pair, false));
    server.on('close', () => this.drop(pair, false));
    client.on('data', (chunk: Buffer) => {
      if (!pair.dead) server.write(chunk);
    });
    server.on('data', (chunk: Buffer) => {
      if (!pair.dead) client.write(chunk);
    });
    client.on('end', () => {
      if (!pair.dead) server.end();
    });
    server.on('end', () => {
      if (!pair.dead) client.end();
    });
  }

  /**
   * Ends a connection. A reset one (cut) ends both sides at once. Otherwise one side closed or failed: a live pair
   * passes that on to the other side; a black-holed one only lets its server side go (its client hears nothing).
   */
  private drop(pair: Pair, reset: boolean): void {
    if (reset) {
      this.pairs.delete(pair);
      if (!pair.client.destroyed) pair.client.resetAndDestroy();
      pair.server?.destroy();
      return;
    }
    if (pair.dead && !pair.client.destroyed) {
      // the database's side gave up: the client is left waiting, as in a partition
      pair.server?.destroy();
      return;
    }
    this.pairs.delete(pair);
    pair.client.destroy();
    pair.server?.destroy();
  }
}

interface Pair {
  client: net.Socket;
  server?: net.Socket;
  /** black-holed: nothing passes any more, either way */
  dead: boolean;
}

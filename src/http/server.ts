import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Config } from '../config.ts';
import type Koa from 'koa';
import { statusText } from './replies.ts';

/** An HTTP server for the app whose own errors (bad requests, timeouts, huge headers) use the documented body too. */
export function createHttpServer(app: Koa, config: Pick<Config, 'tls' | 'requestTimeoutMs' | 'headersTimeoutMs'>): Server {
  // Slow or huge requests cannot tie it up: 8 KiB of headers, a few seconds to send headers and body.
  const limits = {
    maxHeaderSize: 8 * 1024,
    requestTimeout: config.requestTimeoutMs,
    headersTimeout: Math.min(config.headersTimeoutMs, config.requestTimeoutMs),
    connectionsCheckingInterval: Math.min(1000, config.requestTimeoutMs / 2),
  };
  const handle = app.callback();
  const listener = (req: IncomingMessage, res: ServerResponse) => void handle(req, res);
  const server = config.tls
    ? createTlsServer({ ...limits, cert: config.tls.cert, key: config.tls.key, minVersion: 'TLSv1.2' }, listener)
    : createServer(limits, listener);
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const body = JSON.stringify({ code: status, message: statusText(status) });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}

import { createServer, type Server } from 'node:http';
import type { Readiness } from './readiness.ts';

export interface AdminDeps {
  readiness: Readiness;
  /** the Prometheus text of this process, or of every worker of a cluster */
  metrics: () => Promise<{ text: string; type: string }>;
  /** told of each probe's database check (the database outage's log); the other checks are not the database's */
  onDatabaseCheck?: (ok: boolean, detail: string | undefined) => void;
}

/**
 * The admin listener, apart from the partner port: GET /healthz (the process is up; touches nothing), GET /readyz
 * (200 when every check passes, 503 naming the failing ones) and GET /metrics (Prometheus text).
 */
export function createAdminServer(deps: AdminDeps): Server {
  return createServer((req, res) => {
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
    };
    const json = (status: number, body: object) => send(status, 'application/json; charset=utf-8', JSON.stringify(body));
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { status: 'method not allowed' });
    if (path === '/healthz') return json(200, { status: 'ok' });
    if (path === '/readyz') {
      void deps.readiness.checks().then((checks) => {
        const failing = checks.filter((c) => !c.ok);
        const database = checks.find((c) => c.name === 'database');
        if (database) deps.onDatabaseCheck?.(database.ok, database.detail);
        json(failing.length ? 503 : 200, { status: failing.length ? 'not ready' : 'ready', checks });
      });
      return;
    }
    if (path === '/metrics') {
      void deps.metrics().then(
        (m) => send(200, m.type, m.text),
        (e: Error) => json(500, { status: 'metrics unavailable', error: e.message }),
      );
      return;
    }
    json(404, { status: 'not found', paths: ['/healthz', '/readyz', '/metrics'] });
  });
}

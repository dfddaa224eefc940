import { readFileSync } from 'node:fs';
import type Koa from 'koa';
import { DOCUMENT_PATH, loadDocument } from './api.ts';

/** The API reference page, built from the document by `make generate` (Redocly build-docs, everything inlined). */
export const REFERENCE_PATH = new URL('../../generated/reference.html', import.meta.url);

/**
 * The page may load nothing from another host. Redoc's "API docs by" footer asks cdn.redoc.ly for its logo; this
 * keeps the browser from asking, and everything else in the page (inline, data: and blob:) runs as built.
 */
const REFERENCE_POLICY = "default-src 'self' 'unsafe-inline' 'unsafe-eval' data: blob:";

interface Page {
  type: string;
  body: Buffer | string;
  headers?: Record<string, string>;
}

/**
 * The partner port's reference pages: GET /docs (the rendered document), /openapi.yaml (the document's own bytes) and
 * /openapi.json. Read once; they change only with a new release. Returns the handler, which answers a request it
 * serves and tells whether it did.
 */
export function referencePages(): (koa: Koa.Context) => boolean {
  const pages = new Map<string, Page>([
    [
      '/docs',
      { type: 'text/html; charset=utf-8', body: readFileSync(REFERENCE_PATH), headers: { 'Content-Security-Policy': REFERENCE_POLICY } },
    ],
    ['/openapi.yaml', { type: 'application/yaml; charset=utf-8', body: readFileSync(DOCUMENT_PATH) }],
    ['/openapi.json', { type: 'application/json; charset=utf-8', body: JSON.stringify(loadDocument()) }],
  ]);
  return (koa) => {
    const page = koa.method === 'GET' || koa.method === 'HEAD' ? pages.get(koa.path) : undefined;
    if (!page) return false;
    koa.status = 200;
    koa.type = page.type;
    koa.set(page.headers ?? {});
    koa.body = page.body;
    return true;
  };
}

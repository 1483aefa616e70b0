import { readFileSync } from 'node:fs';
import { EXPORT_PATHS, useUsageExportEndpoints } from '../../src/exports/http.js';
import type { PrismaClient } from '../../src/generated/prisma/client.js';
import { useIngestEndpoint } from '../../src/ingest/http.js';
import { createMetrics, useHealthCheck } from '../../src/observability.js';
import { createApp, type App } from '../../src/yoga.js';

/**
 * The gateway as src/server.ts assembles it (health check, /ingest, the CSV exports, /metrics),
 * in process. Without a rate limiter: the matrix sends hundreds of requests per key and counts
 * failed authentications on purpose (rate limits have their own tests).
 */
export function createGateway(prisma: PrismaClient, options: { onUnexpectedError?: (error: unknown) => void; ingestMaxBytes?: number } = {}): App {
  const metrics = createMetrics();
  return createApp({
    prisma,
    onUnexpectedError: options.onUnexpectedError,
    console: {},
    plugins: [
      useHealthCheck({ database: 'test', check: () => prisma.$queryRawUnsafe('SELECT 1') }),
      useIngestEndpoint({ prisma, maxBytes: options.ingestMaxBytes, onUnexpectedError: options.onUnexpectedError }),
      useUsageExportEndpoints({ prisma, onUnexpectedError: options.onUnexpectedError }),
      metrics.plugin,
    ],
  });
}

/** One HTTP route of the gateway and what a request to it needs. */
export interface Route {
  method: 'GET' | 'POST';
  path: string;
  /** Whether the route needs a valid API key (health and metrics do not). */
  auth: boolean;
  /** The scope the route needs beyond a valid key; null: none. */
  scope: string | null;
  body?: () => { contentType: string; body: string };
}

export const GRAPHQL_PATH = '/graphql';
export const INGEST_PATH = '/ingest';

/**
 * Every route the gateway answers. `routesInSource` below fails the suite when src/ gains a path
 * this list does not name, so a new route cannot go untested.
 */
export function gatewayRoutes(ingestLine: () => string): Route[] {
  return [
    { method: 'POST', path: GRAPHQL_PATH, auth: true, scope: null, body: () => ({ contentType: 'application/json', body: JSON.stringify({ query: '{ viewer { scopes realm { id name } } }' }) }) },
    { method: 'GET', path: `${GRAPHQL_PATH}?query=${encodeURIComponent('{ viewer { scopes } }')}`, auth: true, scope: null },
    { method: 'POST', path: INGEST_PATH, auth: true, scope: 'usage:write', body: () => ({ contentType: 'application/x-ndjson', body: `${ingestLine()}\n` }) },
    ...Object.keys(EXPORT_PATHS).map((path): Route => ({ method: 'GET', path, auth: true, scope: 'usage:read' })),
    { method: 'GET', path: '/metrics', auth: false, scope: null },
    { method: 'GET', path: '/healthz', auth: false, scope: null },
    { method: 'GET', path: '/', auth: false, scope: null },
  ];
}

/** Paths named in the sources that wire HTTP routes: `'/something'` literals. */
export function routesInSource(): string[] {
  const files = ['src/server.ts', 'src/observability.ts', 'src/yoga.ts', 'src/ingest/http.ts', 'src/exports/http.ts', 'src/plugins/http-route.ts'];
  const found = new Set<string>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
    } catch {
      continue;
    }
    for (const match of text.matchAll(/['"`](\/(?:graphql|ingest|exports|metrics|healthz|readyz|livez|admin|debug|internal)[\w/.-]*)['"`]/g)) found.add(match[1]!);
  }
  return [...found];
}

export async function request(app: App, path: string, init: { method?: string; key?: string | null; contentType?: string; body?: BodyInit; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...init.headers };
  if (init.key) headers.authorization = `Bearer ${init.key}`;
  if (init.contentType) headers['content-type'] = init.contentType;
  const response = await app.fetch(`http://gateway.test${path}`, { method: init.method ?? 'GET', headers, body: init.body });
  const text = await response.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: response.status, headers: response.headers, text, json };
}

export async function graphqlRequest(app: App, key: string | null, query: string, variables?: Record<string, unknown>) {
  return request(app, GRAPHQL_PATH, { method: 'POST', key, contentType: 'application/json', body: JSON.stringify({ query, variables }) });
}

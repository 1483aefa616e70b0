import { readFileSync } from 'node:fs';
import { EXPORT_PATHS, useUsageExportEndpoints } from '../../src/exports/http.js';
import type { PrismaClient } from '../../src/generated/prisma/client.js';
import { useIngestEndpoint } from '../../src/ingest/http.js';
import type { LiveHub } from '../../src/live/hub.js';
import { createMetrics, useHealthCheck } from '../../src/observability.js';
import { OPENAPI_PATH, useRestRoutes } from '../../src/rest/http.js';
import { createApp, type App } from '../../src/yoga.js';
import { takeSseEvents, type SseEvent } from '../helpers/sse.js';

/**
 * The gateway as src/server.ts assembles it (health check, /ingest, the CSV exports, /metrics),
 * in process. Without a rate limiter: the matrix sends hundreds of requests per key and counts
 * failed authentications on purpose (rate limits have their own tests).
 */
export function createGateway(prisma: PrismaClient, options: { onUnexpectedError?: (error: unknown) => void; ingestMaxBytes?: number; live?: LiveHub } = {}): App {
  const metrics = createMetrics();
  return createApp({
    prisma,
    live: options.live,
    onUnexpectedError: options.onUnexpectedError,
    console: {},
    plugins: [
      useHealthCheck({ database: 'test', check: () => prisma.$queryRawUnsafe('SELECT 1') }),
      useIngestEndpoint({ prisma, maxBytes: options.ingestMaxBytes, onUnexpectedError: options.onUnexpectedError }),
      useUsageExportEndpoints({ prisma, onUnexpectedError: options.onUnexpectedError }),
      useRestRoutes({ prisma, onUnexpectedError: options.onUnexpectedError }),
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
const REST_UNKNOWN_REALM = Buffer.from('Realm:00000000-0000-4000-8000-000000000000').toString('base64url');

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
    { method: 'GET', path: '/api/v1/usage/', auth: true, scope: 'usage:read' },
    // A realm no caller holds (ids are random per run): every caller with usage:read gets an empty answer, as realm(id:) answers null.
    { method: 'GET', path: `/api/v1/billable-usage?realmId=${REST_UNKNOWN_REALM}&startDate=2026-01-01T00:00:00&endDate=2026-01-02T00:00:00`, auth: true, scope: 'usage:read' },
    { method: 'GET', path: '/api/v1/keys/usage', auth: true, scope: 'usage:read' },
    { method: 'GET', path: OPENAPI_PATH, auth: false, scope: null },
    { method: 'GET', path: '/metrics', auth: false, scope: null },
    { method: 'GET', path: '/healthz', auth: false, scope: null },
    { method: 'GET', path: '/', auth: false, scope: null },
    // A portal session's console page (no token: it travels in the fragment); an unknown id is a 404.
    { method: 'GET', path: '/portal/not-a-session', auth: false, scope: null },
  ];
}

/** Paths named in the sources that wire HTTP routes: `'/something'` literals. */
export function routesInSource(): string[] {
  const files = ['src/server.ts', 'src/observability.ts', 'src/yoga.ts', 'src/ingest/http.ts', 'src/exports/http.ts', 'src/plugins/http-route.ts', 'src/rest/http.ts', 'src/rest/openapi.ts', 'src/rest/row-usage.ts', 'src/rest/billable-usage.ts', 'src/rest/key-usage.ts', 'src/portal/sessions.ts'];
  const found = new Set<string>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
    } catch {
      continue;
    }
    for (const match of text.matchAll(/['"`](\/(?:graphql|ingest|exports|metrics|healthz|readyz|livez|admin|debug|internal|api|openapi|portal)[\w/.-]*)['"`]/g)) found.add(match[1]!);
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

export type { SseEvent };

/**
 * A subscription request's answer, read as it arrives: a `text/event-stream` body event by event,
 * or (a request refused before it was executed, e.g. 401) a plain body read whole.
 */
export class SubscriptionAnswer {
  readonly events: SseEvent[] = [];
  /** Everything received so far (the leak detector reads it). */
  text = '';
  json: any = null;
  ended = false;
  private buffer = '';
  private waiters: (() => void)[] = [];
  private readonly reader: ReadableStreamDefaultReader<Uint8Array> | null;
  private readonly done: Promise<void>;

  constructor(
    readonly status: number,
    readonly streaming: boolean,
    body: ReadableStream<Uint8Array> | null,
    private readonly abort: AbortController,
  ) {
    const reader = body?.getReader() ?? null;
    this.reader = reader;
    const decoder = new TextDecoder();
    this.done = (async () => {
      try {
        for (;;) {
          const chunk = await reader?.read();
          if (!chunk || chunk.done) break;
          const text = decoder.decode(chunk.value, { stream: true });
          this.text += text;
          this.buffer += text;
          if (streaming) this.parse();
        }
      } catch {
        // closed by us
      } finally {
        if (!streaming) {
          try {
            this.json = JSON.parse(this.text);
          } catch {
            this.json = null;
          }
        }
        this.ended = true;
        this.wake();
      }
    })();
  }

  private parse() {
    const { events, rest } = takeSseEvents(this.buffer);
    this.buffer = rest;
    this.events.push(...events);
    this.wake();
  }

  private wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Waits until `condition` holds (checked on every event and at the end), at most `timeoutMs`; returns whether it held. */
  async until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (condition()) return true;
      const left = deadline - Date.now();
      if (left <= 0 || this.ended) return condition();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 20));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The payloads (`data`) of the events so far, as the rules read a GraphQL answer. */
  get payloads(): any[] {
    return this.streaming ? this.events.filter((e) => e.data).map((e) => e.data) : this.json ? [this.json] : [];
  }

  /** Closes the request (the server sees the client go away). */
  async close() {
    this.abort.abort();
    await this.reader?.cancel().catch(() => {});
    await Promise.race([this.done, new Promise((resolve) => setTimeout(resolve, 500))]);
  }
}

/** Opens `query` (a subscription) as Server-Sent Events through the gateway, as a browser's EventSource client would. */
export async function openSubscription(app: App, key: string | null, query: string, variables?: Record<string, unknown>): Promise<SubscriptionAnswer> {
  const abort = new AbortController();
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' };
  if (key) headers.authorization = `Bearer ${key}`;
  const response = await app.fetch(`http://gateway.test${GRAPHQL_PATH}`, { method: 'POST', headers, body: JSON.stringify({ query, variables }), signal: abort.signal });
  const streaming = /^text\/event-stream/.test(response.headers.get('content-type') ?? '');
  return new SubscriptionAnswer(response.status, streaming, response.body, abort);
}

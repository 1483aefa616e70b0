import { usePrometheus } from '@graphql-yoga/plugin-prometheus';
import { getOperationAST, type DocumentNode, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { pino, type DestinationStream, type Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { keyFromAuthorizationHeader, parseApiKey } from './auth/api-key-secret.js';
import type { Viewer } from './context.js';

export type { Logger } from 'pino';

/**
 * JSON lines on stdout (or `destination`, for tests). Written synchronously: in order with the
 * server's plain stdout lines, and not held back while PGlite keeps the event loop busy (seeding).
 */
export function createLogger(options: { level: string; destination?: DestinationStream }): Logger {
  return pino({ level: options.level, base: { service: 'usage-gateway' } }, options.destination ?? pino.destination({ dest: 1, sync: true }));
}

/** The first line of an error's message: for one-line log fields and answers. */
export function errorSummary(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n').find((line) => line.trim())?.trim() ?? 'unknown error';
}

/** Masked ("Unexpected error.") errors with their stack: pass as `createApp({ onUnexpectedError })`. */
export function logUnexpectedError(logger: Logger): (error: unknown) => void {
  return (error) => logger.error({ err: error }, `unexpected error: ${errorSummary(error)}`);
}

interface RequestRecord {
  started: number;
  operationName?: string;
  operationType?: string;
  viewer?: Pick<Viewer, 'apiKeyId' | 'realmId'>;
  errorCodes: Set<string>;
  errorCount: number;
}

function resultsOf(result: unknown): ExecutionResult[] {
  if (Array.isArray(result)) return result as ExecutionResult[];
  if (result && typeof result === 'object' && !(Symbol.asyncIterator in result)) return [result as ExecutionResult];
  return [];
}

/**
 * One log line per GraphQL request: operation, HTTP status, errors and their codes, duration and
 * the caller's key. Also sends yoga's own log output through `logger`; yoga's error lines repeat the
 * masked errors that `logUnexpectedError` already logs with their stack, so they go to debug.
 */
export function useRequestLogging(logger: Logger, options: { graphqlEndpoint?: string } = {}): Plugin {
  const endpoint = options.graphqlEndpoint ?? '/graphql';
  const records = new WeakMap<Request, RequestRecord>();
  const yogaLogger = logger.child({ component: 'graphql-yoga' });
  return {
    onYogaInit({ yoga }) {
      yoga.logger = {
        debug: (...args: unknown[]) => yogaLogger.debug(args.map(String).join(' ')),
        info: (...args: unknown[]) => yogaLogger.info(args.map(String).join(' ')),
        warn: (...args: unknown[]) => yogaLogger.warn(args.map(String).join(' ')),
        error: (...args: unknown[]) => yogaLogger.debug(args.map((arg) => errorSummary(arg)).join(' ')),
      };
    },
    onRequest({ request, url }) {
      if (url.pathname === endpoint) records.set(request, { started: performance.now(), errorCodes: new Set(), errorCount: 0 });
    },
    onParams({ request, params }) {
      const record = records.get(request);
      if (record && params.operationName) record.operationName = params.operationName;
    },
    onParse({ context }) {
      const request = (context as { request?: Request }).request;
      const record = request && records.get(request);
      if (!record) return;
      return ({ result }) => {
        if (!result || result instanceof Error) return;
        const operation = getOperationAST(result as DocumentNode, record.operationName);
        record.operationType = operation?.operation;
        record.operationName ??= operation?.name?.value;
      };
    },
    onExecute({ args }) {
      const context = args.contextValue as { request?: Request; viewer?: Viewer };
      const record = context.request && records.get(context.request);
      if (record && context.viewer) record.viewer = { apiKeyId: context.viewer.apiKeyId, realmId: context.viewer.realmId };
    },
    onResultProcess({ request, result }) {
      const record = records.get(request);
      if (!record) return;
      for (const single of resultsOf(result)) {
        for (const error of single.errors ?? []) {
          record.errorCount += 1;
          const code = error.extensions?.code;
          if (typeof code === 'string') record.errorCodes.add(code);
        }
      }
    },
    onResponse({ request, response }) {
      const record = records.get(request);
      if (!record) return;
      records.delete(request);
      // GraphiQL's page on GET /graphql is not a GraphQL request.
      if (response.headers.get('content-type')?.startsWith('text/html')) return;
      const key = keyFromAuthorizationHeader(request.headers.get('authorization'));
      const apiKeyPrefix = key ? parseApiKey(key)?.prefix : undefined;
      const line = {
        operationName: record.operationName ?? 'anonymous',
        operationType: record.operationType ?? null,
        method: request.method,
        status: response.status,
        durationMs: Math.round((performance.now() - record.started) * 100) / 100,
        hasErrors: record.errorCount > 0,
        errorCount: record.errorCount,
        errorCodes: [...record.errorCodes],
        apiKeyPrefix: apiKeyPrefix ?? null,
        apiKeyId: record.viewer?.apiKeyId ?? null,
        realmId: record.viewer?.realmId ?? null,
      };
      const level = response.status >= 500 ? 'error' : 'info';
      logger[level](line, `graphql ${line.operationType ?? 'request'} ${line.operationName} ${line.status} ${line.durationMs}ms`);
    },
  };
}

export interface Metrics {
  registry: Registry;
  /** Collects the GraphQL metrics and answers `GET /metrics` in Prometheus text format. */
  plugin: Plugin;
}

/**
 * Request, error and latency metrics by operation, in a registry of their own: several apps in one
 * process (tests) must not share prom-client's global registry, which rejects duplicate names.
 */
export function createMetrics(options: { endpoint?: string; processMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  const plugin = usePrometheus({
    registry,
    endpoint: options.endpoint ?? '/metrics',
    // Labels that grow with traffic (full URLs, error paths with list indexes) would make unbounded series.
    labels: { url: false, path: false },
    metrics: {
      graphql_envelop_request: true,
      graphql_envelop_request_duration: true,
      graphql_envelop_error_result: true,
      graphql_yoga_http_duration: true,
      graphql_envelop_phase_parse: true,
      graphql_envelop_phase_validate: true,
      graphql_envelop_phase_context: true,
      graphql_envelop_phase_execute: true,
      graphql_envelop_request_time_summary: false,
      graphql_envelop_phase_subscribe: false,
      graphql_envelop_deprecated_field: false,
      graphql_envelop_schema_change: false,
    },
  }) as Plugin;
  return { registry, plugin };
}

export interface HealthCheckOptions {
  /** What `database` says in the answer: `pglite` or `postgres`. */
  database: string;
  /** A real round trip to the database (`SELECT 1`); throws when it is down. */
  check: () => Promise<unknown>;
  /** While true (shutting down), answer 503 without asking the database. */
  draining?: () => boolean;
  path?: string;
  timeoutMs?: number;
  logger?: Logger;
}

/** `GET /healthz`: 200 `{"status":"ok","database":…}` after a real query, else 503. */
export function useHealthCheck(options: HealthCheckOptions): Plugin {
  const path = options.path ?? '/healthz';
  const timeoutMs = options.timeoutMs ?? 5_000;
  const answer = (httpStatus: number, status: 'ok' | 'error', error?: string) =>
    new Response(JSON.stringify({ status, database: options.database, ...(error ? { error } : {}) }), {
      status: httpStatus,
      headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
    });
  return {
    async onRequest({ url, endResponse }) {
      if (url.pathname !== path) return;
      if (options.draining?.()) {
        endResponse(answer(503, 'error', 'shutting down'));
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          options.check(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        endResponse(answer(200, 'ok'));
      } catch (error) {
        options.logger?.warn({ err: error }, `health check failed: ${errorSummary(error)}`);
        endResponse(answer(503, 'error', 'database unavailable'));
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

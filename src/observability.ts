import { timingSafeEqual } from 'node:crypto';
import { createCounter, createHistogram, usePrometheus, type FillLabelsFnParams } from '@graphql-yoga/plugin-prometheus';
import { getOperationAST, type DocumentNode, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { pino, type DestinationStream, type Logger } from 'pino';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import { keyFromAuthorizationHeader, parseApiKey } from './auth/api-key-secret.js';
import type { Viewer } from './context.js';
import { DATABASE_RETRY_AFTER_SECONDS } from './errors.js';
import { requestViewer } from './plugins/authentication.js';
import { methodNotAllowed } from './plugins/http-errors.js';
import { requestIdOf } from './plugins/request-id.js';

export type { Logger } from 'pino';

/**
 * JSON lines on stdout (or `destination`, for tests). Written synchronously: in order with the
 * server's plain stdout lines, and not held back while PGlite keeps the event loop busy (seeding).
 * (Buffered asynchronous writes do not save CPU: measured 5.9–7.5 µs per line with sonic-boom
 * `sync: false, minLength: 4096` against 4.3–7.5 µs synchronously, to /dev/null, a pipe or a file;
 * pino's JSON is most of it.)
 */
export function createLogger(options: { level: string; destination?: DestinationStream }): Logger {
  return pino({ level: options.level, base: { service: 'usage-gateway' } }, options.destination ?? pino.destination({ dest: 1, sync: true }));
}

/** The first line of an error's message: for one-line log fields and answers. */
export function errorSummary(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n').find((line) => line.trim())?.trim() ?? 'unknown error';
}

let reportBackground: (message: string, error: unknown) => void = (message, error) => console.error(message, error);

/** Errors of work done off the request path (quota evaluation, webhook delivery) go to `logger` as JSON lines. */
export function logBackgroundErrorsTo(logger: Logger): void {
  reportBackground = (message, error) => logger.error({ err: error }, `${message}: ${errorSummary(error)}`);
}

/** Reports an error of background work: the server's log, or stderr where no server set one (tests, scripts). */
export function backgroundError(message: string, error: unknown): void {
  reportBackground(message, error);
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
        requestId: requestIdOf(request),
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

/** Distinct operation names kept as label values; later ones are counted as "other". */
export const MAX_OPERATION_NAME_LABELS = 200;
const MAX_OPERATION_NAME_LENGTH = 100;

/**
 * Label values for operation names, bounded: names of authenticated requests as they come until
 * `max` distinct ones were seen (then "other"); requests without a valid key are "unauthenticated",
 * so nobody can grow the metrics through them. Names are tenants' own words: they are shown only
 * where `/metrics` is protected (`exposeNames`, METRICS_TOKEN set); on an open `/metrics` every
 * authenticated operation is "hidden".
 */
export class OperationNameLabels {
  private readonly seen = new Set<string>();

  constructor(
    private readonly max = MAX_OPERATION_NAME_LABELS,
    private readonly exposeNames = true,
  ) {}

  label(name: string | undefined, authenticated: boolean): string {
    if (!authenticated) return 'unauthenticated';
    if (!this.exposeNames) return 'hidden';
    if (!name) return 'Anonymous';
    if (this.seen.has(name)) return name;
    if (this.seen.size >= this.max || name.length > MAX_OPERATION_NAME_LENGTH) return 'other';
    this.seen.add(name);
    return name;
  }
}

function isAuthenticated(context: unknown): boolean {
  const { viewer, request } = (context ?? {}) as { viewer?: unknown; request?: Request };
  return !!viewer || (!!request && !!requestViewer(request));
}

/** `Authorization: Bearer <token>`, compared in constant time. */
function bearerMatches(authorization: string | null, token: string): boolean {
  const expected = Buffer.from(`Bearer ${token}`);
  const given = Buffer.from(authorization ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface MetricsOptions {
  endpoint?: string;
  processMetrics?: boolean;
  /** METRICS_TOKEN: when set, `GET /metrics` needs `Authorization: Bearer <token>` (else 401). */
  token?: string;
  /** Distinct operation names kept as label values (default MAX_OPERATION_NAME_LABELS). */
  maxOperationNames?: number;
}

/**
 * Request, error and latency metrics by operation, in a registry of their own: several apps in one
 * process (tests) must not share prom-client's global registry, which rejects duplicate names.
 * Operation names are bounded label values (`OperationNameLabels`); URLs and error paths are not labels.
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  const endpoint = options.endpoint ?? '/metrics';
  const names = new OperationNameLabels(options.maxOperationNames, !!options.token);
  const operationLabels = (params: FillLabelsFnParams, context: unknown) => ({
    operationName: names.label(params.operationName, isAuthenticated(context)),
    operationType: params.operationType ?? 'unknown',
  });
  const OPERATION = ['operationName', 'operationType'] as const;
  const phase = <Phase extends string>(name: string, help: string, phases: [Phase, ...Phase[]]) =>
    createHistogram<Phase, (typeof OPERATION)[number]>({ registry, histogram: { name, help, labelNames: OPERATION }, fillLabelsFn: operationLabels, phases });
  const prometheus = usePrometheus({
    registry,
    endpoint: false,
    metrics: {
      graphql_envelop_request: createCounter({
        registry,
        counter: { name: 'graphql_envelop_request', help: 'Counts the amount of GraphQL requests executed through Envelop', labelNames: OPERATION },
        fillLabelsFn: operationLabels,
        phases: ['execute'],
      }),
      graphql_envelop_request_duration: phase('graphql_envelop_request_duration', 'Time spent on running the GraphQL operation from parse to execute', ['execute']),
      graphql_envelop_error_result: createCounter({
        registry,
        counter: { name: 'graphql_envelop_error_result', help: 'Counts the amount of errors reported from all phases', labelNames: [...OPERATION, 'phase'] },
        fillLabelsFn: (params, context) => ({ ...operationLabels(params, context), phase: params.errorPhase ?? 'unknown' }),
        phases: ['parse', 'validate', 'context', 'execute'],
      }),
      graphql_envelop_phase_parse: phase('graphql_envelop_phase_parse', 'Time spent on running GraphQL "parse" function', ['parse']),
      graphql_envelop_phase_validate: phase('graphql_envelop_phase_validate', 'Time spent on running GraphQL "validate" function', ['validate']),
      graphql_envelop_phase_context: phase('graphql_envelop_phase_context', 'Time spent on building the GraphQL context', ['context']),
      graphql_envelop_phase_execute: phase('graphql_envelop_phase_execute', 'Time spent on running the GraphQL "execute" function', ['execute']),
      // Every GraphQL request, the unauthenticated ones included: observed below.
      graphql_yoga_http_duration: false,
      graphql_envelop_request_time_summary: false,
      graphql_envelop_phase_subscribe: false,
      graphql_envelop_deprecated_field: false,
      graphql_envelop_schema_change: false,
    },
  }) as Plugin;
  const httpDuration = new Histogram({
    name: 'graphql_yoga_http_duration',
    help: 'Time spent on HTTP connection',
    labelNames: ['method', 'statusCode', 'operationType', 'operationName'],
    registers: [registry],
  });
  const started = new WeakMap<Request, { at: number; operationName?: string; operationType?: string }>();
  const answerMetrics = async (request: Request, url: URL, endResponse: (response: Response) => void) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      endResponse(methodNotAllowed(request, url, 'GET, HEAD'));
      return;
    }
    if (options.token && !bearerMatches(request.headers.get('authorization'), options.token)) {
      endResponse(
        new Response(JSON.stringify({ errors: [{ message: 'GET /metrics needs "Authorization: Bearer <METRICS_TOKEN>".', extensions: { code: 'UNAUTHENTICATED' } }] }), {
          status: 401,
          headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'www-authenticate': 'Bearer' },
        }),
      );
      return;
    }
    endResponse(new Response(await registry.metrics(), { headers: { 'content-type': registry.contentType, 'cache-control': 'no-store' } }));
  };
  const plugin: Plugin = {
    onPluginInit({ addPlugin }) {
      addPlugin(prometheus);
    },
    // Synchronous for every other path: an async hook would cost every request a promise.
    onRequest({ request, url, endResponse }) {
      if (url.pathname === endpoint) return answerMetrics(request, url, endResponse);
      if (url.pathname === '/graphql') started.set(request, { at: performance.now() });
    },
    onParse({ context }) {
      const request = (context as { request?: Request }).request;
      const record = request && started.get(request);
      if (!record) return;
      return ({ result }) => {
        if (!result || result instanceof Error) return;
        const operation = getOperationAST(result as DocumentNode, (context as { params?: { operationName?: string } }).params?.operationName);
        record.operationName = operation?.name?.value;
        record.operationType = operation?.operation;
      };
    },
    onResponse({ request, response }) {
      const record = started.get(request);
      if (!record) return;
      started.delete(request);
      // GraphiQL's page is not a GraphQL request.
      if (response.headers.get('content-type')?.startsWith('text/html')) return;
      const authenticated = !!requestViewer(request);
      httpDuration.observe(
        {
          method: request.method,
          statusCode: response.status,
          operationType: (authenticated && record.operationType) || 'unknown',
          operationName: names.label(record.operationName, authenticated),
        },
        (performance.now() - record.at) / 1000,
      );
    },
  };
  return { registry, plugin };
}

export interface HealthCheckOptions {
  /** What `database` says in the answer: `pglite` or `postgres`. */
  database: string;
  /** A real round trip to the database (`SELECT 1`); throws when it is down. */
  check: () => Promise<unknown>;
  /** While true (shutting down), answer 503 without asking the database. */
  draining?: () => boolean;
  /** The read replica's state (DATABASE_READ_URL), answered as `replica`; it never fails the check (reports fall back to the primary). */
  replica?: () => Promise<Record<string, unknown>>;
  /** The ingestion log's state (NATS_URL), answered as `ingestLog`; it never fails the check (queries still work without it). */
  ingestLog?: () => Promise<Record<string, unknown>>;
  path?: string;
  timeoutMs?: number;
  logger?: Logger;
}

/** The 503's error in the shape of every other error answer (README "Errors"). */
function healthError(error: string) {
  const message = error === 'shutting down' ? 'This gateway process is shutting down: send requests to another one.' : `The ${error}: retry in ${DATABASE_RETRY_AFTER_SECONDS} s.`;
  return { message, extensions: { code: 'SERVICE_UNAVAILABLE' } };
}

/** `GET /healthz`: 200 `{"status":"ok","database":…}` after a real query, else 503. */
export function useHealthCheck(options: HealthCheckOptions): Plugin {
  const path = options.path ?? '/healthz';
  const timeoutMs = options.timeoutMs ?? 5_000;
  const answer = (httpStatus: number, status: 'ok' | 'error', error?: string, replica?: Record<string, unknown>, ingestLog?: Record<string, unknown>) =>
    new Response(JSON.stringify({ status, database: options.database, ...(replica ? { replica } : {}), ...(ingestLog ? { ingestLog } : {}), ...(error ? { error, errors: [healthError(error)] } : {}) }), {
      status: httpStatus,
      headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...(httpStatus === 503 ? { 'retry-after': String(DATABASE_RETRY_AFTER_SECONDS) } : {}) },
    });
  const check = async (request: Request, url: URL, endResponse: (response: Response) => void) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      endResponse(methodNotAllowed(request, url, 'GET, HEAD'));
      return;
    }
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
      const [replica, ingestLog] = await Promise.all([options.replica?.(), options.ingestLog?.()]);
      endResponse(answer(200, 'ok', undefined, replica, ingestLog));
    } catch (error) {
      options.logger?.warn({ err: error }, `health check failed: ${errorSummary(error)}`);
      endResponse(answer(503, 'error', 'database unavailable'));
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    // Synchronous for every other path: an async hook would cost every request a promise.
    onRequest({ request, url, endResponse }) {
      if (url.pathname === path) return check(request, url, endResponse);
    },
  };
}

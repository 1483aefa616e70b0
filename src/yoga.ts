import type { IncomingMessage, ServerResponse } from 'node:http';
import { PothosValidationError } from '@pothos/core';
import { GraphQLError, NoSchemaIntrospectionCustomRule } from 'graphql';
import { createGraphQLError, createYoga, maskError, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { Authenticator } from './auth/authenticate.js';
import { useConsole, type ConsoleOptions } from './console/serve.js';
import { portalPageOrigins } from './portal/origins.js';
import { DEFAULT_GRAPHQL_MAX_BODY_BYTES } from './config.js';
import type { Context } from './context.js';
import { currentStatementLog, newStatementLog, recordStatements } from './db/statement-recorder.js';
import { useReadReplica } from './db/read-replica.js';
import { isDatabaseUnavailable, serviceUnavailable, unauthenticated } from './errors.js';
import type { PrismaClient } from './generated/prisma/client.js';
import { requestViewer, useAuthenticationFirst } from './plugins/authentication.js';
import { useBoundedErrorMessages } from './plugins/bounded-errors.js';
import { useDocumentLimits } from './plugins/document-limits.js';
import { useHttpErrorContract } from './plugins/http-errors.js';
import { useRouteRateLimits } from './plugins/http-route.js';
import { usePageSizeLimit } from './plugins/page-size.js';
import { requestIdOf, useRequestId } from './plugins/request-id.js';
import { useQueryCost } from './plugins/query-cost.js';
import { useNulStringGuard } from './plugins/string-guard.js';
import { useIngestEventLimit } from './ingest/graphql-limit.js';
import { RateLimitGate } from './rate-limit/gate.js';
import type { RateLimiter } from './rate-limit/limiter.js';
import { schema } from './schema/index.js';
import { memoryLiveHub, type LiveHub } from './live/hub.js';
import { useLiveSubscriptions } from './live/subscription.js';
import { RequestTraffic } from './traffic/plugin.js';
import type { TrafficRecorder } from './traffic/recorder.js';
import type { IngestLog } from './ingest/log.js';

export interface AppOptions {
  prisma: PrismaClient;
  /** A streaming replica (DATABASE_READ_URL): query operations read reports there (src/db/read-replica.ts). */
  readPrisma?: PrismaClient;
  /** Adds `extensions.queryStats { sqlStatements, durationMs }` to every response. */
  exposeQueryStats?: boolean;
  /** How long a key's row is reused without SQL (ms); 0 (the default here): read it on every request. */
  authCacheTtlMs?: number;
  /** GraphiQL at GET /graphql; `defaultKey` pre-fills its Authorization header (development only). */
  graphiql?: false | { defaultKey?: string };
  /** The usage console at GET / (built at `npm install`); `defaultKey` pre-fills its key (development only). */
  console?: false | ConsoleOptions;
  /** Whether `__schema` / `__type` queries are answered (default true; GRAPHQL_INTROSPECTION). */
  introspection?: boolean;
  /** The largest `/graphql` request body in bytes (default DEFAULT_GRAPHQL_MAX_BODY_BYTES); larger ones get 413. */
  maxBodyBytes?: number;
  /** More envelop/yoga plugins (logging, metrics), run before the gateway's own. */
  plugins?: Plugin[];
  /** The clock (tests fix it). */
  now?: () => Date;
  /** A replica that failed a query's freshness check (that query read the primary). */
  onReplicaError?: (error: unknown) => void;
  /** Called with every error that is masked as "Unexpected error." */
  onUnexpectedError?: (error: unknown) => void;
  /**
   * Rate limits per API key (by tier) and for failed authentications per client address, with
   * `RateLimit-*` headers and `extensions.rateLimit` on every response. Without it: no limits.
   */
  rateLimiter?: RateLimiter;
  /** Records every authenticated request (key, operation, status class, latency) as per-minute API traffic, off the hot path. */
  trafficRecorder?: TrafficRecorder;
  /** Where subscriptions hear events (src/live/hub.ts): the server's LISTEN hub; default a hub of this process only. */
  live?: LiveHub;
  /** The durable ingestion log (NATS_URL, src/ingest/log.ts): `ingestUsage` answers once JetStream stored the events. */
  ingestLog?: IngestLog;
}

export interface App {
  yoga: YogaServerInstance<Record<string, unknown>, Context>;
  /** In-process requests (tests, benchmarks): the same pipeline as HTTP. */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** The Node HTTP listener. */
  handleNodeRequest(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

function useQueryStats(): Plugin {
  return {
    onExecute() {
      const started = performance.now();
      return {
        onExecuteDone({ result, setResult }) {
          if (!result || Symbol.asyncIterator in result) return;
          const log = currentStatementLog();
          setResult({
            ...result,
            extensions: {
              ...result.extensions,
              queryStats: {
                sqlStatements: log?.statements.length ?? 0,
                durationMs: Math.round((performance.now() - started) * 100) / 100,
              },
            },
          });
        },
      };
    },
  };
}

/** graphql-js's own rule: a `__schema` or `__type` field fails validation. */
function useNoIntrospection(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(NoSchemaIntrospectionCustomRule);
    },
  };
}

/** Pothos rejects some arguments (cursors, pagination combinations) with its own error class. */
function clientErrorFrom(error: unknown): GraphQLError | null {
  const original = error instanceof GraphQLError ? error.originalError : error;
  if (!(original instanceof PothosValidationError)) return null;
  const reason = /cursor/i.test(original.message) ? 'INVALID_CURSOR' : 'INVALID_PAGINATION';
  return createGraphQLError(original.message, {
    nodes: error instanceof GraphQLError ? error.nodes : undefined,
    path: error instanceof GraphQLError ? error.path : undefined,
    extensions: { code: 'BAD_USER_INPUT', reason },
  });
}

/** Where an app without an `onUnexpectedError` (tests, scripts) reports masked errors: stderr. */
function reportUnexpectedError(error: unknown): void {
  console.error('unexpected error', error);
}

export function createApp(options: AppOptions): App {
  const authenticator = new Authenticator(options.prisma, options.authCacheTtlMs ?? 0);
  const graphiql = options.graphiql ?? false;
  const rateLimit = options.rateLimiter ? new RateLimitGate(options.rateLimiter) : null;
  const traffic = options.trafficRecorder
    ? new RequestTraffic(options.trafficRecorder, {
        now: options.now,
        identifyLate: async (request) => {
          const viewer = await authenticator.authenticate(request.headers.get('authorization')).catch(() => null);
          // Operators' requests are not a realm key's traffic.
          // A portal session's traffic is its creating key's (`apiKeyId`).
          return viewer && viewer.kind !== 'operator' ? viewer.apiKeyId : null;
        },
      })
    : null;
  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    // yoga's own logger prints every error it sees to stderr as plain text, client errors included;
    // the masked (unexpected) ones are reported through onUnexpectedError below instead.
    logging: false,
    // GraphiQL from the npm package, not from a CDN: it works on machines without internet access.
    // Loaded on the first GraphiQL page: the package holds ≈ 30 MB of bundled JS and CSS as strings.
    renderGraphiQL: async (graphiqlOptions) => (await import('@graphql-yoga/render-graphiql')).renderGraphiQL(graphiqlOptions),
    graphiql: graphiql
      ? {
          title: 'Usage gateway',
          headers: graphiql.defaultKey ? JSON.stringify({ Authorization: `Bearer ${graphiql.defaultKey}` }) : undefined,
          defaultQuery: '{\n  viewer {\n    realm {\n      name\n      workspaces(first: 10) {\n        totalCount\n        edges { node { id name depth } }\n      }\n    }\n  }\n}\n',
        }
      : false,
    maskedErrors: {
      maskError(error, message, isDev) {
        const clientError = clientErrorFrom(error);
        if (clientError) return clientError;
        if (isDatabaseUnavailable(error)) return serviceUnavailable();
        const masked = maskError(error, message, isDev);
        if (masked !== error) (options.onUnexpectedError ?? reportUnexpectedError)(error instanceof GraphQLError ? (error.originalError ?? error) : error);
        return masked;
      },
    },
    // The key was checked (and counted) before parsing, by useAuthenticationFirst.
    context: ({ request }) => {
      const viewer = requestViewer(request);
      if (!viewer) throw unauthenticated();
      return { prisma: options.prisma, viewer, requestId: requestIdOf(request), now: options.now?.() ?? new Date(), memo: new Map(), rateLimit: rateLimit?.stateOf(request) ?? null, ...(options.ingestLog ? { ingestLog: options.ingestLog } : {}) };
    },
    maxRequestBodySize: options.maxBodyBytes ?? DEFAULT_GRAPHQL_MAX_BODY_BYTES,
    plugins: [
      // First: every response, whichever plugin answers it, gets the request id and the JSON error shape.
      useRequestId(),
      useHttpErrorContract(),
      ...(options.console ? [useConsole({ portalFrameAncestors: (id) => portalPageOrigins(options.prisma, id), ...options.console })] : []),
      ...(rateLimit ? [useRouteRateLimits(rateLimit)] : []),
      ...(options.plugins ?? []),
      ...(traffic ? [traffic.plugin()] : []),
      ...(rateLimit ? [rateLimit.plugin()] : []),
      // Before anything reads the document: the key, then the document's size.
      useAuthenticationFirst({
        authenticate: (authorization) => authenticator.authenticate(authorization),
        rateLimit,
        onViewer: (request, viewer) => (viewer.kind !== 'operator' ? traffic?.identify(request, viewer) : undefined),
      }),
      useDocumentLimits(),
      ...(options.introspection === false ? [useNoIntrospection()] : []),
      // Before the plugins that coerce arguments (the query cost): 100,000 events cost seconds there.
      useIngestEventLimit(),
      usePageSizeLimit(),
      useQueryCost(),
      useNulStringGuard(),
      useBoundedErrorMessages(),
      ...(options.readPrisma ? [useReadReplica({ primary: options.prisma, replica: options.readPrisma, onReplicaError: options.onReplicaError })] : []),
      useLiveSubscriptions({ hub: options.live ?? memoryLiveHub(options.prisma), rateLimiter: options.rateLimiter ?? null }),
      ...(options.exposeQueryStats ? [useQueryStats()] : []),
    ],
  });

  // The statement log is read only for `extensions.queryStats`: without it, no AsyncLocalStorage
  // context per request (on Node 20 it costs every promise of the request a hook call).
  if (!options.exposeQueryStats) {
    return {
      yoga,
      fetch: (input, init) => Promise.resolve(yoga.fetch(input as URL, init ?? {})),
      handleNodeRequest: (req, res) => Promise.resolve(yoga.handle(req, res)),
    };
  }
  return {
    yoga,
    fetch: (input, init) => recordStatements(newStatementLog(), () => Promise.resolve(yoga.fetch(input as URL, init ?? {}))),
    handleNodeRequest: (req, res) => recordStatements(newStatementLog(), () => Promise.resolve(yoga.handle(req, res))),
  };
}

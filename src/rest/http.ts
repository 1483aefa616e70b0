/**
 * The REST routes for partner integrations (`/api/v1/…`) and their OpenAPI document
 * (`GET /openapi.json`): a yoga plugin answering in `onRequest`, like the exports. Same key auth,
 * scopes, rate limits and error shape as the other plain routes; each request served to a key is
 * recorded as that key's API traffic (endpoint "GET <path template>").
 */
import type { Plugin } from 'graphql-yoga';
import { Authenticator } from '../auth/authenticate.js';
import type { Context, Viewer } from '../context.js';
import { DATA_REFRESHED_AT_HEADER, routeReadTarget } from '../db/read-replica.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { Logger } from '../observability.js';
import { authorizeRoute, errorResponse, JSON_HEADERS, useRoute, type RouteNote } from '../plugins/http-route.js';
import { requestIdOf } from '../plugins/request-id.js';
import type { TrafficRecorder } from '../traffic/recorder.js';
import { statusClass } from '../traffic/status.js';
import { billableUsageRoute } from './billable-usage.js';
import { keyUsageRoute, ownKeyUsageRoute } from './key-usage.js';
import { OPENAPI_PATH, openApiDocument } from './openapi.js';
import { QueryParams, restInputErrorFrom } from './params.js';
import type { RestRoute } from './route.js';
import { rowUsageRoute } from './row-usage.js';

export const REST_ROUTES: readonly RestRoute[] = [rowUsageRoute, billableUsageRoute, ownKeyUsageRoute, keyUsageRoute];
export const REST_API_VERSION = '1.0.0';
export { OPENAPI_PATH };

export interface RestRoutesOptions {
  prisma: PrismaClient;
  /** A streaming replica (DATABASE_READ_URL): the routes' reports are read there, as GraphQL queries' are. */
  readPrisma?: PrismaClient;
  /** A replica that failed a request's freshness check (that request read the primary). */
  onReplicaError?: (error: unknown) => void;
  authenticator?: Pick<Authenticator, 'authenticate'>;
  /** The clock (tests fix it). */
  now?: () => Date;
  /** Records each request served to a realm's key as its API traffic. */
  trafficRecorder?: TrafficRecorder;
  onUnexpectedError?: (error: unknown) => void;
  logger?: Logger;
}

type Match = { openapi: true } | { route: RestRoute; pathParams: Record<string, string> };

function matchRoute(url: URL): Match | undefined {
  if (url.pathname === OPENAPI_PATH) return { openapi: true };
  for (const route of REST_ROUTES) {
    const pathParams = route.match(url.pathname);
    if (pathParams) return { route, pathParams };
  }
  return undefined;
}

function json(body: unknown, method: string): Response {
  return new Response(method === 'HEAD' ? null : JSON.stringify(body), { status: 200, headers: JSON_HEADERS });
}

export function useRestRoutes(options: RestRoutesOptions): Plugin {
  const authenticator = options.authenticator ?? new Authenticator(options.prisma);
  const document = JSON.stringify(openApiDocument(REST_ROUTES, REST_API_VERSION));

  const answer = async (request: Request, url: URL, route: RestRoute, pathParams: Record<string, string>, note: RouteNote, served: { viewer?: Viewer }) => {
    const { viewer, response } = await authorizeRoute(authenticator, request, route.scope);
    served.viewer = viewer;
    note.realmId = viewer?.realmId;
    note.apiKeyId = viewer?.apiKeyId;
    if (response) return response;
    const now = options.now?.() ?? new Date();
    const read = await routeReadTarget(options);
    const ctx: Context = { prisma: options.prisma, ...read, viewer, requestId: requestIdOf(request), now, memo: new Map(), rateLimit: null };
    try {
      const result = await route.handle(ctx, new QueryParams(url.searchParams, route.parameters), pathParams, url);
      if (result.status === 404) return errorResponse(404, 'NOT_FOUND', result.message);
      const response = json(result.body, request.method);
      response.headers.set(DATA_REFRESHED_AT_HEADER, (read.dataRefreshedAt ?? now).toISOString());
      return response;
    } catch (error) {
      const input = restInputErrorFrom(error);
      if (!input) throw error;
      return errorResponse(400, 'BAD_USER_INPUT', input.message, {
        extensions: { reason: input.reason, ...(input.parameter ? { parameter: input.parameter } : {}), ...input.extra },
      });
    }
  };

  const handle = async (request: Request, url: URL, match: Match, note: RouteNote): Promise<Response> => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return errorResponse(405, 'METHOD_NOT_ALLOWED', `Use GET ${url.pathname}.`, { headers: { allow: 'GET, HEAD' } });
    }
    if ('openapi' in match) return new Response(request.method === 'HEAD' ? null : document, { status: 200, headers: { ...JSON_HEADERS, 'cache-control': 'public, max-age=300' } });
    const started = performance.now();
    const at = options.now?.() ?? new Date();
    const served: { viewer?: Viewer } = {};
    let status = 500;
    try {
      const response = await answer(request, url, match.route, match.pathParams, note, served);
      status = response.status;
      return response;
    } finally {
      // As on /graphql: operators' requests are no realm key's traffic; a portal session's are its creating key's.
      if (options.trafficRecorder && served.viewer && served.viewer.kind !== 'operator') {
        options.trafficRecorder.record({
          apiKeyId: served.viewer.apiKeyId,
          at,
          endpoint: `GET ${match.route.path}`,
          status: statusClass([], status),
          latencyMs: performance.now() - started,
        });
      }
    }
  };

  return useRoute({
    match: matchRoute,
    handle: async (...args) => {
      const response = await handle(...args);
      response.headers.set('x-content-type-options', 'nosniff');
      return response;
    },
    describe: (line) => `rest ${line.path} ${line.status} ${line.durationMs}ms`,
    logger: options.logger,
    onUnexpectedError: options.onUnexpectedError,
  });
}

import type { Plugin } from 'graphql-yoga';
import { keyFromAuthorizationHeader, parseApiKey } from '../auth/api-key-secret.js';
import type { Authenticator } from '../auth/authenticate.js';
import type { Viewer } from '../context.js';
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable, RealmSuspendedError, REALM_SUSPENDED_MESSAGE, SERVICE_UNAVAILABLE_MESSAGE } from '../errors.js';
import type { Logger } from '../observability.js';
import type { RateLimitGate } from '../rate-limit/gate.js';
import { requestIdOf } from './request-id.js';
import { SessionExpiredError, sessionExpiredBody } from '../portal/errors.js';

/** Plain HTTP routes beside /graphql (`/ingest`, `/exports/…`): their errors, auth and log line. */

export const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

/** An error answered in GraphQL's shape, so clients read one format everywhere. */
export function errorResponse(
  status: number,
  code: string,
  message: string,
  options: { headers?: Record<string, string>; extensions?: Record<string, unknown> } = {},
) {
  return new Response(JSON.stringify({ errors: [{ message, extensions: { code, ...options.extensions } }] }), {
    status,
    headers: { ...JSON_HEADERS, ...options.headers },
  });
}

/** 503 with Retry-After while the database cannot be reached (`extensions` say what was done before). */
export function serviceUnavailableResponse(extensions: Record<string, unknown> = {}) {
  return errorResponse(503, 'SERVICE_UNAVAILABLE', SERVICE_UNAVAILABLE_MESSAGE, {
    headers: { 'retry-after': String(DATABASE_RETRY_AFTER_SECONDS) },
    extensions: { retryAfter: DATABASE_RETRY_AFTER_SECONDS, ...extensions },
  });
}

interface RouteGuard {
  gate: RateLimitGate;
  serverContext: unknown;
}

const routeGuards = new WeakMap<Request, RouteGuard>();

/**
 * The app's rate limits for the plain routes: `createApp` runs this first, so that
 * `authorizeRoute` counts every route's requests and failed keys against the same limiter as
 * `/graphql` (the gate's plugin puts the `RateLimit-*` headers on the answer).
 */
export function useRouteRateLimits(gate: RateLimitGate): Plugin {
  return {
    onRequest({ request, serverContext }) {
      routeGuards.set(request, { gate, serverContext });
    },
  };
}

function rateLimitedResponse(error: ReturnType<RateLimitGate['tooManyFailures']>) {
  const { retryAfter, limit } = error.extensions as { retryAfter: number; limit: number };
  return errorResponse(429, 'RATE_LIMITED', error.message, { extensions: { retryAfter, limit } });
}

/**
 * The request's key if it is valid, within its rate limit and has `scope`; otherwise the 401,
 * 429, 403 or 503 to answer.
 */
export async function authorizeRoute(
  authenticator: Pick<Authenticator, 'authenticate'>,
  request: Request,
  scope: string,
): Promise<{ viewer: Viewer; response?: undefined } | { viewer?: Viewer; response: Response }> {
  let viewer: Viewer | null;
  try {
    viewer = await authenticator.authenticate(request.headers.get('authorization'));
  } catch (error) {
    if (error instanceof RealmSuspendedError) return { response: errorResponse(403, 'REALM_SUSPENDED', REALM_SUSPENDED_MESSAGE) };
    if (error instanceof SessionExpiredError) {
      const expired = sessionExpiredBody(error);
      return { response: errorResponse(expired.status, expired.code, expired.message, { headers: expired.headers }) };
    }
    if (isDatabaseUnavailable(error)) return { response: serviceUnavailableResponse() };
    throw error;
  }
  const guard = routeGuards.get(request);
  if (!viewer) {
    const failures = guard && (await guard.gate.countFailure(request, guard.serverContext));
    if (guard && failures && !failures.allowed) return { response: rateLimitedResponse(guard.gate.tooManyFailures(failures)) };
    return {
      response: errorResponse(401, 'UNAUTHENTICATED', 'A valid API key is required: send "Authorization: Bearer <key>".', {
        headers: { 'www-authenticate': 'Bearer' },
      }),
    };
  }
  const state = guard && (await guard.gate.countRequest(request, viewer));
  if (guard && state && !state.allowed) return { viewer, response: rateLimitedResponse(guard.gate.overKeyLimit(state)) };
  if (!viewer.scopes.includes(scope)) {
    return {
      viewer,
      response: errorResponse(403, 'FORBIDDEN', `This needs an API key with the \`${scope}\` scope.`, { extensions: { requiredScope: scope } }),
    };
  }
  return { viewer };
}

/** What a route's log line says besides its status: who called, and fields of the route's own. */
export interface RouteNote {
  realmId?: string;
  apiKeyId?: string;
  fields?: Record<string, unknown>;
}

export interface RouteOptions<Match> {
  /** What the route answers for this URL (truthy), or nothing when it is not the route's. */
  match(url: URL): Match | undefined;
  handle(request: Request, url: URL, match: Match, note: RouteNote): Promise<Response>;
  /** The log line's message. */
  describe(line: { path: string; status: number; durationMs: number }, note: RouteNote): string;
  logger?: Logger;
  onUnexpectedError?: (error: unknown) => void;
}

/** A route as a yoga plugin: answers in `onRequest`, masks unexpected errors, logs one line. */
export function useRoute<Match>(options: RouteOptions<Match>): Plugin {
  const answer = async (request: Request, url: URL, match: Match, endResponse: (response: Response) => void) => {
    const started = performance.now();
    const note: RouteNote = {};
    let response: Response;
    try {
      response = await options.handle(request, url, match, note);
    } catch (error) {
      // Exceptions in onRequest are not caught by yoga: answer here.
      if (isDatabaseUnavailable(error)) {
        response = serviceUnavailableResponse();
      } else {
        options.onUnexpectedError?.(error);
        response = errorResponse(500, 'INTERNAL_SERVER_ERROR', 'Unexpected error.');
      }
    }
    if (options.logger) {
      const key = keyFromAuthorizationHeader(request.headers.get('authorization'));
      const line = {
        requestId: requestIdOf(request),
        path: url.pathname,
        method: request.method,
        status: response.status,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
        ...note.fields,
        apiKeyPrefix: (key && parseApiKey(key)?.prefix) ?? null,
        apiKeyId: note.apiKeyId ?? null,
        realmId: note.realmId ?? null,
      };
      options.logger[response.status >= 500 ? 'error' : 'info'](line, options.describe(line, note));
    }
    endResponse(response);
  };
  return {
    // Synchronous when the URL is not the route's: an async hook would cost every request a promise.
    onRequest({ request, url, endResponse }) {
      const match = options.match(url);
      if (match !== undefined) return answer(request, url, match, endResponse);
    },
  };
}

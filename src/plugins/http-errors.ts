import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { ExecutionResult, GraphQLError } from 'graphql';
import { createGraphQLError, processRegularResult, type Plugin } from 'graphql-yoga';
import { echo } from '../errors.js';
import { requestIdFrom, requestIdOf } from './request-id.js';

/**
 * One error contract for every route and status: a JSON body `{ errors: [{ message, extensions:
 * { code } }], extensions: { requestId } }`, and for `/graphql` the statuses of the
 * GraphQL-over-HTTP spec (README "Errors").
 */

/** What the gateway answers, for the 404's message. */
export const ROUTES = [
  'GET / (the usage console)',
  "GET /portal/<session id> (a portal session's console)",
  'POST /graphql (GET for queries)',
  'POST /ingest',
  'GET /exports/usage/monthly.csv',
  'GET /exports/usage/daily.csv',
  'GET /api/v1/usage/, /api/v1/billable-usage, /api/v1/keys/usage, /api/v1/keys/{id}/usage (described in GET /openapi.json)',
  'GET /healthz',
  'GET /metrics',
];

/** Request bodies `/graphql` reads: JSON (and yoga's `application/graphql`, the document as text). */
const GRAPHQL_REQUEST_MEDIA_TYPES = new Set(['application/json', 'application/graphql+json', 'application/graphql']);
const GRAPHQL_RESPONSE_MEDIA_TYPE = 'application/graphql-response+json';

const CODES_BY_STATUS: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  408: 'REQUEST_TIMEOUT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
  431: 'REQUEST_HEADER_FIELDS_TOO_LARGE',
  503: 'SERVICE_UNAVAILABLE',
};

export function codeForStatus(status: number): string {
  return CODES_BY_STATUS[status] ?? (status >= 500 ? 'INTERNAL_SERVER_ERROR' : 'BAD_REQUEST');
}

const UNSUPPORTED_MEDIA_TYPE_MESSAGE =
  'Send the GraphQL request as JSON: `Content-Type: application/json` with a body `{"query": "…", "variables": {…}}` (curl: -H \'content-type: application/json\').';

function messageForStatus(status: number, request: Request, url: URL, headers: Headers): string {
  switch (status) {
    case 404:
      return `No route ${request.method} ${url.pathname}. Routes: ${ROUTES.join(', ')}.`;
    case 405:
      return `${request.method} is not allowed on ${url.pathname}; use ${headers.get('allow') ?? 'another method'}.`;
    case 406:
      return `Cannot answer in the media type asked for by Accept: ask for \`application/graphql-response+json\` or \`application/json\`.`;
    case 413:
      return 'The request body is too large: send a smaller one.';
    case 415:
      return url.pathname === '/graphql' ? UNSUPPORTED_MEDIA_TYPE_MESSAGE : 'This Content-Type is not supported here: see the README for what the route takes.';
    default:
      return status >= 500 ? 'Unexpected error. Retry later; if it persists, report it with the request id.' : `${STATUS_CODES[status] ?? 'Bad request'}.`;
  }
}

/** 405 with `Allow`, for the routes that answer only some methods (`/healthz`, `/metrics`). */
export function methodNotAllowed(request: Request, url: URL, allow: string): Response {
  return new Response(errorBody(`${request.method} is not allowed on ${url.pathname}; use ${allow}.`, 'METHOD_NOT_ALLOWED', requestIdOf(request)), {
    status: 405,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', allow },
  });
}

/** The error body of the plain routes, as JSON text. */
export function errorBody(message: string, code: string, requestId: string, extensions: Record<string, unknown> = {}): string {
  return JSON.stringify({ errors: [{ message, extensions: { code, ...extensions } }], extensions: { requestId } });
}

const isJson = (contentType: string | null) => !!contentType && /^application\/([\w.+-]+\+)?json\b/i.test(contentType);

function mediaTypeOf(header: string | null): string | null {
  // Like yoga: a list of content types is not valid, but some clients send one; the first counts.
  return header?.split(',')[0]?.split(';')[0]?.trim().toLowerCase() || null;
}

/**
 * After the GraphQL-over-HTTP watershed (2025), a request without `Accept` (or with only a
 * wildcard, as curl sends) is answered as if it asked for `application/graphql-response+json`: its
 * request errors are 4xx. Only a client that names `application/json` gets the legacy 200s.
 */
function wantsGraphQLResponseJson(request: Request): boolean {
  const accept = request.headers.get('accept');
  if (!accept) return true;
  const types = accept.split(',').map((part) => part.split(';')[0]!.trim().toLowerCase());
  return !types.includes('application/json') && types.some((type) => type === '*/*' || type === 'application/*');
}

const isSingleResult = (result: unknown): result is ExecutionResult =>
  !!result && typeof result === 'object' && !Array.isArray(result) && !(Symbol.asyncIterator in result);

interface HttpExtension {
  status?: number;
  spec?: boolean;
  headers?: Record<string, string>;
}

/** yoga's and graphql-tools' request errors, reworded to say what to send instead. */
function requestErrorMessage(error: GraphQLError): { message: string; code?: string } | null {
  const { message } = error;
  if (message === 'POST body sent invalid JSON.') {
    const reason = (error.extensions?.originalError as { message?: string } | undefined)?.message;
    return {
      message: `The request body is not valid JSON${reason ? ` (${echo(reason.split(',')[0]!)})` : ''}: send {"query": "…", "variables": {…}} with \`Content-Type: application/json\`.`,
      code: 'MALFORMED_JSON',
    };
  }
  if (message.startsWith('POST body is expected to be object')) return { message: `${message}: send a JSON object {"query": "…", "variables": {…}}.` };
  if (message === 'Must provide query string.') return { message: 'The request has no `query`: send {"query": "…"} as JSON with POST, or `?query=…` with GET.' };
  if (message === 'Could not determine what operation to execute.' || message.startsWith('Must provide operation name')) {
    return { message: 'The document has several operations: send `operationName` naming the one to run.' };
  }
  if (message.startsWith('Unknown operation named')) return { message: `${message} Send as \`operationName\` the name of an operation in the document.` };
  if (message === 'Must provide an operation.') return { message: 'The document has no operation: send a query or mutation.' };
  if (message === 'Request body too large') {
    return {
      message: 'The request body is over the limit (GRAPHQL_MAX_BODY_BYTES, 1 MiB by default): send a smaller document or fewer variables, and bulk usage to POST /ingest.',
      code: 'PAYLOAD_TOO_LARGE',
    };
  }
  return null;
}

/**
 * Errors of a request that was never executed (no `data`): a code for those graphql-js leaves
 * without one (variable coercion, operation selection), and 400 under graphql-response+json (200
 * under application/json, as the spec says for well-formed requests) for the gateway's own (query
 * cost, page size). A request that is not well-formed (no query) is 400 whatever it accepts.
 */
function contractError(error: GraphQLError, executed: boolean): GraphQLError {
  const extensions: Record<string, unknown> = { ...error.extensions };
  const http = extensions.http as HttpExtension | undefined;
  let message = error.message;
  let changed = false;
  const reworded = executed ? null : requestErrorMessage(error);
  if (reworded) {
    changed = true;
    message = reworded.message;
    if (reworded.code) extensions.code = reworded.code;
    delete extensions.originalError;
  }
  if (typeof extensions.code !== 'string') {
    changed = true;
    if (/^Variable "\$/.test(error.message)) Object.assign(extensions, { code: 'BAD_USER_INPUT', reason: 'INVALID_VARIABLE' });
    else extensions.code = executed ? 'INTERNAL_SERVER_ERROR' : 'BAD_REQUEST';
  }
  if (http?.status === 405 && extensions.code === 'BAD_REQUEST') {
    changed = true;
    extensions.code = 'METHOD_NOT_ALLOWED';
  }
  if ((extensions.code === 'BAD_REQUEST' || extensions.code === 'MALFORMED_JSON') && http?.spec) {
    changed = true;
    extensions.http = { ...http, spec: false };
  } else if (!executed && !http && extensions.code !== 'INTERNAL_SERVER_ERROR' && !extensions.unexpected) {
    changed = true;
    extensions.http = { status: 400, spec: true };
  } else if (!executed && http?.status === 400 && http.spec === undefined && (extensions.reason === 'INVALID_VARIABLE' || extensions.code === 'OPERATION_RESOLUTION_FAILURE')) {
    // graphql-tools marks these 400 without `spec`: the same rule as validation errors.
    changed = true;
    extensions.http = { ...http, status: 400, spec: true };
  }
  if (!changed) return error;
  return createGraphQLError(message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions,
  });
}

/**
 * The error contract as a yoga plugin; `createApp` runs it first, so that the responses it replaces
 * are the ones later plugins (logging, metrics) see.
 */
export function useHttpErrorContract(options: { graphqlEndpoint?: string } = {}): Plugin {
  const endpoint = options.graphqlEndpoint ?? '/graphql';
  const graphqlRequests = new WeakSet<Request>();
  const shapeErrorResponse = async (request: Request, response: Response, setResponse: (response: Response) => void): Promise<void> => {
    // A GraphQL answer in JSON or as an SSE stream (subscriptions) already carries its error's code.
    if (graphqlRequests.has(request) && (isJson(response.headers.get('content-type')) || /^text\/event-stream/i.test(response.headers.get('content-type') ?? ''))) return;
    const requestId = requestIdOf(request);
    const headers = new Headers(response.headers);
    headers.delete('content-length');
    if (isJson(headers.get('content-type'))) {
      // A plain route's error body: add the request id (the body is a small JSON object).
      const text = await response.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      if (body && typeof body === 'object' && !Array.isArray(body)) {
        const extensions = (body as { extensions?: Record<string, unknown> }).extensions;
        setResponse(new Response(JSON.stringify({ ...body, extensions: { ...extensions, requestId } }), { status: response.status, headers }));
      } else {
        setResponse(new Response(text, { status: response.status, headers }));
      }
      return;
    }
    // Empty or plain-text error bodies (yoga's 404, 406 and 415, and anything else): the JSON shape.
    await response.arrayBuffer().catch(() => undefined);
    const url = new URL(request.url);
    headers.set('content-type', 'application/json; charset=utf-8');
    headers.set('cache-control', 'no-store');
    setResponse(new Response(errorBody(messageForStatus(response.status, request, url, headers), codeForStatus(response.status), requestId), { status: response.status, headers }));
  };
  return {
    onRequestParse({ request, url }) {
      if (url.pathname !== endpoint || request.method !== 'POST') return;
      const mediaType = mediaTypeOf(request.headers.get('content-type'));
      if (mediaType && GRAPHQL_REQUEST_MEDIA_TYPES.has(mediaType)) return;
      throw createGraphQLError(UNSUPPORTED_MEDIA_TYPE_MESSAGE, {
        extensions: {
          code: 'UNSUPPORTED_MEDIA_TYPE',
          contentType: mediaType && echo(mediaType),
          http: { status: 415, headers: { 'Accept-Post': 'application/json' } },
        },
      });
    },
    onResultProcess({ request, result, setResult, setResultProcessor }) {
      graphqlRequests.add(request);
      if (wantsGraphQLResponseJson(request) && !(Symbol.asyncIterator in Object(result))) {
        setResultProcessor(processRegularResult, GRAPHQL_RESPONSE_MEDIA_TYPE);
      }
      if (!isSingleResult(result) || !result.errors?.length) return;
      const executed = 'data' in result;
      const errors = result.errors.map((error) => contractError(error as GraphQLError, executed));
      if (errors.some((error, index) => error !== result.errors![index])) setResult({ ...result, errors });
    },
    // Synchronous for the answers it leaves alone: an async hook would cost every request a promise.
    onResponse({ request, response, setResponse }) {
      if (response.status < 400 || request.method === 'HEAD') return;
      return shapeErrorResponse(request, response, setResponse);
    },
  };
}

/** The 431, 400 or 408 Node answers when it cannot parse a request, as a raw HTTP/1.1 response. */
export function rawErrorResponse(status: number, message: string, requestId: string): string {
  const body = errorBody(message, codeForStatus(status), requestId);
  return [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `X-Request-Id: ${requestId}`,
    'Cache-Control: no-store',
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

const CLIENT_ERROR_ANSWERS: Record<string, { status: number; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, message: 'The request headers are too large (over 16 KiB in all): send fewer or shorter headers.' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, message: 'The request took too long to arrive: send it again.' },
  ERR_HTTP_HEADERS_TIMEOUT: { status: 408, message: 'The request headers took too long to arrive: send them again.' },
};

/**
 * `server.on('clientError', …)`: what Node would answer itself (431, 400, 408) before any request
 * exists, in the gateway's JSON error shape with a request id; `onError` logs it.
 */
export function answerClientError(onError?: (line: { status: number; code: string; requestId: string; error: string }) => void) {
  return (error: NodeJS.ErrnoException, socket: Socket) => {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const answer = CLIENT_ERROR_ANSWERS[error.code ?? ''] ?? { status: 400, message: 'The request is not valid HTTP/1.1: check the request line and headers.' };
    const requestId = requestIdFrom(null);
    onError?.({ status: answer.status, code: codeForStatus(answer.status), requestId, error: error.code ?? error.message });
    socket.end(rawErrorResponse(answer.status, answer.message, requestId));
  };
}

import { randomUUID } from 'node:crypto';
import type { ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** The header that carries a request's id, both ways (as Stripe's `Request-Id`). */
export const REQUEST_ID_HEADER = 'x-request-id';

/** A client's own id is kept when it is this plain: anything else could forge or flood log lines. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

const requestIds = new WeakMap<Request, string>();

/** The client's `X-Request-Id` when it is sane (≤ 64 of `[A-Za-z0-9._-]`), else a new UUID. */
export function requestIdFrom(header: string | null | undefined): string {
  return header && SANE_REQUEST_ID.test(header) ? header : randomUUID();
}

/** The id of `request`: the same one for every part of the gateway that asks. */
export function requestIdOf(request: Request): string {
  let id = requestIds.get(request);
  if (!id) {
    id = requestIdFrom(request.headers.get(REQUEST_ID_HEADER));
    requestIds.set(request, id);
  }
  return id;
}

const isSingleResult = (result: unknown): result is ExecutionResult =>
  !!result && typeof result === 'object' && !Array.isArray(result) && !(Symbol.asyncIterator in result);

/**
 * Every response carries `X-Request-Id`, and every GraphQL response `extensions.requestId`, so that
 * a support question can be traced to the request's log line. (Error bodies of the plain routes get
 * theirs from `useHttpErrorContract`.)
 */
export function useRequestId(): Plugin {
  return {
    onRequest({ request }) {
      requestIdOf(request);
    },
    onResultProcess({ request, result, setResult }) {
      if (!isSingleResult(result)) return;
      setResult({ ...result, extensions: { ...result.extensions, requestId: requestIdOf(request) } });
    },
    onResponse({ request, response }) {
      response.headers.set(REQUEST_ID_HEADER, requestIdOf(request));
    },
  };
}

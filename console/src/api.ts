/**
 * The console's only way to the gateway: POST /graphql and GET /exports/…, with the key in the
 * Authorization header (never in a URL). Failures are sorted into what the page says about them.
 */
import type { TypedDocumentString } from './generated.js';

export type Failure =
  | { kind: 'unauthenticated'; message: string }
  | { kind: 'rateLimited'; message: string; retryAfter: number }
  | { kind: 'unreachable'; message: string }
  | { kind: 'unavailable'; message: string; retryAfter: number }
  | { kind: 'forbidden'; message: string }
  | { kind: 'badInput'; message: string }
  | { kind: 'error'; message: string; requestId?: string };

export class RequestFailed extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}

interface GraphQLErrorShape {
  message: string;
  extensions?: { code?: string; retryAfter?: number; requiredScope?: string };
}

const KEY_STORAGE = 'usage-gateway.console.key';

/** The key lives in this tab's session storage only: gone when the tab closes, never in the URL. */
export const keyStore = {
  get: (): string | null => sessionStorage.getItem(KEY_STORAGE),
  set: (key: string) => sessionStorage.setItem(KEY_STORAGE, key),
  clear: () => sessionStorage.removeItem(KEY_STORAGE),
};

const PORTAL_TOKEN_STORAGE = 'usage-gateway.console.portal-token';

/**
 * A portal session's token arrives in the URL's fragment (`/portal/<id>#token=ugwps_…`), which no
 * request carries; it moves into this tab's session storage and the fragment is cleared, so that it
 * is not left in the address bar, the history or a bookmark.
 */
export const portalTokenStore = {
  get: (): string | null => sessionStorage.getItem(PORTAL_TOKEN_STORAGE),
  clear: () => sessionStorage.removeItem(PORTAL_TOKEN_STORAGE),
  takeFromFragment(): string | null {
    const token = new URLSearchParams(location.hash.slice(1)).get('token');
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    if (token) sessionStorage.setItem(PORTAL_TOKEN_STORAGE, token);
    return token ?? sessionStorage.getItem(PORTAL_TOKEN_STORAGE);
  },
};

function retryAfterOf(response: Response, errors: GraphQLErrorShape[] | undefined): number {
  const fromBody = errors?.find((e) => typeof e.extensions?.retryAfter === 'number')?.extensions?.retryAfter;
  const fromHeader = Number(response.headers.get('retry-after'));
  return Math.max(1, Math.ceil(fromBody ?? (Number.isFinite(fromHeader) && fromHeader > 0 ? fromHeader : 1)));
}

/** What a non-OK answer (or a GraphQL error) means for the person looking at the page. */
export function failureOf(response: Response | null, errors: GraphQLErrorShape[] | undefined, requestId?: string): Failure {
  const first = errors?.[0];
  const code = first?.extensions?.code;
  const message = first?.message ?? (response ? `The gateway answered HTTP ${response.status}.` : 'No answer.');
  // A portal session's own words: expired at when, or revoked.
  if (code === 'SESSION_EXPIRED') return { kind: 'unauthenticated', message };
  if (response?.status === 401 || code === 'UNAUTHENTICATED') {
    return { kind: 'unauthenticated', message: 'This key is not valid: it is wrong, expired or revoked. Paste a valid key.' };
  }
  if (response?.status === 429 || code === 'RATE_LIMITED') return { kind: 'rateLimited', message, retryAfter: retryAfterOf(response!, errors) };
  if (response?.status === 503 || code === 'SERVICE_UNAVAILABLE') return { kind: 'unavailable', message, retryAfter: response ? retryAfterOf(response, errors) : 1 };
  if (code === 'FORBIDDEN' || code === 'REALM_SUSPENDED' || response?.status === 403) return { kind: 'forbidden', message };
  if (code === 'BAD_USER_INPUT' || response?.status === 400) return { kind: 'badInput', message };
  return { kind: 'error', message, requestId };
}

async function send(path: string, init: RequestInit, key: string): Promise<Response> {
  try {
    return await fetch(path, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${key}` }, credentials: 'omit', cache: 'no-store' });
  } catch {
    throw new RequestFailed({ kind: 'unreachable', message: 'The gateway cannot be reached: check that it is running and your network, then retry.' });
  }
}

export async function query<Result, Variables>(
  key: string,
  document: TypedDocumentString<Result, Variables>,
  variables?: Variables,
): Promise<Result> {
  const response = await send(
    '/graphql',
    {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query: document.toString(), variables: variables ?? {} }),
    },
    key,
  );
  let body: { data?: Result | null; errors?: GraphQLErrorShape[]; extensions?: { requestId?: string } } | null = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const requestId = body?.extensions?.requestId ?? response.headers.get('x-request-id') ?? undefined;
  if (!response.ok || !body || body.errors?.length || !body.data) throw new RequestFailed(failureOf(response, body?.errors, requestId));
  return body.data;
}

/** A CSV export as a Blob: fetched with the key in a header, then saved by the browser. */
export async function downloadExport(key: string, path: string): Promise<{ blob: Blob; filename: string }> {
  const response = await send(path, { method: 'GET', headers: { accept: 'text/csv' } }, key);
  if (!response.ok) {
    let errors: GraphQLErrorShape[] | undefined;
    try {
      errors = (await response.json()).errors;
    } catch {
      errors = undefined;
    }
    throw new RequestFailed(failureOf(response, errors, response.headers.get('x-request-id') ?? undefined));
  }
  const disposition = response.headers.get('content-disposition') ?? '';
  const filename = /filename="([^"]+)"/.exec(disposition)?.[1] ?? 'usage.csv';
  return { blob: await response.blob(), filename };
}

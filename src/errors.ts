import { createGraphQLError } from 'graphql-yoga';

export type BadInputReason =
  | 'INVALID_ID'
  | 'INVALID_CURSOR'
  | 'PAGE_SIZE_TOO_LARGE'
  | 'INVALID_PAGINATION'
  | 'INVALID_TIMEFRAME'
  | 'INVALID_GRANULARITY'
  | 'INVALID_RANGE'
  | 'RANGE_TOO_LARGE'
  | 'INVALID_TIME_ZONE'
  | 'INVALID_DECIMAL'
  | 'INVALID_STRING'
  | 'TOO_MANY_EVENTS';

export function badUserInput(message: string, reason: BadInputReason, extra: Record<string, unknown> = {}) {
  return createGraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', reason, ...extra } });
}

/** One answer for every missing, malformed, unknown or revoked key: no hint of which. */
export function unauthenticated() {
  return createGraphQLError('A valid API key is required: send "Authorization: Bearer <key>".', {
    extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } } },
  });
}

export const REALM_SUSPENDED_MESSAGE = "This key's realm is suspended: every request is refused until an operator resumes it. Nothing was deleted.";

/** A valid key of a suspended realm (403 REALM_SUSPENDED on every route). */
export class RealmSuspendedError extends Error {
  constructor() {
    super(REALM_SUSPENDED_MESSAGE);
    this.name = 'RealmSuspendedError';
  }
}

export function realmSuspended() {
  return createGraphQLError(REALM_SUSPENDED_MESSAGE, { extensions: { code: 'REALM_SUSPENDED', http: { status: 403 } } });
}

/** The longest piece of a client's input that an error message repeats. */
export const MAX_ECHO_LENGTH = 100;

/** `value` as an error message may repeat it: at most MAX_ECHO_LENGTH characters, then "…". */
export function echo(value: string, max = MAX_ECHO_LENGTH): string {
  return value.length <= max ? value : `${value.slice(0, max)}…`;
}

/** `JSON.stringify(value)` for an error message, bounded like `echo`. */
export function echoJson(value: unknown, max = MAX_ECHO_LENGTH): string {
  let json: string;
  try {
    json = typeof value === 'string' ? JSON.stringify(echo(value, max)) : String(JSON.stringify(value));
  } catch {
    json = String(value);
  }
  return echo(json, max + 2);
}

/** Seconds a client waits before retrying while the database cannot be reached. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;
export const SERVICE_UNAVAILABLE_MESSAGE = 'The database cannot be reached right now; nothing was changed by this request unless it says so. Retry later.';

// Node socket errors, Prisma's "cannot reach / closed / timed out / pool timeout" codes.
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'P1001',
  'P1002',
  'P1008',
  'P1017',
  'P2024',
]);
// Driver adapter error kinds (`@prisma/driver-adapter-utils`) that mean "no working connection".
const UNAVAILABLE_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
// node-postgres errors without a code: a connection lost mid-query, the pool's connect timeout.
const UNAVAILABLE_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection closed/i;

/**
 * PostgreSQL SQLSTATEs of a lost or refused connection: class 08 except 08P01 (a protocol
 * violation is a bug, not an outage), and 57P01–57P03 (admin or crash shutdown, cannot connect now).
 */
const UNAVAILABLE_SQLSTATES = new Set(['08000', '08001', '08003', '08004', '08006', '08007', '57P01', '57P02', '57P03']);

function isUnavailableSqlState(code: unknown): boolean {
  return typeof code === 'string' && UNAVAILABLE_SQLSTATES.has(code);
}

/**
 * Whether `error` (or an error it wraps) says the database cannot be reached: PostgreSQL stopped,
 * a connection refused or cut, the pool timing out. Such a request is answered 503, not 500.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const seen = new Set<unknown>();
  const pending: unknown[] = [error];
  while (pending.length > 0) {
    const current = pending.pop();
    if (!current || typeof current !== 'object' || seen.has(current)) continue;
    seen.add(current);
    const candidate = current as {
      code?: unknown;
      kind?: unknown;
      message?: unknown;
      cause?: unknown;
      originalError?: unknown;
      errors?: unknown;
      meta?: { driverAdapterError?: unknown };
    };
    if (typeof candidate.code === 'string' && (UNAVAILABLE_CODES.has(candidate.code) || isUnavailableSqlState(candidate.code))) return true;
    if (typeof candidate.kind === 'string' && UNAVAILABLE_KINDS.has(candidate.kind)) return true;
    if (candidate.kind === 'postgres' && isUnavailableSqlState(candidate.code)) return true;
    if (current instanceof Error && UNAVAILABLE_MESSAGES.test(candidate.message as string)) return true;
    pending.push(candidate.cause, candidate.originalError, candidate.meta?.driverAdapterError);
    if (Array.isArray(candidate.errors)) pending.push(...candidate.errors);
  }
  return false;
}

/** The GraphQL answer while the database cannot be reached: HTTP 503 with Retry-After. */
export function serviceUnavailable() {
  return createGraphQLError(SERVICE_UNAVAILABLE_MESSAGE, {
    extensions: {
      code: 'SERVICE_UNAVAILABLE',
      retryAfter: DATABASE_RETRY_AFTER_SECONDS,
      http: { status: 503, headers: { 'Retry-After': String(DATABASE_RETRY_AFTER_SECONDS) } },
    },
  });
}

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

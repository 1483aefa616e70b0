import { createGraphQLError } from 'graphql-yoga';

/**
 * A portal session whose token is right but which no longer works: expired, revoked (or its creating
 * key was), or its workspace left its creator's reach. 401 SESSION_EXPIRED on every route, so that
 * the embedding page can tell its user plainly and ask its backend for a new session.
 */
export class SessionExpiredError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SessionExpiredError';
  }
}

export const SESSION_EXPIRED = 'SESSION_EXPIRED';
const WWW_AUTHENTICATE = 'Bearer error="invalid_token"';

export function sessionExpired(error: SessionExpiredError) {
  return createGraphQLError(error.message, {
    extensions: { code: SESSION_EXPIRED, http: { status: 401, headers: { 'WWW-Authenticate': WWW_AUTHENTICATE } } },
  });
}

/** The same answer for plain HTTP routes (`/exports/…`), in their JSON error shape. */
export function sessionExpiredBody(error: SessionExpiredError): { status: 401; code: string; message: string; headers: Record<string, string> } {
  return { status: 401, code: SESSION_EXPIRED, message: error.message, headers: { 'www-authenticate': WWW_AUTHENTICATE } };
}

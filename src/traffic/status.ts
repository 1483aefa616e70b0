import { Lexer, Source, TokenKind } from 'graphql';
import type { TrafficStatus } from '../generated/prisma/enums.js';

export type { TrafficStatus };
export const TRAFFIC_STATUSES = ['OK', 'CLIENT_ERROR', 'SERVER_ERROR', 'RATE_LIMITED'] as const satisfies readonly TrafficStatus[];

/** Codes of errors the server caused: masked unexpected errors (yoga's code) and anything without a code. */
const SERVER_CODES = new Set(['INTERNAL_SERVER_ERROR']);

/**
 * A request's status class from its errors' `extensions.code` (undefined: an error without a code)
 * and its HTTP status: RATE_LIMITED wins, then SERVER_ERROR, then CLIENT_ERROR (BAD_USER_INPUT,
 * FORBIDDEN, QUERY_TOO_COMPLEX, GRAPHQL_VALIDATION_FAILED, …); no error is OK.
 */
export function statusClass(errorCodes: readonly (string | undefined)[], httpStatus = 200): TrafficStatus {
  if (httpStatus === 429 || errorCodes.includes('RATE_LIMITED')) return 'RATE_LIMITED';
  if (httpStatus >= 500 || errorCodes.some((code) => code === undefined || SERVER_CODES.has(code))) return 'SERVER_ERROR';
  if (httpStatus >= 400 || errorCodes.length > 0) return 'CLIENT_ERROR';
  return 'OK';
}

export const ANONYMOUS_ENDPOINT = 'anonymous';
const MAX_ENDPOINT_LENGTH = 100;

/** The endpoint a request counts under: its operation name (cut to 100 characters), or "anonymous". */
export function endpointName(operationName: string | null | undefined): string {
  const name = operationName?.trim();
  return name ? name.slice(0, MAX_ENDPOINT_LENGTH) : ANONYMOUS_ENDPOINT;
}

const OPERATION_KEYWORDS = new Set(['query', 'mutation', 'subscription']);
/** Enough for fragments written before the operation; a longer prelude counts as "anonymous". */
const MAX_NAME_SCAN_TOKENS = 2_000;

/**
 * The name of a document's operation, read with the lexer only: requests refused before their
 * document is parsed (rate-limited, unauthenticated) still count under their endpoint. Without an
 * `operationName` parameter a document holds one operation, so the first one at the top level is it.
 */
export function operationNameOf(query: string | undefined): string | undefined {
  if (!query) return undefined;
  const lexer = new Lexer(new Source(query));
  let depth = 0;
  try {
    for (let token = lexer.advance(), seen = 0; token.kind !== TokenKind.EOF && seen < MAX_NAME_SCAN_TOKENS; token = lexer.advance(), seen++) {
      if (token.kind === TokenKind.BRACE_L) {
        if (depth === 0 && seen === 0) return undefined;
        depth++;
      } else if (token.kind === TokenKind.BRACE_R) {
        depth--;
      } else if (depth === 0 && token.kind === TokenKind.NAME && OPERATION_KEYWORDS.has(token.value)) {
        const next = lexer.advance();
        return next.kind === TokenKind.NAME ? next.value : undefined;
      }
    }
  } catch {
    // A syntax error: the request fails as such and counts as "anonymous".
  }
  return undefined;
}

import type { IncomingMessage } from 'node:http';
import type { ExecutionResult } from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import type { Viewer } from '../context.js';
import type { RateLimiter, RateLimitState } from './limiter.js';
import { requestLimit } from './limits.js';

/** What a GraphQL request costs by default (a query-cost feature may charge more). */
export const DEFAULT_REQUEST_COST = 1;

/** `extensions.rateLimit` of every response that went through the gate. */
export interface RateLimitExtension {
  limit: number;
  remaining: number;
  resetAt: string;
  cost: number;
}

export function rateLimitExtension(state: RateLimitState): RateLimitExtension {
  return { limit: state.limit, remaining: state.remaining, resetAt: state.resetAt.toISOString(), cost: state.cost };
}

/** `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds), and `Retry-After` when refused. */
export function rateLimitHeaders(state: RateLimitState): Record<string, string> {
  return {
    'RateLimit-Limit': String(state.limit),
    'RateLimit-Remaining': String(state.remaining),
    'RateLimit-Reset': String(state.resetSeconds),
    ...(state.allowed ? {} : { 'Retry-After': String(state.resetSeconds) }),
  };
}

export function rateLimited(message: string, state: RateLimitState) {
  return createGraphQLError(message, {
    extensions: {
      code: 'RATE_LIMITED',
      retryAfter: state.resetSeconds,
      limit: state.limit,
      // The headers (Retry-After, RateLimit-*) come from the plugin's onResponse, for every answer alike.
      http: { status: 429 },
    },
  });
}

/**
 * The caller's address: the first hop of `X-Forwarded-For` when present (the gateway runs behind a
 * proxy), else the socket's; in-process requests (`yoga.fetch`) without the header are 'unknown'.
 */
export function clientAddress(request: Request, serverContext: unknown): string {
  const forwarded = request.headers.get('x-forwarded-for')?.split(',')[0]?.trim();
  if (forwarded) return forwarded;
  const req = (serverContext as { req?: IncomingMessage } | undefined)?.req;
  return req?.socket?.remoteAddress ?? 'unknown';
}

const isSingleResult = (result: unknown): result is ExecutionResult =>
  !!result && typeof result === 'object' && !Array.isArray(result) && !(Symbol.asyncIterator in result);

function withRateLimit(single: ExecutionResult, state: RateLimitState): ExecutionResult {
  return { ...single, extensions: { ...single.extensions, rateLimit: rateLimitExtension(state) } };
}

/**
 * Rate limits for one app, on every route (`/graphql`, `/ingest`, the exports): per API key by its
 * plan, and failed authentications per client address. A valid key is always checked and served
 * (subject to its own limit): only further failures from an address over its limit get 429
 * instead of 401, so one tenant guessing keys behind a shared proxy locks nobody else out.
 * `plugin` puts the request's state on the response (headers and `extensions.rateLimit`).
 */
export class RateLimitGate {
  private readonly states = new WeakMap<Request, RateLimitState>();

  constructor(readonly limiter: RateLimiter) {}

  /** Counts a failed authentication of the request's address; `allowed: false` past the limit (answer 429, else 401). */
  async countFailure(request: Request, serverContext: unknown): Promise<RateLimitState> {
    const state = await this.limiter.consume(`auth-failures:${clientAddress(request, serverContext)}`, this.limiter.authFailureLimit, 1);
    this.states.set(request, state);
    return state;
  }

  /** Counts the request against its key's limit; `allowed: false` past it (answer 429). */
  async countRequest(request: Request, viewer: Viewer, cost = DEFAULT_REQUEST_COST): Promise<RateLimitState> {
    const state = await this.limiter.consume(`key:${viewer.apiKeyId}`, requestLimit(viewer.ratePlan), cost);
    this.states.set(request, state);
    return state;
  }

  /** The state counted for this request, if any. */
  stateOf(request: Request): RateLimitState | undefined {
    return this.states.get(request);
  }

  tooManyFailures(state: RateLimitState) {
    return rateLimited(`Too many requests without a valid API key from this address; retry in ${state.resetSeconds} s.`, state);
  }

  overKeyLimit(state: RateLimitState) {
    const perWindow = this.limiter.windowSeconds === 60 ? 'per minute' : `per ${this.limiter.windowSeconds} s`;
    return rateLimited(`Rate limit exceeded: this API key may make ${state.limit} requests ${perWindow}; retry in ${state.resetSeconds} s.`, state);
  }

  plugin(): Plugin {
    const states = this.states;
    return {
      onResultProcess({ request, result, setResult }) {
        const state = states.get(request);
        if (!state) return;
        if (Array.isArray(result)) setResult(result.map((single) => (isSingleResult(single) ? withRateLimit(single, state) : single)));
        else if (isSingleResult(result)) setResult(withRateLimit(result, state));
      },
      onResponse({ request, response }) {
        const state = states.get(request);
        if (!state) return;
        states.delete(request);
        const headers = response.headers;
        headers.set('RateLimit-Limit', String(state.limit));
        headers.set('RateLimit-Remaining', String(state.remaining));
        headers.set('RateLimit-Reset', String(state.resetSeconds));
        if (!state.allowed) headers.set('Retry-After', String(state.resetSeconds));
      },
    };
  }
}

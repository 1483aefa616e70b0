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

/**
 * Rate limits for one app: per API key by its plan, and failed authentications per client address.
 * The context factory calls `checkAddress` / `authenticationFailed` / `consume`; `plugin` puts the
 * resulting state on the response (headers and `extensions.rateLimit`), 429s included.
 */
export class RateLimitGate {
  private readonly states = new WeakMap<Request, RateLimitState>();

  constructor(readonly limiter: RateLimiter) {}

  /** Throws RATE_LIMITED while the address is over its failed-authentication limit (whatever key it sends now). */
  async checkAddress(request: Request, serverContext: unknown): Promise<void> {
    const state = await this.limiter.peek(this.addressKey(request, serverContext), this.limiter.authFailureLimit);
    if (state.remaining > 0) return;
    const refused = { ...state, allowed: false };
    this.states.set(request, refused);
    throw this.tooManyFailures(refused);
  }

  /** Counts a failed authentication of the address; throws RATE_LIMITED past the limit (the caller answers 401 otherwise). */
  async authenticationFailed(request: Request, serverContext: unknown): Promise<void> {
    const state = await this.limiter.consume(this.addressKey(request, serverContext), this.limiter.authFailureLimit, 1);
    this.states.set(request, state);
    if (!state.allowed) throw this.tooManyFailures(state);
  }

  /** Counts the request against the key's limit; throws RATE_LIMITED past it. */
  async consume(request: Request, viewer: Viewer, cost = DEFAULT_REQUEST_COST): Promise<RateLimitState> {
    const state = await this.limiter.consume(`key:${viewer.apiKeyId}`, requestLimit(viewer.ratePlan), cost);
    this.states.set(request, state);
    if (!state.allowed) {
      const perWindow = this.limiter.windowSeconds === 60 ? 'per minute' : `per ${this.limiter.windowSeconds} s`;
      throw rateLimited(
        `Rate limit exceeded: this API key may make ${state.limit} requests ${perWindow}; retry in ${state.resetSeconds} s.`,
        state,
      );
    }
    return state;
  }

  plugin(): Plugin {
    const states = this.states;
    return {
      onResultProcess({ request, result, setResult }) {
        const state = states.get(request);
        if (!state) return;
        const withState = (single: ExecutionResult): ExecutionResult => ({
          ...single,
          extensions: { ...single.extensions, rateLimit: rateLimitExtension(state) },
        });
        if (Array.isArray(result)) setResult(result.map((single) => (isSingleResult(single) ? withState(single) : single)));
        else if (isSingleResult(result)) setResult(withState(result));
      },
      onResponse({ request, response }) {
        const state = states.get(request);
        if (!state) return;
        states.delete(request);
        for (const [name, value] of Object.entries(rateLimitHeaders(state))) response.headers.set(name, value);
      },
    };
  }

  private addressKey(request: Request, serverContext: unknown): string {
    return `auth-failures:${clientAddress(request, serverContext)}`;
  }

  private tooManyFailures(state: RateLimitState) {
    return rateLimited(`Too many requests without a valid API key from this address; retry in ${state.resetSeconds} s.`, state);
  }
}

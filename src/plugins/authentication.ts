import type { Plugin } from 'graphql-yoga';
import type { Viewer } from '../context.js';
import { isDatabaseUnavailable, RealmSuspendedError, realmSuspended, serviceUnavailable, unauthenticated } from '../errors.js';
import type { RateLimitGate } from '../rate-limit/gate.js';
import { SessionExpiredError, sessionExpired } from '../portal/errors.js';

const viewers = new WeakMap<Request, Viewer>();

/** The key of a GraphQL request that was authenticated and within its rate limit (else undefined). */
export function requestViewer(request: Request): Viewer | undefined {
  return viewers.get(request);
}

export interface AuthenticationOptions {
  authenticate(authorization: string | null): Promise<Viewer | null>;
  rateLimit: RateLimitGate | null;
  /** Told the request's key as soon as it is known. */
  onViewer?: (request: Request, viewer: Viewer) => void;
}

/**
 * Authenticates every GraphQL request and counts it against its rate limit before its document is
 * parsed or validated: without a valid key nothing but the (size-bounded) body is read.
 */
export function useAuthenticationFirst(options: AuthenticationOptions): Plugin {
  return {
    async onParams({ request, context, setResult }) {
      let viewer: Viewer | null;
      try {
        viewer = await options.authenticate(request.headers.get('authorization'));
      } catch (error) {
        if (error instanceof RealmSuspendedError) {
          setResult({ errors: [realmSuspended()] });
          return;
        }
        if (error instanceof SessionExpiredError) {
          setResult({ errors: [sessionExpired(error)] });
          return;
        }
        if (!isDatabaseUnavailable(error)) throw error;
        setResult({ errors: [serviceUnavailable()] });
        return;
      }
      const gate = options.rateLimit;
      if (!viewer) {
        const failures = gate && (await gate.countFailure(request, context));
        setResult({ errors: [gate && failures && !failures.allowed ? gate.tooManyFailures(failures) : unauthenticated()] });
        return;
      }
      options.onViewer?.(request, viewer);
      const state = gate && (await gate.countRequest(request, viewer));
      if (gate && state && !state.allowed) {
        setResult({ errors: [gate.overKeyLimit(state)] });
        return;
      }
      viewers.set(request, viewer);
    },
  };
}

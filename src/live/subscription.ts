import type { GraphQLError } from 'graphql';
import { createGraphQLError, Repeater } from 'graphql-yoga';
import type { Plugin } from 'graphql-yoga';
import type { Context } from '../context.js';
import { outsideRecording } from '../db/statement-recorder.js';
import { REALM_SUSPENDED_MESSAGE } from '../errors.js';
import { backgroundError } from '../observability.js';
import type { RateLimiter } from '../rate-limit/limiter.js';
import { requestLimit } from '../rate-limit/limits.js';
import type { LiveEvent, LiveHub } from './hub.js';

/*
 * One subscription's stream: the hub's events of the key's realm, each narrowed to what the key
 * may see (`select`, which applies src/schema/visibility.ts) and dropped when nothing is left.
 *
 * - Rate limit: opening the stream is a request like any other (counted before it is parsed);
 *   every event pushed costs one more point of the key's window. Past the limit the stream ends
 *   with RATE_LIMITED (`retryAfter`): reconnect then and re-sync with `usageRevisions(since:)`.
 * - Revocation: the key (and its realm) is read again every `keyCheckIntervalMs` (5 s); a revoked
 *   or deleted key ends the stream with KEY_REVOKED, a suspended realm with REALM_SUSPENDED.
 * - A client that does not read: past MAX_QUEUED_EVENTS waiting events the stream ends (SLOW_CONSUMER).
 * - Shutdown: a closing hub ends every stream with SERVICE_UNAVAILABLE (reconnect).
 * An ending stream sends one last event whose `errors[0].extensions.code` says why, then `complete`.
 */

export interface LiveSetup {
  hub: LiveHub;
  rateLimiter: RateLimiter | null;
}

const LIVE = Symbol('live');

/** Makes the app's hub and rate limiter available to subscription fields (createApp adds it). */
export function useLiveSubscriptions(setup: LiveSetup): Plugin {
  return {
    onContextBuilding({ extendContext }) {
      extendContext({ [LIVE]: setup } as never);
    },
  };
}

export function liveOf(ctx: Context): LiveSetup {
  const setup = (ctx as unknown as { [LIVE]?: LiveSetup })[LIVE];
  if (!setup) throw new Error('this app has no live hub (useLiveSubscriptions)');
  return setup;
}

/** What a stream yields: an event for the field to resolve, or the reason it ends. */
export type LivePayload<T> = { value: T; end?: undefined } | { end: GraphQLError; value?: undefined };

export function keyRevoked(): GraphQLError {
  return createGraphQLError('This API key was revoked: the subscription has ended.', { extensions: { code: 'KEY_REVOKED' } });
}

function portalSessionEnded() {
  return createGraphQLError('This portal session expired or was revoked: the subscription has ended. Ask for a new session.', { extensions: { code: 'SESSION_EXPIRED' } });
}

/** The gateway process is stopping (its hub closed): reconnect, another process (or this one restarted) serves the stream. */
function stopping(): GraphQLError {
  return createGraphQLError('The gateway is stopping: reconnect, and re-sync with `usageRevisions(since:)`.', { extensions: { code: 'SERVICE_UNAVAILABLE' } });
}

/** The field's resolver: an ending payload becomes the stream's last (error) event. */
export function valueOrEnd<T>(payload: LivePayload<T>): T {
  if (payload.end) throw payload.end;
  return payload.value as T;
}

/** Events a stream may hold for a client that does not read them; past it the stream ends (SLOW_CONSUMER). */
export const MAX_QUEUED_EVENTS = 1000;

export function liveStream<T>(ctx: Context, select: (event: LiveEvent) => Promise<T | null>): AsyncIterable<LivePayload<T>> {
  const { hub, rateLimiter } = liveOf(ctx);
  const viewer = ctx.viewer;
  return new Repeater<LivePayload<T>>(async (push, stop) => {
    let ended = false;
    let chain: Promise<unknown> = Promise.resolve();
    const end = async (error: GraphQLError) => {
      if (ended) return;
      ended = true;
      await push({ end: error });
      stop();
    };
    // One event at a time, in the order heard: a slow client holds back its own stream only.
    const enqueue = (work: () => Promise<unknown>) => {
      chain = chain.then(() => (ended ? undefined : outsideRecording(work))).catch((error) => {
        backgroundError('a live subscription failed', error);
        return end(createGraphQLError('Unexpected error: the subscription has ended. Reconnect, and re-sync with `usageRevisions(since:)`.', { extensions: { code: 'INTERNAL_SERVER_ERROR' } }));
      });
    };
    let queued = 0;
    const unlisten = hub.listen((event) => {
      if (event.realmId !== viewer.realmId || ended) return;
      if (++queued > MAX_QUEUED_EVENTS) {
        void end(createGraphQLError(`More than ${MAX_QUEUED_EVENTS} events waited for this client: the subscription has ended. Reconnect, and re-sync with \`usageRevisions(since:)\`.`, { extensions: { code: 'SLOW_CONSUMER' } }));
        return;
      }
      enqueue(async () => {
        queued--;
        const value = await select(event);
        if (value == null || ended) return;
        if (rateLimiter) {
          const state = await rateLimiter.consume(`key:${viewer.apiKeyId}`, requestLimit(viewer.ratePlan), 1);
          if (!state.allowed) {
            // No HTTP status: the stream's status (200) was sent with its first byte.
            return end(
              createGraphQLError(`Rate limit exceeded: each pushed event counts as a request of this key (${state.limit} per window); the subscription has ended, reconnect in ${state.resetSeconds} s.`, {
                extensions: { code: 'RATE_LIMITED', retryAfter: state.resetSeconds, limit: state.limit },
              }),
            );
          }
        }
        await push({ value });
      });
    });
    const checkKey = async () => {
      const key = await ctx.prisma.apiKey.findUnique({ where: { id: viewer.apiKeyId }, select: { revokedAt: true, realm: { select: { suspendedAt: true } } } });
      const now = new Date();
      if (!key || (key.revokedAt && key.revokedAt <= now)) return end(keyRevoked());
      // A portal session's stream ends with the session, not only with the key that created it.
      if (viewer.portalSession) {
        const session = await ctx.prisma.portalSession.findUnique({ where: { id: viewer.portalSession.id }, select: { revokedAt: true, expiresAt: true } });
        if (!session || session.expiresAt <= now || (session.revokedAt && session.revokedAt <= now)) return end(portalSessionEnded());
      }
      if (key.realm.suspendedAt && key.realm.suspendedAt <= now) return end(createGraphQLError(REALM_SUSPENDED_MESSAGE, { extensions: { code: 'REALM_SUSPENDED' } }));
    };
    let checkQueued = false;
    const timer = setInterval(() => {
      if (checkQueued) return;
      checkQueued = true;
      enqueue(() => {
        checkQueued = false;
        return checkKey();
      });
    }, hub.keyCheckIntervalMs);
    timer.unref();
    const unclose = hub.onClose(() => void end(stopping()));
    await stop;
    ended = true;
    clearInterval(timer);
    unlisten();
    unclose();
  });
}

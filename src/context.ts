import type { PrismaClient } from './generated/prisma/client.js';
import type { RateLimitState } from './rate-limit/limiter.js';
import type { RatePlan } from './rate-limit/limits.js';

/** The authenticated caller: an API key and what it may see. */
export interface Viewer {
  apiKeyId: string;
  realmId: string;
  /** The key's workspace scope: it sees this workspace and its subtree only (null: the whole realm). */
  workspaceId: string | null;
  scopes: string[];
  /** The key's and its realm's tier and custom limit: they decide the key's rate limit. */
  ratePlan: RatePlan;
}

export interface Context {
  prisma: PrismaClient;
  viewer: Viewer;
  /** The request's clock: one instant for every field of the request. */
  now: Date;
  /** Per-request memo (DataLoaders, the realm's settings): gone with the request. */
  memo: Map<string, unknown>;
  /** This request's rate-limit window, after its cost was counted (null: the app has no rate limiter). */
  rateLimit: RateLimitState | null;
}

export function memoize<T>(ctx: Context, key: string, make: () => T): T {
  if (!ctx.memo.has(key)) ctx.memo.set(key, make());
  return ctx.memo.get(key) as T;
}

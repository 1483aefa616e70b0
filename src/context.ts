import type { PrismaClient } from './generated/prisma/client.js';
import type { IngestLog } from './ingest/log.js';
import type { RateLimitState } from './rate-limit/limiter.js';
import type { RatePlan } from './rate-limit/limits.js';

/** The authenticated caller: an API key and what it may see. */
export interface Viewer {
  /**
   * A realm's API key, an operator's key (which belongs to no realm and manages realms), or a portal
   * session (read-only, a workspace's subtree and some features; `apiKeyId` is its creating key's).
   */
  kind: 'apiKey' | 'operator' | 'portalSession';
  /** The key's id (an ApiKey's, or for operators an OperatorKey's). */
  apiKeyId: string;
  /** The key's visible prefix, for the audit log. */
  keyPrefix: string;
  /** The key's realm; for operators NO_REALM, which matches no row, so realm-internal reads find nothing. */
  realmId: string;
  /** The key's workspace scope: it sees this workspace and its subtree only (null: the whole realm). */
  workspaceId: string | null;
  scopes: string[];
  /** The key's and its realm's tier and custom limit: they decide the key's rate limit. */
  ratePlan: RatePlan;
  /** The features it may see (a portal session's); absent: all of its realm's. */
  featureIds?: readonly string[];
  /** A portal session's id and its console sections. */
  portalSession?: { id: string; sections: readonly string[]; expiresAt: Date };
}

/** An operator's `realmId`: a UUID no realm has, so that every "this realm's rows" filter is empty. */
export const NO_REALM = '00000000-0000-0000-0000-000000000000';

export function isOperator(viewer: Pick<Viewer, 'kind'>): boolean {
  return viewer.kind === 'operator';
}

export interface Context {
  prisma: PrismaClient;
  /**
   * Where report reads go (usage, billing history, traffic, exports): a query's replica when
   * DATABASE_READ_URL is set (src/db/read-replica.ts); unset: `prisma`.
   */
  readPrisma?: PrismaClient;
  /** Up to when the replica that `readPrisma` reads is complete; unset: reads are on the primary, as of `now`. */
  dataRefreshedAt?: Date;
  viewer: Viewer;
  /** The request's id (X-Request-Id), for the audit log. */
  requestId: string | null;
  /** The request's clock: one instant for every field of the request. */
  now: Date;
  /** Per-request memo (DataLoaders, the realm's settings): gone with the request. */
  memo: Map<string, unknown>;
  /** This request's rate-limit window, after its cost was counted (null: the app has no rate limiter). */
  rateLimit: RateLimitState | null;
  /** The durable ingestion log (NATS_URL): `ingestUsage` stores events there; unset: straight into the database. */
  ingestLog?: IngestLog;
}

export function memoize<T>(ctx: Context, key: string, make: () => T): T {
  if (!ctx.memo.has(key)) ctx.memo.set(key, make());
  return ctx.memo.get(key) as T;
}

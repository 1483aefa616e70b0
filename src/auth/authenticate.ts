import { timingSafeEqual } from 'node:crypto';
import { NO_REALM, type Viewer } from '../context.js';
import { RealmSuspendedError } from '../errors.js';
import { OPERATOR_SCOPE } from './scopes.js';
import { outsideRecording } from '../db/statement-recorder.js';
import type { Prisma, PrismaClient } from '../generated/prisma/client.js';
import { keyFromAuthorizationHeader, parseApiKey, secretMatches } from './api-key-secret.js';
import { authenticatePortalSession } from '../portal/authenticate.js';
import { parsePortalToken } from '../portal/token.js';

const LAST_USED_RESOLUTION_MS = 60_000;
/** Cached keys per authenticator, at most; past it the cache starts over. */
const MAX_CACHED_KEYS = 10_000;

/** When each key was last changed by this process (revoked, rotated), on the performance.now() clock. */
const keyChangedAt = new Map<string, number>();

/** Call after changing a key: every authenticator of this process drops its cached copy at once. */
export function forgetCachedKey(apiKeyId: string): void {
  keyChangedAt.set(apiKeyId, performance.now());
}

/** When each realm was last changed by this process (suspended, resumed, its tier changed). */
const realmChangedAt = new Map<string, number>();

/** Call after changing a realm (suspension, rate plan): every authenticator of this process drops its cached keys of that realm at once. */
export function forgetCachedRealm(realmId: string): void {
  realmChangedAt.set(realmId, performance.now());
}

function changedSince(record: { id: string; realmId: string }, fetchedAt: number): boolean {
  return (keyChangedAt.get(record.id) ?? -1) >= fetchedAt || (realmChangedAt.get(record.realmId) ?? -1) >= fetchedAt;
}

const KEY_SELECT = {
  id: true,
  realmId: true,
  workspaceId: true,
  scopes: true,
  secretHash: true,
  previousSecretHash: true,
  previousSecretExpiresAt: true,
  revokedAt: true,
  tier: true,
  customRateLimit: true,
  realm: { select: { tier: true, customRateLimit: true, suspendedAt: true } },
} as const;

const OPERATOR_KEY_SELECT = { id: true, secretHash: true, revokedAt: true } as const;

/** Operators are not rate limited like a tier: they get the ENTERPRISE limits. */
const OPERATOR_RATE_PLAN = { key: { tier: 'ENTERPRISE', customRateLimit: null }, realm: { tier: 'ENTERPRISE', customRateLimit: null } } as const;

/**
 * The key of a request, or null for a missing, malformed, unknown or revoked one (callers answer
 * all four alike). `lastUsedAt` is written at most once a minute per key, after the answer.
 *
 * With `cacheTtlMs` > 0 a key's row is kept that long, so most requests authenticate without SQL
 * and without hashing: the key that matched the row's hash is kept with the row, and the next
 * requests' keys are compared with it in constant time (revocation dates still apply). Changes
 * made through this process (`forgetCachedKey`, `forgetCachedRealm`: revocation, rotation, a realm
 * suspended or resumed) apply at once; changes made by another gateway process apply within the TTL.
 */
export class Authenticator {
  private lastUsedWrites = new Map<string, number>();
  private cache = new Map<string, CachedKey>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly cacheTtlMs = 0,
  ) {}

  private async findKey(prefix: string): Promise<CachedKey | null> {
    if (this.cacheTtlMs <= 0) {
      const record = await this.prisma.apiKey.findUnique({ where: { prefix }, select: KEY_SELECT });
      return record && { record, fetchedAt: performance.now() };
    }
    const cached = this.cache.get(prefix);
    const now = performance.now();
    if (cached && now - cached.fetchedAt < this.cacheTtlMs && !changedSince(cached.record, cached.fetchedAt)) return cached;
    const record = await this.prisma.apiKey.findUnique({ where: { prefix }, select: KEY_SELECT });
    // Unknown prefixes are not cached: guessing keys must not fill memory.
    if (record) {
      if (this.cache.size >= MAX_CACHED_KEYS) this.cache.clear();
      const entry = { record, fetchedAt: now };
      this.cache.set(prefix, entry);
      return entry;
    }
    this.cache.delete(prefix);
    return null;
  }

  /** Whether `key` is the cached row's current secret: compared with the key that matched its hash before (constant time), else hashed. */
  private matchesCurrentSecret(entry: CachedKey, key: string): boolean {
    const given = Buffer.from(key);
    if (entry.matchedKey) return given.length === entry.matchedKey.length && timingSafeEqual(given, entry.matchedKey);
    if (!secretMatches(key, entry.record.secretHash)) return false;
    if (this.cacheTtlMs > 0) entry.matchedKey = given;
    return true;
  }

  /**
   * Throws RealmSuspendedError for a valid key of a suspended realm (403 REALM_SUSPENDED on every
   * route): thrown rather than returned so that no caller can mistake it for a viewer.
   */
  async authenticate(authorization: string | null | undefined, now = new Date()): Promise<Viewer | null> {
    const key = keyFromAuthorizationHeader(authorization);
    // Portal sessions (`ugwps_…`) are read on every request, never cached: SessionExpiredError when expired or revoked.
    const portal = key ? parsePortalToken(key) : null;
    if (key && portal) return authenticatePortalSession(this.prisma, key, portal.prefix, now);
    const parsed = key ? parseApiKey(key) : null;
    if (!key || !parsed) return null;
    if (parsed.kind === 'operator') return this.authenticateOperator(key, parsed.prefix, now);
    const entry = await this.findKey(parsed.prefix);
    if (!entry) return null;
    const record = entry.record;
    const previousValid = !!record.previousSecretHash && !!record.previousSecretExpiresAt && record.previousSecretExpiresAt > now;
    if (!this.matchesCurrentSecret(entry, key) && !(previousValid && secretMatches(key, record.previousSecretHash!))) return null;
    if (record.revokedAt && record.revokedAt <= now) return null;
    if (record.realm.suspendedAt && record.realm.suspendedAt <= now) throw new RealmSuspendedError();
    this.noteUse(record.id, now);
    return {
      kind: 'apiKey',
      keyPrefix: parsed.prefix,
      apiKeyId: record.id,
      realmId: record.realmId,
      workspaceId: record.workspaceId,
      scopes: record.scopes,
      ratePlan: { key: { tier: record.tier, customRateLimit: record.customRateLimit }, realm: { tier: record.realm.tier, customRateLimit: record.realm.customRateLimit } },
    };
  }

  /** Operators' keys are few and rarely used: read on every request, never cached. */
  private async authenticateOperator(key: string, prefix: string, now: Date): Promise<Viewer | null> {
    const record = await this.prisma.operatorKey.findUnique({ where: { prefix }, select: OPERATOR_KEY_SELECT });
    if (!record || !secretMatches(key, record.secretHash)) return null;
    if (record.revokedAt && record.revokedAt <= now) return null;
    return { kind: 'operator', keyPrefix: prefix, apiKeyId: record.id, realmId: NO_REALM, workspaceId: null, scopes: [OPERATOR_SCOPE], ratePlan: OPERATOR_RATE_PLAN };
  }

  private noteUse(apiKeyId: string, now: Date) {
    const last = this.lastUsedWrites.get(apiKeyId) ?? 0;
    if (now.getTime() - last < LAST_USED_RESOLUTION_MS) return;
    this.lastUsedWrites.set(apiKeyId, now.getTime());
    outsideRecording(() =>
      setImmediate(() => {
        this.prisma.apiKey.update({ where: { id: apiKeyId }, data: { lastUsedAt: now } }).catch(() => {
          // Best effort: the next request retries a minute later; a lost timestamp never fails a request.
          this.lastUsedWrites.delete(apiKeyId);
        });
      }),
    );
  }
}

type KeyRecord = Prisma.ApiKeyGetPayload<{ select: typeof KEY_SELECT }>;

interface CachedKey {
  record: KeyRecord;
  fetchedAt: number;
  /**
   * The key (bytes) that matched `record.secretHash`, kept only as long as the row is cached: the
   * same key again is compared with it in constant time instead of being hashed again.
   */
  matchedKey?: Buffer;
}

import type { Viewer } from '../context.js';
import { outsideRecording } from '../db/statement-recorder.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import { keyFromAuthorizationHeader, parseApiKey, secretMatches } from './api-key-secret.js';

const LAST_USED_RESOLUTION_MS = 60_000;

/**
 * The key of a request, or null for a missing, malformed, unknown or revoked one (callers answer
 * all four alike). `lastUsedAt` is written at most once a minute per key, after the answer.
 */
export class Authenticator {
  private lastUsedWrites = new Map<string, number>();

  constructor(private readonly prisma: PrismaClient) {}

  async authenticate(authorization: string | null | undefined, now = new Date()): Promise<Viewer | null> {
    const key = keyFromAuthorizationHeader(authorization);
    const parsed = key ? parseApiKey(key) : null;
    if (!key || !parsed) return null;
    const record = await this.prisma.apiKey.findUnique({
      where: { prefix: parsed.prefix },
      select: {
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
        realm: { select: { tier: true, customRateLimit: true } },
      },
    });
    if (!record) return null;
    const previousValid = !!record.previousSecretHash && !!record.previousSecretExpiresAt && record.previousSecretExpiresAt > now;
    if (!secretMatches(key, record.secretHash) && !(previousValid && secretMatches(key, record.previousSecretHash!))) return null;
    if (record.revokedAt && record.revokedAt <= now) return null;
    this.noteUse(record.id, now);
    return {
      apiKeyId: record.id,
      realmId: record.realmId,
      workspaceId: record.workspaceId,
      scopes: record.scopes,
      ratePlan: { key: { tier: record.tier, customRateLimit: record.customRateLimit }, realm: record.realm },
    };
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

import type { Viewer } from '../context.js';
import { RealmSuspendedError } from '../errors.js';
import type { Prisma, PrismaClient } from '../generated/prisma/client.js';
import { secretMatches } from '../auth/api-key-secret.js';
import { SessionExpiredError } from './errors.js';

const SESSION_SELECT = {
  id: true,
  realmId: true,
  workspaceId: true,
  apiKeyId: true,
  secretHash: true,
  featureIds: true,
  sections: true,
  scopes: true,
  expiresAt: true,
  revokedAt: true,
  apiKey: { select: { scopes: true, workspaceId: true, revokedAt: true, tier: true, customRateLimit: true } },
  realm: { select: { tier: true, customRateLimit: true, suspendedAt: true } },
  workspace: { select: { ancestors: { select: { ancestorId: true } } } },
} as const;

export type PortalSessionRecord = Prisma.PortalSessionGetPayload<{ select: typeof SESSION_SELECT }>;

/**
 * The viewer of a portal session token, or null for an unknown prefix or a wrong secret (answered
 * like a bad key). Read on every request, never cached: a revocation applies at once, in every
 * process. A right token that no longer works throws SessionExpiredError; a suspended realm,
 * RealmSuspendedError. The session never holds more than its creating key holds now: its scopes
 * are intersected with the key's, and it fails once the key is revoked or its workspace has moved
 * out of the key's subtree. It counts against its creating key's rate limit (`apiKeyId`), and its
 * requests are recorded as that key's API traffic.
 */
export async function authenticatePortalSession(prisma: PrismaClient, token: string, prefix: string, now: Date): Promise<Viewer | null> {
  const record = await prisma.portalSession.findUnique({ where: { prefix }, select: SESSION_SELECT });
  if (!record || !secretMatches(token, record.secretHash)) return null;
  if (record.realm.suspendedAt && record.realm.suspendedAt <= now) throw new RealmSuspendedError();
  if (record.revokedAt && record.revokedAt <= now) throw new SessionExpiredError('This portal session was revoked: ask the site that opened it for a new one.');
  if (record.expiresAt <= now) throw new SessionExpiredError(`This portal session expired at ${record.expiresAt.toISOString()}: ask the site that opened it for a new one.`);
  const creator = record.apiKey;
  const withinCreator = !creator.workspaceId || record.workspace.ancestors.some((a) => a.ancestorId === creator.workspaceId);
  if ((creator.revokedAt && creator.revokedAt <= now) || !withinCreator) {
    throw new SessionExpiredError('This portal session no longer works: the key that created it was revoked or lost access to its workspace.');
  }
  return {
    kind: 'portalSession',
    apiKeyId: record.apiKeyId,
    keyPrefix: prefix,
    realmId: record.realmId,
    workspaceId: record.workspaceId,
    scopes: record.scopes.filter((scope) => creator.scopes.includes(scope) && scope !== 'keys:manage'),
    ratePlan: { key: { tier: creator.tier, customRateLimit: creator.customRateLimit }, realm: { tier: record.realm.tier, customRateLimit: record.realm.customRateLimit } },
    featureIds: record.featureIds,
    portalSession: { id: record.id, sections: record.sections, expiresAt: record.expiresAt },
  };
}

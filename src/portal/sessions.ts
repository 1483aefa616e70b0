import { actorOf, recordAudit } from '../admin/audit.js';
import { decodeInputId } from '../admin/admin-request.js';
import type { Context } from '../context.js';
import { encodeId } from '../global-id.js';
import type { PortalSession, Prisma } from '../generated/prisma/client.js';
import { visibleFeatures, visiblePortalSessions, visibleWorkspaces } from '../schema/visibility.js';
import type { UserError } from '../schema/user-error.js';
import { MAX_PORTAL_ORIGINS, normalizedOrigin } from './origins.js';
import { isPortalSection, MAX_PORTAL_SESSION_SECONDS, PORTAL_SECTIONS, portalScopes, UNAVAILABLE_SECTIONS, type PortalSection } from './sections.js';
import { newPortalToken } from './token.js';

export const MAX_PORTAL_FEATURES = 100;
/** Where the console answers a session: the HTML page carrying the realm's `frame-ancestors`. */
export const PORTAL_PATH_PREFIX = '/portal/';

export interface CreatePortalSessionInput {
  workspaceId: string;
  featureIds: readonly string[];
  sections: readonly string[];
  expiresInSeconds: number;
}

export type Outcome<T> = { ok: T } | { userErrors: UserError[] };

const failure = (field: string[], code: string, message: string): { userErrors: UserError[] } => ({ userErrors: [{ field, code, message }] });

/** A session's path: `/portal/<its global id>`; its token goes after it in the fragment, never in the path or query. */
export function portalPath(sessionId: string): string {
  return `${PORTAL_PATH_PREFIX}${encodeId('PortalSession', sessionId)}`;
}

/** What the audit log keeps of a session: never its token nor its hash. */
function auditState(session: PortalSession): Record<string, unknown> {
  return {
    prefix: session.prefix,
    workspaceId: encodeId('Workspace', session.workspaceId),
    featureIds: session.featureIds.map((id) => encodeId('Feature', id)),
    sections: session.sections,
    scopes: session.scopes,
    expiresAt: session.expiresAt,
    revokedAt: session.revokedAt,
  };
}

/** The input's sections, checked; billing sections describe the whole realm and are never a portal's. */
function checkedSections(sections: readonly string[]): PortalSection[] | { userErrors: UserError[] } {
  const known = Object.keys(PORTAL_SECTIONS).join(', ');
  if (!sections.length) return failure(['input', 'sections'], 'INVALID_SECTION', `Give at least one section: ${known}.`);
  const unknown = sections.filter((s) => !isPortalSection(s));
  if (unknown.length) {
    const unavailable = unknown.filter((s) => (UNAVAILABLE_SECTIONS as readonly string[]).includes(s));
    const why = unavailable.length ? ` (${unavailable.join(', ')}: billing describes the whole realm, and API keys need keys:manage; a portal has neither)` : '';
    return failure(['input', 'sections'], 'INVALID_SECTION', `Unknown or unavailable section(s): ${unknown.map((s) => JSON.stringify(s.slice(0, 40))).join(', ')}${why}. Portal sections are ${known}.`);
  }
  return [...new Set(sections as PortalSection[])];
}

/**
 * Creates a session for the caller's realm, in one transaction with its audit entry. The session
 * holds the scopes its sections need and the caller holds (usage:read at least, keys:manage never),
 * a workspace inside the caller's subtree, and features of the caller's realm.
 */
export async function createPortalSession(ctx: Context, input: CreatePortalSessionInput): Promise<Outcome<{ session: PortalSession; token: string }>> {
  if (ctx.viewer.kind !== 'apiKey') return failure([], 'FORBIDDEN', "Only a realm's API key creates portal sessions.");
  const seconds = input.expiresInSeconds;
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_PORTAL_SESSION_SECONDS) {
    return failure(['input', 'expiresInSeconds'], 'INVALID_EXPIRY', `A portal session lasts 1 to ${MAX_PORTAL_SESSION_SECONDS} seconds (24 hours).`);
  }
  const sections = checkedSections(input.sections);
  if ('userErrors' in sections) return sections;
  const scopes = portalScopes(sections, ctx.viewer.scopes);
  if (!scopes.includes('usage:read')) return failure(['input', 'sections'], 'SCOPE_ESCALATION', 'A portal session reads usage: the creating key needs `usage:read` itself.');
  if (!input.featureIds.length || input.featureIds.length > MAX_PORTAL_FEATURES) {
    return failure(['input', 'featureIds'], 'INVALID_FEATURES', `Give 1 to ${MAX_PORTAL_FEATURES} features: the session sees usage of those only.`);
  }
  const featureUuids = input.featureIds.map((id) => decodeInputId(String(id), 'Feature'));
  const workspaceUuid = decodeInputId(String(input.workspaceId), 'Workspace');
  return ctx.prisma.$transaction(async (tx) => {
    if (!workspaceUuid) return failure(['input', 'workspaceId'], 'NOT_FOUND', 'No such workspace.');
    const workspace = await tx.workspace.findFirst({ where: { id: workspaceUuid, AND: [visibleWorkspaces(ctx)] }, select: { id: true } });
    if (!workspace) return failure(['input', 'workspaceId'], 'NOT_FOUND', 'No such workspace (or it is outside this key\'s subtree).');
    const wanted = [...new Set(featureUuids.filter((id): id is string => !!id))];
    const found = await tx.feature.findMany({ where: { id: { in: wanted }, AND: [visibleFeatures(ctx)] }, select: { id: true } });
    const foundIds = new Set(found.map((f) => f.id));
    const missing = input.featureIds.filter((_, i) => !featureUuids[i] || !foundIds.has(featureUuids[i]!));
    if (missing.length) {
      return failure(['input', 'featureIds'], 'NOT_FOUND', `No such feature in this realm: ${missing.map((id) => JSON.stringify(String(id).slice(0, 60))).join(', ')}.`);
    }
    const fresh = newPortalToken();
    const session = await tx.portalSession.create({
      data: {
        realmId: ctx.viewer.realmId,
        workspaceId: workspace.id,
        apiKeyId: ctx.viewer.apiKeyId,
        prefix: fresh.prefix,
        secretHash: fresh.secretHash,
        featureIds: wanted,
        sections,
        scopes,
        expiresAt: new Date(ctx.now.getTime() + seconds * 1000),
      },
    });
    await recordAudit(tx, actorOf(ctx), { action: 'portalSession.create', realmId: session.realmId, targetType: 'PortalSession', targetId: session.id, before: null, after: auditState(session) });
    return { ok: { session, token: fresh.token } };
  });
}

/** Revokes a session of the caller's subtree: from the very next request, in every process (sessions are never cached). */
export async function revokePortalSession(ctx: Context, globalId: string): Promise<Outcome<PortalSession>> {
  const id = decodeInputId(globalId, 'PortalSession');
  if (!id) return failure(['id'], 'NOT_FOUND', 'No such portal session.');
  return ctx.prisma.$transaction(async (tx) => {
    const session = await tx.portalSession.findFirst({ where: { id, AND: [visiblePortalSessions(ctx)] } });
    if (!session) return failure(['id'], 'NOT_FOUND', 'No such portal session.');
    if (session.revokedAt) return { ok: session };
    const revoked = await tx.portalSession.update({ where: { id }, data: { revokedAt: ctx.now } });
    await recordAudit(tx, actorOf(ctx), { action: 'portalSession.revoke', realmId: session.realmId, targetType: 'PortalSession', targetId: id, before: { revokedAt: null }, after: { revokedAt: ctx.now } });
    return { ok: revoked };
  });
}

/** Replaces the realm's portal origins (`frame-ancestors` of /portal/… pages), audited. */
export async function setPortalOrigins(ctx: Context, origins: readonly string[]): Promise<Outcome<string[]>> {
  if (origins.length > MAX_PORTAL_ORIGINS) return failure(['origins'], 'INVALID_ORIGIN', `At most ${MAX_PORTAL_ORIGINS} origins.`);
  const normalized: string[] = [];
  for (const [index, origin] of origins.entries()) {
    const value = normalizedOrigin(origin);
    if (!value) {
      return failure(['origins', String(index)], 'INVALID_ORIGIN', `${JSON.stringify(origin.slice(0, 100))} is not an origin: give https://host[:port] (http only for localhost), without a path.`);
    }
    normalized.push(value);
  }
  const unique = [...new Set(normalized)];
  return ctx.prisma.$transaction(async (tx: Prisma.TransactionClient) => {
    const before = await tx.realm.findUniqueOrThrow({ where: { id: ctx.viewer.realmId }, select: { portalOrigins: true } });
    await tx.realm.update({ where: { id: ctx.viewer.realmId }, data: { portalOrigins: unique } });
    await recordAudit(tx, actorOf(ctx), {
      action: 'realm.setPortalOrigins',
      realmId: ctx.viewer.realmId,
      targetType: 'Realm',
      targetId: ctx.viewer.realmId,
      before: { portalOrigins: before.portalOrigins },
      after: { portalOrigins: unique },
    });
    return { ok: unique };
  });
}

import type { Viewer } from '../context.js';
import type { Prisma } from '../generated/prisma/client.js';

/** Whoever asks: a request's context, or anything else that knows the calling key's realm and workspace scope. */
export interface Caller {
  viewer: Pick<Viewer, 'realmId' | 'workspaceId' | 'featureIds'>;
}

/**
 * The one visibility rule, as Prisma filters: a key sees its own realm, and within it, when the key is
 * scoped to a workspace, that workspace's subtree (one indexed closure lookup at any depth). Every
 * path to an object (node(id), relations, usage groups, revisions, exports, ingestion dimensions)
 * goes through these; what a filter excludes does not exist for the key.
 *
 * - Workspaces, datastreams, apps and API keys belong to a workspace: a scoped key sees those of its
 *   subtree. An app or key without a workspace belongs to the realm as a whole: realm-wide keys only.
 * - Projects and features are the realm's shared catalog (they have no workspace): every key of the
 *   realm sees them; usage read through them is still limited to the key's subtree.
 * - A portal session (`featureIds`) sees only its features, and usage of those features only.
 * - Billing objects (contracts, licenses, credit grants, prices, quota rules, alerts) describe the
 *   whole realm: realm-wide keys only (`visibleBilling`).
 */
export function visibleWorkspaces(caller: Caller): Prisma.WorkspaceWhereInput {
  const { realmId, workspaceId } = caller.viewer;
  return workspaceId ? { realmId, ancestors: { some: { ancestorId: workspaceId } } } : { realmId };
}

export function visibleDatastreams(caller: Caller): Prisma.DatastreamWhereInput {
  const { realmId, workspaceId } = caller.viewer;
  return workspaceId ? { realmId, workspace: { ancestors: { some: { ancestorId: workspaceId } } } } : { realmId };
}

export function visibleApps(caller: Caller): Prisma.AppWhereInput {
  const { realmId, workspaceId } = caller.viewer;
  return workspaceId ? { realmId, workspace: { ancestors: { some: { ancestorId: workspaceId } } } } : { realmId };
}

export function visibleApiKeys(caller: Caller): Prisma.ApiKeyWhereInput {
  const { realmId, workspaceId } = caller.viewer;
  return workspaceId ? { realmId, workspace: { ancestors: { some: { ancestorId: workspaceId } } } } : { realmId };
}

/** Portal sessions belong to their workspace, like keys: a scoped key sees those of its subtree. */
export function visiblePortalSessions(caller: Caller): Prisma.PortalSessionWhereInput {
  const { realmId, workspaceId } = caller.viewer;
  return workspaceId ? { realmId, workspace: { ancestors: { some: { ancestorId: workspaceId } } } } : { realmId };
}

export function visibleProjects(caller: Caller): Prisma.ProjectWhereInput {
  return inRealm(caller);
}

/** A portal session sees only its features: their nodes, and (through `realmFacts`) every usage report and export. */
export function visibleFeatures(caller: Caller): Prisma.FeatureWhereInput {
  const { featureIds } = caller.viewer;
  return featureIds ? { ...inRealm(caller), id: { in: [...featureIds] } } : inRealm(caller);
}

/** Filters no row: what a workspace-scoped key gets for realm-wide (billing) objects. */
const NOTHING = { id: { in: [] as string[] } };

/** Billing objects with a `realmId` column: the realm's, for a realm-wide key; none for a scoped one. */
export function visibleBilling(caller: Caller): { realmId: string } | typeof NOTHING {
  return caller.viewer.workspaceId ? NOTHING : inRealm(caller);
}

export function visibleLicenses(caller: Caller): Prisma.LicenseWhereInput {
  return caller.viewer.workspaceId ? NOTHING : { contract: inRealm(caller) };
}

export function isRealmWide(caller: Caller): boolean {
  return caller.viewer.workspaceId === null;
}

export function inRealm(caller: Caller): { realmId: string } {
  return { realmId: caller.viewer.realmId };
}

/** Billing reads: `billing:read` on a realm-wide key (`billing:read` first, so that a key lacking it is told so). */
export const BILLING_SCOPES = { $all: { billingRead: true, realmWide: true } } as const;

/** Mutations of realm-wide billing state (contracts, licenses, credits, prices, quota rules): `billing:write` on a realm-wide key. */
export const BILLING_WRITE_SCOPES = { $all: { billingWrite: true, realmWide: true } } as const;

/** Mutations of the realm's structure (workspaces, datastreams, projects, apps, features): `admin:write`; a scoped key acts inside its subtree only. */
export const ADMIN_WRITE_SCOPES = { adminWrite: true } as const;

/** Mutations of the realm's shared catalog (projects, features) and other realm-wide structure: `admin:write` on a realm-wide key. */
export const REALM_ADMIN_WRITE_SCOPES = { $all: { adminWrite: true, realmWide: true } } as const;

/** Operators' fields: realms themselves. */
export const OPERATOR_SCOPES = { realmsManage: true } as const;

import type { Context } from '../context.js';
import type { Prisma } from '../generated/prisma/client.js';

/**
 * What a key may see, as Prisma filters: its own realm, and within it, when the key is scoped to a
 * workspace, that workspace's subtree (one indexed closure lookup at any depth).
 */
export function visibleWorkspaces(ctx: Context): Prisma.WorkspaceWhereInput {
  const { realmId, workspaceId } = ctx.viewer;
  return workspaceId ? { realmId, ancestors: { some: { ancestorId: workspaceId } } } : { realmId };
}

export function visibleDatastreams(ctx: Context): Prisma.DatastreamWhereInput {
  const { realmId, workspaceId } = ctx.viewer;
  return workspaceId ? { realmId, workspace: { ancestors: { some: { ancestorId: workspaceId } } } } : { realmId };
}

/** Apps without a workspace belong to the realm as a whole, so a workspace-scoped key does not see them. */
export function visibleApps(ctx: Context): Prisma.AppWhereInput {
  const { realmId, workspaceId } = ctx.viewer;
  return workspaceId ? { realmId, workspace: { ancestors: { some: { ancestorId: workspaceId } } } } : { realmId };
}

export function visibleApiKeys(ctx: Context): Prisma.ApiKeyWhereInput {
  const { realmId, workspaceId } = ctx.viewer;
  return workspaceId ? { realmId, workspace: { ancestors: { some: { ancestorId: workspaceId } } } } : { realmId };
}

export function inRealm(ctx: Context): { realmId: string } {
  return { realmId: ctx.viewer.realmId };
}

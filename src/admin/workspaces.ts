/**
 * The workspace tree's administration: create, rename, move, archive and unarchive a workspace.
 * Plain functions over a transaction, so the GraphQL mutations (src/schema/workspace-admin.ts), the
 * seed and the command line share them. Every function takes the realm's structure lock first, reads
 * only through the visibility rule (a workspace outside the caller's realm or subtree is NOT_FOUND),
 * validates everything before it writes, and appends one audit entry with what changed.
 *
 * Rules (README, "Managing the workspace tree and catalog"):
 * - names are unique among live siblings (case-insensitive; roots are siblings of each other): DUPLICATE_NAME;
 * - a tree has at most MAX_WORKSPACE_DEPTH levels, a moved subtree's height included: TOO_DEEP;
 * - a move into the moved workspace's own subtree: WOULD_CREATE_CYCLE;
 * - only a workspace without live children (workspaces, datastreams, apps) can be archived:
 *   HAS_LIVE_CHILDREN — so nothing live ever hangs below something archived, and nothing is created
 *   or moved below an archived workspace (ARCHIVED);
 * - a workspace-scoped key acts inside its subtree and never moves, archives or unarchives its own root: FORBIDDEN_TARGET.
 */
import { encodeId } from '../global-id.js';
import { MAX_WORKSPACE_DEPTH, insertWorkspace, moveSubtree, subtreeHeight } from '../db/workspace-tree.js';
import { visibleWorkspaces } from '../schema/visibility.js';
import { recordAudit } from './audit.js';
import { createIdempotently } from './idempotency.js';
import { checkName } from './names.js';
import { callerOf, failed, lockRealmStructure, nameTaken, type AdminRequest, type AdminResult, type Tx } from './admin-request.js';

export { MAX_WORKSPACE_DEPTH };

export interface CreateWorkspaceInput {
  /** The seed's deterministic ids; the API lets the database choose. */
  id?: string;
  name: string;
  /** The parent's id (null: a new root; a workspace-scoped key must give one inside its subtree). */
  parentId?: string | null;
  idempotencyKey?: string | null;
}

export interface UpdateWorkspaceInput {
  id: string;
  name: string;
}

export interface MoveWorkspaceInput {
  id: string;
  /** The new parent's id; null: the workspace becomes a root. */
  newParentId: string | null;
}

const WORKSPACE_FIELDS = { id: true, parentId: true, name: true, depth: true, archivedAt: true } as const;

interface WorkspaceState {
  name: string;
  parentId: string | null;
  depth: number;
  archivedAt: Date | null;
}

/** What the audit log keeps of a workspace (ids as the API shows them). */
function auditState(workspace: WorkspaceState): Record<string, unknown> {
  return {
    name: workspace.name,
    parentId: workspace.parentId ? encodeId('Workspace', workspace.parentId) : null,
    depth: workspace.depth,
    archivedAt: workspace.archivedAt,
  };
}

const notFound = (field: string[]) => failed(field, 'NOT_FOUND', 'No such workspace.');

function visibleWorkspace(tx: Tx, request: AdminRequest, id: string) {
  return tx.workspace.findFirst({ where: { id, AND: [visibleWorkspaces(callerOf(request))] }, select: WORKSPACE_FIELDS });
}

function audit(tx: Tx, request: AdminRequest, verb: string, id: string, before: WorkspaceState | null, after: WorkspaceState) {
  return recordAudit(tx, request.actor, {
    action: `workspace.${verb}`,
    realmId: request.realmId,
    targetType: 'Workspace',
    targetId: id,
    before: before && auditState(before),
    after: auditState(after),
  });
}

export async function createWorkspace(tx: Tx, request: AdminRequest, input: CreateWorkspaceInput): Promise<AdminResult> {
  const checked = checkName(input.name, ['input', 'name']);
  if ('error' in checked) return { userErrors: [checked.error] };
  const parentId = input.parentId ?? null;
  if (!parentId && request.workspaceId) {
    return failed(['input', 'parentId'], 'FORBIDDEN_TARGET', 'A key scoped to a workspace creates workspaces inside its subtree: give a parentId.');
  }
  return createIdempotently(
    tx,
    { scope: request.idempotencyScope, key: input.idempotencyKey, action: 'workspace.create', input: { name: input.name, parentId }, now: request.now },
    async () => {
      await lockRealmStructure(tx, request.realmId);
      let parentDepth: number | undefined;
      if (parentId) {
        const parent = await visibleWorkspace(tx, request, parentId);
        if (!parent) return notFound(['input', 'parentId']);
        if (parent.archivedAt) return failed(['input', 'parentId'], 'ARCHIVED', 'The parent workspace is archived: nothing new goes below it.');
        if (parent.depth + 1 >= MAX_WORKSPACE_DEPTH) {
          return failed(['input', 'parentId'], 'TOO_DEEP', `A workspace tree has at most ${MAX_WORKSPACE_DEPTH} levels; the parent is on the last one.`);
        }
        parentDepth = parent.depth;
      }
      if (await nameTaken(tx, 'Workspace', { realmId: request.realmId, parentId, name: checked.name })) {
        return failed(['input', 'name'], 'DUPLICATE_NAME', `A workspace named "${checked.name}" already exists ${parentId ? 'under this parent' : 'among the roots'}.`);
      }
      const workspace = await insertWorkspace(tx, { id: input.id, realmId: request.realmId, parentId, parentDepth, name: checked.name, createdAt: request.now });
      await audit(tx, request, 'create', workspace.id, null, workspace);
      return { id: workspace.id };
    },
  );
}

export async function updateWorkspace(tx: Tx, request: AdminRequest, input: UpdateWorkspaceInput): Promise<AdminResult> {
  const checked = checkName(input.name, ['input', 'name']);
  if ('error' in checked) return { userErrors: [checked.error] };
  await lockRealmStructure(tx, request.realmId);
  const workspace = await visibleWorkspace(tx, request, input.id);
  if (!workspace) return notFound(['input', 'id']);
  if (workspace.archivedAt) return failed(['input', 'id'], 'ARCHIVED', 'An archived workspace cannot be changed: unarchive it first.');
  if (workspace.name === checked.name) return { id: workspace.id };
  if (await nameTaken(tx, 'Workspace', { realmId: request.realmId, parentId: workspace.parentId, name: checked.name, exceptId: workspace.id })) {
    return failed(['input', 'name'], 'DUPLICATE_NAME', `A sibling workspace is already named "${checked.name}".`);
  }
  await tx.workspace.update({ where: { id: workspace.id }, data: { name: checked.name }, select: { id: true } });
  await audit(tx, request, 'update', workspace.id, workspace, { ...workspace, name: checked.name });
  return { id: workspace.id };
}

/**
 * Moves a workspace with its whole subtree below another workspace (or makes it a root). The
 * closure rows and depths of the subtree are rewritten by three set-based statements (moveSubtree);
 * the rest is a constant number of reads. Usage stays attributed to the workspaces it was recorded
 * for, and subtree reports follow today's tree: the new ancestors include the moved subtree's history.
 */
export async function moveWorkspace(tx: Tx, request: AdminRequest, input: MoveWorkspaceInput): Promise<AdminResult> {
  await lockRealmStructure(tx, request.realmId);
  const workspace = await visibleWorkspace(tx, request, input.id);
  if (!workspace) return notFound(['input', 'id']);
  if (workspace.id === request.workspaceId) {
    return failed(['input', 'id'], 'FORBIDDEN_TARGET', "A key scoped to a workspace cannot move its own root: that takes a key of the workspace's parent or a realm-wide key.");
  }
  if (workspace.archivedAt) return failed(['input', 'id'], 'ARCHIVED', 'An archived workspace cannot be moved: unarchive it first.');
  let newDepth = 0;
  if (input.newParentId === null) {
    if (request.workspaceId) return failed(['input', 'newParentId'], 'FORBIDDEN_TARGET', 'A key scoped to a workspace cannot make a workspace a root: it moves workspaces inside its subtree.');
  } else {
    const parent = await visibleWorkspace(tx, request, input.newParentId);
    if (!parent) return notFound(['input', 'newParentId']);
    const inSubtree = await tx.workspaceClosure.findUnique({
      where: { ancestorId_descendantId: { ancestorId: workspace.id, descendantId: parent.id } },
      select: { depth: true },
    });
    if (inSubtree) return failed(['input', 'newParentId'], 'WOULD_CREATE_CYCLE', 'A workspace cannot move below itself or one of its descendants.');
    if (parent.archivedAt) return failed(['input', 'newParentId'], 'ARCHIVED', 'The new parent is archived: nothing moves below it.');
    newDepth = parent.depth + 1;
  }
  if (workspace.parentId === input.newParentId) return { id: workspace.id };
  const height = await subtreeHeight(tx, workspace.id);
  if (newDepth + height >= MAX_WORKSPACE_DEPTH) {
    return failed(
      ['input', 'newParentId'],
      'TOO_DEEP',
      `A workspace tree has at most ${MAX_WORKSPACE_DEPTH} levels: this subtree has ${height + 1} and would start at level ${newDepth + 1}.`,
    );
  }
  if (await nameTaken(tx, 'Workspace', { realmId: request.realmId, parentId: input.newParentId, name: workspace.name, exceptId: workspace.id })) {
    return failed(['input', 'newParentId'], 'DUPLICATE_NAME', `A workspace named "${workspace.name}" already exists ${input.newParentId ? 'under the new parent' : 'among the roots'}.`);
  }
  await moveSubtree(tx, workspace.id, input.newParentId, newDepth);
  await audit(tx, request, 'move', workspace.id, workspace, { ...workspace, parentId: input.newParentId, depth: newDepth });
  return { id: workspace.id };
}

/** Hides a workspace from lists and closes it to new usage; its usage stays reportable and node(id) still answers it. */
export async function archiveWorkspace(tx: Tx, request: AdminRequest, input: { id: string }): Promise<AdminResult> {
  await lockRealmStructure(tx, request.realmId);
  const workspace = await tx.workspace.findFirst({
    where: { id: input.id, AND: [visibleWorkspaces(callerOf(request))] },
    select: {
      ...WORKSPACE_FIELDS,
      _count: { select: { children: { where: { archivedAt: null } }, datastreams: { where: { archivedAt: null } }, apps: { where: { archivedAt: null } } } },
    },
  });
  if (!workspace) return notFound(['id']);
  if (workspace.id === request.workspaceId) return failed(['id'], 'FORBIDDEN_TARGET', 'A key scoped to a workspace cannot archive its own root.');
  if (workspace.archivedAt) return failed(['id'], 'ALREADY_ARCHIVED', 'This workspace is archived already.');
  const live = workspace._count;
  if (live.children + live.datastreams + live.apps > 0) {
    return failed(
      ['id'],
      'HAS_LIVE_CHILDREN',
      `Archive what is below this workspace first: ${live.children} workspace(s), ${live.datastreams} datastream(s) and ${live.apps} app(s) are live.`,
    );
  }
  await tx.workspace.update({ where: { id: workspace.id }, data: { archivedAt: request.now }, select: { id: true } });
  await audit(tx, request, 'archive', workspace.id, workspace, { ...workspace, archivedAt: request.now });
  return { id: workspace.id };
}

/** Opens an archived workspace again (under a live parent, with a name no live sibling has taken since); a live one stays as it is. */
export async function unarchiveWorkspace(tx: Tx, request: AdminRequest, input: { id: string }): Promise<AdminResult> {
  await lockRealmStructure(tx, request.realmId);
  const workspace = await tx.workspace.findFirst({
    where: { id: input.id, AND: [visibleWorkspaces(callerOf(request))] },
    select: { ...WORKSPACE_FIELDS, parent: { select: { archivedAt: true } } },
  });
  if (!workspace) return notFound(['id']);
  if (workspace.id === request.workspaceId) return failed(['id'], 'FORBIDDEN_TARGET', 'A key scoped to a workspace cannot unarchive its own root.');
  if (!workspace.archivedAt) return { id: workspace.id };
  if (workspace.parent?.archivedAt) return failed(['id'], 'ARCHIVED', 'Its parent is archived: unarchive the parent first.');
  if (await nameTaken(tx, 'Workspace', { realmId: request.realmId, parentId: workspace.parentId, name: workspace.name, exceptId: workspace.id })) {
    return failed(['id'], 'DUPLICATE_NAME', `A live sibling is named "${workspace.name}" now: rename it first.`);
  }
  await tx.workspace.update({ where: { id: workspace.id }, data: { archivedAt: null }, select: { id: true } });
  await audit(tx, request, 'unarchive', workspace.id, workspace, { ...workspace, archivedAt: null });
  return { id: workspace.id };
}

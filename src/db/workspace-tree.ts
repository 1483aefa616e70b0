import type { Prisma, PrismaClient } from '../generated/prisma/client.js';

type Db = PrismaClient | Prisma.TransactionClient;

/** The most levels a workspace tree may have: a root is at depth 0, the deepest workspace at depth MAX_WORKSPACE_DEPTH - 1. */
export const MAX_WORKSPACE_DEPTH = 32;

export interface NewWorkspace {
  id?: string;
  realmId: string;
  parentId?: string | null;
  name: string;
  /** The parent's depth when the caller has read it already (saves reading it again). */
  parentDepth?: number;
  /** Default: the database's clock. */
  createdAt?: Date;
}

/**
 * Adds a workspace and its closure rows (itself at depth 0, then every ancestor of its parent one
 * level further: one INSERT … SELECT), so subtree reads never walk the tree. Run it inside a transaction.
 */
export async function insertWorkspace(db: Db, input: NewWorkspace) {
  const parent = input.parentId
    ? input.parentDepth !== undefined
      ? { depth: input.parentDepth }
      : await db.workspace.findFirstOrThrow({ where: { id: input.parentId, realmId: input.realmId }, select: { depth: true } })
    : null;
  const workspace = await db.workspace.create({
    data: {
      ...(input.id ? { id: input.id } : {}),
      realmId: input.realmId,
      parentId: input.parentId ?? null,
      name: input.name,
      depth: parent ? parent.depth + 1 : 0,
      ...(input.createdAt ? { createdAt: input.createdAt } : {}),
    },
  });
  await db.$executeRaw`
    INSERT INTO "WorkspaceClosure" ("ancestorId", "descendantId", "depth")
    SELECT ${workspace.id}::uuid, ${workspace.id}::uuid, 0
    UNION ALL
    SELECT "ancestorId", ${workspace.id}::uuid, "depth" + 1 FROM "WorkspaceClosure" WHERE "descendantId" = ${input.parentId ?? null}::uuid`;
  return workspace;
}

/** How many levels lie below a workspace (0 for a leaf): one indexed aggregate over its closure rows. */
export async function subtreeHeight(db: Db, workspaceId: string): Promise<number> {
  const result = await db.workspaceClosure.aggregate({ where: { ancestorId: workspaceId }, _max: { depth: true } });
  return result._max.depth ?? 0;
}

/**
 * Re-hangs a workspace and its whole subtree under `newParentId` (null: it becomes a root), in three
 * set-based statements whatever the subtree's size: the closure rows linking the subtree to its old
 * ancestors go, the rows linking it to the new parent's ancestors (the parent included) come, and
 * every node of the subtree gets its new depth (the moved workspace its new parent). Links inside
 * the subtree do not change. The caller has checked that the new parent is not inside the subtree
 * and holds the realm's structure lock; run it inside that transaction.
 */
export async function moveSubtree(db: Db, workspaceId: string, newParentId: string | null, newDepth: number): Promise<void> {
  await db.$executeRaw`
    DELETE FROM "WorkspaceClosure" c
    USING "WorkspaceClosure" sub, "WorkspaceClosure" anc
    WHERE sub."ancestorId" = ${workspaceId}::uuid AND c."descendantId" = sub."descendantId"
      AND anc."descendantId" = ${workspaceId}::uuid AND anc."ancestorId" <> ${workspaceId}::uuid AND c."ancestorId" = anc."ancestorId"`;
  if (newParentId) {
    await db.$executeRaw`
      INSERT INTO "WorkspaceClosure" ("ancestorId", "descendantId", "depth")
      SELECT p."ancestorId", s."descendantId", p."depth" + s."depth" + 1
      FROM "WorkspaceClosure" p JOIN "WorkspaceClosure" s ON s."ancestorId" = ${workspaceId}::uuid
      WHERE p."descendantId" = ${newParentId}::uuid`;
  }
  await db.$executeRaw`
    UPDATE "Workspace" w
    SET "depth" = ${newDepth}::int + s."depth",
        "parentId" = CASE WHEN w."id" = ${workspaceId}::uuid THEN ${newParentId}::uuid ELSE w."parentId" END
    FROM "WorkspaceClosure" s
    WHERE s."ancestorId" = ${workspaceId}::uuid AND w."id" = s."descendantId"`;
}

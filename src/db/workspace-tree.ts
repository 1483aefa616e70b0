import type { Prisma, PrismaClient } from '../generated/prisma/client.js';

type Db = PrismaClient | Prisma.TransactionClient;

export interface NewWorkspace {
  id?: string;
  realmId: string;
  parentId?: string | null;
  name: string;
}

/**
 * Adds a workspace and its closure rows (itself at depth 0, then every ancestor of its parent one
 * level further), so subtree reads never walk the tree. Run it inside a transaction.
 */
export async function insertWorkspace(db: Db, input: NewWorkspace) {
  const parent = input.parentId
    ? await db.workspace.findFirstOrThrow({ where: { id: input.parentId, realmId: input.realmId }, select: { depth: true } })
    : null;
  const workspace = await db.workspace.create({
    data: {
      ...(input.id ? { id: input.id } : {}),
      realmId: input.realmId,
      parentId: input.parentId ?? null,
      name: input.name,
      depth: parent ? parent.depth + 1 : 0,
    },
  });
  const ancestors = input.parentId
    ? await db.workspaceClosure.findMany({ where: { descendantId: input.parentId }, select: { ancestorId: true, depth: true } })
    : [];
  await db.workspaceClosure.createMany({
    data: [
      { ancestorId: workspace.id, descendantId: workspace.id, depth: 0 },
      ...ancestors.map((a) => ({ ancestorId: a.ancestorId, descendantId: workspace.id, depth: a.depth + 1 })),
    ],
  });
  return workspace;
}

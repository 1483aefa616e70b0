import { newApiKeySecret } from '../../src/auth/api-key-secret.js';
import { SCOPES } from '../../src/auth/scopes.js';
import { insertWorkspace } from '../../src/db/workspace-tree.js';
import type { PrismaClient } from '../../src/generated/prisma/client.js';

let counter = 0;

export const ALL_SCOPES = [...SCOPES];

export async function createRealm(prisma: PrismaClient, name = `Realm ${++counter}`) {
  return prisma.realm.create({ data: { name, slug: `${name.toLowerCase().replace(/\W+/g, '-')}-${++counter}` } });
}

export async function createKey(
  prisma: PrismaClient,
  realmId: string,
  options: { workspaceId?: string; scopes?: string[]; revokedAt?: Date } = {},
) {
  const secret = newApiKeySecret();
  const record = await prisma.apiKey.create({
    data: {
      realmId,
      name: `key ${++counter}`,
      prefix: secret.prefix,
      secretHash: secret.secretHash,
      scopes: options.scopes ?? ALL_SCOPES,
      workspaceId: options.workspaceId ?? null,
      revokedAt: options.revokedAt ?? null,
    },
  });
  return { key: secret.key, record };
}

/** A chain root → … of `depth` levels, returned root first. */
export async function createWorkspaceChain(prisma: PrismaClient, realmId: string, depth: number, prefix = 'level') {
  const chain = [];
  let parentId: string | null = null;
  for (let level = 0; level < depth; level++) {
    const workspace = await prisma.$transaction((tx) => insertWorkspace(tx, { realmId, parentId, name: `${prefix} ${level}` }));
    chain.push(workspace);
    parentId = workspace.id;
  }
  return chain;
}

/** A daily quota alert as evaluateQuotas queues it (the day starting at `periodStart`), due at `nextDeliveryAt`. */
export function createQueuedAlert(prisma: PrismaClient, realmId: string, ruleId: string, periodStart: Date, nextDeliveryAt: Date | null, message: string) {
  return prisma.alert.create({
    data: {
      realmId,
      ruleId,
      periodStart,
      periodEnd: new Date(periodStart.getTime() + 86_400_000),
      quantity: '5',
      threshold: '1',
      crossedAt: periodStart,
      message,
      nextDeliveryAt,
    },
  });
}

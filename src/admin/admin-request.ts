import type { Context } from '../context.js';
import type { Prisma } from '../generated/prisma/client.js';
import { decodeId } from '../global-id.js';
import type { UserError } from '../schema/user-error.js';
import { actorOf, SYSTEM_ACTOR, type Actor } from './audit.js';
import { idempotencyScope } from './idempotency.js';

export type Tx = Prisma.TransactionClient;

/**
 * Who asks for a structural change, and within what: the realm, the workspace subtree a scoped key is
 * limited to (null: the whole realm), the actor the audit log names, the request's clock and the
 * caller's idempotency namespace. The GraphQL mutations build it from the request (`adminRequestOf`);
 * the seed and the command line with direct database access use `systemRequest`.
 */
export interface AdminRequest {
  realmId: string;
  workspaceId: string | null;
  actor: Actor;
  now: Date;
  idempotencyScope: string;
}

export function adminRequestOf(ctx: Pick<Context, 'viewer' | 'requestId' | 'now'>): AdminRequest {
  return {
    realmId: ctx.viewer.realmId,
    workspaceId: ctx.viewer.workspaceId,
    actor: actorOf(ctx),
    now: ctx.now,
    idempotencyScope: idempotencyScope(ctx.viewer),
  };
}

export function systemRequest(realmId: string, now: Date = new Date()): AdminRequest {
  return { realmId, workspaceId: null, actor: SYSTEM_ACTOR, now, idempotencyScope: `realm:${realmId}` };
}

/** The visibility rule's caller shape (src/schema/visibility.ts) for a request. */
export function callerOf(request: AdminRequest) {
  return { viewer: { realmId: request.realmId, workspaceId: request.workspaceId } };
}

/** What a structural mutation answers: the object it created or changed, or what was wrong. */
export type AdminResult = { id: string; replayed?: boolean } | { userErrors: UserError[] };

export function failed(field: string[], code: string, message: string): { userErrors: UserError[] } {
  return { userErrors: [{ field, code, message }] };
}

/**
 * Serialises the structural changes of one realm (its workspace tree, datastreams, projects, apps):
 * a transaction-scoped advisory lock, so that checks (cycles, sibling names, "has live children")
 * and the changes they allow are never interleaved with another request's. Take it first in the
 * transaction, before reading anything the checks depend on: under READ COMMITTED every later
 * statement sees what the previous holder committed. It never blocks ingestion or reads.
 */
export async function lockRealmStructure(tx: Tx, realmId: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`realm-structure:${realmId}`}, 0))`;
}

/** A global id of the expected type, as the uuid the database stores; null for anything else (NOT_FOUND, never a hint). */
export function decodeInputId(globalId: string | null | undefined, typename: string): string | null {
  if (!globalId) return null;
  try {
    const decoded = decodeId(globalId);
    return decoded.typename === typename ? decoded.id : null;
  } catch {
    return null;
  }
}

/** Long transactions (a move of thousands of workspaces) get more than Prisma's 5 s default. */
export const ADMIN_TRANSACTION_OPTIONS = { timeout: 120_000, maxWait: 30_000 } as const;

/** Where a name must be unique among the live (not archived) rows: the table and the column holding the parent. */
const NAME_SCOPES = {
  Workspace: 'parentId',
  Datastream: 'workspaceId',
  Project: null,
  App: 'projectId',
} as const;

/**
 * Whether another live row of the realm under the same parent already has this name, compared
 * case-insensitively (`Platform` and `platform` would be confusing siblings). Archived rows free
 * their name. One statement.
 */
export async function nameTaken(
  tx: Tx,
  table: keyof typeof NAME_SCOPES,
  where: { realmId: string; parentId: string | null; name: string; exceptId?: string | null },
): Promise<boolean> {
  const parentColumn = NAME_SCOPES[table];
  const parentFilter = parentColumn ? `AND "${parentColumn}" IS NOT DISTINCT FROM $2::uuid` : 'AND $2::uuid IS NULL';
  const rows = await tx.$queryRawUnsafe<unknown[]>(
    `SELECT 1 FROM "${table}" WHERE "realmId" = $1::uuid ${parentFilter} AND "archivedAt" IS NULL AND lower("name") = lower($3) AND "id" IS DISTINCT FROM $4::uuid LIMIT 1`,
    where.realmId,
    parentColumn ? where.parentId : null,
    where.name,
    where.exceptId ?? null,
  );
  return rows.length > 0;
}

/** A structural mutation's payload before GraphQL: the object's id (null when it failed) and the user errors. */
export interface AdminPayload {
  id: string | null;
  userErrors: UserError[];
}

export function toPayload(result: AdminResult): AdminPayload {
  return 'id' in result ? { id: result.id, userErrors: [] } : { id: null, userErrors: result.userErrors };
}

/**
 * Runs one structural mutation for a request: its checks, its change and its audit entry in one
 * transaction. A user error leaves nothing behind (the functions check everything before they write).
 */
export async function runAdminMutation(
  ctx: Pick<Context, 'viewer' | 'requestId' | 'now' | 'prisma'>,
  work: (tx: Tx, request: AdminRequest) => Promise<AdminResult>,
): Promise<AdminPayload> {
  const request = adminRequestOf(ctx);
  return toPayload(await ctx.prisma.$transaction((tx) => work(tx, request), ADMIN_TRANSACTION_OPTIONS));
}

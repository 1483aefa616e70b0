import type { Context } from '../context.js';
import type { Prisma } from '../generated/prisma/client.js';

type Db = Prisma.TransactionClient;

/** Who made a change: a realm's key, an operator's key, or the system itself (the seed, the command line). */
export interface Actor {
  type: 'API_KEY' | 'OPERATOR' | 'SYSTEM';
  id: string | null;
  prefix: string | null;
  requestId: string | null;
}

export const SYSTEM_ACTOR: Actor = { type: 'SYSTEM', id: null, prefix: null, requestId: null };

export function actorOf(ctx: Pick<Context, 'viewer' | 'requestId'>): Actor {
  return {
    type: ctx.viewer.kind === 'operator' ? 'OPERATOR' : 'API_KEY',
    id: ctx.viewer.apiKeyId,
    prefix: ctx.viewer.keyPrefix,
    requestId: ctx.requestId,
  };
}

export interface AuditedChange {
  /** `<type>.<verb>`, e.g. `workspace.move`. */
  action: string;
  realmId: string | null;
  targetType: string;
  targetId: string | null;
  /** The object before the change (null: it was created). */
  before: Record<string, unknown> | null;
  /** The object after the change (null: it was removed). */
  after: Record<string, unknown> | null;
}

/** JSON-safe values: dates as ISO strings, decimals and big integers as strings. */
function auditValue(value: unknown): unknown {
  if (value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(auditValue);
  if (value !== null && typeof value === 'object') {
    if (typeof (value as { toFixed?: unknown }).toFixed === 'function' && typeof (value as { d?: unknown }).d !== 'undefined') return String(value);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, auditValue(v)]));
  }
  return value;
}

/**
 * The fields a change touched, before and after: for a creation every field of `after`, for an
 * update only the fields whose value differs. Pure, so the diff rule is tested on its own.
 */
export function changedFields(before: Record<string, unknown> | null, after: Record<string, unknown> | null): { before: Record<string, unknown> | null; after: Record<string, unknown> | null } {
  const b = before && (auditValue(before) as Record<string, unknown>);
  const a = after && (auditValue(after) as Record<string, unknown>);
  if (!b || !a) return { before: b, after: a };
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].filter((key) => JSON.stringify(b[key] ?? null) !== JSON.stringify(a[key] ?? null));
  return { before: Object.fromEntries(keys.map((k) => [k, b[k] ?? null])), after: Object.fromEntries(keys.map((k) => [k, a[k] ?? null])) };
}

/**
 * Appends one entry to the audit log. Call it inside the transaction that makes the change, so the
 * change and its entry are written together or not at all.
 */
export async function recordAudit(db: Db, actor: Actor, change: AuditedChange): Promise<void> {
  await db.auditEntry.create({
    data: {
      realmId: change.realmId,
      actorType: actor.type,
      actorId: actor.id,
      actorPrefix: actor.prefix,
      action: change.action,
      targetType: change.targetType,
      targetId: change.targetId,
      changes: changedFields(change.before, change.after) as Prisma.InputJsonValue,
      requestId: actor.requestId,
    },
  });
}

import { createHash } from 'node:crypto';
import type { Prisma } from '../generated/prisma/client.js';
import type { UserError } from '../schema/user-error.js';

type Db = Prisma.TransactionClient;

/** How long an idempotency key is remembered (Stripe keeps its keys 24 h; we keep them longer). */
export const IDEMPOTENCY_KEY_RETENTION_MS = 7 * 24 * 3_600_000;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** The caller's namespace of idempotency keys: a realm's keys share one, the operators another. */
export function idempotencyScope(viewer: { kind: 'apiKey' | 'operator' | 'portalSession'; realmId: string }): string {
  return viewer.kind === 'operator' ? 'operators' : `realm:${viewer.realmId}`;
}

/** JSON with sorted object keys: the same input always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (value === undefined || value === null) return 'null';
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (typeof value === 'bigint') return JSON.stringify(value.toString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    if (typeof (value as { toFixed?: unknown }).toFixed === 'function') return JSON.stringify(String(value));
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function inputHash(action: string, input: unknown): string {
  return createHash('sha256').update(action).update('\0').update(canonicalJson(input)).digest('hex');
}

export function idempotencyKeyProblem(key: string, field: string[] = ['input', 'idempotencyKey']): UserError | null {
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH || /[\u0000-\u001f\u007f]/.test(key)) {
    return { field, code: 'INVALID_IDEMPOTENCY_KEY', message: `An idempotency key is 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable characters.` };
  }
  return null;
}

export type Created = { id: string } | { userErrors: UserError[] };

export interface IdempotentRequest {
  scope: string;
  /** The client's key; null or undefined: no idempotency, just create. */
  key: string | null | undefined;
  /** The mutation, e.g. `workspace.create`: a key reused for another mutation is a mismatch. */
  action: string;
  /** The mutation's input as received (ids as the client sent them). */
  input: unknown;
  now: Date;
}

/**
 * Runs `create` once per idempotency key: the same key and input again answers the object created the
 * first time (`replayed`), without creating or auditing anything; the same key with another input or
 * mutation is IDEMPOTENCY_MISMATCH. Run it inside the mutation's transaction: concurrent requests
 * with one key wait for each other (an advisory lock), and a create that fails records nothing.
 */
export async function createIdempotently(db: Db, request: IdempotentRequest, create: () => Promise<Created>): Promise<Created & { replayed?: boolean }> {
  if (request.key === null || request.key === undefined) return create();
  const problem = idempotencyKeyProblem(request.key);
  if (problem) return { userErrors: [problem] };
  const hash = inputHash(request.action, request.input);
  await db.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`${request.scope}\n${request.key}`}, 0))`;
  const existing = await db.idempotencyRecord.findUnique({ where: { scope_key: { scope: request.scope, key: request.key } } });
  const fresh = existing && existing.createdAt.getTime() > request.now.getTime() - IDEMPOTENCY_KEY_RETENTION_MS;
  if (existing && fresh) {
    if (existing.inputHash === hash) return { id: existing.resultId, replayed: true };
    return {
      userErrors: [
        {
          field: ['input', 'idempotencyKey'],
          code: 'IDEMPOTENCY_MISMATCH',
          message: `This idempotency key was used ${existing.action === request.action ? 'with another input' : `for ${existing.action}`}: use a new key for a new request.`,
        },
      ],
    };
  }
  const created = await create();
  if ('id' in created) {
    const record = { action: request.action, inputHash: hash, resultId: created.id, createdAt: request.now };
    await db.idempotencyRecord.upsert({ where: { scope_key: { scope: request.scope, key: request.key } }, create: { scope: request.scope, key: request.key, ...record }, update: record });
  }
  return created;
}

/**
 * Realms themselves, as operators manage them: create (with the realm's first realm-wide admin key),
 * update, suspend and resume. Plain functions over a transaction, so that the GraphQL mutations
 * (src/schema/realm-admin.ts), the seed and scripts share them. Each validates everything before it
 * writes and appends an audit entry whose realm is the realm concerned.
 *
 * Rules (README, "Operators and realms"):
 * - a slug is 3 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or a
 *   digit (SLUG_PATTERN), unique among all realms (DUPLICATE_KEY); it never changes once the realm exists;
 * - the time zone is an IANA name (INVALID_TIME_ZONE);
 * - a custom rate limit (1 to 1,000,000 requests per minute) is only for ENTERPRISE realms: the
 *   other tiers have fixed limits (src/rate-limit/limits.ts), so one given with them is INVALID_RATE_LIMIT;
 * - suspending keeps everything; the realm's keys are refused (403 REALM_SUSPENDED) until it is resumed.
 */
import { newApiKeySecret, type NewApiKeySecret } from '../auth/api-key-secret.js';
import { SCOPES } from '../auth/scopes.js';
import type { Prisma } from '../generated/prisma/client.js';
import type { Tier } from '../generated/prisma/enums.js';
import type { UserError } from '../schema/user-error.js';
import { isTimeZone } from '../usage/time.js';
import { recordAudit, SYSTEM_ACTOR, type Actor } from './audit.js';
import { createIdempotently } from './idempotency.js';
import { checkName } from './names.js';

type Tx = Prisma.TransactionClient;

export const SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
export const MAX_CUSTOM_RATE_LIMIT = 1_000_000;
/** The name of the key createRealm makes. */
export const FIRST_ADMIN_KEY_NAME = 'admin';

/** Who asks: an operator's key (or the system: the seed, scripts), the request's clock, the idempotency namespace. */
export interface OperatorRequest {
  actor: Actor;
  now: Date;
  idempotencyScope: string;
}

export function systemOperatorRequest(now: Date = new Date()): OperatorRequest {
  return { actor: SYSTEM_ACTOR, now, idempotencyScope: 'operators' };
}

export interface CreateRealmInput {
  /** The seed's deterministic ids; the API lets the database choose. */
  id?: string;
  name: string;
  slug: string;
  /** Default UTC. */
  timeZone?: string | null;
  /** Default FREE. */
  tier?: Tier | null;
  customRateLimit?: number | null;
  idempotencyKey?: string | null;
}

export interface UpdateRealmInput {
  id: string;
  name?: string | null;
  timeZone?: string | null;
  tier?: Tier | null;
  /** Absent: unchanged; null: removed. */
  customRateLimit?: number | null;
}

export type RealmResult = { id: string; replayed?: boolean } | { userErrors: UserError[] };

export interface CreatedRealm {
  id: string;
  adminKeyId: string;
  /** The admin key's whole secret: null when the answer is a replay (it was shown once, the first time). */
  adminKeySecret: string | null;
  replayed: boolean;
}

const failed = (field: string[], code: string, message: string) => ({ userErrors: [{ field, code, message }] });

export function slugProblem(slug: string): UserError | null {
  if (SLUG_PATTERN.test(slug)) return null;
  return {
    field: ['input', 'slug'],
    code: 'INVALID_KEY',
    message: 'A slug is 3 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or a digit (e.g. "acme-analytics").',
  };
}

function timeZoneProblem(timeZone: string): UserError | null {
  return isTimeZone(timeZone) ? null : { field: ['input', 'timeZone'], code: 'INVALID_TIME_ZONE', message: 'Not a known IANA time zone (e.g. "Europe/Berlin", "UTC").' };
}

/** The tier and custom limit a realm would have: only ENTERPRISE has a custom limit. */
function ratePlanProblem(tier: Tier, customRateLimit: number | null): UserError | null {
  if (customRateLimit === null) return null;
  if (!Number.isInteger(customRateLimit) || customRateLimit < 1 || customRateLimit > MAX_CUSTOM_RATE_LIMIT) {
    return { field: ['input', 'customRateLimit'], code: 'INVALID_RATE_LIMIT', message: `A custom rate limit is 1 to ${MAX_CUSTOM_RATE_LIMIT.toLocaleString('en')} requests per minute.` };
  }
  if (tier !== 'ENTERPRISE') {
    return {
      field: ['input', 'customRateLimit'],
      code: 'INVALID_RATE_LIMIT',
      message: `Only ENTERPRISE realms have a custom rate limit; ${tier} has a fixed one. Give tier: ENTERPRISE, or customRateLimit: null.`,
    };
  }
  return null;
}

const REALM_FIELDS = { id: true, name: true, slug: true, timeZone: true, tier: true, customRateLimit: true, suspendedAt: true } as const;
type RealmState = Prisma.RealmGetPayload<{ select: typeof REALM_FIELDS }>;

function auditState({ id: _id, ...state }: RealmState): Record<string, unknown> {
  return state;
}

function audit(tx: Tx, request: OperatorRequest, verb: string, before: RealmState | null, after: RealmState) {
  return recordAudit(tx, request.actor, { action: `realm.${verb}`, realmId: after.id, targetType: 'Realm', targetId: after.id, before: before && auditState(before), after: auditState(after) });
}

/** The realms' unique slug index refused a row (a concurrent create of the same slug won). */
function isDuplicateSlug(error: unknown): boolean {
  const { code, meta, message } = (error ?? {}) as { code?: string; meta?: unknown; message?: string };
  const unique = code === 'P2002' || /unique constraint/i.test(String(message));
  return unique && /slug/i.test(`${JSON.stringify(meta ?? null)} ${message}`);
}

export const duplicateSlug = (slug: string) => failed(['input', 'slug'], 'DUPLICATE_KEY', `A realm with the slug "${slug}" exists already: slugs are unique.`);

/**
 * Creates a realm and its first key: realm-wide, with every scope a realm's key can hold
 * (SCOPES; never `realms:manage`). Its secret is in the answer once; a replay (the same
 * idempotency key and input) answers the same realm and key without the secret.
 * `options.adminKey`: a fixed secret and name (the demo seed's public demo key).
 */
export async function createRealm(
  tx: Tx,
  request: OperatorRequest,
  input: CreateRealmInput,
  options: { adminKey?: { id?: string; name?: string; secret?: NewApiKeySecret } } = {},
): Promise<CreatedRealm | { userErrors: UserError[] }> {
  const checked = checkName(input.name, ['input', 'name']);
  if ('error' in checked) return { userErrors: [checked.error] };
  const timeZone = input.timeZone ?? 'UTC';
  const tier = input.tier ?? 'FREE';
  const customRateLimit = input.customRateLimit ?? null;
  const problem = slugProblem(input.slug) ?? timeZoneProblem(timeZone) ?? ratePlanProblem(tier, customRateLimit);
  if (problem) return { userErrors: [problem] };
  let secret: string | null = null;
  let adminKeyId: string | null = null;
  const result = await createIdempotently(
    tx,
    { scope: request.idempotencyScope, key: input.idempotencyKey, action: 'realm.create', input: { name: input.name, slug: input.slug, timeZone, tier, customRateLimit }, now: request.now },
    async () => {
      if (await tx.realm.findUnique({ where: { slug: input.slug }, select: { id: true } })) return duplicateSlug(input.slug);
      const realm = await tx.realm.create({
        data: { ...(input.id ? { id: input.id } : {}), name: checked.name, slug: input.slug, timeZone, tier, customRateLimit, createdAt: request.now },
        select: REALM_FIELDS,
      });
      await audit(tx, request, 'create', null, realm);
      const fresh = options.adminKey?.secret ?? newApiKeySecret();
      const key = await tx.apiKey.create({
        data: {
          ...(options.adminKey?.id ? { id: options.adminKey.id } : {}),
          realmId: realm.id,
          name: options.adminKey?.name ?? FIRST_ADMIN_KEY_NAME,
          prefix: fresh.prefix,
          secretHash: fresh.secretHash,
          scopes: [...SCOPES],
          createdAt: request.now,
        },
        select: { id: true, name: true, prefix: true, scopes: true },
      });
      await recordAudit(tx, request.actor, { action: 'apiKey.create', realmId: realm.id, targetType: 'ApiKey', targetId: key.id, before: null, after: { name: key.name, prefix: key.prefix, scopes: key.scopes, workspaceId: null, tier: null, customRateLimit: null } });
      secret = fresh.key;
      adminKeyId = key.id;
      return { id: realm.id };
    },
  );
  if ('userErrors' in result) return result;
  if (!adminKeyId) {
    // A replay: the key made with the realm is its first one.
    const first = await tx.apiKey.findFirst({ where: { realmId: result.id }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], select: { id: true } });
    adminKeyId = first?.id ?? null;
  }
  if (!adminKeyId) throw new Error(`realm ${result.id} has no key`);
  return { id: result.id, adminKeyId, adminKeySecret: secret, replayed: !!result.replayed };
}

/** Runs createRealm in its own transaction; a slug taken by a concurrent create (the unique index) is DUPLICATE_KEY too. */
export async function createRealmInTransaction(
  prisma: { $transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> },
  request: OperatorRequest,
  input: CreateRealmInput,
  options: Parameters<typeof createRealm>[3] = {},
): Promise<CreatedRealm | { userErrors: UserError[] }> {
  try {
    return await prisma.$transaction((tx) => createRealm(tx, request, input, options));
  } catch (error) {
    if (isDuplicateSlug(error)) return duplicateSlug(input.slug);
    throw error;
  }
}

export async function updateRealm(tx: Tx, request: OperatorRequest, input: UpdateRealmInput): Promise<RealmResult> {
  let name: string | undefined;
  if (input.name !== undefined && input.name !== null) {
    const checked = checkName(input.name, ['input', 'name']);
    if ('error' in checked) return { userErrors: [checked.error] };
    name = checked.name;
  }
  if (input.timeZone !== undefined && input.timeZone !== null) {
    const problem = timeZoneProblem(input.timeZone);
    if (problem) return { userErrors: [problem] };
  }
  const realm = await tx.realm.findUnique({ where: { id: input.id }, select: REALM_FIELDS });
  if (!realm) return failed(['input', 'id'], 'NOT_FOUND', 'No such realm.');
  const tier = input.tier ?? realm.tier;
  const customRateLimit = input.customRateLimit === undefined ? realm.customRateLimit : input.customRateLimit;
  const problem = ratePlanProblem(tier, customRateLimit);
  if (problem) {
    if (input.customRateLimit === undefined) {
      return failed(['input', 'tier'], 'INVALID_RATE_LIMIT', `This realm has a custom rate limit, which only ENTERPRISE keeps: give customRateLimit: null to move it to ${tier}.`);
    }
    return { userErrors: [problem] };
  }
  const after: RealmState = { ...realm, name: name ?? realm.name, timeZone: input.timeZone ?? realm.timeZone, tier, customRateLimit };
  if (JSON.stringify(after) === JSON.stringify(realm)) return { id: realm.id };
  await tx.realm.update({ where: { id: realm.id }, data: { name: after.name, timeZone: after.timeZone, tier, customRateLimit }, select: { id: true } });
  await audit(tx, request, 'update', realm, after);
  return { id: realm.id };
}

/**
 * Suspends or resumes a realm. Suspending an already suspended realm (or resuming an active one)
 * changes nothing and writes no entry: the answer is the realm as it is.
 */
export async function setRealmSuspended(tx: Tx, request: OperatorRequest, input: { id: string; suspended: boolean }): Promise<RealmResult> {
  const realm = await tx.realm.findUnique({ where: { id: input.id }, select: REALM_FIELDS });
  if (!realm) return failed(['id'], 'NOT_FOUND', 'No such realm.');
  if (!!realm.suspendedAt === input.suspended) return { id: realm.id };
  const suspendedAt = input.suspended ? request.now : null;
  await tx.realm.update({ where: { id: realm.id }, data: { suspendedAt }, select: { id: true } });
  await audit(tx, request, input.suspended ? 'suspend' : 'resume', realm, { ...realm, suspendedAt });
  return { id: realm.id };
}

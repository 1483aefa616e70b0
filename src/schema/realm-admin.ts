/**
 * Operators' GraphQL fields: `realms`, `createRealm`, `updateRealm`, `suspendRealm`, `resumeRealm`.
 * Thin wrappers over src/admin/realms.ts: each mutation is one transaction (the checks, the change,
 * its audit entry); a suspension or a new rate plan reaches this process's key cache at once.
 */
import { actorOf } from '../admin/audit.js';
import { idempotencyScope } from '../admin/idempotency.js';
import { createRealmInTransaction, setRealmSuspended, updateRealm, type OperatorRequest } from '../admin/realms.js';
import { forgetCachedRealm } from '../auth/authenticate.js';
import { SCOPES } from '../auth/scopes.js';
import { builder } from '../builder.js';
import type { Context } from '../context.js';
import type { Prisma } from '../generated/prisma/client.js';
import type { Tier } from '../generated/prisma/enums.js';
import { decodeId } from '../global-id.js';
import { TierEnum } from './enums.js';
import { UserErrorRef, type UserError } from './user-error.js';
import { OPERATOR_SCOPES } from './visibility.js';

function operatorRequest(ctx: Context): OperatorRequest {
  return { actor: actorOf(ctx), now: ctx.now, idempotencyScope: idempotencyScope(ctx.viewer) };
}

/** A Realm's global id as its uuid; null for anything else (NOT_FOUND, like an unknown realm). */
function realmIdOf(globalId: string): string | null {
  try {
    const decoded = decodeId(globalId);
    return decoded.typename === 'Realm' ? decoded.id : null;
  } catch {
    return null;
  }
}

interface RealmPayloadShape {
  realmId: string | null;
  userErrors: UserError[];
}

interface CreateRealmPayloadShape extends RealmPayloadShape {
  adminKeyId: string | null;
  adminKeySecret: string | null;
}

const RealmPayload = builder.objectRef<RealmPayloadShape>('RealmPayload').implement({
  fields: (t) => ({
    realm: t.prismaField({
      type: 'Realm',
      nullable: true,
      resolve: (query, payload, _args, ctx) => (payload.realmId ? ctx.prisma.realm.findUnique({ ...query, where: { id: payload.realmId } }) : null),
    }),
    userErrors: t.expose('userErrors', { type: [UserErrorRef] }),
  }),
});

const CreateRealmPayload = builder.objectRef<CreateRealmPayloadShape>('CreateRealmPayload').implement({
  fields: (t) => ({
    realm: t.prismaField({
      type: 'Realm',
      nullable: true,
      resolve: (query, payload, _args, ctx) => (payload.realmId ? ctx.prisma.realm.findUnique({ ...query, where: { id: payload.realmId } }) : null),
    }),
    adminKey: t.prismaField({
      type: 'ApiKey',
      nullable: true,
      description: `The realm's first key: realm-wide, with every scope a realm's key can hold (${SCOPES.join(', ')}).`,
      resolve: (query, payload, _args, ctx) => (payload.adminKeyId ? ctx.prisma.apiKey.findUnique({ ...query, where: { id: payload.adminKeyId } }) : null),
    }),
    adminKeySecret: t.exposeString('adminKeySecret', {
      nullable: true,
      description:
        "The admin key's whole secret, shown this once: hand it to the realm's administrator. Null when the answer is a replay " +
        '(the same `idempotencyKey` and input again): the realm and key are the ones created the first time, whose answer held the secret.',
    }),
    userErrors: t.expose('userErrors', { type: [UserErrorRef] }),
  }),
});

const failedPayload = (userErrors: UserError[]): CreateRealmPayloadShape => ({ realmId: null, adminKeyId: null, adminKeySecret: null, userErrors });

const CreateRealmInput = builder.inputType('CreateRealmInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: '1 to 200 characters.' }),
    slug: t.string({
      required: true,
      description: 'The realm\'s permanent handle: 3 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or a digit; unique (DUPLICATE_KEY). It cannot change later.',
    }),
    timeZone: t.string({ description: 'IANA time zone usage buckets align to by default (default "UTC"); unknown: INVALID_TIME_ZONE.' }),
    tier: t.field({ type: TierEnum, description: 'Default FREE.' }),
    customRateLimit: t.int({ description: 'Requests per minute, 1 to 1,000,000: ENTERPRISE realms only (else INVALID_RATE_LIMIT).' }),
    idempotencyKey: t.string({
      description:
        'Makes a retry safe: the same key with the same input again answers the realm created the first time (with `adminKeySecret: null`); with another input it is IDEMPOTENCY_MISMATCH. Kept 7 days.',
    }),
  }),
});

const UpdateRealmInput = builder.inputType('UpdateRealmInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string(),
    timeZone: t.string({ description: 'IANA time zone; unknown: INVALID_TIME_ZONE. Usage already recorded is kept in UTC hours: reports simply align to the new zone.' }),
    tier: t.field({ type: TierEnum, description: "The realm's tier; it sets the rate limit of its keys that have none of their own." }),
    customRateLimit: t.int({
      description: 'Requests per minute (ENTERPRISE only); null removes it (needed when moving an ENTERPRISE realm with a custom limit to another tier). Absent: unchanged.',
    }),
  }),
  description: 'Fields left out are unchanged. A slug never changes: it is the realm\'s permanent handle.',
});

builder.mutationField('createRealm', (t) =>
  t.field({
    type: CreateRealmPayload,
    description: "Operators only (`realms:manage`): creates a realm and its first realm-wide admin key, whose secret is in the answer once.",
    authScopes: OPERATOR_SCOPES,
    args: { input: t.arg({ type: CreateRealmInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const created = await createRealmInTransaction(ctx.prisma, operatorRequest(ctx), {
        name: input.name,
        slug: input.slug,
        timeZone: input.timeZone,
        tier: input.tier as Tier | null | undefined,
        customRateLimit: input.customRateLimit,
        idempotencyKey: input.idempotencyKey,
      });
      if ('userErrors' in created) return failedPayload(created.userErrors);
      return { realmId: created.id, adminKeyId: created.adminKeyId, adminKeySecret: created.adminKeySecret, userErrors: [] };
    },
  }),
);

builder.mutationField('updateRealm', (t) =>
  t.field({
    type: RealmPayload,
    description: "Operators only: renames a realm, or changes its time zone, tier or custom rate limit (its keys' limits follow at once in this gateway process).",
    authScopes: OPERATOR_SCOPES,
    args: { input: t.arg({ type: UpdateRealmInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const id = realmIdOf(String(input.id));
      if (!id) return { realmId: null, userErrors: [{ field: ['input', 'id'], code: 'NOT_FOUND', message: 'No such realm.' }] };
      const result = await ctx.prisma.$transaction((tx) =>
        updateRealm(tx, operatorRequest(ctx), {
          id,
          name: input.name,
          timeZone: input.timeZone,
          tier: input.tier as Tier | null | undefined,
          ...(input.customRateLimit !== undefined ? { customRateLimit: input.customRateLimit } : {}),
        }),
      );
      if ('userErrors' in result) return { realmId: null, userErrors: result.userErrors };
      forgetCachedRealm(result.id);
      return { realmId: result.id, userErrors: [] };
    },
  }),
);

for (const [field, suspended] of [
  ['suspendRealm', true],
  ['resumeRealm', false],
] as const) {
  builder.mutationField(field, (t) =>
    t.field({
      type: RealmPayload,
      description: suspended
        ? "Operators only: suspends a realm. Its keys get 403 REALM_SUSPENDED on every route (GraphQL, /ingest, /exports) from this gateway process's next request, and within AUTH_CACHE_TTL_MS (5 s by default) on other processes. Nothing is deleted. Suspending a suspended realm changes nothing."
        : 'Operators only: resumes a suspended realm: its keys work again (same timing as suspendRealm). Resuming an active realm changes nothing.',
      authScopes: OPERATOR_SCOPES,
      args: { id: t.arg.id({ required: true }) },
      resolve: async (_root, args, ctx) => {
        const id = realmIdOf(String(args.id));
        if (!id) return { realmId: null, userErrors: [{ field: ['id'], code: 'NOT_FOUND', message: 'No such realm.' }] };
        const result = await ctx.prisma.$transaction((tx) => setRealmSuspended(tx, operatorRequest(ctx), { id, suspended }));
        if ('userErrors' in result) return { realmId: null, userErrors: result.userErrors };
        forgetCachedRealm(result.id);
        return { realmId: result.id, userErrors: [] };
      },
    }),
  );
}

const RealmsFilter = builder.inputType('RealmsFilter', {
  fields: (t) => ({
    suspended: t.boolean({ description: 'true: suspended realms only; false: active realms only; absent: both.' }),
  }),
});

function realmsWhere(filter: { suspended?: boolean | null } | null | undefined): Prisma.RealmWhereInput {
  if (filter?.suspended === true) return { suspendedAt: { not: null } };
  if (filter?.suspended === false) return { suspendedAt: null };
  return {};
}

builder.queryField('realms', (t) =>
  t.prismaConnection({
    type: 'Realm',
    cursor: 'id',
    description: "Operators only (`realms:manage`): every realm, oldest first. A realm's key gets FORBIDDEN.",
    authScopes: OPERATOR_SCOPES,
    args: { filter: t.arg({ type: RealmsFilter }) },
    totalCount: (_parent, args, ctx) => ctx.prisma.realm.count({ where: realmsWhere(args.filter) }),
    resolve: (query, _root, args, ctx) => ctx.prisma.realm.findMany({ ...query, where: realmsWhere(args.filter), orderBy: { id: 'asc' } }),
  }),
);

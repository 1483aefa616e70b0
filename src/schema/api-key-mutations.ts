import { actorOf, recordAudit } from '../admin/audit.js';
import { createIdempotently, idempotencyScope } from '../admin/idempotency.js';
import { forgetCachedKey } from '../auth/authenticate.js';
import { newApiKeySecret, hashSecret } from '../auth/api-key-secret.js';
import { escalatedScopes, isScope, SCOPES } from '../auth/scopes.js';
import { builder } from '../builder.js';
import type { Context } from '../context.js';
import { decodeId, encodeId } from '../global-id.js';
import type { ApiKey, Prisma } from '../generated/prisma/client.js';
import { Tier } from '../generated/prisma/enums.js';
import { requestLimit } from '../rate-limit/limits.js';
import { TierEnum } from './enums.js';
import { UserErrorRef, type UserError } from './user-error.js';
import { visibleApiKeys, visibleWorkspaces } from './visibility.js';

export const MAX_GRACE_PERIOD_SECONDS = 7 * 86_400;

interface KeyPayload {
  apiKeyId: string | null;
  secret: string | null;
  userErrors: UserError[];
}

const ApiKeyPayload = builder.objectRef<KeyPayload>('ApiKeyPayload').implement({
  fields: (t) => ({
    apiKey: t.prismaField({
      type: 'ApiKey',
      nullable: true,
      resolve: (query, payload, _args, ctx) =>
        payload.apiKeyId ? ctx.prisma.apiKey.findFirst({ ...query, where: { id: payload.apiKeyId, AND: [visibleApiKeys(ctx)] } }) : null,
    }),
    secret: t.exposeString('secret', {
      nullable: true,
      description:
        'The whole key. Shown this once: store it now; afterwards only its prefix is visible. ' +
        'Null when `createApiKey` answers a replay (the same `idempotencyKey` and input again): the key is the one created the first time, whose secret that answer held.',
    }),
    userErrors: t.expose('userErrors', { type: [UserErrorRef] }),
  }),
});

/** What the audit log keeps of a key: never its secret nor its hash. */
function keyAuditState(key: Pick<ApiKey, 'name' | 'prefix' | 'scopes' | 'workspaceId' | 'tier' | 'customRateLimit' | 'revokedAt'>): Record<string, unknown> {
  return {
    name: key.name,
    prefix: key.prefix,
    scopes: key.scopes,
    workspaceId: key.workspaceId ? encodeId('Workspace', key.workspaceId) : null,
    tier: key.tier,
    customRateLimit: key.customRateLimit,
    revokedAt: key.revokedAt,
  };
}

function auditKey(tx: Prisma.TransactionClient, ctx: Context, verb: string, key: ApiKey, before: Record<string, unknown> | null, after: Record<string, unknown>) {
  return recordAudit(tx, actorOf(ctx), { action: `apiKey.${verb}`, realmId: key.realmId, targetType: 'ApiKey', targetId: key.id, before, after });
}

const failure = (field: string[], code: string, message: string): KeyPayload => ({ apiKeyId: null, secret: null, userErrors: [{ field, code, message }] });
const notFound = (field: string[]) => failure(field, 'NOT_FOUND', 'No such API key.');

/**
 * The key a caller may manage, or a user error. Other realms' keys and keys outside its subtree do not
 * exist for it (NOT_FOUND; a realm-wide key is outside every workspace-scoped caller's reach); a key
 * holding scopes the caller lacks is SCOPE_ESCALATION. Rotating hands out the key's secret, so it also
 * needs the key's rate limit to be at most the caller's (TIER_ESCALATION).
 */
async function manageableKey(ctx: Context, db: Prisma.TransactionClient, globalId: string, action: 'revoke' | 'rotate'): Promise<ApiKey | KeyPayload> {
  let decoded: { typename: string; id: string };
  try {
    decoded = decodeId(globalId);
  } catch {
    return notFound(['id']);
  }
  if (decoded.typename !== 'ApiKey') return notFound(['id']);
  const key = await db.apiKey.findFirst({ where: { id: decoded.id, ...visibleApiKeys(ctx) } });
  if (!key) return notFound(['id']);
  const escalated = escalatedScopes(ctx.viewer.scopes, key.scopes);
  if (escalated.length) return failure(['id'], 'SCOPE_ESCALATION', `A key cannot ${action} a key with scopes it does not have: ${escalated.join(', ')}.`);
  if (action === 'rotate') {
    const limit = requestLimit({ key: { tier: key.tier, customRateLimit: key.customRateLimit }, realm: ctx.viewer.ratePlan.realm });
    const own = requestLimit(ctx.viewer.ratePlan);
    if (limit > own) return failure(['id'], 'TIER_ESCALATION', `A key cannot rotate a key with a higher rate limit than its own (${limit} > ${own} requests per minute).`);
  }
  return key;
}

/** The most requests per minute a key may give a key it creates: its own limit, and never more than its realm's. */
function grantableRequestLimit(ctx: Context): number {
  const realmLimit = requestLimit({ key: { tier: null, customRateLimit: null }, realm: ctx.viewer.ratePlan.realm });
  return Math.min(requestLimit(ctx.viewer.ratePlan), realmLimit);
}

const CreateApiKeyInput = builder.inputType('CreateApiKeyInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    scopes: t.stringList({ required: true, description: `Any of ${SCOPES.join(', ')}; at most the creating key's own.` }),
    workspaceId: t.id({ description: "Scope the key to this workspace's subtree. A workspace-scoped caller must name one inside its own subtree." }),
    tier: t.field({ type: TierEnum, description: "The key's own tier (null: its realm's). The key's rate limit may not exceed the creating key's, nor its realm's." }),
    customRateLimit: t.int({ description: "Requests per minute (ENTERPRISE); at most the creating key's own limit and its realm's." }),
    idempotencyKey: t.string({
      description:
        'Makes a retry safe: the same key with the same input again answers the key created the first time (with `secret: null`: a secret is shown once); with another input it is IDEMPOTENCY_MISMATCH. Kept 7 days, per realm.',
    }),
  }),
});

builder.mutationField('createApiKey', (t) =>
  t.field({
    type: ApiKeyPayload,
    description: 'Creates a key in the caller\'s realm; the secret is in the payload, once. Needs `keys:manage`.',
    authScopes: { keysManage: true },
    args: { input: t.arg({ type: CreateApiKeyInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const name = input.name.trim();
      if (!name || name.length > 100) return failure(['input', 'name'], 'INVALID_NAME', 'A name of 1 to 100 characters is required.');
      const unknown = input.scopes.filter((scope) => !isScope(scope));
      if (unknown.length) return failure(['input', 'scopes'], 'INVALID_SCOPE', `Unknown scope(s): ${unknown.join(', ')}. Scopes are ${SCOPES.join(', ')}.`);
      if (!input.scopes.length) return failure(['input', 'scopes'], 'INVALID_SCOPE', 'A key needs at least one scope.');
      const escalated = escalatedScopes(ctx.viewer.scopes, input.scopes);
      if (escalated.length) return failure(['input', 'scopes'], 'SCOPE_ESCALATION', `A key cannot grant scopes it does not have: ${escalated.join(', ')}.`);
      if (input.customRateLimit != null && (input.customRateLimit < 1 || input.customRateLimit > 1_000_000)) {
        return failure(['input', 'customRateLimit'], 'INVALID_RATE_LIMIT', 'A custom rate limit is 1 to 1,000,000 requests per minute.');
      }
      const tier = (input.tier as Tier | null | undefined) ?? null;
      const customRateLimit = input.customRateLimit ?? null;
      const grantable = grantableRequestLimit(ctx);
      if (customRateLimit != null && customRateLimit > grantable) {
        return failure(['input', 'customRateLimit'], 'TIER_ESCALATION', `A key cannot grant more than its own rate limit (and its realm's): at most ${grantable} requests per minute.`);
      }
      const limit = requestLimit({ key: { tier, customRateLimit }, realm: ctx.viewer.ratePlan.realm });
      if (limit > grantable) {
        return failure(
          ['input', 'tier'],
          'TIER_ESCALATION',
          `The new key would get ${limit} requests per minute${tier ? '' : " (its realm's tier)"}; a key cannot grant more than its own rate limit (and its realm's): at most ${grantable}. Give a lower \`tier\`.`,
        );
      }
      let workspaceGlobalId: string | null = null;
      if (input.workspaceId) {
        let decoded: { typename: string; id: string } | null = null;
        try {
          decoded = decodeId(input.workspaceId);
        } catch {
          decoded = null;
        }
        if (decoded?.typename !== 'Workspace') return failure(['input', 'workspaceId'], 'NOT_FOUND', 'No such workspace.');
        workspaceGlobalId = decoded.id;
      } else if (ctx.viewer.workspaceId) {
        return failure(['input', 'workspaceId'], 'SCOPE_ESCALATION', 'A key scoped to a workspace can only create keys scoped to its subtree: give a workspaceId.');
      }
      const scopes = [...new Set(input.scopes)];
      let secret: string | null = null;
      const created = await ctx.prisma.$transaction((tx) =>
        createIdempotently(
          tx,
          {
            scope: idempotencyScope(ctx.viewer),
            key: input.idempotencyKey,
            action: 'apiKey.create',
            input: { name, scopes: [...scopes].sort(), workspaceId: input.workspaceId ?? null, tier, customRateLimit },
            now: ctx.now,
          },
          async () => {
            let workspaceId: string | null = null;
            if (workspaceGlobalId) {
              const workspace = await tx.workspace.findFirst({ where: { id: workspaceGlobalId, ...visibleWorkspaces(ctx) }, select: { id: true } });
              if (!workspace) return { userErrors: [{ field: ['input', 'workspaceId'], code: 'NOT_FOUND', message: 'No such workspace.' }] };
              workspaceId = workspace.id;
            }
            const fresh = newApiKeySecret();
            const key = await tx.apiKey.create({
              data: { realmId: ctx.viewer.realmId, workspaceId, name, prefix: fresh.prefix, secretHash: fresh.secretHash, scopes, tier, customRateLimit },
            });
            await auditKey(tx, ctx, 'create', key, null, keyAuditState(key));
            secret = fresh.key;
            return { id: key.id };
          },
        ),
      );
      if ('userErrors' in created) return { apiKeyId: null, secret: null, userErrors: created.userErrors };
      return { apiKeyId: created.id, secret, userErrors: [] };
    },
  }),
);

builder.mutationField('revokeApiKey', (t) =>
  t.field({
    type: ApiKeyPayload,
    description: 'Revokes a key; it fails from the very next request to this gateway process, and within `AUTH_CACHE_TTL_MS` (5 s by default) on other processes. Needs `keys:manage` and every scope of the revoked key; a workspace-scoped caller reaches only keys of its subtree.',
    authScopes: { keysManage: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const result = await ctx.prisma.$transaction(async (tx) => {
        const key = await manageableKey(ctx, tx, args.id, 'revoke');
        if ('userErrors' in key) return key;
        const { count } = await tx.apiKey.updateMany({ where: { id: key.id, revokedAt: null }, data: { revokedAt: ctx.now } });
        // Revoking a revoked key changes nothing and is not logged again.
        if (count > 0) await auditKey(tx, ctx, 'revoke', key, { revokedAt: null }, { revokedAt: ctx.now });
        return { apiKeyId: key.id, secret: null, userErrors: [] };
      });
      if (result.apiKeyId) forgetCachedKey(result.apiKeyId);
      return result;
    },
  }),
);

builder.mutationField('rotateApiKey', (t) =>
  t.field({
    type: ApiKeyPayload,
    description: `Issues a new secret for a key (same prefix and id); the old secret keeps working for \`gracePeriodSeconds\` (0 to ${MAX_GRACE_PERIOD_SECONDS}, default 3600). Needs \`keys:manage\`, every scope of the key and at least its rate limit; a workspace-scoped caller reaches only keys of its subtree.`,
    authScopes: { keysManage: true },
    args: { id: t.arg.id({ required: true }), gracePeriodSeconds: t.arg.int({ defaultValue: 3600 }) },
    resolve: async (_root, args, ctx) => {
      const grace = args.gracePeriodSeconds ?? 3600;
      if (grace < 0 || grace > MAX_GRACE_PERIOD_SECONDS) {
        return failure(['gracePeriodSeconds'], 'INVALID_GRACE_PERIOD', `The grace period is 0 to ${MAX_GRACE_PERIOD_SECONDS} seconds.`);
      }
      const result = await ctx.prisma.$transaction(async (tx) => {
        const key = await manageableKey(ctx, tx, args.id, 'rotate');
        if ('userErrors' in key) return key;
        const { id } = key;
        if (key.revokedAt) return failure(['id'], 'REVOKED', 'A revoked key cannot be rotated.');
        const fresh = newApiKeySecret();
        const secret = `${key.prefix}_${fresh.key.split('_').slice(2).join('_')}`;
        const previousSecretExpiresAt = grace > 0 ? new Date(ctx.now.getTime() + grace * 1000) : null;
        await tx.apiKey.update({
          where: { id },
          data: { secretHash: hashSecret(secret), previousSecretHash: grace > 0 ? key.secretHash : null, previousSecretExpiresAt },
          select: { id: true },
        });
        // The secrets stay out of the log: it records that the secret changed, and until when the old one works.
        await auditKey(tx, ctx, 'rotate', key, { previousSecretExpiresAt: key.previousSecretExpiresAt }, { previousSecretExpiresAt, secretRotatedAt: ctx.now });
        return { apiKeyId: id, secret, userErrors: [] };
      });
      if (result.apiKeyId) forgetCachedKey(result.apiKeyId);
      return result;
    },
  }),
);


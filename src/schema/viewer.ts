import { builder } from '../builder.js';
import { isOperator, type Viewer } from '../context.js';
import type { RateLimitState } from '../rate-limit/limiter.js';

export const RateLimitRef = builder.objectRef<Pick<RateLimitState, 'limit' | 'remaining' | 'resetAt'>>('RateLimit').implement({
  description: "A key's rate-limit window: requests allowed per minute, left, and when the count starts again.",
  fields: (t) => ({
    limit: t.exposeInt('limit', { description: 'Requests allowed per window (one minute).' }),
    remaining: t.exposeInt('remaining', { description: 'Requests left in the current window, this one counted.' }),
    resetAt: t.field({ type: 'DateTime', description: 'When the current window ends.', resolve: (state) => state.resetAt }),
  }),
});

const ViewerKindEnum = builder.enumType('ViewerKind', {
  description: "What kind of key calls: a realm's API key, or an operator's key (no realm; it manages realms).",
  values: { API_KEY: { value: 'apiKey' }, OPERATOR: { value: 'operator' }, PORTAL_SESSION: { value: 'portalSession', description: 'A portal session (`ugwps_…`): read-only, limited to a workspace subtree and some features.' } } as const,
});

export const ViewerRef = builder.objectRef<Viewer>('Viewer').implement({
  description: 'The caller: the API key of this request and what it may see.',
  fields: (t) => ({
    kind: t.field({ type: ViewerKindEnum, resolve: (viewer) => viewer.kind }),
    keyPrefix: t.exposeString('keyPrefix', { description: 'The visible start of the calling key (`ugw_…`, or `ugwop_…` for an operator).' }),
    apiKey: t.prismaField({
      type: 'ApiKey',
      nullable: true,
      description: "The calling realm key; null for an operator's key (operator keys are not API keys of a realm) and for a portal session.",
      resolve: (query, viewer, _args, ctx) =>
        viewer.kind !== 'apiKey' ? null : ctx.prisma.apiKey.findUniqueOrThrow({ ...query, where: { id: viewer.apiKeyId } }),
    }),
    realm: t.prismaField({
      type: 'Realm',
      nullable: true,
      description: "The calling key's realm; null for an operator's key, which belongs to no realm (it lists them with `realms`).",
      resolve: (query, viewer, _args, ctx) => (isOperator(viewer) ? null : ctx.prisma.realm.findUniqueOrThrow({ ...query, where: { id: viewer.realmId } })),
    }),
    workspace: t.prismaField({
      type: 'Workspace',
      nullable: true,
      description: 'The workspace the key is scoped to; null for a realm-wide key.',
      resolve: (query, viewer, _args, ctx) =>
        viewer.workspaceId ? ctx.prisma.workspace.findUnique({ ...query, where: { id: viewer.workspaceId } }) : null,
    }),
    scopes: t.stringList({ resolve: (viewer) => viewer.scopes }),
    rateLimit: t.field({
      type: RateLimitRef,
      nullable: true,
      description: "The key's rate-limit state after this request; null when the gateway runs without rate limits.",
      resolve: (_viewer, _args, ctx) => ctx.rateLimit,
    }),
  }),
});

builder.queryField('viewer', (t) =>
  t.field({ type: ViewerRef, description: 'The calling API key.', resolve: (_root, _args, ctx) => ctx.viewer }),
);

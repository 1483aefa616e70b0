import { builder } from '../builder.js';
import { isOperator, type Context } from '../context.js';
import { TierEnum } from './enums.js';
import { includeArchivedArg, liveUnless } from './archived.js';
import { visibleApiKeys, visibleApps, visibleDatastreams, visibleFeatures, visibleProjects, visibleWorkspaces } from './visibility.js';

/**
 * The realms a caller sees: a realm's key its own realm only; an operator every realm (the realm
 * itself: what is inside it stays filtered by the caller's realm, which for an operator is none).
 */
export function visibleRealms(ctx: Pick<Context, 'viewer'>): { id?: string } {
  return isOperator(ctx.viewer) ? {} : { id: ctx.viewer.realmId };
}

export const RealmNode = builder.prismaNode('Realm', {
  description:
    "An organisation: the unit of isolation, billing and rate limits. A realm's key sees its own realm; an operator's key sees every realm, " +
    "but none of a realm's contents (workspaces, usage, billing): those are read with the realm's own keys.",
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [visibleRealms(ctx)] }),
  fields: (t) => ({
    name: t.exposeString('name'),
    slug: t.exposeString('slug'),
    tier: t.expose('tier', { type: TierEnum }),
    customRateLimit: t.exposeInt('customRateLimit', {
      nullable: true,
      description: 'Requests per minute agreed for this realm, overriding its tier (ENTERPRISE).',
    }),
    timeZone: t.expose('timeZone', {
      type: 'TimeZone',
      description: 'The IANA time zone that usage buckets align to by default.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    suspendedAt: t.expose('suspendedAt', {
      type: 'DateTime',
      nullable: true,
      description: "When an operator suspended the realm (its keys are refused with 403 REALM_SUSPENDED until it is resumed); null: active.",
    }),
    workspaces: t.relatedConnection('workspaces', {
      cursor: 'id',
      totalCount: true,
      description: 'Workspaces of this realm visible to the caller, at every depth, oldest first.',
      args: {
        rootsOnly: t.arg.boolean({ defaultValue: false, description: 'Only workspaces without a parent.' }),
        includeArchived: includeArchivedArg(t),
      },
      query: (args, ctx) => ({
        where: { AND: [visibleWorkspaces(ctx), args.rootsOnly ? { parentId: null } : {}, liveUnless(args.includeArchived)] },
        orderBy: { id: 'asc' },
      }),
    }),
    datastreams: t.relatedConnection('datastreams', {
      cursor: 'id',
      totalCount: true,
      args: { includeArchived: includeArchivedArg(t) },
      query: (args, ctx) => ({ where: { AND: [visibleDatastreams(ctx), liveUnless(args.includeArchived)] }, orderBy: { id: 'asc' } }),
    }),
    projects: t.relatedConnection('projects', {
      cursor: 'id',
      totalCount: true,
      args: { includeArchived: includeArchivedArg(t) },
      query: (args, ctx) => ({ where: { AND: [visibleProjects(ctx), liveUnless(args.includeArchived)] }, orderBy: { id: 'asc' } }),
    }),
    apps: t.relatedConnection('apps', {
      cursor: 'id',
      totalCount: true,
      args: { includeArchived: includeArchivedArg(t) },
      query: (args, ctx) => ({ where: { AND: [visibleApps(ctx), liveUnless(args.includeArchived)] }, orderBy: { id: 'asc' } }),
    }),
    features: t.relatedConnection('features', {
      cursor: 'id',
      totalCount: true,
      description: 'Features (meters) of the realm, by key; archived ones only with `includeArchived`.',
      args: { includeArchived: includeArchivedArg(t) },
      query: (args, ctx) => ({ where: { AND: [visibleFeatures(ctx), liveUnless(args.includeArchived)] }, orderBy: { key: 'asc' } }),
    }),
    apiKeys: t.relatedConnection('apiKeys', {
      authScopes: { keysManage: true },
      cursor: 'id',
      totalCount: true,
      description: 'API keys of this realm visible to the caller, oldest first (revoked keys included).',
      query: (_args, ctx) => ({ where: visibleApiKeys(ctx), orderBy: { id: 'asc' } }),
    }),
  }),
});

builder.queryField('realm', (t) =>
  t.prismaField({
    type: 'Realm',
    nullable: true,
    description: "A realm by id; without an id, the calling key's realm. Other realms do not exist for a realm's key; an operator's key reads any realm by id (and has no realm of its own: null without one).",
    args: { id: t.arg.globalID({ for: RealmNode }) },
    resolve: (query, _root, args, ctx) => {
      const id = args.id?.id ?? ctx.viewer.realmId;
      if (!isOperator(ctx.viewer) && id !== ctx.viewer.realmId) return null;
      return ctx.prisma.realm.findUnique({ ...query, where: { id } });
    },
  }),
);

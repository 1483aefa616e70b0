import { builder } from '../builder.js';
import { TierEnum } from './enums.js';
import { visibleApiKeys, visibleApps, visibleDatastreams, visibleFeatures, visibleProjects, visibleWorkspaces } from './visibility.js';

export const RealmNode = builder.prismaNode('Realm', {
  description: 'An organisation: the unit of isolation, billing and rate limits.',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [{ id: ctx.viewer.realmId }] }),
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
    workspaces: t.relatedConnection('workspaces', {
      cursor: 'id',
      totalCount: true,
      description: 'Workspaces of this realm visible to the caller, at every depth, oldest first.',
      args: { rootsOnly: t.arg.boolean({ defaultValue: false, description: 'Only workspaces without a parent.' }) },
      query: (args, ctx) => ({
        where: { AND: [visibleWorkspaces(ctx), args.rootsOnly ? { parentId: null } : {}] },
        orderBy: { id: 'asc' },
      }),
    }),
    datastreams: t.relatedConnection('datastreams', {
      cursor: 'id',
      totalCount: true,
      query: (_args, ctx) => ({ where: visibleDatastreams(ctx), orderBy: { id: 'asc' } }),
    }),
    projects: t.relatedConnection('projects', {
      cursor: 'id',
      totalCount: true,
      query: (_args, ctx) => ({ where: visibleProjects(ctx), orderBy: { id: 'asc' } }),
    }),
    apps: t.relatedConnection('apps', {
      cursor: 'id',
      totalCount: true,
      query: (_args, ctx) => ({ where: visibleApps(ctx), orderBy: { id: 'asc' } }),
    }),
    features: t.relatedConnection('features', {
      cursor: 'id',
      totalCount: true,
      query: (_args, ctx) => ({ where: visibleFeatures(ctx), orderBy: { key: 'asc' } }),
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
    description: "A realm by id; without an id, the calling key's realm. Other realms do not exist for a key.",
    args: { id: t.arg.globalID({ for: RealmNode }) },
    resolve: (query, _root, args, ctx) => {
      const id = args.id?.id ?? ctx.viewer.realmId;
      if (id !== ctx.viewer.realmId) return null;
      return ctx.prisma.realm.findUnique({ ...query, where: { id } });
    },
  }),
);

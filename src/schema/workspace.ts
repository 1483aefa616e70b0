import { builder } from '../builder.js';
import { archivedAtField, includeArchivedArg, liveUnless } from './archived.js';
import { visibleApiKeys, visibleApps, visibleDatastreams, visibleWorkspaces } from './visibility.js';

export const WorkspaceNode = builder.prismaNode('Workspace', {
  description: 'A node of the workspace tree (Heroku teams are workspaces).',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [visibleWorkspaces(ctx)] }),
  fields: (t) => ({
    name: t.exposeString('name'),
    depth: t.exposeInt('depth', { description: 'Distance from the root of the tree (a root is 0).' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    archivedAt: archivedAtField(t),
    realm: t.relation('realm'),
    parent: t.relation('parent', {
      nullable: true,
      description: 'The parent workspace; null for a root, and for a parent outside the caller\'s scope.',
      query: (_args, ctx) => ({ where: visibleWorkspaces(ctx) }),
    }),
    children: t.relatedConnection('children', {
      cursor: 'id',
      totalCount: true,
      args: { includeArchived: includeArchivedArg(t) },
      query: (args, ctx) => ({ where: { AND: [visibleWorkspaces(ctx), liveUnless(args.includeArchived)] }, orderBy: { id: 'asc' } }),
    }),
    descendants: t.prismaConnection({
      type: 'Workspace',
      cursor: 'id',
      description: 'Every workspace beneath this one, at any depth (this one excluded), oldest first.',
      args: { includeArchived: includeArchivedArg(t) },
      totalCount: (parent, args, ctx) =>
        ctx.prisma.workspace.count({ where: { ancestors: { some: { ancestorId: parent.id, depth: { gt: 0 } } }, AND: [visibleWorkspaces(ctx), liveUnless(args.includeArchived)] } }),
      resolve: (query, parent, args, ctx) =>
        ctx.prisma.workspace.findMany({
          ...query,
          where: { ancestors: { some: { ancestorId: parent.id, depth: { gt: 0 } } }, AND: [visibleWorkspaces(ctx), liveUnless(args.includeArchived)] },
          orderBy: { id: 'asc' },
        }),
    }),
    datastreams: t.relatedConnection('datastreams', {
      cursor: 'id',
      totalCount: true,
      args: { includeArchived: includeArchivedArg(t) },
      query: (args, ctx) => ({ where: { AND: [visibleDatastreams(ctx), liveUnless(args.includeArchived)] }, orderBy: { id: 'asc' } }),
    }),
    apps: t.relatedConnection('apps', {
      cursor: 'id',
      totalCount: true,
      args: { includeArchived: includeArchivedArg(t) },
      query: (args, ctx) => ({ where: { AND: [visibleApps(ctx), liveUnless(args.includeArchived)] }, orderBy: { id: 'asc' } }),
    }),
    apiKeys: t.relatedConnection('apiKeys', {
      authScopes: { keysManage: true },
      cursor: 'id',
      totalCount: true,
      description: 'API keys scoped to this workspace.',
      query: (_args, ctx) => ({ where: visibleApiKeys(ctx), orderBy: { id: 'asc' } }),
    }),
  }),
});

import { builder } from '../builder.js';
import { archivedAtField, includeArchivedArg, liveUnless } from './archived.js';
import { visibleApps, visibleProjects, visibleWorkspaces } from './visibility.js';

export const ProjectNode = builder.prismaNode('Project', {
  description: 'A project groups apps for billing.',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [visibleProjects(ctx)] }),
  fields: (t) => ({
    name: t.exposeString('name'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    archivedAt: archivedAtField(t),
    realm: t.relation('realm'),
    apps: t.relatedConnection('apps', {
      cursor: 'id',
      totalCount: true,
      args: { includeArchived: includeArchivedArg(t) },
      query: (args, ctx) => ({ where: { AND: [visibleApps(ctx), liveUnless(args.includeArchived)] }, orderBy: { id: 'asc' } }),
    }),
  }),
});

export const AppNode = builder.prismaNode('App', {
  description: 'An application of a project, optionally owned by a workspace (team).',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [visibleApps(ctx)] }),
  fields: (t) => ({
    name: t.exposeString('name'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    archivedAt: archivedAtField(t),
    realm: t.relation('realm'),
    project: t.relation('project'),
    workspace: t.relation('workspace', { nullable: true, query: (_args, ctx) => ({ where: visibleWorkspaces(ctx) }) }),
  }),
});

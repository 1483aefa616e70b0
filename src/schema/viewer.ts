import { builder } from '../builder.js';
import type { Viewer } from '../context.js';

const ViewerRef = builder.objectRef<Viewer>('Viewer').implement({
  description: 'The caller: the API key of this request and what it may see.',
  fields: (t) => ({
    apiKey: t.prismaField({
      type: 'ApiKey',
      resolve: (query, viewer, _args, ctx) =>
        ctx.prisma.apiKey.findUniqueOrThrow({ ...query, where: { id: viewer.apiKeyId } }),
    }),
    realm: t.prismaField({
      type: 'Realm',
      resolve: (query, viewer, _args, ctx) => ctx.prisma.realm.findUniqueOrThrow({ ...query, where: { id: viewer.realmId } }),
    }),
    workspace: t.prismaField({
      type: 'Workspace',
      nullable: true,
      description: 'The workspace the key is scoped to; null for a realm-wide key.',
      resolve: (query, viewer, _args, ctx) =>
        viewer.workspaceId ? ctx.prisma.workspace.findUnique({ ...query, where: { id: viewer.workspaceId } }) : null,
    }),
    scopes: t.stringList({ resolve: (viewer) => viewer.scopes }),
  }),
});

builder.queryField('viewer', (t) =>
  t.field({ type: ViewerRef, description: 'The calling API key.', resolve: (_root, _args, ctx) => ctx.viewer }),
);

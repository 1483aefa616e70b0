import { builder } from '../builder.js';
import { TierEnum } from './enums.js';
import { visibleApiKeys, visibleWorkspaces } from './visibility.js';

export const ApiKeyNode = builder.prismaNode('ApiKey', {
  description: 'A credential. Its secret is shown once, at creation; afterwards only its prefix.',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [visibleApiKeys(ctx)] }),
  fields: (t) => ({
    name: t.exposeString('name'),
    prefix: t.exposeString('prefix', { description: 'The visible start of the key, e.g. "ugw_3f9a1c2b".' }),
    scopes: t.exposeStringList('scopes'),
    tier: t.expose('tier', { type: TierEnum, nullable: true, description: "The key's own tier; null: the realm's." }),
    customRateLimit: t.exposeInt('customRateLimit', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
    realm: t.relation('realm'),
    workspace: t.relation('workspace', {
      nullable: true,
      description: 'The workspace the key is scoped to (it sees that subtree only); null: the whole realm.',
      query: (_args, ctx) => ({ where: visibleWorkspaces(ctx) }),
    }),
  }),
});

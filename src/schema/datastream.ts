import { builder } from '../builder.js';
import { archivedAtField } from './archived.js';
import { visibleDatastreams } from './visibility.js';

export const DatastreamNode = builder.prismaNode('Datastream', {
  description: 'A stream of rows fetched into a workspace; row usage is counted per datastream.',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [visibleDatastreams(ctx)] }),
  fields: (t) => ({
    name: t.exposeString('name'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    archivedAt: archivedAtField(t),
    realm: t.relation('realm'),
    workspace: t.relation('workspace'),
  }),
});

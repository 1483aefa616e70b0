import { builder } from '../builder.js';
import { archivedAtField } from './archived.js';
import { AggregationEnum, FeatureUnitEnum } from './enums.js';
import { visibleFeatures } from './visibility.js';

export const FeatureNode = builder.prismaNode('Feature', {
  description: 'A billable meter: what is counted, in which unit, and how it aggregates.',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [visibleFeatures(ctx)] }),
  fields: (t) => ({
    key: t.exposeString('key', { description: 'Stable identifier used when ingesting usage, e.g. "location.transactions".' }),
    name: t.exposeString('name'),
    service: t.exposeString('service'),
    unit: t.expose('unit', { type: FeatureUnitEnum }),
    aggregation: t.expose('aggregation', { type: AggregationEnum }),
    arrivalDelaySeconds: t.exposeInt('arrivalDelaySeconds', {
      description: 'How late usage normally arrives; a bucket is final once it ended this long ago.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    archivedAt: archivedAtField(t),
    realm: t.relation('realm'),
  }),
});

import { builder } from '../builder.js';
import { Aggregation, FeatureUnit, Tier } from '../generated/prisma/enums.js';

export const TierEnum = builder.enumType(Tier, {
  name: 'Tier',
  description: 'A plan tier; it sets the default rate limit (requests per minute).',
});
export const FeatureUnitEnum = builder.enumType(FeatureUnit, { name: 'FeatureUnit' });
export const AggregationEnum = builder.enumType(Aggregation, {
  name: 'Aggregation',
  description: 'How a feature\'s quantities combine across time.',
});

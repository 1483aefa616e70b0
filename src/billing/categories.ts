import type { FeatureUnit } from '../generated/prisma/enums.js';

/**
 * The order in which general add-on credits are spent: third-party add-ons, data add-ons, private
 * spaces, shield private spaces.
 */
export const CREDIT_CATEGORIES = ['THIRD_PARTY_ADDON', 'DATA_ADDON', 'PRIVATE_SPACE', 'SHIELD_SPACE'] as const;
export type CreditCategory = (typeof CREDIT_CATEGORIES)[number];

const DATA_UNITS: readonly FeatureUnit[] = ['ROW', 'GB', 'GB_MONTH'];

/**
 * Which credit category a product (feature) is in:
 * - unit SPACE whose key or service contains "shield" → SHIELD_SPACE;
 * - any other unit SPACE → PRIVATE_SPACE;
 * - units ROW, GB, GB_MONTH, or service "data" → DATA_ADDON (rows, storage, transfer);
 * - everything else (TRANSACTION, REQUEST, DYNO_UNIT, CREDIT, …) → THIRD_PARTY_ADDON.
 */
export function creditCategory(feature: { key: string; service: string; unit: FeatureUnit }): CreditCategory {
  if (feature.unit === 'SPACE') {
    return /shield/i.test(feature.key) || /shield/i.test(feature.service) ? 'SHIELD_SPACE' : 'PRIVATE_SPACE';
  }
  if (DATA_UNITS.includes(feature.unit) || feature.service.toLowerCase() === 'data') return 'DATA_ADDON';
  return 'THIRD_PARTY_ADDON';
}

/** Credits that come with one space per month. */
export const CREDITS_PER_SPACE = { PRIVATE_SPACE: 1000, SHIELD_SPACE: 3000 } as const;

import type { Tier } from '../generated/prisma/enums.js';

/** Requests per window (one minute) by tier. ENTERPRISE has a custom limit, this is its fallback. */
export const TIER_LIMITS: Readonly<Record<Tier, number>> = {
  FREE: 60,
  STARTER: 300,
  PROFESSIONAL: 1000,
  ENTERPRISE: 1000,
};

/** What decides a key's limit: its own tier and custom limit (both optional) and its realm's. */
export interface RatePlan {
  key: { tier: Tier | null; customRateLimit: number | null };
  realm: { tier: Tier; customRateLimit: number | null };
}

/** The tier that applies: the key's own, else the realm's. A key with only a custom limit is ENTERPRISE. */
export function effectiveTier(plan: RatePlan): Tier {
  if (plan.key.tier) return plan.key.tier;
  if (plan.key.customRateLimit != null) return 'ENTERPRISE';
  return plan.realm.tier;
}

/**
 * Requests per window for a key: FREE 60, STARTER 300, PROFESSIONAL 1,000; ENTERPRISE the custom
 * limit (the key's, else the realm's; 1,000 when neither has one).
 */
export function requestLimit(plan: RatePlan): number {
  const tier = effectiveTier(plan);
  if (tier !== 'ENTERPRISE') return TIER_LIMITS[tier];
  const custom = plan.key.customRateLimit ?? plan.realm.customRateLimit;
  return custom != null && custom > 0 ? custom : TIER_LIMITS.ENTERPRISE;
}

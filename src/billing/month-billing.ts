import type { CreditKind, FeatureUnit } from '../generated/prisma/enums.js';
import type { BillingMonth } from './calendar.js';
import { creditCategory } from './categories.js';
import { coverMonth, type CreditPools, type MonthCoverage, type ProductMonth } from './coverage.js';
import { dec, ZERO, type Decimal, type DecimalLike } from './decimal.js';
import { licensedForMonth, proratedForMonth, spaceMonths, type ContractLicenses } from './proration.js';

export interface BillingFeature {
  id: string;
  key: string;
  service: string;
  unit: FeatureUnit;
}

export interface BillingCreditGrant {
  kind: CreditKind;
  credits: DecimalLike;
  startsAt: Date;
  endsAt: Date | null;
}

export interface BillingPrice {
  featureId: string;
  unitAmount: DecimalLike;
  currency: string;
  validFrom: Date;
}

/** A product's usage in one month, as read from the hourly buckets. */
export interface MonthlyUsage {
  /** By the feature's aggregation (SUM/COUNT add, MAX highest hour, LATEST last hour, UNIQUE_COUNT distinct). */
  quantity: DecimalLike;
  /** The hourly quantities added up (for SPACE units: space-hours). */
  hourSum: DecimalLike | null;
}

/**
 * The price a month is billed at: the one in force at the month's first instant (the latest
 * `validFrom` at or before it). A price that starts during a month applies from the next month;
 * a product with no price in force when the month starts is unpriced that month (no credits pay
 * for it, and it is named in the invoice's `unpriced`, not invoiced).
 */
export function priceForMonth(month: BillingMonth, prices: readonly BillingPrice[]): BillingPrice | null {
  let atStart: BillingPrice | null = null;
  for (const price of prices) {
    const t = price.validFrom.getTime();
    if (t <= month.range.from.getTime() && (!atStart || t > atStart.validFrom.getTime())) atStart = price;
  }
  return atStart;
}

/** Credits of each kind for the month, each grant prorated by the days it is in force. */
export function creditPoolsForMonth(month: BillingMonth, timeZone: string, grants: readonly BillingCreditGrant[]): CreditPools {
  const of = (kind: CreditKind) =>
    proratedForMonth(
      month,
      timeZone,
      grants.filter((g) => g.kind === kind).map((g) => ({ startsAt: g.startsAt, endsAt: g.endsAt, quantityPerMonth: g.credits })),
    );
  return { general: of('GENERAL'), privateSpace: of('PRIVATE_SPACE'), shieldSpace: of('SHIELD_SPACE') };
}

/** The used quantity a product is billed for: its aggregation, except spaces, in space-months. */
export function billedQuantity(feature: BillingFeature, usage: MonthlyUsage | undefined, month: BillingMonth): Decimal {
  if (!usage) return ZERO;
  if (feature.unit === 'SPACE') return spaceMonths(usage.hourSum ?? usage.quantity, month);
  return dec(usage.quantity);
}

export interface MonthInputs {
  month: BillingMonth;
  timeZone: string;
  features: readonly BillingFeature[];
  contracts: readonly ContractLicenses[];
  grants: readonly BillingCreditGrant[];
  prices: readonly BillingPrice[];
  /** By feature id. */
  usage: ReadonlyMap<string, MonthlyUsage>;
}

/** Everything about one month: licensed, used, and how it is covered, for each product used or licensed. */
export function billMonth(inputs: MonthInputs): MonthCoverage {
  const { month, timeZone } = inputs;
  const licensed = licensedForMonth(month, timeZone, inputs.contracts);
  const products: ProductMonth[] = [];
  for (const feature of [...inputs.features].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    const used = billedQuantity(feature, inputs.usage.get(feature.id), month);
    const licensedQuantity = licensed.get(feature.id) ?? ZERO;
    if (used.isZero() && licensedQuantity.isZero()) continue;
    const price = priceForMonth(month, inputs.prices.filter((p) => p.featureId === feature.id));
    products.push({
      featureId: feature.id,
      key: feature.key,
      category: creditCategory(feature),
      used,
      licensed: licensedQuantity,
      unitPrice: price ? dec(price.unitAmount) : null,
      currency: price?.currency ?? null,
    });
  }
  return coverMonth(products, creditPoolsForMonth(month, timeZone, inputs.grants));
}

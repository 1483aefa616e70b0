import type { Aggregation, CreditKind, FeatureUnit } from '../generated/prisma/enums.js';
import { daysCovered, type BillingMonth } from './calendar.js';
import { spendingOrder, type CreditPools, type MonthCoverage, type ProductCoverage } from './coverage.js';
import { dec, floorQuantity, min, roundQuantity, sum, ZERO, type Decimal, type DecimalLike } from './decimal.js';
import { licensePeriod, type LicenseBounds } from './proration.js';

/** What paid for a stretch of a product's monthly usage. */
export type CoverageSource = 'LICENSE' | 'CREDIT_GRANT' | 'ON_DEMAND';

/**
 * A stretch `[from, to)` of a product's usage in a month, counted from the month's first hour in
 * hour order, and what paid for it.
 */
export interface CoverageSegment {
  featureId: string;
  /** "YYYY-MM" in the realm's time zone. */
  month: string;
  source: CoverageSource;
  /** The license (LICENSE) or credit grant (CREDIT_GRANT); null for ON_DEMAND. */
  sourceId: string | null;
  from: Decimal;
  /** null: no end (ON_DEMAND). */
  to: Decimal | null;
  /** CREDIT_GRANT: credits per unit (the month's price); otherwise null. */
  unitPrice: Decimal | null;
}

export interface ContractWithLicenseIds {
  startsAt: Date;
  endsAt: Date;
  licenses: readonly ({ id: string; featureId: string; quantityPerMonth: DecimalLike } & LicenseBounds)[];
}

export interface CreditGrantWithId {
  id: string;
  kind: CreditKind;
  credits: DecimalLike;
  startsAt: Date;
  endsAt: Date | null;
}

/**
 * Whether a product's monthly used quantity is the plain sum of its hourly rows, so that each row's
 * share of the license, credits and on-demand use can be told: SUM and COUNT features, except
 * spaces (billed in space-months). MAX, LATEST and UNIQUE_COUNT months are not sums of hours.
 */
export function isAttributable(feature: { aggregation: Aggregation; unit: FeatureUnit }): boolean {
  return (feature.aggregation === 'SUM' || feature.aggregation === 'COUNT') && feature.unit !== 'SPACE';
}

/**
 * Splits `total` into parts proportional to `shares` (in order) that add up to it exactly: each part
 * is the rounded running sum minus the one before it, the last part takes what is left of `total`.
 */
export function splitExactly(shares: readonly Decimal[], total: Decimal): Decimal[] {
  const parts: Decimal[] = [];
  let running = ZERO;
  let before = ZERO;
  shares.forEach((share, i) => {
    running = running.plus(share);
    const upTo = i === shares.length - 1 ? total : roundQuantity(running);
    parts.push(upTo.minus(before));
    before = upTo;
  });
  return parts;
}

const POOL_KINDS: Record<keyof CreditPools, CreditKind> = { general: 'GENERAL', privateSpace: 'PRIVATE_SPACE', shieldSpace: 'SHIELD_SPACE' };

const byStartThenId = (a: { startsAt: Date; id: string }, b: { startsAt: Date; id: string }) =>
  a.startsAt.getTime() - b.startsAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export interface SegmentInputs {
  month: BillingMonth;
  timeZone: string;
  coverage: MonthCoverage;
  contracts: readonly ContractWithLicenseIds[];
  grants: readonly CreditGrantWithId[];
  /** Products to make segments for (by feature id); the others still spend credits in order. */
  attributable: (featureId: string) => boolean;
}

/**
 * How a month's coverage of each product falls on its usage taken in hour order: first the
 * license rows in force (by the start of their period; each its prorated quantity, split so they add up to the
 * month's licensed quantity), then the credit grants whose credits paid for it, then on demand.
 *
 * Credit grants are drawn first in, first out (by start, then id) within each pool, pools in the
 * order `coverMonth` spent them for the product; each grant's prorated credits are split so they
 * add up to the pool exactly. A grant's part of the product is its credits / price rounded down to
 * 9 decimals, the last part takes the rest of `coveredByCredits`, so the segments of a product add
 * up to coveredByLicense, coveredByCredits and onDemand exactly.
 */
export function coverageSegments(inputs: SegmentInputs): CoverageSegment[] {
  const { month, timeZone, coverage } = inputs;
  const days = (startsAt: Date, endsAt: Date | null) => daysCovered(month, timeZone, startsAt, endsAt);

  // What each grant brings to its pool this month.
  const poolGrants = new Map<keyof CreditPools, { id: string; left: Decimal }[]>();
  for (const [pool, kind] of Object.entries(POOL_KINDS) as [keyof CreditPools, CreditKind][]) {
    const inForce = inputs.grants
      .filter((g) => g.kind === kind)
      .map((g) => ({ grant: g, days: days(g.startsAt, g.endsAt) }))
      .filter((g) => g.days > 0)
      .sort((a, b) => byStartThenId(a.grant, b.grant));
    const parts = splitExactly(
      inForce.map((g) => dec(g.grant.credits).mul(g.days).div(month.days)),
      coverage.creditsAvailable[pool],
    );
    poolGrants.set(pool, inForce.map((g, i) => ({ id: g.grant.id, left: parts[i]! })));
  }

  const segments: CoverageSegment[] = [];
  for (const product of spendingOrder(coverage.products)) {
    const fromGrants = drawGrants(product, poolGrants);
    if (!inputs.attributable(product.featureId)) continue;
    const segment = (source: CoverageSource, sourceId: string | null, from: Decimal, to: Decimal | null, unitPrice: Decimal | null = null) =>
      segments.push({ featureId: product.featureId, month: month.month, source, sourceId, from, to, unitPrice });

    // Licenses, up to what the license covered.
    const licenses = inputs.contracts
      .flatMap((c) => c.licenses.filter((l) => l.featureId === product.featureId).map((license) => ({ license, period: licensePeriod(c, license) })))
      .map((l) => ({ ...l, days: days(l.period.startsAt, l.period.endsAt) }))
      .filter((l) => l.days > 0)
      .sort((a, b) => byStartThenId({ startsAt: a.period.startsAt, id: a.license.id }, { startsAt: b.period.startsAt, id: b.license.id }));
    const licenseParts = splitExactly(
      licenses.map((l) => dec(l.license.quantityPerMonth).mul(l.days).div(month.days)),
      product.licensed,
    );
    let at = ZERO;
    licenses.forEach((l, i) => {
      const to = min(at.plus(licenseParts[i]!), product.coveredByLicense);
      if (to.greaterThan(at)) segment('LICENSE', l.license.id, at, to);
      at = to;
    });
    at = product.coveredByLicense;

    // Credit grants.
    const price = product.unitPrice ? dec(product.unitPrice) : null;
    if (price && fromGrants.length) {
      const quantities = fromGrants.map((g) => floorQuantity(g.credits.div(price)));
      quantities[quantities.length - 1] = product.coveredByCredits.minus(sum(quantities.slice(0, -1)));
      fromGrants.forEach((g, i) => {
        const to = at.plus(quantities[i]!);
        if (to.greaterThan(at)) segment('CREDIT_GRANT', g.grantId, at, to, price);
        at = to;
      });
    }
    segment('ON_DEMAND', null, product.coveredByLicense.plus(product.coveredByCredits), null);
  }
  return segments;
}

/** The credits a product took, by grant: each pool's grants drawn first in, first out. */
function drawGrants(product: ProductCoverage, poolGrants: Map<keyof CreditPools, { id: string; left: Decimal }[]>) {
  const taken: { grantId: string; credits: Decimal }[] = [];
  for (const { pool, credits } of product.creditsTaken) {
    const grants = poolGrants.get(pool) ?? [];
    let owed = credits;
    for (const grant of grants) {
      if (!owed.greaterThan(0)) break;
      const take = min(owed, grant.left);
      if (!take.greaterThan(0)) continue;
      grant.left = grant.left.minus(take);
      owed = owed.minus(take);
      taken.push({ grantId: grant.id, credits: take });
    }
    // The pool is the sum of its grants' parts, so nothing is owed here; should it be, the last grant answers for it.
    if (owed.greaterThan(0) && grants.length) {
      const last = grants[grants.length - 1]!;
      const previous = taken.find((t) => t.grantId === last.id);
      if (previous) previous.credits = previous.credits.plus(owed);
      else taken.push({ grantId: last.id, credits: owed });
    }
  }
  return taken;
}

import { daysCovered, type BillingMonth } from './calendar.js';
import { dec, roundQuantity, sum, ZERO, type Decimal, type DecimalLike } from './decimal.js';

/** One contract's license for a product, or one credit grant: a quantity per month over a period. */
export interface MonthlyAllowance {
  startsAt: Date;
  /** null: open-ended. */
  endsAt: Date | null;
  quantityPerMonth: DecimalLike;
}

/**
 * The month's share of monthly allowances: each prorated by the days of the month under its
 * period (days covered / days in month, in the realm's time zone; see `daysCovered`), then added and
 * rounded once to 9 decimals. Two contracts covering the whole month between them with the same
 * quantity give exactly that quantity.
 */
export function proratedForMonth(month: BillingMonth, timeZone: string, allowances: readonly MonthlyAllowance[]): Decimal {
  const shares = allowances.map((a) => {
    const days = daysCovered(month, timeZone, a.startsAt, a.endsAt);
    return days === 0 ? ZERO : dec(a.quantityPerMonth).mul(days).div(month.days);
  });
  return roundQuantity(sum(shares));
}

/** A license row's own bounds: null means its contract's start or end. */
export interface LicenseBounds {
  startsAt?: Date | null;
  endsAt?: Date | null;
}

/**
 * The period a license row is in force: `[max(contract start, row start), min(contract end, row end))`
 * (null bounds are the contract's). An amendment ends a row and starts the next where it ends, so a
 * product's rows in one contract never overlap. Empty when the end is not after the start.
 */
export function licensePeriod(contract: { startsAt: Date; endsAt: Date }, license: LicenseBounds): { startsAt: Date; endsAt: Date } {
  const startsAt = license.startsAt && license.startsAt > contract.startsAt ? license.startsAt : contract.startsAt;
  const endsAt = license.endsAt && license.endsAt < contract.endsAt ? license.endsAt : contract.endsAt;
  return { startsAt, endsAt };
}

/** A contract's license rows, as stored. */
export interface ContractLicenses {
  startsAt: Date;
  endsAt: Date;
  licenses: readonly ({ featureId: string; quantityPerMonth: DecimalLike } & LicenseBounds)[];
}

/**
 * Licensed quantity per product (feature id) for the month, under every contract of the realm:
 * each license row prorated by the days of the month in its period (`licensePeriod`), so an
 * amendment from the 16th gives days 1–15 the old quantity and the rest the new one.
 */
export function licensedForMonth(month: BillingMonth, timeZone: string, contracts: readonly ContractLicenses[]): Map<string, Decimal> {
  const byFeature = new Map<string, MonthlyAllowance[]>();
  for (const contract of contracts) {
    for (const license of contract.licenses) {
      const list = byFeature.get(license.featureId) ?? [];
      list.push({ ...licensePeriod(contract, license), quantityPerMonth: license.quantityPerMonth });
      byFeature.set(license.featureId, list);
    }
  }
  return new Map([...byFeature].map(([featureId, allowances]) => [featureId, proratedForMonth(month, timeZone, allowances)]));
}

/**
 * Space usage in space-months: the hourly space counts added up over the month, divided by the
 * month's hours (a space running half the month is 0.5 spaces). Month to date divides by the whole
 * month's hours too: what has run so far.
 */
export function spaceMonths(hourSum: DecimalLike, month: BillingMonth): Decimal {
  return roundQuantity(dec(hourSum).div(month.hours));
}

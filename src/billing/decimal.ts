import { Prisma } from '../generated/prisma/client.js';

/**
 * Billing arithmetic: `Prisma.Decimal` with enough precision that sums and products of stored values
 * (quantities with 9 decimals, prices with 12) are exact. Instances are `Prisma.Decimal`s (decimal.js
 * clones share one prototype), so they serialize through the `Decimal` scalar unchanged.
 */
export const D = Prisma.Decimal.clone({ precision: 100, rounding: Prisma.Decimal.ROUND_HALF_UP });
export type Decimal = Prisma.Decimal;
export type DecimalLike = Prisma.Decimal | string | number;

export const ZERO: Decimal = new D(0);

/** Quantities are stored with 9 decimals; a derived quantity (prorated, converted) is rounded to them. */
export const QUANTITY_SCALE = 9;

export function dec(value: DecimalLike): Decimal {
  return new D(value.toString());
}

/** A prorated or converted quantity: 9 decimals, half up. */
export function roundQuantity(value: Decimal): Decimal {
  return dec(value).toDecimalPlaces(QUANTITY_SCALE, D.ROUND_HALF_UP);
}

/** The most of a quantity a budget pays for: 9 decimals, rounded down (credits never go negative). */
export function floorQuantity(value: Decimal): Decimal {
  return dec(value).toDecimalPlaces(QUANTITY_SCALE, D.ROUND_DOWN);
}

export function min(a: Decimal, b: Decimal): Decimal {
  return a.lessThanOrEqualTo(b) ? a : b;
}

export function sum(values: Iterable<Decimal>): Decimal {
  let total = ZERO;
  for (const value of values) total = total.plus(value);
  return total;
}

import type { ProductCoverage } from './coverage.js';
import { sum, ZERO, type Decimal } from './decimal.js';

export interface InvoiceLine {
  featureId: string;
  /** Traceability: the month's usage and what the license covered. */
  used: Decimal;
  coveredByLicense: Decimal;
  /** Billable quantity: used beyond the license. */
  quantity: Decimal;
  unitPrice: Decimal;
  /** quantity × unitPrice, exact. */
  amount: Decimal;
  creditsApplied: Decimal;
  /** amount − creditsApplied (the on-demand cost), exact. */
  total: Decimal;
}

export interface Invoice {
  currency: string | null;
  lines: InvoiceLine[];
  subtotal: Decimal;
  creditsApplied: Decimal;
  total: Decimal;
  /** Products used beyond their license that have no price: not invoiced, named here. */
  unpriced: ProductCoverage[];
}

/**
 * Invoice lines from a month's coverage: one line per priced product with usage beyond its license
 * (products fully covered by their license have nothing to bill). No rounding: amounts are exact
 * products of 9-decimal quantities and 12-decimal prices; rounding to the currency's minor unit
 * is left to the invoicing system.
 */
export function invoiceLines(products: readonly ProductCoverage[]): Invoice {
  const lines: InvoiceLine[] = [];
  const unpriced: ProductCoverage[] = [];
  let currency: string | null = null;
  for (const p of products) {
    const quantity = p.used.minus(p.coveredByLicense);
    if (quantity.lessThanOrEqualTo(0)) continue;
    if (!p.unitPrice) {
      unpriced.push(p);
      continue;
    }
    currency ??= p.currency;
    const amount = quantity.mul(p.unitPrice);
    lines.push({
      featureId: p.featureId,
      used: p.used,
      coveredByLicense: p.coveredByLicense,
      quantity,
      unitPrice: p.unitPrice,
      amount,
      creditsApplied: p.creditsApplied,
      total: amount.minus(p.creditsApplied),
    });
  }
  const subtotal = sum(lines.map((l) => l.amount));
  const creditsApplied = sum(lines.map((l) => l.creditsApplied));
  return { currency, lines, subtotal, creditsApplied, total: lines.length ? subtotal.minus(creditsApplied) : ZERO, unpriced };
}

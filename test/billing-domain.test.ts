import { describe, expect, it } from 'vitest';
import { billingMonth, daysCovered, lastMonths, monthOf } from '../src/billing/calendar.js';
import { creditCategory } from '../src/billing/categories.js';
import { coverMonth, type ProductMonth } from '../src/billing/coverage.js';
import { dec } from '../src/billing/decimal.js';
import { invoiceLines } from '../src/billing/invoice.js';
import { billMonth, creditPoolsForMonth, priceForMonth } from '../src/billing/month-billing.js';
import { licensedForMonth, proratedForMonth, spaceMonths } from '../src/billing/proration.js';

const UTC = 'UTC';
const utc = (y: number, m: number, d: number, h = 0) => new Date(Date.UTC(y, m - 1, d, h));
const s = (value: { toFixed(): string } | null | undefined) => value?.toFixed() ?? null;

describe('calendar', () => {
  it('knows month lengths, leap years and DST hours', () => {
    expect(billingMonth('2024-02', UTC)).toMatchObject({ days: 29, hours: 696 });
    expect(billingMonth('2025-02', UTC)).toMatchObject({ days: 28, hours: 672 });
    expect(billingMonth('2100-02', UTC).days).toBe(28);
    expect(billingMonth('2000-02', UTC).days).toBe(29);
    expect(billingMonth('2026-03', 'Europe/Berlin')).toMatchObject({ days: 31, hours: 743 });
    expect(billingMonth('2026-10', 'Europe/Berlin')).toMatchObject({ days: 31, hours: 745 });
    expect(billingMonth('2026-04', 'Europe/Berlin').range.from.toISOString()).toBe('2026-03-31T22:00:00.000Z');
  });

  it('names months in the zone and lists the last ones, oldest first', () => {
    expect(monthOf(utc(2026, 3, 31, 23), 'Europe/Berlin')).toBe('2026-04');
    expect(lastMonths(utc(2026, 2, 10), UTC, 3)).toEqual(['2025-12', '2026-01', '2026-02']);
    expect(lastMonths(utc(2026, 2, 10), UTC, 12)).toHaveLength(12);
  });

  it('gives each day to the period in force at its local midnight', () => {
    const march = billingMonth('2026-03', UTC);
    expect(daysCovered(march, UTC, utc(2026, 1, 1), utc(2026, 3, 16))).toBe(15);
    expect(daysCovered(march, UTC, utc(2026, 3, 16), utc(2027, 1, 1))).toBe(16);
    expect(daysCovered(march, UTC, utc(2026, 3, 16), null)).toBe(16);
    // Renewal on the first: the whole month under the new contract.
    expect(daysCovered(march, UTC, utc(2026, 1, 1), utc(2026, 3, 1))).toBe(0);
    expect(daysCovered(march, UTC, utc(2026, 3, 1), utc(2026, 4, 1))).toBe(31);
    // Renewal on the last day.
    expect(daysCovered(march, UTC, utc(2026, 3, 31), utc(2026, 5, 1))).toBe(1);
    // Starting mid-day: that day still belongs to whatever was in force at midnight.
    expect(daysCovered(march, UTC, utc(2026, 3, 16, 12), null)).toBe(15);
    // In Berlin, 00:00 UTC on the 16th is 01:00 local: local midnight of the 16th is before it.
    const berlin = billingMonth('2026-03', 'Europe/Berlin');
    expect(daysCovered(berlin, 'Europe/Berlin', utc(2026, 3, 16), null)).toBe(15);
    expect(daysCovered(berlin, 'Europe/Berlin', utc(2026, 3, 15, 23), null)).toBe(16);
  });
});

describe('licensed quantity', () => {
  const march = billingMonth('2026-03', UTC);
  it('prorates a mid-month renewal by days under each contract', () => {
    const licensed = licensedForMonth(march, UTC, [
      { startsAt: utc(2025, 3, 16), endsAt: utc(2026, 3, 16), licenses: [{ featureId: 'tx', quantityPerMonth: '100' }] },
      { startsAt: utc(2026, 3, 16), endsAt: utc(2027, 3, 16), licenses: [{ featureId: 'tx', quantityPerMonth: '200' }, { featureId: 'rows', quantityPerMonth: '31' }] },
    ]);
    // 100 × 15/31 + 200 × 16/31 = 4700/31 = 151.612903225806…
    expect(s(licensed.get('tx'))).toBe('151.612903226');
    expect(s(licensed.get('rows'))).toBe('16');
  });

  it('is the full quantity when a renewal keeps it, in any month length', () => {
    for (const [month, day] of [['2024-02', 29], ['2025-02', 28], ['2026-04', 30], ['2026-03', 31]] as const) {
      const m = billingMonth(month, UTC);
      const split = new Date(m.range.from.getTime() + (day - 1) * 86_400_000); // renewal on the last day
      const q = proratedForMonth(m, UTC, [
        { startsAt: utc(2020, 1, 1), endsAt: split, quantityPerMonth: '1234.5' },
        { startsAt: split, endsAt: null, quantityPerMonth: '1234.5' },
      ]);
      expect(s(q)).toBe('1234.5');
    }
  });

  it('prorates in leap Februaries by 29 days', () => {
    const feb = billingMonth('2024-02', UTC);
    expect(s(proratedForMonth(feb, UTC, [{ startsAt: utc(2024, 2, 29), endsAt: null, quantityPerMonth: '29' }]))).toBe('1');
    expect(s(proratedForMonth(feb, UTC, [{ startsAt: utc(2024, 2, 15), endsAt: null, quantityPerMonth: '1000' }]))).toBe('517.24137931'); // 15/29
    expect(s(proratedForMonth(billingMonth('2025-02', UTC), UTC, [{ startsAt: utc(2025, 2, 15), endsAt: null, quantityPerMonth: '1000' }]))).toBe('500');
  });

  it('is zero outside every contract', () => {
    expect(s(proratedForMonth(march, UTC, [{ startsAt: utc(2026, 4, 1), endsAt: null, quantityPerMonth: '5' }]))).toBe('0');
    expect(licensedForMonth(march, UTC, []).size).toBe(0);
  });
});

describe('categories and spaces', () => {
  it('maps products to credit categories', () => {
    expect(creditCategory({ key: 'spaces.shield', service: 'spaces', unit: 'SPACE' })).toBe('SHIELD_SPACE');
    expect(creditCategory({ key: 'spaces.private', service: 'spaces', unit: 'SPACE' })).toBe('PRIVATE_SPACE');
    expect(creditCategory({ key: 'rows.unique', service: 'data', unit: 'ROW' })).toBe('DATA_ADDON');
    expect(creditCategory({ key: 'storage', service: 'cloud', unit: 'GB_MONTH' })).toBe('DATA_ADDON');
    expect(creditCategory({ key: 'x', service: 'data', unit: 'TRANSACTION' })).toBe('DATA_ADDON');
    expect(creditCategory({ key: 'location.tx', service: 'location', unit: 'TRANSACTION' })).toBe('THIRD_PARTY_ADDON');
    expect(creditCategory({ key: 'dynos', service: 'compute', unit: 'DYNO_UNIT' })).toBe('THIRD_PARTY_ADDON');
  });

  it('counts a space running half the month as 0.5 spaces', () => {
    const april = billingMonth('2026-04', UTC); // 720 hours
    expect(s(spaceMonths('360', april))).toBe('0.5');
    expect(s(spaceMonths(String(2 * 720), april))).toBe('2');
    expect(s(spaceMonths('1', billingMonth('2026-03', 'Europe/Berlin')))).toBe('0.001345895'); // 1/743
  });
});

const product = (p: Partial<ProductMonth> & Pick<ProductMonth, 'featureId' | 'category'>): ProductMonth => ({
  key: p.featureId,
  used: dec(0),
  licensed: dec(0),
  unitPrice: dec(1),
  currency: 'EUR',
  ...p,
  ...(p.used !== undefined ? { used: dec(p.used) } : {}),
});
const pools = (general: string, privateSpace = '0', shieldSpace = '0') => ({ general: dec(general), privateSpace: dec(privateSpace), shieldSpace: dec(shieldSpace) });

describe('coverage', () => {
  it('covers by license first, then credits, then on demand', () => {
    const result = coverMonth([product({ featureId: 'tx', category: 'THIRD_PARTY_ADDON', used: dec(150), licensed: dec(100), unitPrice: dec('0.5') })], pools('10'));
    const [tx] = result.products;
    expect([tx!.coveredByLicense, tx!.unusedLicensed, tx!.coveredByCredits, tx!.creditsApplied, tx!.onDemand, tx!.onDemandCost].map(s)).toEqual(['100', '0', '20', '10', '30', '15']);
    expect(s(result.creditsRemaining.general)).toBe('0');
  });

  it('leaves unused license when usage is below it, and takes no credits', () => {
    const [p] = coverMonth([product({ featureId: 'tx', category: 'THIRD_PARTY_ADDON', used: dec(40), licensed: dec(100) })], pools('10')).products;
    expect([p!.coveredByLicense, p!.unusedLicensed, p!.coveredByCredits, p!.onDemand, p!.onDemandCost].map(s)).toEqual(['40', '60', '0', '0', '0']);
  });

  it('spends general credits in category order whatever the input order, and runs out mid-product', () => {
    const result = coverMonth(
      [
        product({ featureId: 'shield', category: 'SHIELD_SPACE', used: dec(1), unitPrice: dec(3000) }),
        product({ featureId: 'private', category: 'PRIVATE_SPACE', used: dec(1), unitPrice: dec(1000) }),
        product({ featureId: 'rows', category: 'DATA_ADDON', used: dec(100), unitPrice: dec(2) }),
        product({ featureId: 'tx', category: 'THIRD_PARTY_ADDON', used: dec(1000), unitPrice: dec('0.1') }),
      ],
      pools('700'),
    );
    const by = Object.fromEntries(result.products.map((p) => [p.featureId, p]));
    expect(result.products.map((p) => p.featureId)).toEqual(['shield', 'private', 'rows', 'tx']); // input order kept
    expect(s(by.tx!.creditsApplied)).toBe('100');
    expect(s(by.rows!.creditsApplied)).toBe('200');
    // 400 credits left for a 1,000-credit space: 0.4 of it.
    expect([by.private!.coveredByCredits, by.private!.creditsApplied, by.private!.onDemand, by.private!.onDemandCost].map(s)).toEqual(['0.4', '400', '0.6', '600']);
    expect([by.shield!.coveredByCredits, by.shield!.onDemandCost].map(s)).toEqual(['0', '3000']);
    expect(s(result.creditsApplied)).toBe('700');
  });

  it('pays spaces from their own credits first: half a month of a space is 500 credits', () => {
    const result = coverMonth(
      [
        product({ featureId: 'private', category: 'PRIVATE_SPACE', used: dec('2.5'), licensed: dec(1), unitPrice: dec(1000) }),
        product({ featureId: 'shield', category: 'SHIELD_SPACE', used: dec('0.5'), unitPrice: dec(3000) }),
      ],
      pools('1000', '1000', '1000'),
    );
    const [priv, shield] = result.products;
    // 1.5 spaces beyond the license: 1 from private-space credits, 0.5 (= 500 credits) from general ones.
    expect([priv!.coveredByCredits, priv!.creditsApplied, priv!.onDemand].map(s)).toEqual(['1.5', '1500', '0']);
    // 0.5 shield space = 1,500 credits: 1,000 shield credits, then the 500 general left.
    expect([shield!.coveredByCredits, shield!.creditsApplied, shield!.onDemand].map(s)).toEqual(['0.5', '1500', '0']);
    expect([result.creditsRemaining.general, result.creditsRemaining.privateSpace, result.creditsRemaining.shieldSpace].map(s)).toEqual(['0', '0', '0']);
  });

  it('rounds a partial credit purchase down to nano-units, keeping credits + on-demand exact', () => {
    const [p] = coverMonth([product({ featureId: 'tx', category: 'THIRD_PARTY_ADDON', used: dec(10), unitPrice: dec(3) })], pools('10')).products;
    expect(s(p!.coveredByCredits)).toBe('3.333333333');
    expect(s(p!.creditsApplied)).toBe('9.999999999');
    expect(s(p!.onDemand)).toBe('6.666666667');
    expect(s(p!.creditsApplied.plus(p!.onDemandCost!))).toBe('30');
  });

  it('gives no credits to unpriced or free products', () => {
    const result = coverMonth(
      [
        product({ featureId: 'a', category: 'THIRD_PARTY_ADDON', used: dec(5), unitPrice: null, currency: null }),
        product({ featureId: 'b', category: 'THIRD_PARTY_ADDON', used: dec(5), unitPrice: dec(0) }),
      ],
      pools('100'),
    );
    expect(result.products.map((p) => [s(p.onDemand), s(p.onDemandCost), s(p.creditsApplied)])).toEqual([['5', null, '0'], ['5', '0', '0']]);
    expect(s(result.creditsRemaining.general)).toBe('100');
  });
});

describe('month billing and invoice', () => {
  const april = billingMonth('2026-04', UTC);

  it('picks the price in force at the start of the month; a price starting during a month applies from the next', () => {
    const prices = [
      { featureId: 'f', unitAmount: '1', currency: 'EUR', validFrom: utc(2026, 1, 1) },
      { featureId: 'f', unitAmount: '2', currency: 'EUR', validFrom: utc(2026, 4, 1) },
      { featureId: 'f', unitAmount: '3', currency: 'EUR', validFrom: utc(2026, 4, 10) },
    ];
    expect(priceForMonth(april, prices)?.unitAmount).toBe('2');
    expect(priceForMonth(billingMonth('2026-03', UTC), prices)?.unitAmount).toBe('1');
    expect(priceForMonth(april, prices.slice(2))).toBeNull();
    expect(priceForMonth(billingMonth('2026-05', UTC), prices)?.unitAmount).toBe('3');
    expect(priceForMonth(billingMonth('2026-05', UTC), prices.slice(2))?.unitAmount).toBe('3');
    expect(priceForMonth(billingMonth('2025-12', UTC), prices)).toBeNull();
  });

  it('prorates credit grants like licenses', () => {
    const p = creditPoolsForMonth(april, UTC, [
      { kind: 'GENERAL', credits: '300', startsAt: utc(2026, 4, 11), endsAt: null },
      { kind: 'PRIVATE_SPACE', credits: '2000', startsAt: utc(2026, 1, 1), endsAt: utc(2026, 4, 16) },
      { kind: 'SHIELD_SPACE', credits: '3000', startsAt: utc(2026, 5, 1), endsAt: null },
    ]);
    expect([p.general, p.privateSpace, p.shieldSpace].map(s)).toEqual(['200', '1000', '0']);
  });

  it('bills a month end to end and writes exact invoice lines', () => {
    const coverage = billMonth({
      month: april,
      timeZone: UTC,
      features: [
        { id: 'tx', key: 'tx', service: 'location', unit: 'TRANSACTION' },
        { id: 'sp', key: 'spaces', service: 'spaces', unit: 'SPACE' },
        { id: 'idle', key: 'idle', service: 'x', unit: 'REQUEST' },
        { id: 'lic', key: 'lic', service: 'x', unit: 'REQUEST' },
      ],
      contracts: [{ startsAt: utc(2026, 1, 1), endsAt: utc(2027, 1, 1), licenses: [{ featureId: 'tx', quantityPerMonth: '1000' }, { featureId: 'lic', quantityPerMonth: '5' }] }],
      grants: [{ kind: 'GENERAL', credits: '0.5', startsAt: utc(2026, 1, 1), endsAt: null }],
      prices: [
        { featureId: 'tx', unitAmount: '0.00075', currency: 'EUR', validFrom: utc(2026, 1, 1) },
        { featureId: 'sp', unitAmount: '1000', currency: 'EUR', validFrom: utc(2026, 1, 1) },
      ],
      usage: new Map([
        ['tx', { quantity: '1234.567891234', hourSum: '1234.567891234' }],
        ['sp', { quantity: '1', hourSum: '360' }], // MAX 1, running 360 of 720 hours
      ]),
    });
    const by = Object.fromEntries(coverage.products.map((p) => [p.featureId, p]));
    expect(Object.keys(by).sort()).toEqual(['lic', 'sp', 'tx']); // unused and unlicensed products are left out
    expect(s(by.sp!.used)).toBe('0.5');
    // tx: 234.567891234 beyond the license × 0.00075 = 0.17592591842550 EUR, paid by credits.
    expect([by.tx!.onDemand, by.tx!.creditsApplied].map(s)).toEqual(['0', '0.1759259184255']);
    const invoice = invoiceLines(coverage.products);
    expect(invoice.currency).toBe('EUR');
    expect(invoice.lines.map((l) => [l.featureId, s(l.quantity), s(l.unitPrice), s(l.amount), s(l.creditsApplied), s(l.total)])).toEqual([
      // Lines by feature key; credits went to tx first (third-party add-on), then
      // 0.5 - 0.1759259184255 = 0.3240740815745 credits left → 0.000324074 spaces (rounded down) = 0.324074 EUR.
      ['sp', '0.5', '1000', '500', '0.324074', '499.675926'],
      ['tx', '234.567891234', '0.00075', '0.1759259184255', '0.1759259184255', '0'],
    ]);
    expect([invoice.subtotal, invoice.creditsApplied, invoice.total].map(s)).toEqual(['500.1759259184255', '0.4999999184255', '499.675926']);
    expect(invoice.unpriced).toEqual([]);
  });
});

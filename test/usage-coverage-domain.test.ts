import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { billingMonth } from '../src/billing/calendar.js';
import type { CreditCategory } from '../src/billing/categories.js';
import { coverMonth, type ProductMonth } from '../src/billing/coverage.js';
import { dec, sum, ZERO, type Decimal } from '../src/billing/decimal.js';
import { creditPoolsForMonth } from '../src/billing/month-billing.js';
import { licensedForMonth } from '../src/billing/proration.js';
import { coverageSegments, splitExactly, type ContractWithLicenseIds, type CoverageSegment, type CreditGrantWithId } from '../src/billing/usage-coverage.js';

const UTC = 'UTC';
const APRIL = billingMonth('2026-04', UTC); // 30 days
const MARCH = billingMonth('2026-03', UTC); // 31 days
const at = (iso: string) => new Date(iso);

function product(p: Partial<ProductMonth> & { featureId: string; category: CreditCategory; used: Decimal }): ProductMonth {
  return { key: p.featureId, licensed: ZERO, unitPrice: null, currency: 'EUR', ...p };
}

/** Bills the month as `billMonth` does, then cuts it into segments. */
function segmentsOf(options: {
  month?: typeof APRIL;
  products: ProductMonth[];
  contracts?: ContractWithLicenseIds[];
  grants?: CreditGrantWithId[];
  attributable?: (featureId: string) => boolean;
}) {
  const month = options.month ?? APRIL;
  const contracts = options.contracts ?? [];
  const grants = options.grants ?? [];
  const licensed = licensedForMonth(month, UTC, contracts);
  const products = options.products.map((p) => ({ ...p, licensed: licensed.get(p.featureId) ?? ZERO }));
  const coverage = coverMonth(products, creditPoolsForMonth(month, UTC, grants));
  const segments = coverageSegments({ month, timeZone: UTC, coverage, contracts, grants, attributable: options.attributable ?? (() => true) });
  return { coverage, segments };
}

const show = (segments: CoverageSegment[]) =>
  segments.map((s) => [s.featureId, s.source, s.sourceId, s.from.toFixed(), s.to?.toFixed() ?? null, s.unitPrice?.toFixed() ?? null]);

describe('coverageSegments', () => {
  it('lays the license, then space credits, then general credits first in first out, then on demand along the usage', () => {
    const { coverage, segments } = segmentsOf({
      products: [product({ featureId: 'sp', category: 'PRIVATE_SPACE', used: dec(10), unitPrice: dec(100) })],
      contracts: [{ startsAt: at('2026-01-01T00:00:00Z'), endsAt: at('2027-01-01T00:00:00Z'), licenses: [{ id: 'L1', featureId: 'sp', quantityPerMonth: '2' }] }],
      grants: [
        { id: 'G2', kind: 'GENERAL', credits: '1000', startsAt: at('2026-02-01T00:00:00Z'), endsAt: null },
        { id: 'P1', kind: 'PRIVATE_SPACE', credits: '300', startsAt: at('2026-03-01T00:00:00Z'), endsAt: null },
        { id: 'G1', kind: 'GENERAL', credits: '250', startsAt: at('2026-01-01T00:00:00Z'), endsAt: null },
      ],
    });
    expect(coverage.products[0]!.creditsTaken.map((t) => [t.pool, t.credits.toFixed()])).toEqual([['privateSpace', '300'], ['general', '500']]);
    expect(show(segments)).toEqual([
      ['sp', 'LICENSE', 'L1', '0', '2', null],
      ['sp', 'CREDIT_GRANT', 'P1', '2', '5', '100'],
      ['sp', 'CREDIT_GRANT', 'G1', '5', '7.5', '100'],
      ['sp', 'CREDIT_GRANT', 'G2', '7.5', '10', '100'],
      ['sp', 'ON_DEMAND', null, '10', null, null],
    ]);
  });

  it('gives a mid-month renewal two license segments that add up to the prorated license exactly', () => {
    const { coverage, segments } = segmentsOf({
      month: MARCH,
      products: [product({ featureId: 'tx', category: 'THIRD_PARTY_ADDON', used: dec(2000) })],
      contracts: [
        { startsAt: at('2025-03-16T00:00:00Z'), endsAt: at('2026-03-16T00:00:00Z'), licenses: [{ id: 'A', featureId: 'tx', quantityPerMonth: '1000' }] },
        { startsAt: at('2026-03-16T00:00:00Z'), endsAt: at('2027-03-16T00:00:00Z'), licenses: [{ id: 'B', featureId: 'tx', quantityPerMonth: '2000' }] },
      ],
    });
    // 1000 × 15/31 + 2000 × 16/31 = 1516.129032258 (rounded once); A's part rounds, B takes the rest.
    expect(coverage.products[0]!.coveredByLicense.toFixed()).toBe('1516.129032258');
    expect(show(segments)).toEqual([
      ['tx', 'LICENSE', 'A', '0', '483.870967742', null],
      ['tx', 'LICENSE', 'B', '483.870967742', '1516.129032258', null],
      ['tx', 'ON_DEMAND', null, '1516.129032258', null, null],
    ]);
  });

  it('stops at what was used when the license is not used up', () => {
    const { segments } = segmentsOf({
      products: [product({ featureId: 'tx', category: 'THIRD_PARTY_ADDON', used: dec(40), unitPrice: dec(1) })],
      contracts: [{ startsAt: at('2026-01-01T00:00:00Z'), endsAt: at('2027-01-01T00:00:00Z'), licenses: [{ id: 'L', featureId: 'tx', quantityPerMonth: '100' }] }],
      grants: [{ id: 'G', kind: 'GENERAL', credits: '10', startsAt: at('2026-01-01T00:00:00Z'), endsAt: null }],
    });
    expect(show(segments)).toEqual([
      ['tx', 'LICENSE', 'L', '0', '40', null],
      ['tx', 'ON_DEMAND', null, '40', null, null],
    ]);
  });

  it('follows the credits as they run out mid-product, counting what products without segments spent', () => {
    const { coverage, segments } = segmentsOf({
      products: [
        product({ featureId: 'aaa', category: 'THIRD_PARTY_ADDON', used: dec(1), unitPrice: dec(2) }),
        product({ featureId: 'bbb', category: 'THIRD_PARTY_ADDON', used: dec(5), unitPrice: dec(3) }),
        product({ featureId: 'ccc', category: 'THIRD_PARTY_ADDON', used: dec(1), unitPrice: dec(1) }),
        product({ featureId: 'ddd', category: 'DATA_ADDON', used: dec(1), unitPrice: dec(1) }),
      ],
      grants: [
        { id: 'G1', kind: 'GENERAL', credits: '4', startsAt: at('2026-01-01T00:00:00Z'), endsAt: null },
        { id: 'G2', kind: 'GENERAL', credits: '6', startsAt: at('2026-02-01T00:00:00Z'), endsAt: null },
      ],
      attributable: (id) => id !== 'aaa',
    });
    // aaa takes 2 of G1; bbb: 8 credits left buy 2.666666666 (7.999999998 credits: G1's 2, then 5.999999998 of G2);
    // the 0.000000002 left stays in the pool: the pool ran out on bbb, so ccc and ddd get nothing.
    const bbb = coverage.products[1]!;
    expect([bbb.coveredByCredits, bbb.creditsApplied, bbb.onDemand].map((d) => d.toFixed())).toEqual(['2.666666666', '7.999999998', '2.333333334']);
    expect(show(segments)).toEqual([
      ['bbb', 'CREDIT_GRANT', 'G1', '0', '0.666666666', '3'],
      ['bbb', 'CREDIT_GRANT', 'G2', '0.666666666', '2.666666666', '3'],
      ['bbb', 'ON_DEMAND', null, '2.666666666', null, null],
      ['ccc', 'ON_DEMAND', null, '0', null, null],
      ['ddd', 'ON_DEMAND', null, '0', null, null],
    ]);
    expect(coverage.creditsRemaining.general.toFixed()).toBe('0.000000002');
  });

  it('prorates grants by days in force and splits a pool among them exactly', () => {
    const { coverage, segments } = segmentsOf({
      month: MARCH,
      products: [product({ featureId: 'tx', category: 'THIRD_PARTY_ADDON', used: dec(1000), unitPrice: dec('0.07') })],
      grants: [
        { id: 'G1', kind: 'GENERAL', credits: '10', startsAt: at('2026-01-01T00:00:00Z'), endsAt: at('2026-03-11T00:00:00Z') }, // 10 days: 100/31
        { id: 'G2', kind: 'GENERAL', credits: '10', startsAt: at('2026-03-11T00:00:00Z'), endsAt: null }, // 21 days: 210/31
      ],
    });
    const tx = coverage.products[0]!;
    expect(coverage.creditsAvailable.general.toFixed()).toBe('10');
    const parts = segments.filter((s) => s.source === 'CREDIT_GRANT');
    expect(parts.map((s) => s.sourceId)).toEqual(['G1', 'G2']);
    // G1: 3.225806452 credits → floor(46.0829493…) quantity; G2 takes the rest of coveredByCredits.
    expect(parts[0]!.to!.toFixed()).toBe('46.082949314');
    expect(parts[1]!.to!.toFixed()).toBe(tx.coveredByCredits.toFixed());
    expect(tx.coveredByCredits.toFixed()).toBe('142.857142857');
  });
});

describe('splitExactly', () => {
  it('rounds running sums so the parts add up to the total', () => {
    const third = dec(1).div(3);
    expect(splitExactly([third, third, third], dec(1)).map((d) => d.toFixed())).toEqual(['0.333333333', '0.333333334', '0.333333333']);
    expect(splitExactly([], dec(0))).toEqual([]);
  });

  it('segments of any month add up exactly to the monthly coverage (property)', () => {
    const day = (d: number) => new Date(Date.UTC(2026, 2, d));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5_000_000 }),
        fc.integer({ min: 2, max: 31 }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 31 }), fc.integer({ min: 0, max: 9_999_999 })), { maxLength: 4 }),
        fc.integer({ min: 1, max: 99_999 }),
        fc.integer({ min: 0, max: 3_000_000 }),
        (usedMilli, renewalDay, grantSpecs, priceMicro, licenseMilli) => {
          const used = dec(usedMilli).div(1000);
          const { coverage, segments } = segmentsOf({
            month: MARCH,
            products: [
              product({ featureId: 'req', category: 'THIRD_PARTY_ADDON', used: used.div(7).toDecimalPlaces(9), unitPrice: dec(priceMicro).div(1_000_000) }),
              product({ featureId: 'tx', category: 'THIRD_PARTY_ADDON', used, unitPrice: dec(priceMicro).mul(7).div(1_000_000_000) }),
            ],
            contracts: [
              { startsAt: day(-400), endsAt: day(renewalDay), licenses: [{ id: 'A', featureId: 'tx', quantityPerMonth: dec(licenseMilli).div(1000) }] },
              { startsAt: day(renewalDay), endsAt: day(400), licenses: [{ id: 'B', featureId: 'tx', quantityPerMonth: dec(licenseMilli).div(700) }] },
            ],
            grants: grantSpecs.map(([start, credits], i) => ({ id: `G${i}`, kind: 'GENERAL' as const, credits: dec(credits).div(1000), startsAt: day(start), endsAt: null })),
          });
          for (const p of coverage.products) {
            const mine = segments.filter((s) => s.featureId === p.featureId);
            const length = (source: string) => sum(mine.filter((s) => s.source === source).map((s) => s.to!.minus(s.from)));
            expect(length('LICENSE').toFixed()).toBe(p.coveredByLicense.toFixed());
            expect(length('CREDIT_GRANT').toFixed()).toBe(p.coveredByCredits.toFixed());
            // Contiguous from 0, on demand last and open-ended.
            let end = ZERO;
            for (const s of mine) {
              expect(s.from.toFixed()).toBe(end.toFixed());
              if (s.to) {
                expect(s.to.greaterThan(s.from)).toBe(true);
                end = s.to;
              }
            }
            expect(mine[mine.length - 1]).toMatchObject({ source: 'ON_DEMAND', to: null });
            expect(end.plus(p.onDemand).toFixed()).toBe(p.used.toFixed());
          }
          // The credit segments are worth exactly the credits applied.
          const given = new Map<string, Decimal>();
          for (const s of segments.filter((x) => x.source === 'CREDIT_GRANT')) given.set(s.sourceId!, (given.get(s.sourceId!) ?? ZERO).plus(s.to!.minus(s.from).mul(s.unitPrice!)));
          expect(sum(given.values()).toFixed()).toBe(coverage.creditsApplied.toFixed());
        },
      ),
      { numRuns: 300 },
    );
  });
});

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../src/global-id.js';
import { ingestBatch } from '../src/ingest/pipeline.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

/**
 * Sums inside the ingestion pipeline against BigInt arithmetic, over the documented range: quantities
 * of up to 20 integer digits and 9 decimals, buckets of up to 10^9 such events (numeric(38, 9)).
 */

const NOW = new Date('2026-06-15T12:00:00Z');
const HOUR = '2026-06-15T10:00:00Z';
const NANOS = 1_000_000_000n;
/** 99999999999999999999.999999999 in billionths: the largest quantity an event may carry. */
const LARGEST = 10n ** 29n - 1n;

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => NOW });
  realm = await createUsageRealm(db.prisma, 'UTC');
});
afterAll(() => db?.destroy());

/** The test's own decimal formatting, independent of the pipeline's. */
function decimal(nanos: bigint): string {
  const fraction = String(nanos % NANOS).padStart(9, '0');
  return `${nanos / NANOS}.${fraction}`;
}

/** A stored numeric as billionths ("123.450000000" -> 123450000000n). */
function nanosOf(text: string): bigint {
  const [whole, fraction = ''] = text.split('.');
  return BigInt(whole!) * NANOS + BigInt(fraction.padEnd(9, '0'));
}

let run = 0;
const target = () => ({ realmId: realm.realm.id, workspaceId: null });

async function bucket(feature: 'tx' | 'spaces' | 'storage', billingTag: string): Promise<bigint> {
  const rows = await db.prisma.$queryRawUnsafe<{ quantity: string }[]>(
    `SELECT quantity::text AS quantity FROM "UsageHourly" WHERE "realmId" = $1::uuid AND "featureId" = $2::uuid AND "billingTag" = $3`,
    realm.realm.id,
    realm.features[feature].id,
    billingTag,
  );
  expect(rows).toHaveLength(1);
  return nanosOf(rows[0]!.quantity);
}

async function ingestAll(feature: string, billingTag: string, quantities: bigint[]) {
  const events = quantities.map((q, i) => ({ idempotencyKey: `${billingTag}-${feature}-${i}`, feature, timestamp: HOUR, quantity: decimal(q), billingTag }));
  const result = await ingestBatch(db.prisma, target(), events, { now: NOW });
  expect(result).toEqual({ accepted: quantities.length, duplicates: 0, rejected: [] });
}

const quantity = fc.oneof(
  fc.bigInt({ min: 0n, max: LARGEST }),
  fc.bigInt({ min: LARGEST - 10n ** 12n, max: LARGEST }),
  fc.bigInt({ min: 0n, max: 10n ** 6n }),
  fc.constantFrom(0n, 1n, LARGEST, 12_345_678_901_234_567_500_000_000n),
);

describe('exact sums in one batch', () => {
  it('the examples of the issue: no digit lost when two events meet in a bucket', async () => {
    await ingestAll('tx', 'issue-a', [nanosOf('12345678901234567.5'), nanosOf('0.000000001')]);
    expect(decimal(await bucket('tx', 'issue-a'))).toBe('12345678901234567.500000001');
    await ingestAll('tx', 'issue-b', [LARGEST, LARGEST]);
    expect(decimal(await bucket('tx', 'issue-b'))).toBe('199999999999999999999.999999998');

    // Reports read the same exact values.
    const id = encodeId('Feature', realm.features.tx.id);
    const { body } = await graphql(
      app,
      `{ realm { usage(range: { from: "2026-06-15T10:00:00Z", to: "2026-06-15T11:00:00Z" }, filter: { featureIds: ["${id}"], billingTags: ["issue-a"] }) { totals { quantity } } } }`,
      { key: realm.admin.key },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data.realm.usage.totals).toEqual([{ quantity: '12345678901234567.500000001' }]);
  });

  it('SUM, MAX and LATEST buckets of a batch equal BigInt arithmetic over the whole range (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(quantity, { minLength: 1, maxLength: 8 }), fc.array(quantity, { minLength: 0, maxLength: 4 }), async (first, second) => {
        const tag = `p-${++run}`;
        await ingestAll('tx', tag, first);
        await ingestAll('spaces', tag, first);
        await ingestAll('storage', tag, first);
        expect(await bucket('tx', tag)).toBe(first.reduce((sum, q) => sum + q, 0n));
        expect(await bucket('spaces', tag)).toBe(first.reduce((max, q) => (q > max ? q : max), 0n));
        // Same timestamp: the event received last is the latest.
        expect(await bucket('storage', tag)).toBe(first.at(-1));
        if (second.length) {
          // A later batch into the same bucket adds in SQL.
          const events = second.map((q, i) => ({ idempotencyKey: `${tag}-later-${i}`, feature: 'tx', timestamp: HOUR, quantity: decimal(q), billingTag: tag }));
          expect((await ingestBatch(db.prisma, target(), events, { now: NOW })).accepted).toBe(second.length);
          expect(await bucket('tx', tag)).toBe([...first, ...second].reduce((sum, q) => sum + q, 0n));
        }
      }),
      { numRuns: 40 },
    );
  });

  it('a bucket holding 10^9 - 1 of the largest events takes one more, exactly (numeric(38, 9) suffices)', async () => {
    await ingestAll('tx', 'top', [LARGEST]);
    await db.prisma.$executeRawUnsafe(
      `UPDATE "UsageHourly" SET quantity = $1::numeric WHERE "realmId" = $2::uuid AND "billingTag" = 'top'`,
      decimal(LARGEST * (10n ** 9n - 1n)),
      realm.realm.id,
    );
    const events = [{ idempotencyKey: 'top-last', feature: 'tx', timestamp: HOUR, quantity: decimal(LARGEST), billingTag: 'top' }];
    expect((await ingestBatch(db.prisma, target(), events, { now: NOW })).accepted).toBe(1);
    expect(await bucket('tx', 'top')).toBe(LARGEST * 10n ** 9n);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { billingMonth, lastMonths } from '../src/billing/calendar.js';
import { buildMonthlyUsageSql, monthBuckets, type MonthlyUsageRow } from '../src/billing/monthly-usage-sql.js';
import { createApp } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm, insertUsage, type RawUsage } from './helpers/usage-fixture.js';

const HOUR = 3_600_000;
const NOW = new Date('2026-04-20T12:00:00Z');
const END_OF_NOW_HOUR = new Date('2026-04-20T13:00:00Z');

/**
 * The statement billing used before it put rows in months by `width_bucket`: every row's hour
 * converted to local time and its month named by `to_char`, hours grouped first for every feature.
 * The new statement must give exactly its numbers.
 */
const REFERENCE_SQL = `
WITH hourly AS (
  SELECT u."featureId" AS feature, u."hour" AS hour, SUM(u."quantity") AS quantity
  FROM "UsageHourly" u
  JOIN "Feature" f0 ON f0.id = u."featureId" AND f0."aggregation" <> 'UNIQUE_COUNT'
  WHERE u."realmId" = $1::uuid AND u."hour" >= $2::timestamptz AND u."hour" < $3::timestamptz
  GROUP BY 1, 2
)
SELECT h.feature::text AS feature, to_char(date_trunc('month', h.hour AT TIME ZONE $4::text), 'YYYY-MM') AS month,
  (CASE f."aggregation"
     WHEN 'MAX' THEN MAX(h.quantity)
     WHEN 'LATEST' THEN (array_agg(h.quantity ORDER BY h.hour DESC))[1]
     ELSE SUM(h.quantity) END)::text AS quantity,
  SUM(h.quantity)::text AS "hourSum"
FROM hourly h JOIN "Feature" f ON f.id = h.feature
GROUP BY 1, 2, f."aggregation"
UNION ALL
SELECT k."featureId"::text, to_char(date_trunc('month', k."hour" AT TIME ZONE $4::text), 'YYYY-MM'), COUNT(DISTINCT k."key")::text, NULL
FROM "UsageUniqueKey" k
WHERE k."realmId" = $1::uuid AND k."hour" >= $2::timestamptz AND k."hour" < $3::timestamptz
GROUP BY 1, 2`;

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.destroy();
});

/**
 * Usage on every local month boundary of the window (the UTC hours just before, at and after the
 * local midnight, which falls on a half hour in some zones), several rows per hour (dimensions)
 * so that MAX and LATEST depend on the per-hour totals, and keys seen again in later months.
 */
function usageAround(realm: Awaited<ReturnType<typeof createUsageRealm>>, months: string[], timeZone: string): RawUsage[] {
  const usage: RawUsage[] = [];
  const dims = [{ workspaceId: realm.tree.left.id }, { workspaceId: realm.tree.right.id }, { workspaceId: realm.tree.leaf.id, billingTag: 'b' }];
  months.forEach((name, m) => {
    const boundary = billingMonth(name, timeZone).range.from.getTime();
    const first = Math.floor(boundary / HOUR) * HOUR - 3 * HOUR;
    for (let h = 0; h < 7; h++) {
      const hour = new Date(first + h * HOUR);
      dims.forEach((dim, d) => {
        const q = (base: number) => String(base + ((m * 7 + h * 3 + d * 5) % 11) + (d === 1 ? 0.123456789 : 0));
        usage.push({ feature: 'tx', hour, quantity: q(1), ...dim });
        usage.push({ feature: 'req', hour, quantity: q(2), ...dim });
        usage.push({ feature: 'spaces', hour, quantity: q(h % 2 ? 3 : 0), ...dim });
        usage.push({ feature: 'storage', hour, quantity: q(d), ...dim });
        usage.push({ feature: 'rows', hour, keys: [`k${(m + h) % 5}`, `d${d}`, `m${m % 3}-${h}`], ...dim });
      });
    }
  });
  return usage;
}

describe('monthly usage statement', () => {
  it.each(['Europe/Berlin', 'Asia/Kolkata', 'America/St_Johns', 'Pacific/Chatham'])(
    'gives exactly the numbers of the per-row time zone conversion (%s)',
    async (timeZone) => {
      const realm = await createUsageRealm(db.prisma, timeZone);
      const featureIds = Object.fromEntries(Object.entries(realm.features).map(([k, f]) => [k, f.id]));
      // 14 months of boundaries: the window's 12 and one outside on each side.
      const window = lastMonths(NOW, timeZone, 12);
      const around = [lastMonths(NOW, timeZone, 13)[0]!, ...window, '2026-05'];
      await insertUsage(db.prisma, realm.realm.id, featureIds, usageAround(realm, around, timeZone));

      const months = window.map((m) => billingMonth(m, timeZone));
      const from = months[0]!.range.from;
      for (const to of [months[11]!.range.to, END_OF_NOW_HOUR]) {
        const reference = await db.prisma.$queryRawUnsafe<{ feature: string; month: string; quantity: string; hourSum: string | null }[]>(
          REFERENCE_SQL,
          realm.realm.id,
          from.toISOString(),
          to.toISOString(),
          timeZone,
        );
        const { sql, params, bucketMonth } = buildMonthlyUsageSql({
          realmId: realm.realm.id,
          months: months.map((m) => m.range),
          to,
          features: Object.values(realm.features),
        });
        const rows = await db.prisma.$queryRawUnsafe<MonthlyUsageRow[]>(sql, ...params);
        const key = (r: { feature: string; month: string; quantity: string; hourSum: string | null }) => `${r.month} ${r.feature} ${r.quantity} ${r.hourSum}`;
        const got = rows.map((r) => key({ ...r, month: months[bucketMonth[Number(r.bucket)]!]!.month })).sort();
        expect(got).toEqual(reference.map(key).sort());
        expect(got.length).toBe(12 * 5); // every month has every feature: the comparison is not vacuous
      }
    },
  );

  it('puts months with a gap between them in their own buckets', () => {
    const jan = billingMonth('2026-01', 'UTC').range;
    const feb = billingMonth('2026-02', 'UTC').range;
    const apr = billingMonth('2026-04', 'UTC').range;
    const { boundaries, bucketMonth } = monthBuckets([jan, feb, apr]);
    expect(boundaries.map((b) => b.toISOString().slice(0, 10))).toEqual(['2026-01-01', '2026-02-01', '2026-03-01', '2026-04-01', '2026-05-01']);
    expect(bucketMonth).toEqual([null, 0, 1, null, 2]);
  });
});

describe('usageHistory statements', () => {
  it('reads 1 or 12 months with the same statements, one of them over the hourly usage', async () => {
    const realm = await createUsageRealm(db.prisma, 'Europe/Berlin');
    const featureIds = Object.fromEntries(Object.entries(realm.features).map(([k, f]) => [k, f.id]));
    await insertUsage(db.prisma, realm.realm.id, featureIds, usageAround(realm, lastMonths(NOW, 'Europe/Berlin', 12), 'Europe/Berlin'));
    const app = createApp({ prisma: db.prisma, now: () => NOW, onUnexpectedError: (error) => console.error(error) });
    const counts: number[] = [];
    for (const months of [1, 12]) {
      const response = await graphql(app, `{ viewer { realm { usageHistory(months: ${months}) { month products { used } } } } }`, { key: realm.admin.key });
      expect(response.body.errors).toBeUndefined();
      expect(response.body.data.viewer.realm.usageHistory).toHaveLength(months);
      expect(response.statements.filter((s) => s.includes('"UsageHourly"'))).toHaveLength(1);
      counts.push(response.statements.length);
    }
    expect(counts[1]).toBe(counts[0]);
  });
});

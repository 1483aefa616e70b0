import { memoize, type Context } from '../context.js';
import { ceilToHour } from '../usage/time.js';
import { featureWatermark } from '../usage/usage-loader.js';
import { billingMonth, lastMonths, type BillingMonth } from './calendar.js';
import type { MonthCoverage } from './coverage.js';
import type { Feature } from '../generated/prisma/client.js';
import { billMonth, type MonthlyUsage } from './month-billing.js';
import { rollupHorizon, rollupsRead } from '../usage/rollups.js';
import { buildMonthlyUsageSql, type MonthlyUsageQuery, type MonthlyUsageRow } from './monthly-usage-sql.js';
import type { ContractWithLicenseIds, CreditGrantWithId } from './usage-coverage.js';

export interface BilledMonth {
  month: BillingMonth;
  /** The usage read: the month, or the month to date (up to the end of the current hour). */
  range: { from: Date; to: Date };
  timeZone: string;
  coverage: MonthCoverage;
  features: Map<string, Feature>;
  /**
   * Whether the month is over and no more usage of it can arrive: it ended before every feature's
   * watermark (its arrival delay has passed, or ingestion finalized it).
   */
  isFinal: boolean;
  /** The contracts and credit grants the months were billed with, for attributing usage to them. */
  contracts: ContractWithLicenseIds[];
  grants: CreditGrantWithId[];
}

/** How many months back billing looks: the current one and the 11 before it. */
export const BILLING_MONTHS = 12;

export function billingWindow(now: Date, timeZone: string): string[] {
  return lastMonths(now, timeZone, BILLING_MONTHS);
}

/**
 * Bills `months` (names "YYYY-MM", in the realm's zone) of a realm: the contracts, credit grants,
 * prices and features in a few reads, and every month's usage in one SQL statement. Memoized per
 * request, so `currentUsage`, `usageHistory` and `invoicePreview` in one request share the work
 * when they ask for the same months.
 */
export function billMonths(ctx: Context, realmId: string, months: readonly string[]): Promise<BilledMonth[]> {
  return memoize(ctx, `billing:${realmId}:${months.join(',')}`, () => load(ctx, realmId, months));
}

async function load(ctx: Context, realmId: string, monthNames: readonly string[]): Promise<BilledMonth[]> {
  const realm = await ctx.prisma.realm.findUniqueOrThrow({
    where: { id: realmId },
    select: {
      timeZone: true,
      features: true,
      prices: { select: { featureId: true, unitAmount: true, currency: true, validFrom: true } },
    },
  });
  const timeZone = realm.timeZone;
  const months = monthNames.map((m) => billingMonth(m, timeZone));
  if (!months.length) return [];
  const from = months[0]!.range.from;
  const end = months[months.length - 1]!.range.to;
  const nowEnd = ceilToHour(new Date(ctx.now.getTime() + 1));
  const to = nowEnd < end ? nowEnd : end;

  const [contracts, grants, rows] = await Promise.all([
    ctx.prisma.contract.findMany({
      where: { realmId, startsAt: { lt: end }, endsAt: { gt: from } },
      select: { startsAt: true, endsAt: true, licenses: { select: { id: true, featureId: true, quantityPerMonth: true, startsAt: true, endsAt: true } } },
    }),
    ctx.prisma.creditGrant.findMany({
      where: { realmId, startsAt: { lt: end }, OR: [{ endsAt: null }, { endsAt: { gt: from } }] },
      select: { id: true, kind: true, credits: true, startsAt: true, endsAt: true },
    }),
    readMonthlyUsage(ctx, { realmId, months: months.map((m) => m.range), to, features: realm.features, rollupTimeZone: rollupsRead() ? timeZone : null, rollupHorizon: rollupHorizon(ctx.now) }),
  ]);

  const usageByMonth = new Map<string, Map<string, MonthlyUsage>>();
  for (const { month, feature, usage } of rows) {
    const name = months[month]!.month;
    const byFeature = usageByMonth.get(name) ?? new Map<string, MonthlyUsage>();
    byFeature.set(feature, usage);
    usageByMonth.set(name, byFeature);
  }
  const features = new Map(realm.features.map((f) => [f.id, f]));
  const finalizedThrough = Math.min(...realm.features.map((f) => featureWatermark(f, ctx.now).getTime()));
  return months.map((month) => ({
    month,
    range: { from: month.range.from, to: month.range.to < to ? month.range.to : to },
    timeZone,
    features,
    isFinal: month.range.to.getTime() <= finalizedThrough && month.range.to <= ctx.now,
    contracts,
    grants,
    coverage: billMonth({
      month,
      timeZone,
      features: realm.features,
      contracts,
      grants,
      prices: realm.prices,
      usage: usageByMonth.get(month.month) ?? new Map(),
    }),
  }));
}

/** Every feature's usage per month (by position in `query.months`), in one statement; none when nothing is to be read. */
async function readMonthlyUsage(ctx: Context, query: MonthlyUsageQuery): Promise<{ month: number; feature: string; usage: MonthlyUsage }[]> {
  if (!query.months.length || query.months[0]!.from >= query.to) return [];
  const { sql, params, bucketMonth } = buildMonthlyUsageSql(query);
  const rows = await (ctx.readPrisma ?? ctx.prisma).$queryRawUnsafe<MonthlyUsageRow[]>(sql, ...params);
  return rows.flatMap((row) => {
    const month = bucketMonth[Number(row.bucket)];
    return month === undefined || month === null ? [] : [{ month, feature: row.feature, usage: { quantity: row.quantity, hourSum: row.hourSum } }];
  });
}

import DataLoader from 'dataloader';
import { billMonths } from '../billing/billing-loader.js';
import { monthOf } from '../billing/calendar.js';
import { dec, type Decimal } from '../billing/decimal.js';
import { coverageSegments, isAttributable, type CoverageSource } from '../billing/usage-coverage.js';
import { memoize, type Context } from '../context.js';
import { buildCoverageSql, type CoverageRow } from './coverage-sql.js';
import { DIMENSION_NAMES, dimensionValuesOf, type DimensionValues } from './dimension-key.js';
import { ceilToHour } from './time.js';
import { realmFacts, type PointOrigin, type UsagePoint } from './usage-loader.js';

/** A share of a usage point and what paid for it. */
export interface CoveragePortion {
  source: CoverageSource;
  /** The license (LICENSE) or credit grant (CREDIT_GRANT). */
  sourceId: string | null;
  quantity: Decimal;
  /** CREDIT_GRANT: credits spent on the quantity (quantity × the month's price). */
  credits: Decimal | null;
}

const SOURCE_RANK: Record<CoverageSource, number> = { LICENSE: 0, CREDIT_GRANT: 1, ON_DEMAND: 2 };

function pointKey(feature: string, bucket: string, group: DimensionValues): string {
  return JSON.stringify([feature, bucket, ...DIMENSION_NAMES.map((name) => group[name])]);
}

/**
 * What paid for a point of a usage report: the licenses, credit grants and on-demand use of the
 * realm months it falls in. Null for features whose month is not a sum of hours (see
 * `isAttributable`). Every point of one report (all the parents it was batched for) is answered
 * by one statement, after the months are billed (shared with the request's billing fields).
 */
export async function pointCoverage(ctx: Context, point: UsagePoint): Promise<CoveragePortion[] | null> {
  if (!isAttributable(point.feature)) return null;
  const { origin } = point;
  const byPoint = await coverageLoader(ctx, origin).load(origin.parentId);
  return byPoint.get(pointKey(point.feature.id, origin.bucket, point.group)) ?? [];
}

function coverageLoader(ctx: Context, origin: PointOrigin) {
  return memoize(ctx, `coverage:${origin.reportKey}`, () =>
    new DataLoader<string, Map<string, CoveragePortion[]>>((parentIds) => loadCoverage(ctx, origin, parentIds)),
  );
}

async function loadCoverage(ctx: Context, origin: PointOrigin, parentIds: readonly string[]): Promise<Map<string, CoveragePortion[]>[]> {
  const { query } = origin;
  const facts = await realmFacts(ctx);
  const results = parentIds.map(() => new Map<string, CoveragePortion[]>());

  // The realm months the report's range falls in, as far as billing has read them (to the end of the current hour).
  const nowEnd = ceilToHour(new Date(ctx.now.getTime() + 1));
  const to = query.range.to < nowEnd ? query.range.to : nowEnd;
  if (query.range.from >= to) return results;
  const months = monthsBetween(query.range.from, new Date(to.getTime() - 1), facts.timeZone);
  const billed = await billMonths(ctx, query.realmId, months);

  const attributable = new Set([...facts.features.values()].filter(isAttributable).map((f) => f.id));
  const segments = billed.flatMap((b) =>
    coverageSegments({ month: b.month, timeZone: b.timeZone, coverage: b.coverage, contracts: b.contracts, grants: b.grants, attributable: (id) => attributable.has(id) }),
  );
  if (!segments.length) return results;

  const { sql, params } = buildCoverageSql(
    { ...query, parentIds: [...parentIds] },
    { range: { from: billed[0]!.range.from, to: billed[billed.length - 1]!.range.to }, realmTimeZone: facts.timeZone, featureIds: [...attributable] },
    segments,
  );
  const rows = await (ctx.readPrisma ?? ctx.prisma).$queryRawUnsafe<CoverageRow[]>(sql, ...params);

  const byParent = new Map(parentIds.map((id, i) => [id, results[i]!]));
  const order = new Map<CoveragePortion, number>();
  for (const row of rows) {
    const points = byParent.get(row.parent);
    if (!points) continue;
    const key = pointKey(row.feature, row.bucket, dimensionValuesOf(row));
    const portion: CoveragePortion = {
      source: row.source,
      sourceId: row.sourceId,
      quantity: dec(row.quantity),
      credits: row.credits == null ? null : dec(row.credits),
    };
    order.set(portion, Number(row.ord));
    points.set(key, [...(points.get(key) ?? []), portion]);
  }
  for (const points of results) {
    for (const portions of points.values()) portions.sort((a, b) => SOURCE_RANK[a.source] - SOURCE_RANK[b.source] || order.get(a)! - order.get(b)!);
  }
  return results;
}

/** "YYYY-MM" names from the month holding `first` to the one holding `last`, in the zone. */
function monthsBetween(first: Date, last: Date, timeZone: string): string[] {
  const months: string[] = [];
  const end = monthOf(last, timeZone);
  let [year, month] = monthOf(first, timeZone).split('-').map(Number) as [number, number];
  for (;;) {
    const name = `${year}-${String(month).padStart(2, '0')}`;
    months.push(name);
    if (name >= end) return months;
    month = month === 12 ? 1 : month + 1;
    if (month === 1) year++;
  }
}

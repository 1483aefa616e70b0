import DataLoader from 'dataloader';
import { memoize, type Context } from '../context.js';
import type { Feature } from '../generated/prisma/client.js';
import { Prisma } from '../generated/prisma/client.js';
import { DIMENSION_NAMES, dimensionValuesOf, type DimensionValues } from './dimension-key.js';
import { HOUR_MS, floorToHour, nextBucketStart, type TimeRange } from './time.js';
import { capAtWatermark, type UsageRequest } from './usage-request.js';
import { visibleFeatures } from '../schema/visibility.js';
import { cachedReport, realmGeneration, storeReport } from './report-cache.js';
import { rollupHorizon, rollupsRead } from './rollups.js';
import { buildUsageSql, type UsageFilterIds, type UsageParentKind, type UsageQuery, type UsageRow } from './usage-sql.js';

export type UsageGroup = DimensionValues;

export interface UsagePoint {
  start: Date;
  end: Date;
  feature: Feature;
  quantity: Prisma.Decimal;
  group: UsageGroup;
  isFinal: boolean;
  /** The question the point answers, so that follow-up questions (coverage) run once per report. */
  origin: PointOrigin;
}

export interface PointOrigin {
  /** Same for every point of the reports answered by one statement. */
  reportKey: string;
  query: Omit<UsageQuery, 'parentIds'>;
  parentId: string;
  /** The bucket as the statement returned it. */
  bucket: string;
}

export interface UsageTotal {
  feature: Feature;
  quantity: Prisma.Decimal;
  group: UsageGroup;
}

export interface UsageReport {
  range: TimeRange;
  granularity: UsageRequest['granularity'];
  timeZone: string;
  approximate: boolean;
  finalizedThrough: Date | null;
  warnings: string[];
  points: UsagePoint[];
  totals: UsageTotal[];
}

/** One feature's and group's points as parallel arrays (what charting libraries take), in time order. */
export interface UsageSeries {
  feature: Feature;
  group: UsageGroup;
  starts: Date[];
  ends: Date[];
  quantities: Prisma.Decimal[];
  isFinal: boolean[];
}

const seriesByReport = new WeakMap<UsagePoint[], UsageSeries[]>();

/** A report's points regrouped per (feature, group): the points are sorted that way, so each series is one run of them. */
export function seriesOf(report: Pick<UsageReport, 'points'>): UsageSeries[] {
  const known = seriesByReport.get(report.points);
  if (known) return known;
  const series: UsageSeries[] = [];
  let current: UsageSeries | undefined;
  for (const point of report.points) {
    if (!current || current.feature.id !== point.feature.id || (current.group !== point.group && compareGroups(current.group, point.group) !== 0)) {
      current = { feature: point.feature, group: point.group, starts: [], ends: [], quantities: [], isFinal: [] };
      series.push(current);
    }
    current.starts.push(point.start);
    current.ends.push(point.end);
    current.quantities.push(point.quantity);
    current.isFinal.push(point.isFinal);
  }
  seriesByReport.set(report.points, series);
  return series;
}

export interface RealmFacts {
  timeZone: string;
  features: Map<string, Feature>;
}

/** The caller's realm time zone and features: read once per request, whatever asks. */
export function realmFacts(ctx: Context): Promise<RealmFacts> {
  return memoize(ctx, 'realm-facts', async () => {
    const realm = await ctx.prisma.realm.findUniqueOrThrow({
      where: { id: ctx.viewer.realmId },
      // A portal session's features only: every usage report, export and dimension list reads them here.
      select: { timeZone: true, features: ctx.viewer.featureIds ? { where: visibleFeatures(ctx) } : true },
    });
    return { timeZone: realm.timeZone, features: new Map(realm.features.map((f) => [f.id, f])) };
  });
}

/** The first hour with usage in the caller's realm (for ALL_TIME). */
export function earliestUsage(ctx: Context): Promise<Date | undefined> {
  return memoize(ctx, 'earliest-usage', async () => {
    const first = await (ctx.readPrisma ?? ctx.prisma).usageHourly.aggregate({ where: { realmId: ctx.viewer.realmId }, _min: { hour: true } });
    return first._min.hour ?? undefined;
  });
}

/** Buckets ending at or before this are final for the feature: its arrival delay has passed, or ingestion closed them. */
export function featureWatermark(feature: Feature, now: Date): Date {
  const byDelay = floorToHour(new Date(now.getTime() - feature.arrivalDelaySeconds * 1000));
  return feature.finalizedThrough && feature.finalizedThrough > byDelay ? feature.finalizedThrough : byDelay;
}

export interface UsageLoadKey {
  parentKind: UsageParentKind;
  request: UsageRequest;
  filter: UsageFilterIds;
  /** Filter ids the caller may not see: ignored, and named in the warnings. */
  ignored: string[];
  /** Whether the report's `totals` are read (they need a second aggregation). */
  totals: boolean;
}

function compareGroups(a: UsageGroup, b: UsageGroup): number {
  for (const key of DIMENSION_NAMES) {
    const x = a[key] ?? '';
    const y = b[key] ?? '';
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** The node a `usage` field hangs off; a Feature or License also names the one feature it reports. */
export interface UsageParent {
  id: string;
  featureId?: string;
}

/**
 * Every `usage` field with the same arguments and parent kind in a request shares one loader, so
 * fifty workspaces asking the same question are answered by one statement.
 */
export function usageLoader(ctx: Context, key: UsageLoadKey): DataLoader<UsageParent, UsageReport, string> {
  const cacheKey = `usage:${JSON.stringify(key)}`;
  return memoize(
    ctx,
    cacheKey,
    () => new DataLoader<UsageParent, UsageReport, string>((parents) => loadUsage(ctx, key, cacheKey, parents), { cacheKeyFn: (parent) => parent.id }),
  );
}

/** Filter lists that match nothing: given empty, or every id in them ignored. */
function emptyFilterLists(filter: UsageFilterIds): string[] {
  return Object.entries(filter)
    .filter(([, values]) => Array.isArray(values) && values.length === 0)
    .map(([name]) => name);
}

async function loadUsage(ctx: Context, key: UsageLoadKey, cacheKey: string, parents: readonly UsageParent[]): Promise<UsageReport[]> {
  const facts = await realmFacts(ctx);
  const emptyLists = emptyFilterLists(key.filter);
  const inFilter = key.filter.featureIds
    ? key.filter.featureIds.map((id) => facts.features.get(id)).filter((f): f is Feature => !!f)
    : [...facts.features.values()];
  const watermarks = new Map([...facts.features.values()].map((f) => [f.id, featureWatermark(f, ctx.now)]));
  const baseWarnings = [
    ...key.ignored.map((id) => `Ignored filter id ${id}: it does not exist or is outside this key's scope.`),
    ...emptyLists.map((name) => `\`filter.${name}\` matches nothing (it is empty, or every id in it was ignored): the report is empty.`),
  ];

  // A report's finality is that of the features in it: a Feature's or License's own feature, else the filter's.
  const planned = parents.map((parent) => {
    const features = parent.featureId ? inFilter.filter((f) => f.id === parent.featureId) : inFilter;
    const finalizedThrough = features.length ? new Date(Math.min(...features.map((f) => watermarks.get(f.id)!.getTime()))) : null;
    const request = finalizedThrough ? capAtWatermark(key.request, finalizedThrough) : key.request;
    return { parent, features, finalizedThrough, request };
  });

  // Reports made only of final buckets may come from the cache (read before any statement, stored after).
  const generation = realmGeneration(ctx.viewer.realmId);
  const reports = new Map<string, UsageReport>();
  const cacheKeys = new Map<string, string>();
  for (const plan of planned) {
    const reportKey = cacheableKey(ctx, key, plan);
    if (!reportKey) continue;
    const cached = cachedReport<UsageReport>(ctx.viewer.realmId, reportKey);
    const report = cached && withCurrentFeatures(cached, facts.features);
    // The watermark moves on with time: the answer's buckets stay final, its finalizedThrough is today's.
    if (report) reports.set(plan.parent.id, { ...report, finalizedThrough: plan.finalizedThrough });
    else cacheKeys.set(plan.parent.id, reportKey);
  }

  // Parents whose reports cover the same range are read by one statement (finalizedOnly can end them apart).
  const batches = new Map<number, typeof planned>();
  for (const plan of planned) {
    if (reports.has(plan.parent.id)) continue;
    const batch = batches.get(plan.request.range.to.getTime()) ?? [];
    batch.push(plan);
    batches.set(plan.request.range.to.getTime(), batch);
  }
  // Features in key order, ranked once: reports can hold tens of thousands of points.
  const rank = new Map([...facts.features.values()].sort((a, b) => a.key.localeCompare(b.key)).map((f, i) => [f.id, i]));
  const byFeature = (a: { feature: Feature }, b: { feature: Feature }) => rank.get(a.feature.id)! - rank.get(b.feature.id)!;

  for (const [rangeEnd, batch] of batches) {
    const request = batch[0]!.request;
    const features = [...new Map(batch.flatMap((plan) => plan.features).map((f) => [f.id, f])).values()];
    const reportKey = batches.size > 1 ? `${cacheKey}:${rangeEnd}` : cacheKey;
    const query: Omit<UsageQuery, 'parentIds'> = {
      parentKind: key.parentKind,
      realmId: ctx.viewer.realmId,
      scopeWorkspaceId: ctx.viewer.workspaceId,
      range: request.range,
      granularity: request.granularity,
      timeZone: request.timeZone,
      filter: key.filter,
      groupBy: request.groupBy,
      features: features.map((f) => ({ id: f.id, aggregation: f.aggregation })),
      totals: key.totals,
      // Rollups are kept in the realm's zone: its days and months are buckets of reports in that zone only (a summary has none).
      rollupTimeZone: rollupsRead() && (request.granularity === 'SUMMARIZED' || request.timeZone === facts.timeZone) ? facts.timeZone : null,
      rollupHorizon: rollupHorizon(ctx.now),
    };
    let rows: UsageRow[] = [];
    if (features.length && !emptyLists.length && request.range.from < request.range.to) {
      const { sql, params } = buildUsageSql({ ...query, parentIds: batch.map((plan) => plan.parent.id) });
      rows = await (ctx.readPrisma ?? ctx.prisma).$queryRawUnsafe<UsageRow[]>(sql, ...params);
    }

    for (const plan of batch) {
      reports.set(plan.parent.id, {
        range: request.range,
        granularity: request.granularity,
        timeZone: request.timeZone,
        approximate: request.approximate,
        finalizedThrough: plan.finalizedThrough,
        warnings: [...plan.request.warnings, ...baseWarnings],
        points: [],
        totals: [],
      });
    }
    const ends = bucketEnds(request);
    // Points of one bucket share their start; ungrouped reports share one (empty) group.
    const starts = new Map<string, Date>();
    const sharedGroup = request.groupBy.length ? null : dimensionValuesOf({});
    for (const row of rows) {
      const report = reports.get(row.parent);
      const feature = facts.features.get(row.feature);
      if (!report || !feature) continue;
      const quantity = new Prisma.Decimal(row.quantity);
      if (row.kind === 'total') {
        report.totals.push({ feature, quantity, group: dimensionValuesOf(row) });
        continue;
      }
      let bucketStart = starts.get(row.bucket!);
      if (!bucketStart) starts.set(row.bucket!, (bucketStart = new Date(row.bucket!)));
      const start = bucketStart < request.range.from ? request.range.from : bucketStart;
      const end = ends(bucketStart);
      report.points.push({
        start,
        end,
        feature,
        quantity,
        group: sharedGroup ?? dimensionValuesOf(row),
        isFinal: end <= watermarks.get(feature.id)!,
        origin: { reportKey, query, parentId: row.parent, bucket: row.bucket! },
      });
      if (request.granularity === 'SUMMARIZED') report.totals.push({ feature, quantity, group: dimensionValuesOf(row) });
    }
  }
  for (const [parentId, report] of reports) {
    if (!batches.size) break;
    report.points.sort((a, b) => byFeature(a, b) || compareGroups(a.group, b.group) || a.start.getTime() - b.start.getTime());
    report.totals.sort((a, b) => byFeature(a, b) || compareGroups(a.group, b.group));
    const reportKey = cacheKeys.get(parentId);
    if (reportKey) storeReport(ctx.viewer.realmId, reportKey, generation, report, reportBytes(report), ctx.readPrisma ? ctx.dataRefreshedAt : undefined);
  }
  return parents.map((parent) => reports.get(parent.id)!);
}

/**
 * The cache key of a report that may be cached, else null. Only reports whose every bucket is final
 * (the range ends at or before the features' watermark) qualify. Reports that depend on more than
 * usage rows are not cached, since their writers do not invalidate the cache: a workspace subtree or
 * a workspace-scoped key (the workspace tree can be moved) and a license (its contract's dates).
 */
function cacheableKey(ctx: Context, key: UsageLoadKey, plan: { parent: UsageParent; features: Feature[]; finalizedThrough: Date | null; request: UsageRequest }): string | null {
  if (!plan.finalizedThrough || plan.request.range.to > plan.finalizedThrough) return null;
  if (key.parentKind === 'WORKSPACE_SUBTREE' || key.parentKind === 'LICENSE' || ctx.viewer.workspaceId) return null;
  return JSON.stringify({
    parentKind: key.parentKind,
    parent: plan.parent,
    request: { ...key.request, range: plan.request.range, warnings: plan.request.warnings },
    filter: key.filter,
    ignored: key.ignored,
    totals: key.totals,
    // How each feature is aggregated decides its numbers.
    features: plan.features.map((f) => `${f.id}:${f.aggregation}`),
    // The caller's visibility restriction: a workspace scope (never cached, above) and a portal session's features.
    scope: ctx.viewer.workspaceId,
    featureIds: ctx.viewer.featureIds ?? null,
  });
}

/** A cached report with this request's Feature rows (names and units may have changed since); undefined when a feature is gone. */
function withCurrentFeatures(report: UsageReport, features: Map<string, Feature>): UsageReport | undefined {
  const current = (feature: Feature) => features.get(feature.id);
  if (![...report.points, ...report.totals].every((item) => current(item.feature))) return undefined;
  return {
    ...report,
    warnings: [...report.warnings],
    points: report.points.map((point) => ({ ...point, feature: current(point.feature)! })),
    totals: report.totals.map((total) => ({ ...total, feature: current(total.feature)! })),
  };
}

/** Roughly what a report holds in memory: the cache's size bound is the sum of these. */
function reportBytes(report: UsageReport): number {
  return 512 + report.points.length * 320 + report.totals.length * 240 + report.warnings.reduce((sum, w) => sum + 2 * w.length, 0);
}

/** The end of the bucket starting at `start`, clipped to the range. */
function bucketEnds(request: UsageRequest): (start: Date) => Date {
  // Many points share a bucket (one per feature and group): each end is worked out once.
  const ends = new Map<number, Date>();
  return (start) => {
    if (request.granularity === 'SUMMARIZED') return request.range.to;
    const known = ends.get(start.getTime());
    if (known) return known;
    const next =
      request.granularity === 'HOUR'
        ? new Date(start.getTime() + HOUR_MS)
        : nextBucketStart(start, request.granularity, request.timeZone);
    const end = next > request.range.to ? request.range.to : next;
    ends.set(start.getTime(), end);
    return end;
  };
}


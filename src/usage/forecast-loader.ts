import type { Context } from '../context.js';
import { dec, type Decimal } from '../billing/decimal.js';
import type { Feature } from '../generated/prisma/client.js';
import { DIMENSION_NAMES, dimensionValuesOf, type DimensionValues } from './dimension-key.js';
import {
  FORECAST_HISTORY_DAYS,
  FORECAST_STATUS_DESCRIPTIONS,
  forecastPeriod,
  isForecastable,
  type ForecastStatus,
} from './forecast.js';
import { ceilToHour, localDayNumber, startOfLocalDay, startOfLocalMonth, type TimeRange, type Timeframe } from './time.js';
import { earliestUsage, featureWatermark, realmFacts, usageLoader, type UsageParent, type UsageReport } from './usage-loader.js';
import type { UsageRequest } from './usage-request.js';
import type { Dimension, UsageFilterIds, UsageParentKind } from './usage-sql.js';

/** What a forecast projects: the question of a usage report (or a billing month) and its period. */
export interface ForecastBasis {
  parentKind: UsageParentKind;
  parent: UsageParent;
  filter: UsageFilterIds;
  groupBy: Dimension[];
  timeZone: string;
  /** The period to project to the end of; null with `withheld` when there is none. */
  period: TimeRange | null;
  withheld?: Exclude<ForecastStatus, 'AVAILABLE'>;
  /** Licensed quantity for the period per feature id (billing months): the projection's exhaustion date. */
  licensed?: ReadonlyMap<string, Decimal>;
  /** Only these features (billing months: the month's products); default: the report's. */
  featureIds?: readonly string[];
}

export interface Projection {
  feature: Feature;
  group: DimensionValues;
  status: ForecastStatus;
  reason: string | null;
  /** Null where the daily usage was not read (NOT_ADDITIVE features: see the report's totals). */
  usedToDate: Decimal | null;
  projected: Decimal | null;
  low: Decimal | null;
  high: Decimal | null;
  licensed: Decimal | null;
  projectedExhaustion: Date | null;
}

export interface ForecastView {
  status: ForecastStatus;
  reason: string | null;
  period: TimeRange | null;
  asOf: Date;
  projections: Projection[];
}

/** The period a usage report's forecast projects to: the calendar month of MONTH_TO_DATE, the range itself, or none. */
export function reportPeriod(
  args: { range?: TimeRange | null; timeframe?: Timeframe | null },
  request: Pick<UsageRequest, 'range' | 'timeZone'>,
  now: Date,
): Pick<ForecastBasis, 'period' | 'withheld'> {
  if (args.range) return { period: args.range };
  if (args.timeframe === 'MONTH_TO_DATE') return { period: { from: request.range.from, to: startOfLocalMonth(now, request.timeZone, 1) } };
  if (args.timeframe === 'PREVIOUS_MONTH') return { period: null, withheld: 'PERIOD_OVER' };
  return { period: null, withheld: 'ROLLING_WINDOW' };
}

const bases = new WeakMap<object, ForecastBasis>();

/** A report with what its `forecast` field projects (a copy: one loaded report can answer differently asked fields). */
export function withForecastBasis(report: UsageReport, basis: ForecastBasis): UsageReport {
  const copy = { ...report };
  bases.set(copy, basis);
  return copy;
}

export function forecastBasisOf(report: UsageReport): ForecastBasis | undefined {
  return bases.get(report);
}

function withheld(status: Exclude<ForecastStatus, 'AVAILABLE'>, period: TimeRange | null, asOf: Date): ForecastView {
  return { status, reason: FORECAST_STATUS_DESCRIPTIONS[status], period, asOf, projections: [] };
}

const groupKey = (group: DimensionValues) => DIMENSION_NAMES.map((name) => group[name] ?? '').join('|');

/**
 * The forecast of a report or billing month: the daily usage of the history weeks and the period so
 * far is read through the usage loader (one statement for every report of a request asking the same
 * question, whatever the number of features and groups), then projected per feature and group.
 */
export async function loadForecast(ctx: Context, basis: ForecastBasis): Promise<ForecastView> {
  const now = ctx.now;
  const { period, timeZone } = basis;
  if (basis.withheld || !period) return withheld(basis.withheld ?? 'ROLLING_WINDOW', period, now);
  if (period.to <= now) return withheld('PERIOD_OVER', period, now);
  const periodStartDay = localDayNumber(period.from, timeZone);
  const periodEndDay = localDayNumber(period.to, timeZone);
  const alignedToDays =
    startOfLocalDay(periodStartDay, timeZone).getTime() === period.from.getTime() && startOfLocalDay(periodEndDay, timeZone).getTime() === period.to.getTime();
  if (!alignedToDays || period.from > now) return withheld('UNSUPPORTED_PERIOD', period, now);

  const facts = await realmFacts(ctx);
  const inScope = [...facts.features.values()]
    .filter((f) => !basis.filter.featureIds || basis.filter.featureIds.includes(f.id))
    .filter((f) => !basis.parent.featureId || basis.parent.featureId === f.id)
    .filter((f) => !basis.featureIds || basis.featureIds.includes(f.id))
    .sort((a, b) => a.key.localeCompare(b.key));
  const additive = inScope.filter((f) => isForecastable(f.aggregation));

  const today = localDayNumber(now, timeZone);
  const todayStart = startOfLocalDay(today, timeZone).getTime();
  const todayElapsed = dec(now.getTime() - todayStart).div(startOfLocalDay(today + 1, timeZone).getTime() - todayStart);
  const firstOpenDay = new Map(additive.map((f) => [f.id, Math.min(localDayNumber(featureWatermark(f, now), timeZone), today)]));
  const earliestDay = Math.min(periodStartDay, ...[...firstOpenDay.values()].map((day) => day - FORECAST_HISTORY_DAYS));

  const series = new Map<string, { feature: Feature; group: DimensionValues; daily: Map<number, Decimal> }>();
  let dataStartDay: number | null = null;
  if (additive.length) {
    const periodSoFarEnd = ceilToHour(new Date(now.getTime() + 1));
    const request: UsageRequest = {
      range: { from: startOfLocalDay(earliestDay, timeZone), to: periodSoFarEnd < period.to ? periodSoFarEnd : period.to },
      granularity: 'DAY',
      timeZone,
      groupBy: basis.groupBy,
      finalizedOnly: false,
      approximate: false,
      warnings: [],
    };
    const filter = { ...basis.filter, featureIds: additive.map((f) => f.id) };
    const [daily, earliest] = await Promise.all([
      usageLoader(ctx, { parentKind: basis.parentKind, request, filter, ignored: [], totals: false }).load(basis.parent),
      earliestUsage(ctx),
    ]);
    dataStartDay = earliest ? localDayNumber(earliest, timeZone) : null;
    for (const point of daily.points) {
      const key = `${point.feature.id}|${groupKey(point.group)}`;
      let entry = series.get(key);
      if (!entry) series.set(key, (entry = { feature: point.feature, group: point.group, daily: new Map() }));
      const day = localDayNumber(point.start, timeZone);
      entry.daily.set(day, (entry.daily.get(day) ?? dec(0)).plus(point.quantity));
    }
  }

  const projections: Projection[] = [];
  const ungrouped = dimensionValuesOf({});
  for (const feature of inScope) {
    const licensed = basis.licensed?.get(feature.id) ?? null;
    if (!isForecastable(feature.aggregation)) {
      projections.push(unavailable(feature, ungrouped, 'NOT_ADDITIVE', licensed));
      continue;
    }
    const ofFeature = [...series.values()].filter((s) => s.feature.id === feature.id).sort((a, b) => groupKey(a.group).localeCompare(groupKey(b.group)));
    // A billing month's product without usage still gets its line (it is licensed).
    if (!ofFeature.length && basis.featureIds) ofFeature.push({ feature, group: ungrouped, daily: new Map() });
    for (const s of ofFeature) {
      const result = forecastPeriod({
        daily: s.daily,
        periodStartDay,
        periodEndDay,
        today,
        todayElapsed,
        firstOpenDay: firstOpenDay.get(feature.id)!,
        dataStartDay,
        licensed,
      });
      if (result.status !== 'AVAILABLE') {
        projections.push({ ...unavailable(feature, s.group, result.status, licensed), usedToDate: result.usedToDate });
        continue;
      }
      projections.push({
        feature,
        group: s.group,
        status: 'AVAILABLE',
        reason: null,
        usedToDate: result.usedToDate,
        projected: result.projected,
        low: result.low,
        high: result.high,
        licensed,
        projectedExhaustion: result.exhaustion ? instantOf(result.exhaustion.day, result.exhaustion.fraction, timeZone) : null,
      });
    }
  }
  return { status: 'AVAILABLE', reason: null, period, asOf: now, projections };
}

function unavailable(feature: Feature, group: DimensionValues, status: Exclude<ForecastStatus, 'AVAILABLE'>, licensed: Decimal | null): Projection {
  return {
    feature,
    group,
    status,
    reason: FORECAST_STATUS_DESCRIPTIONS[status],
    usedToDate: null,
    projected: null,
    low: null,
    high: null,
    licensed,
    projectedExhaustion: null,
  };
}

/** The instant `fraction` of the way through a local day (to the millisecond, rounded down). */
function instantOf(day: number, fraction: Decimal, timeZone: string): Date {
  const start = startOfLocalDay(day, timeZone).getTime();
  const length = startOfLocalDay(day + 1, timeZone).getTime() - start;
  return new Date(start + fraction.times(length).floor().toNumber());
}

import { DateTime } from 'luxon';
import type { Feature, PrismaClient, QuotaRule } from '../generated/prisma/client.js';
import { monthOf } from '../billing/calendar.js';
import { dec, type Decimal } from '../billing/decimal.js';
import { FORECAST_HISTORY_DAYS, forecastPeriod, isForecastable, type ForecastResult } from '../usage/forecast.js';
import { HOUR_MS, localDayNumber, startOfLocalDay } from '../usage/time.js';
import { featureWatermark } from '../usage/usage-loader.js';
import { periodOf, type PeriodRange } from './evaluate.js';

/*
 * Quota rules on the forecast (`onForecast: true`): the rule fires when the projection of the
 * current month's usage to its end (the forecast of src/usage/forecast.ts, realm-wide) reaches the
 * threshold; the alert says when the projection crosses it ("at this rate on the 24th").
 *
 * When they are evaluated: after an ingested batch that touched the rule's feature, like the other
 * rules, but at most once an hour per rule (FORECAST_CHECK_INTERVAL_MS). Why: a projection reads
 * five weeks of daily usage where the actual check reads one period, and a busy realm commits
 * batches many times a second; the month-end projection moves little within an hour, and an alert
 * that says "on the 24th" is not late by an hour. The hour is claimed with one conditional UPDATE
 * (`forecastCheckedAt`), so that concurrent batches and gateway processes compute it once between
 * them. Without ingestion nothing is evaluated: without new usage the projection does not grow.
 */

/** A forecast rule's projection is computed at most this often. */
export const FORECAST_CHECK_INTERVAL_MS = HOUR_MS;

/** Only MONTH rules can be forecast: a day has no history of days to project from (see FORECAST_MIN_ELAPSED_DAYS). */
export const FORECAST_RULE_PERIOD = 'MONTH' as const;

/**
 * Claims this hour's evaluation of a forecast rule: true for exactly one caller per interval,
 * whichever process asks (the UPDATE's row lock decides).
 */
export async function claimForecastCheck(prisma: PrismaClient, ruleId: string, now: Date): Promise<boolean> {
  const { count } = await prisma.quotaRule.updateMany({
    where: {
      id: ruleId,
      OR: [{ forecastCheckedAt: null }, { forecastCheckedAt: { lte: new Date(now.getTime() - FORECAST_CHECK_INTERVAL_MS) } }],
    },
    data: { forecastCheckedAt: now },
  });
  return count === 1;
}

/** Realm-wide quantity per local day of one feature from `from` (inclusive) to `to` (exclusive); hours count on the day they start. */
export async function dailyUsage(prisma: PrismaClient, realmId: string, featureId: string, range: PeriodRange, timeZone: string): Promise<Map<number, Decimal>> {
  const rows = await prisma.$queryRawUnsafe<{ hour: Date; q: string }[]>(
    `SELECT u."hour", SUM(u."quantity")::text AS q FROM "UsageHourly" u
     WHERE u."realmId" = $1::uuid AND u."featureId" = $2::uuid AND u."hour" >= $3::timestamptz AND u."hour" < $4::timestamptz
     GROUP BY 1`,
    realmId,
    featureId,
    range.from.toISOString(),
    range.to.toISOString(),
  );
  const daily = new Map<number, Decimal>();
  for (const row of rows) {
    const day = localDayNumber(new Date(row.hour), timeZone);
    daily.set(day, (daily.get(day) ?? dec(0)).plus(dec(row.q)));
  }
  return daily;
}

export interface ForecastCrossing {
  period: PeriodRange;
  usedToDate: Decimal;
  projected: Decimal;
  /** When the cumulative projection reaches the threshold (may be past: already crossed). */
  projectedAt: Date;
}

/**
 * The projection of a rule's feature to the end of the month holding `now`, and whether (and
 * when) it reaches `threshold`; null when it does not, or when no forecast can be made (too early
 * in the month, too little history, a non-additive feature: the forecast's own rules).
 */
export async function projectCrossing(
  prisma: PrismaClient,
  rule: Pick<QuotaRule, 'realmId' | 'featureId'> & { feature: Feature },
  threshold: Decimal,
  timeZone: string,
  now: Date,
): Promise<ForecastCrossing | null> {
  if (!isForecastable(rule.feature.aggregation)) return null;
  const period = periodOf(now, FORECAST_RULE_PERIOD, timeZone);
  const result = await forecastOf(prisma, rule.realmId, rule.feature, period, threshold, timeZone, now);
  if (result.status !== 'AVAILABLE' || !result.exhaustion || result.projected.lessThan(threshold)) return null;
  return {
    period,
    usedToDate: result.usedToDate,
    projected: result.projected,
    projectedAt: instantInDay(result.exhaustion.day, result.exhaustion.fraction, timeZone),
  };
}

async function forecastOf(
  prisma: PrismaClient,
  realmId: string,
  feature: Feature,
  period: PeriodRange,
  threshold: Decimal,
  timeZone: string,
  now: Date,
): Promise<ForecastResult> {
  const today = localDayNumber(now, timeZone);
  const todayStart = startOfLocalDay(today, timeZone).getTime();
  const todayElapsed = dec(now.getTime() - todayStart).div(startOfLocalDay(today + 1, timeZone).getTime() - todayStart);
  const firstOpenDay = Math.min(localDayNumber(featureWatermark(feature, now), timeZone), today);
  const periodStartDay = localDayNumber(period.from, timeZone);
  const historyFrom = startOfLocalDay(Math.min(periodStartDay, firstOpenDay - FORECAST_HISTORY_DAYS), timeZone);
  const [daily, earliest] = await Promise.all([
    dailyUsage(prisma, realmId, feature.id, { from: historyFrom, to: new Date(Math.min(period.to.getTime(), now.getTime() + HOUR_MS)) }, timeZone),
    prisma.usageHourly.findFirst({ where: { realmId }, orderBy: { hour: 'asc' }, select: { hour: true } }),
  ]);
  return forecastPeriod({
    daily,
    periodStartDay,
    periodEndDay: localDayNumber(period.to, timeZone),
    today,
    todayElapsed,
    firstOpenDay,
    dataStartDay: earliest ? localDayNumber(earliest.hour, timeZone) : null,
    licensed: threshold,
  });
}

/** The instant `fraction` of the way through a local day (to the millisecond, rounded down). */
function instantInDay(day: number, fraction: Decimal, timeZone: string): Date {
  const start = startOfLocalDay(day, timeZone).getTime();
  const length = startOfLocalDay(day + 1, timeZone).getTime() - start;
  return new Date(start + fraction.times(length).floor().toNumber());
}

/** "At this rate …": the message of a forecast alert. */
export function forecastMessage(featureKey: string, crossing: ForecastCrossing, threshold: Decimal, what: string, timeZone: string): string {
  const on = DateTime.fromJSDate(crossing.projectedAt, { zone: timeZone }).toFormat('yyyy-MM-dd');
  const month = monthOf(crossing.period.from, timeZone);
  const projected = `projected ${crossing.projected.toFixed()} by the end of the month, ${crossing.usedToDate.toFixed()} used so far`;
  if (crossing.usedToDate.greaterThanOrEqualTo(threshold)) {
    return `Usage of "${featureKey}" has already reached the monthly quota for ${month} (${what}): ${projected}.`;
  }
  return `At this rate usage of "${featureKey}" will cross the monthly quota for ${month} (${what}) on ${on}: ${projected}.`;
}

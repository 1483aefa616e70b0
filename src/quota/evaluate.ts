import { DateTime } from 'luxon';
import type { PrismaClient } from '../generated/prisma/client.js';
import { billingMonth, monthOf } from '../billing/calendar.js';
import { dec, roundQuantity, ZERO, type Decimal } from '../billing/decimal.js';
import { licensedForMonth, licensePeriod } from '../billing/proration.js';
import { bucketStart, HOUR_MS, nextBucketStart } from '../usage/time.js';
import { backgroundError } from '../observability.js';
import { nudgeQuotaDeliveries } from './delivery.js';
import { claimForecastCheck, forecastMessage, projectCrossing } from './forecast.js';
import { publishAlertRaised } from '../live/publish.js';

export type QuotaPeriod = 'DAY' | 'MONTH';

/** Late usage may still raise an alert for a period up to this long after the period ended. */
export const LATE_ALERT_WINDOW_MS = 48 * HOUR_MS;

/** One hour of one feature that a committed batch added usage to. */
export interface TouchedHour {
  featureId: string;
  hour: Date;
}

export interface PeriodRange {
  from: Date;
  to: Date;
}

/** The local day or month holding `instant`, from its first instant to the next one's (as usage reports bucket it). */
export function periodOf(instant: Date, period: QuotaPeriod, timeZone: string): PeriodRange {
  const from = bucketStart(instant, period, timeZone);
  return { from, to: nextBucketStart(from, period, timeZone) };
}

/** Whether usage of this hour arrives late: the hour ended longer ago than the feature's arrival delay. */
export function isLate(hour: Date, arrivalDelaySeconds: number, now: Date): boolean {
  return hour.getTime() + HOUR_MS + arrivalDelaySeconds * 1000 < now.getTime();
}

type Contracts = { startsAt: Date; endsAt: Date; licenses: { featureId: string; quantityPerMonth: Decimal; startsAt: Date | null; endsAt: Date | null }[] }[];

/**
 * Licensed quantity for a period: MONTH is the month's prorated license (as billed); DAY is the
 * monthly quantity of the license rows in force at the day's first instant (amendments included), divided by the days of
 * its month. null: no license.
 */
export function licensedForPeriod(featureId: string, period: QuotaPeriod, range: PeriodRange, timeZone: string, contracts: Contracts): Decimal | null {
  const relevant = contracts.filter((c) => c.licenses.some((l) => l.featureId === featureId));
  if (period === 'MONTH') {
    const quantity = licensedForMonth(billingMonth(monthOf(range.from, timeZone), timeZone), timeZone, relevant).get(featureId);
    return quantity && quantity.greaterThan(0) ? quantity : null;
  }
  const t = range.from.getTime();
  const inForce = relevant.flatMap((c) =>
    c.licenses.filter((l) => {
      if (l.featureId !== featureId) return false;
      const period = licensePeriod(c, l);
      return period.startsAt.getTime() <= t && t < period.endsAt.getTime();
    }),
  );
  if (!inForce.length) return null;
  const days = billingMonth(monthOf(range.from, timeZone), timeZone).days;
  let total = ZERO;
  for (const l of inForce) total = total.plus(dec(l.quantityPerMonth));
  return total.greaterThan(0) ? roundQuantity(total.div(days)) : null;
}

/** A feature's usage over a period, by its aggregation (as the usage and billing reports compute it). */
export async function periodUsage(prisma: PrismaClient, realmId: string, featureId: string, aggregation: string, range: PeriodRange): Promise<Decimal> {
  const params = [realmId, featureId, range.from.toISOString(), range.to.toISOString()];
  if (aggregation === 'UNIQUE_COUNT') {
    const [row] = await prisma.$queryRawUnsafe<{ q: string }[]>(
      `SELECT COUNT(DISTINCT k."key")::text AS q FROM "UsageUniqueKey" k
       WHERE k."realmId" = $1::uuid AND k."featureId" = $2::uuid AND k."hour" >= $3::timestamptz AND k."hour" < $4::timestamptz`,
      ...params,
    );
    return dec(row?.q ?? '0');
  }
  const [row] = await prisma.$queryRawUnsafe<{ q: string | null }[]>(
    `WITH hourly AS (
       SELECT u."hour", SUM(u."quantity") AS quantity FROM "UsageHourly" u
       WHERE u."realmId" = $1::uuid AND u."featureId" = $2::uuid AND u."hour" >= $3::timestamptz AND u."hour" < $4::timestamptz
       GROUP BY 1)
     SELECT (CASE $5::text
       WHEN 'MAX' THEN MAX(quantity)
       WHEN 'LATEST' THEN (array_agg(quantity ORDER BY "hour" DESC))[1]
       ELSE SUM(quantity) END)::text AS q FROM hourly`,
    ...params,
    aggregation,
  );
  return dec(row?.q ?? '0');
}

/**
 * Checks the quota rules of the features a committed batch touched, for the periods it touched,
 * and creates an alert for each rule crossed for the first time in a period (one per rule and
 * period, by a unique constraint), queued for webhook delivery in the same insert; then nudges
 * this process's deliverers so the first attempt goes out at once. Forecast rules (`onForecast`)
 * are checked on the current month's projection instead: see ./forecast.ts. Every new alert is
 * published to live subscribers (`alertRaised`).
 */
export async function evaluateQuotas(prisma: PrismaClient, realmId: string, touched: readonly TouchedHour[], now: Date): Promise<number> {
  if (!touched.length) return 0;
  const featureIds = [...new Set(touched.map((t) => t.featureId))];
  const rules = await prisma.quotaRule.findMany({ where: { realmId, featureId: { in: featureIds } }, include: { feature: true } });
  if (!rules.length) return 0;
  const realm = await prisma.realm.findUniqueOrThrow({ where: { id: realmId }, select: { timeZone: true } });
  const timeZone = realm.timeZone;
  let contracts: Contracts | null = null;
  const usageCache = new Map<string, Promise<Decimal>>();
  let created = 0;

  const thresholdOf = async (rule: (typeof rules)[number], range: PeriodRange): Promise<Decimal | null> => {
    if (rule.thresholdQuantity) return dec(rule.thresholdQuantity);
    contracts ??= await prisma.contract.findMany({ where: { realmId }, select: { startsAt: true, endsAt: true, licenses: { select: { featureId: true, quantityPerMonth: true, startsAt: true, endsAt: true } } } });
    const licensed = licensedForPeriod(rule.featureId, rule.period, range, timeZone, contracts);
    return licensed ? roundQuantity(licensed.mul(dec(rule.thresholdPercent!)).div(100)) : null;
  };
  const describe = (rule: (typeof rules)[number], threshold: Decimal) =>
    rule.thresholdPercent ? `${dec(rule.thresholdPercent).toFixed()} % of the license (${threshold.toFixed()})` : threshold.toFixed();

  for (const rule of rules) {
    if (!rule.onForecast) continue;
    // See ./forecast.ts: the current month only, at most once an hour per rule.
    const range = periodOf(now, 'MONTH', timeZone);
    const existing = await prisma.alert.findUnique({ where: { ruleId_periodStart: { ruleId: rule.id, periodStart: range.from } }, select: { id: true } });
    if (existing || !(await claimForecastCheck(prisma, rule.id, now))) continue;
    const threshold = await thresholdOf(rule, range);
    if (!threshold) continue;
    const crossing = await projectCrossing(prisma, rule, threshold, timeZone, now);
    if (!crossing) continue;
    const webhook = !!(rule.webhookUrl && rule.webhookSecret);
    const [alert] = await prisma.alert.createManyAndReturn({
      data: [
        {
          realmId,
          ruleId: rule.id,
          kind: 'FORECAST',
          periodStart: range.from,
          periodEnd: range.to,
          quantity: crossing.usedToDate,
          threshold,
          projectedAt: crossing.projectedAt,
          projectedQuantity: crossing.projected,
          crossedAt: now,
          message: forecastMessage(rule.feature.key, crossing, threshold, describe(rule, threshold), timeZone),
          nextDeliveryAt: webhook ? new Date() : null,
        },
      ],
      skipDuplicates: true,
      select: { id: true },
    });
    if (!alert) continue;
    created++;
    if (webhook) nudgeQuotaDeliveries(prisma);
    publishAlertRaised(prisma, realmId, alert.id);
  }

  for (const rule of rules) {
    if (rule.onForecast) continue;
    // Periods this batch touched for the rule's feature, with whether any of its hours came late.
    const periods = new Map<number, { range: PeriodRange; late: boolean }>();
    for (const t of touched) {
      if (t.featureId !== rule.featureId) continue;
      const range = periodOf(t.hour, rule.period, timeZone);
      if (range.to.getTime() + LATE_ALERT_WINDOW_MS < now.getTime()) continue; // too old to alert on
      const late = isLate(t.hour, rule.feature.arrivalDelaySeconds, now);
      const entry = periods.get(range.from.getTime());
      if (entry) entry.late ||= late;
      else periods.set(range.from.getTime(), { range, late });
    }
    for (const { range, late } of periods.values()) {
      const existing = await prisma.alert.findUnique({ where: { ruleId_periodStart: { ruleId: rule.id, periodStart: range.from } }, select: { id: true } });
      if (existing) continue;
      const threshold = await thresholdOf(rule, range);
      if (!threshold) continue;
      const cacheKey = `${rule.featureId}|${range.from.getTime()}|${range.to.getTime()}`;
      let usage = usageCache.get(cacheKey);
      if (!usage) usageCache.set(cacheKey, (usage = periodUsage(prisma, realmId, rule.featureId, rule.feature.aggregation, range)));
      const quantity = await usage;
      if (quantity.lessThan(threshold)) continue;
      const what = describe(rule, threshold);
      const periodName = rule.period === 'DAY' ? DateTime.fromJSDate(range.from, { zone: timeZone }).toFormat('yyyy-MM-dd') : monthOf(range.from, timeZone);
      const message = `${late ? 'Late usage crossed' : 'Usage crossed'} the ${rule.period === 'DAY' ? 'daily' : 'monthly'} quota of "${rule.feature.key}" for ${periodName}: ${quantity.toFixed()} ≥ ${what}.`;
      // With a webhook, the alert is queued for delivery by the same insert (see delivery.ts).
      const webhook = !!(rule.webhookUrl && rule.webhookSecret);
      const [alert] = await prisma.alert.createManyAndReturn({
        data: [{ realmId, ruleId: rule.id, periodStart: range.from, periodEnd: range.to, quantity, threshold, crossedAt: now, late, message, nextDeliveryAt: webhook ? new Date() : null }],
        skipDuplicates: true,
        select: { id: true },
      });
      if (!alert) continue; // another batch got there first
      created++;
      if (webhook) nudgeQuotaDeliveries(prisma);
      publishAlertRaised(prisma, realmId, alert.id);
    }
  }
  return created;
}

/** The ingestion hook: evaluates quotas after a batch committed; logs and swallows any error. */
export async function afterBatchCommitted(prisma: PrismaClient, realmId: string, touched: readonly TouchedHour[], now: Date): Promise<void> {
  try {
    await evaluateQuotas(prisma, realmId, touched, now);
  } catch (error) {
    backgroundError('quota evaluation failed', error);
  }
}

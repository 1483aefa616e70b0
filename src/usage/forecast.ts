import { D, dec, roundQuantity, sum, ZERO, type Decimal } from '../billing/decimal.js';
import type { Aggregation } from '../generated/prisma/enums.js';

/**
 * End-of-period forecasts of usage, as pure functions over daily quantities (exact Decimals; no
 * floating point in anything returned as a quantity).
 *
 * The method: a seasonal day-of-week profile with a damped trend. The profile of a weekday is the
 * mean of that weekday's quantity over the last FORECAST_HISTORY_WEEKS whole weeks of final days (days
 * ending before the feature's watermark); a day's expected quantity is its weekday's profile scaled by
 * the least-squares slope of the history's weekly totals (relative to their mean; only when it is at
 * least two standard errors, else none), damped by FORECAST_TREND_DAMPING, from the middle of the
 * history to the day. The projection for the period is
 *   - final days of the period: what was used;
 *   - days not final yet (usage can still arrive), before today: the larger of what was used and the expected quantity;
 *   - today: the larger of what was used and the expected share of the elapsed part of the day,
 *     plus the expected share of the rest of the day;
 *   - days to come: their expected quantity.
 * The interval is the projection ± z·σ (z = FORECAST_INTERVAL_Z, nominally 90 %),
 * σ² = s²·(k + Σ c_w²/n_w) + (k/7)²·v: s² the variance of the history's daily residuals from the
 * profile (7 degrees of freedom spent on it), k the uncertain days (open and future, today by its
 * remaining share), c_w of them on weekday w and n_w the history's days of weekday w (the profile's
 * own error), v the variance of the history's weekly totals (drift of the level). The low end
 * is never below what is already used (when no history day is negative). Its coverage is measured,
 * not assumed: see BENCHMARKS.md ("Forecasts").
 */

/** Whole weeks of final days the day-of-week profile is taken from. */
export const FORECAST_HISTORY_WEEKS = 4;
export const FORECAST_HISTORY_DAYS = FORECAST_HISTORY_WEEKS * 7;
/** Forecasts are withheld until this many days of the period have passed. */
export const FORECAST_MIN_ELAPSED_DAYS = 3;
/** The longest period (in days) a forecast is made for: a year (366 days). */
export const FORECAST_MAX_PERIOD_DAYS = 366;
/**
 * How much of the history's weekly trend carries into the days projected (0: none, 1: all of it).
 * 0.5 was chosen from 0, 0.5 and 1 on the backtest (BENCHMARKS.md): no trend under-covers growing
 * series, the full trend over-reacts to noise and level shifts.
 */
export const FORECAST_TREND_DAMPING = '0.5';
/** The interval's half-width in standard deviations: 1.645, a nominal 90 % interval under normal residuals. */
export const FORECAST_INTERVAL_Z = '1.645';

export const FORECAST_METHOD =
  `Seasonal day-of-week profile: each weekday's mean over the last ${FORECAST_HISTORY_WEEKS} whole weeks of final days, ` +
  `scaled by the trend of those weeks' totals (where it is at least two standard errors; damped by ${FORECAST_TREND_DAMPING}), ` +
  `added to the usage so far for the rest of the period (days not final yet count at least their profile). ` +
  `Interval: ± ${FORECAST_INTERVAL_Z} standard deviations of the daily residuals and of the weekly totals, scaled by the days left (nominally 90 %; measured coverage in BENCHMARKS.md). ` +
  `SUM and COUNT features only; withheld for rolling windows, in the first ${FORECAST_MIN_ELAPSED_DAYS} days of a period, ` +
  `and without ${FORECAST_HISTORY_WEEKS} weeks of history.`;

export const FORECAST_STATUSES = [
  'AVAILABLE',
  'ROLLING_WINDOW',
  'PERIOD_OVER',
  'UNSUPPORTED_PERIOD',
  'TOO_EARLY_IN_PERIOD',
  'HISTORY_TOO_SHORT',
  'NOT_ADDITIVE',
] as const;
export type ForecastStatus = (typeof FORECAST_STATUSES)[number];

export const FORECAST_STATUS_DESCRIPTIONS: Record<ForecastStatus, string> = {
  AVAILABLE: 'A projection is given.',
  ROLLING_WINDOW: 'The report is a rolling window (LAST_…, ALL_TIME): it has no end to project to.',
  PERIOD_OVER: 'The period has ended: its usage is known, not forecast.',
  UNSUPPORTED_PERIOD: `The range does not start and end at local midnights, or is longer than ${FORECAST_MAX_PERIOD_DAYS} days, or has not started.`,
  TOO_EARLY_IN_PERIOD: `Fewer than ${FORECAST_MIN_ELAPSED_DAYS} days of the period have passed.`,
  HISTORY_TOO_SHORT: `Less than ${FORECAST_HISTORY_WEEKS} weeks of final history before the forecast (or none for this feature and group).`,
  NOT_ADDITIVE: "The feature's aggregation (MAX, LATEST, UNIQUE_COUNT) is not a sum of days: a day-of-week profile cannot project it.",
};

/** Aggregations a period total is the sum of days of. MAX and LATEST follow step changes no weekday profile predicts; UNIQUE_COUNT is not additive over days. */
export function isForecastable(aggregation: Aggregation): boolean {
  return aggregation === 'SUM' || aggregation === 'COUNT';
}

/** The weekday of a day number (days since 1970-01-01): 0 = Monday … 6 = Sunday. */
export function weekdayOf(day: number): number {
  return (((day + 3) % 7) + 7) % 7;
}

export interface ForecastInput {
  /** Quantity per local day number (history and the period so far); absent days used nothing. */
  daily: ReadonlyMap<number, Decimal>;
  /** The period's days: [periodStartDay, periodEndDay). */
  periodStartDay: number;
  periodEndDay: number;
  /** The local day holding the forecast's instant. */
  today: number;
  /** The elapsed part of today, 0 ≤ elapsed ≤ 1 (exact: elapsed ms / the day's ms). */
  todayElapsed: Decimal;
  /** The first day that is not final (usage can still arrive): ≤ today. */
  firstOpenDay: number;
  /** The first local day the realm has usage data for (null: none at all). */
  dataStartDay: number | null;
  /** A licensed quantity for the period: the projection says on which day it runs out. */
  licensed?: Decimal | null;
  /** The backtest's alternative to FORECAST_TREND_DAMPING. */
  trendDamping?: Decimal | string;
}

export interface Exhaustion {
  day: number;
  /** The part of `day` (0…1) after which the cumulative projection reaches the licensed quantity. */
  fraction: Decimal;
}

export type ForecastResult =
  | { status: 'AVAILABLE'; usedToDate: Decimal; projected: Decimal; low: Decimal; high: Decimal; exhaustion: Exhaustion | null }
  | { status: Exclude<ForecastStatus, 'AVAILABLE'>; usedToDate: Decimal };

/** The day-of-week profile (mean per weekday) and residual variance of the history days [from, to). */
export function weekdayProfile(daily: ReadonlyMap<number, Decimal>, from: number, to: number) {
  const totals = Array.from({ length: 7 }, () => ZERO);
  const counts = Array.from({ length: 7 }, () => 0);
  for (let day = from; day < to; day++) {
    const w = weekdayOf(day);
    totals[w] = totals[w]!.plus(daily.get(day) ?? ZERO);
    counts[w]! += 1;
  }
  const profile = totals.map((total, w) => (counts[w] ? total.div(counts[w]!) : ZERO));
  let squares = ZERO;
  let negative = false;
  for (let day = from; day < to; day++) {
    const value = daily.get(day) ?? ZERO;
    if (value.isNegative()) negative = true;
    const residual = value.minus(profile[weekdayOf(day)]!);
    squares = squares.plus(residual.times(residual));
  }
  const degrees = to - from - 7;
  const variance = degrees > 0 ? squares.div(degrees) : ZERO;
  // Week-to-week drift of the level (growth, a changed customer): the variance of the history's weekly totals.
  const weeks: Decimal[] = [];
  for (let start = from; start + 7 <= to; start += 7) {
    let total = ZERO;
    for (let day = start; day < start + 7; day++) total = total.plus(daily.get(day) ?? ZERO);
    weeks.push(total);
  }
  const weekMean = weeks.length ? sum(weeks).div(weeks.length) : ZERO;
  const weeklyVariance = weeks.length > 1 ? sum(weeks.map((w) => w.minus(weekMean).pow(2))).div(weeks.length - 1) : ZERO;
  // Least-squares slope of the weekly totals, per week, relative to their mean (0 without usage).
  const centre = (weeks.length - 1) / 2;
  const spreadOfWeeks = sum(weeks.map((_, j) => new D((j - centre) ** 2)));
  const weeklySlope = weeks.length > 1 ? sum(weeks.map((w, j) => w.minus(weekMean).times(j - centre))).div(spreadOfWeeks) : ZERO;
  // A trend counts only where the weeks show one: |slope| at least two standard errors of it (else noise, e.g. bursts).
  const residuals = weeks.length > 2 ? sum(weeks.map((w, j) => w.minus(weekMean).minus(weeklySlope.times(j - centre)).pow(2))).div(weeks.length - 2) : ZERO;
  const significant = weeklySlope.pow(2).times(spreadOfWeeks).greaterThanOrEqualTo(residuals.times(4));
  const slope = significant && !weekMean.isZero() ? weeklySlope.div(weekMean) : ZERO;
  return { profile, counts, variance, weeklyVariance, slope, negative };
}

/** The projection of one feature (and group) to the end of its period: see the module's comment. */
export function forecastPeriod(input: ForecastInput): ForecastResult {
  const { daily, periodStartDay, periodEndDay, today, firstOpenDay } = input;
  let usedToDate = ZERO;
  for (let day = periodStartDay; day < periodEndDay && day <= today; day++) usedToDate = usedToDate.plus(daily.get(day) ?? ZERO);

  if (today >= periodEndDay) return { status: 'PERIOD_OVER', usedToDate };
  if (today < periodStartDay || periodEndDay - periodStartDay > FORECAST_MAX_PERIOD_DAYS) return { status: 'UNSUPPORTED_PERIOD', usedToDate };
  const elapsed = dec(today - periodStartDay).plus(input.todayElapsed);
  if (elapsed.lessThan(FORECAST_MIN_ELAPSED_DAYS)) return { status: 'TOO_EARLY_IN_PERIOD', usedToDate };

  const historyEnd = Math.min(firstOpenDay, today);
  const historyStart = historyEnd - FORECAST_HISTORY_DAYS;
  if (input.dataStartDay === null || input.dataStartDay > historyStart) return { status: 'HISTORY_TOO_SHORT', usedToDate };
  let historyUsed = false;
  for (let day = historyStart; day < historyEnd && !historyUsed; day++) historyUsed = !(daily.get(day) ?? ZERO).isZero();
  if (!historyUsed) return { status: 'HISTORY_TOO_SHORT', usedToDate };

  const { profile, counts, variance, weeklyVariance, slope, negative } = weekdayProfile(daily, historyStart, historyEnd);
  // The profile is the level at the history's middle; later days follow the weekly trend, damped.
  const middle = (historyStart + historyEnd - 1) / 2;
  const trendPerDay = slope.times(input.trendDamping ?? FORECAST_TREND_DAMPING).div(7);
  const expectedOn = (day: number) => {
    const factor = new D(1).plus(trendPerDay.times(day - middle));
    return factor.isNegative() ? ZERO : profile[weekdayOf(day)]!.times(factor);
  };
  const one = new D(1);
  const rest = one.minus(input.todayElapsed);
  const max = (a: Decimal, b: Decimal) => (a.greaterThanOrEqualTo(b) ? a : b);
  // Per period day: the projected quantity, and its weight among the uncertain days.
  const days: { day: number; value: Decimal; weight: Decimal }[] = [];
  for (let day = periodStartDay; day < periodEndDay; day++) {
    const used = daily.get(day) ?? ZERO;
    const expected = expectedOn(day);
    if (day < firstOpenDay && day < today) days.push({ day, value: used, weight: ZERO });
    else if (day < today) days.push({ day, value: max(used, expected), weight: one });
    else if (day === today) days.push({ day, value: max(used, expected.times(input.todayElapsed)).plus(expected.times(rest)), weight: rest });
    else days.push({ day, value: expected, weight: one });
  }
  const projected = sum(days.map((d) => d.value));
  const uncertainDays = sum(days.map((d) => d.weight));
  const byWeekday = Array.from({ length: 7 }, () => ZERO);
  for (const d of days) byWeekday[weekdayOf(d.day)] = byWeekday[weekdayOf(d.day)]!.plus(d.weight);
  const profileError = sum(byWeekday.map((c, w) => (counts[w] ? c.times(c).div(counts[w]!) : ZERO)));
  const weeksLeft = uncertainDays.div(7);
  const spread = variance.times(uncertainDays.plus(profileError)).plus(weeklyVariance.times(weeksLeft).times(weeksLeft)).sqrt().times(FORECAST_INTERVAL_Z);
  let low = projected.minus(spread);
  if (!negative && low.lessThan(usedToDate)) low = usedToDate;
  const high = projected.plus(spread);

  return {
    status: 'AVAILABLE',
    usedToDate: roundQuantity(usedToDate),
    projected: roundQuantity(projected),
    low: roundQuantity(low),
    high: roundQuantity(high),
    exhaustion: input.licensed && input.licensed.greaterThan(0) ? exhaustionOf(days, input.licensed) : null,
  };
}

/** Where the cumulative projection first reaches `licensed`, each day's quantity spread evenly over it; null: not within the period. */
export function exhaustionOf(days: readonly { day: number; value: Decimal }[], licensed: Decimal): Exhaustion | null {
  let cumulative = ZERO;
  for (const { day, value } of days) {
    const next = cumulative.plus(value);
    if (next.greaterThanOrEqualTo(licensed) && value.greaterThan(0)) {
      return { day, fraction: licensed.minus(cumulative).div(value) };
    }
    cumulative = next;
  }
  return null;
}

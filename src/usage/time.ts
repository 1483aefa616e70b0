import { DateTime, IANAZone } from 'luxon';

export const GRANULARITIES = ['MINUTE', 'HOUR', 'DAY', 'WEEK', 'MONTH', 'SUMMARIZED'] as const;
export type Granularity = (typeof GRANULARITIES)[number];

export const TIMEFRAMES = [
  'LAST_HOUR',
  'LAST_24_HOURS',
  'LAST_7_DAYS',
  'LAST_30_DAYS',
  'LAST_90_DAYS',
  'LAST_YEAR',
  'ALL_TIME',
  'MONTH_TO_DATE',
  'PREVIOUS_MONTH',
] as const;
export type Timeframe = (typeof TIMEFRAMES)[number];

/** Half-open: `[from, to)`. */
export interface TimeRange {
  from: Date;
  to: Date;
}

export const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export function isTimeZone(name: string): boolean {
  return IANAZone.isValidZone(name);
}

export function floorToHour(instant: Date): Date {
  return new Date(Math.floor(instant.getTime() / HOUR_MS) * HOUR_MS);
}

export function ceilToHour(instant: Date): Date {
  return new Date(Math.ceil(instant.getTime() / HOUR_MS) * HOUR_MS);
}

const ROLLING: Partial<Record<Timeframe, number>> = {
  LAST_HOUR: HOUR_MS,
  LAST_24_HOURS: DAY_MS,
  LAST_7_DAYS: 7 * DAY_MS,
  LAST_30_DAYS: 30 * DAY_MS,
  LAST_90_DAYS: 90 * DAY_MS,
  LAST_YEAR: 365 * DAY_MS,
};

/**
 * A timeframe as a range of whole hours ending with the current (unfinished) hour, so that it can
 * be answered exactly from hourly buckets. Calendar timeframes follow the report's time zone.
 * `ALL_TIME` starts at `earliest` (the first usage hour).
 */
export function timeframeRange(timeframe: Timeframe, now: Date, timeZone: string, earliest?: Date): TimeRange {
  const to = ceilToHour(new Date(now.getTime() + 1));
  const rolling = ROLLING[timeframe];
  if (rolling) return { from: new Date(to.getTime() - rolling), to };
  const local = DateTime.fromJSDate(now, { zone: timeZone });
  switch (timeframe) {
    case 'ALL_TIME':
      return { from: floorToHour(earliest && earliest < to ? earliest : new Date(to.getTime() - HOUR_MS)), to };
    case 'MONTH_TO_DATE':
      return { from: local.startOf('month').toJSDate(), to };
    case 'PREVIOUS_MONTH': {
      const thisMonth = local.startOf('month');
      return { from: thisMonth.minus({ months: 1 }).toJSDate(), to: thisMonth.toJSDate() };
    }
    default:
      throw new Error(`unhandled timeframe ${timeframe}`);
  }
}

const LUXON_UNIT = { HOUR: 'hour', DAY: 'day', WEEK: 'week', MONTH: 'month' } as const;

/** The start of the bucket holding `instant` (local midnight, ISO Monday, first of the month, …). */
export function bucketStart(instant: Date, granularity: Exclude<Granularity, 'SUMMARIZED' | 'MINUTE'>, timeZone: string): Date {
  if (granularity === 'HOUR') return floorToHour(instant);
  return DateTime.fromJSDate(instant, { zone: timeZone }).startOf(LUXON_UNIT[granularity]).toJSDate();
}

export function nextBucketStart(start: Date, granularity: Exclude<Granularity, 'SUMMARIZED' | 'MINUTE'>, timeZone: string): Date {
  if (granularity === 'HOUR') return new Date(start.getTime() + HOUR_MS);
  return DateTime.fromJSDate(start, { zone: timeZone }).plus({ [`${LUXON_UNIT[granularity]}s`]: 1 }).toJSDate();
}

/** The buckets of a range, clipped to it: the first and last may be partial. */
export function bucketsOf(range: TimeRange, granularity: Granularity, timeZone: string, limit = Infinity): TimeRange[] {
  if (granularity === 'SUMMARIZED') return [range];
  if (granularity === 'MINUTE') throw new Error('minute buckets are for API traffic');
  const buckets: TimeRange[] = [];
  let start = bucketStart(range.from, granularity, timeZone);
  while (start < range.to && buckets.length < limit) {
    const end = nextBucketStart(start, granularity, timeZone);
    buckets.push({ from: start < range.from ? range.from : start, to: end > range.to ? range.to : end });
    start = end;
  }
  return buckets;
}

export function countBuckets(range: TimeRange, granularity: Granularity, timeZone: string, limit: number): number {
  if (granularity === 'SUMMARIZED') return 1;
  if (granularity === 'HOUR') return Math.ceil((range.to.getTime() - floorToHour(range.from).getTime()) / HOUR_MS);
  return bucketsOf(range, granularity, timeZone, limit + 1).length;
}

/**
 * Whether the zone is ever off a whole-hour offset from UTC within the range (India +5:30, Nepal
 * +5:45, Lord Howe's half-hour DST, …): its local hours and days then do not start on UTC hours,
 * and hourly data cannot be split at its boundaries.
 */
export function hasFractionalHourOffset(timeZone: string, range: TimeRange): boolean {
  const zone = IANAZone.create(timeZone);
  const step = 7 * DAY_MS;
  for (let t = range.from.getTime(); ; t = Math.min(t + step, range.to.getTime())) {
    if (zone.offset(t) % 60 !== 0) return true;
    if (t >= range.to.getTime()) return false;
  }
}

export function isWholeHour(instant: Date): boolean {
  return instant.getTime() % HOUR_MS === 0;
}

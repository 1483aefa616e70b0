import { IANAZone } from 'luxon';

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
  switch (timeframe) {
    case 'ALL_TIME':
      return { from: floorToHour(earliest && earliest < to ? earliest : new Date(to.getTime() - HOUR_MS)), to };
    case 'MONTH_TO_DATE':
      return { from: startOfLocalMonth(now, timeZone), to };
    case 'PREVIOUS_MONTH':
      return { from: startOfLocalMonth(now, timeZone, -1), to: startOfLocalMonth(now, timeZone) };
    default:
      throw new Error(`unhandled timeframe ${timeframe}`);
  }
}

const zones = new Map<string, IANAZone>();
function zoneOf(timeZone: string): IANAZone {
  let zone = zones.get(timeZone);
  if (!zone) zones.set(timeZone, (zone = IANAZone.create(timeZone)));
  return zone;
}

/** The zone's offset from UTC at an instant, in milliseconds (old local mean times have seconds), from Intl. */
function intlOffsetMs(timeZone: string, t: number): number {
  return Math.round(zoneOf(timeZone).offset(t) * 60_000);
}

/** Where the zone's offset changes within a UTC year: `from` (ms) → offset, ascending, the first at the year's start. */
type OffsetSpans = { from: number; offset: number }[];
const offsetSpans = new Map<string, OffsetSpans>();
// Offsets are sampled this far apart and transitions between samples found to the millisecond;
// no zone changes its offset twice within two days.
const SAMPLE_MS = 2 * DAY_MS;
// Zones × years asked for; kept bounded whatever years requests name.
const MAX_CACHED_YEARS = 20_000;

function spansOfYear(timeZone: string, year: number): OffsetSpans {
  const key = `${timeZone}:${year}`;
  const known = offsetSpans.get(key);
  if (known) return known;
  const from = Date.UTC(year, 0, 1);
  const to = Date.UTC(year + 1, 0, 1);
  let current = intlOffsetMs(timeZone, from);
  const spans: OffsetSpans = [{ from, offset: current }];
  for (let cursor = from; cursor < to; ) {
    const next = Math.min(cursor + SAMPLE_MS, to);
    if (intlOffsetMs(timeZone, next) === current) {
      cursor = next;
      continue;
    }
    let lo = cursor;
    let hi = next;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (intlOffsetMs(timeZone, mid) === current) lo = mid;
      else hi = mid;
    }
    current = intlOffsetMs(timeZone, hi);
    spans.push({ from: hi, offset: current });
    cursor = hi;
  }
  if (offsetSpans.size >= MAX_CACHED_YEARS) offsetSpans.clear();
  offsetSpans.set(key, spans);
  return spans;
}

/** The zone's offset from UTC at an instant, in milliseconds: Intl's, read once per zone and year. */
function offsetMs(timeZone: string, t: number): number {
  const spans = spansOfYear(timeZone, new Date(t).getUTCFullYear());
  let i = spans.length - 1;
  while (i > 0 && spans[i]!.from > t) i--;
  return spans[i]!.offset;
}

/** A calendar date as a number of days since 1970-01-01 (a "day number"). */
export function dayNumber(year: number, month: number, day: number): number {
  return Date.UTC(year, month - 1, day) / DAY_MS;
}

/** The local calendar date (as a day number) at an instant. */
export function localDayNumber(instant: Date | number, timeZone: string): number {
  const t = typeof instant === 'number' ? instant : instant.getTime();
  return Math.floor((t + offsetMs(timeZone, t)) / DAY_MS);
}

/**
 * The first instant whose local date is `day` or later: where a local day starts, whatever the
 * zone does around midnight. Where the clock goes back from 01:00 to 00:00 (America/Havana,
 * 1 November 2026) the day starts at the first midnight; where midnight is skipped
 * (America/Santiago, 6 September 2026) it starts when the clock jumps to 01:00; a day skipped
 * whole (Pacific/Apia, 30 December 2011) starts with the next one, and so has no instant.
 */
export function startOfLocalDay(day: number, timeZone: string): Date {
  const midnightAsUtc = day * DAY_MS;
  const offset = offsetMs(timeZone, midnightAsUtc);
  const t = midnightAsUtc - offset;
  // The usual case: local midnight exists, and the offset is the same just before it and a few
  // hours earlier (no transition that could have shown this date before).
  if (offsetMs(timeZone, t) === offset && offsetMs(timeZone, t - 1) === offset && offsetMs(timeZone, t - 3 * HOUR_MS) === offset) {
    return new Date(t);
  }
  // Near a transition: the first quarter hour on the date, then the exact millisecond it starts.
  const reached = (instant: number) => localDayNumber(instant, timeZone) >= day;
  const step = 15 * 60_000;
  let hi = midnightAsUtc - 27 * HOUR_MS;
  while (!reached(hi)) hi += step;
  let lo = hi - step;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (reached(mid)) hi = mid;
    else lo = mid;
  }
  return new Date(hi);
}

type CalendarGranularity = 'DAY' | 'WEEK' | 'MONTH';

/** The first day (day number) of the day, ISO week (Monday) or month holding `day`. */
function unitStartDay(day: number, granularity: CalendarGranularity): number {
  if (granularity === 'DAY') return day;
  // 1970-01-01 was a Thursday.
  if (granularity === 'WEEK') return day - ((((day + 3) % 7) + 7) % 7);
  const date = new Date(day * DAY_MS);
  return dayNumber(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
}

function nextUnitStartDay(day: number, granularity: CalendarGranularity): number {
  const start = unitStartDay(day, granularity);
  if (granularity === 'DAY') return start + 1;
  if (granularity === 'WEEK') return start + 7;
  const date = new Date(start * DAY_MS);
  return dayNumber(date.getUTCFullYear(), date.getUTCMonth() + 2, 1);
}

/** The start of the bucket holding `instant` (local midnight, ISO Monday, first of the month, …). */
export function bucketStart(instant: Date, granularity: Exclude<Granularity, 'SUMMARIZED' | 'MINUTE'>, timeZone: string): Date {
  if (granularity === 'HOUR') return floorToHour(instant);
  return startOfLocalDay(unitStartDay(localDayNumber(instant, timeZone), granularity), timeZone);
}

/** The start of the bucket after the one starting at `start`. */
export function nextBucketStart(start: Date, granularity: Exclude<Granularity, 'SUMMARIZED' | 'MINUTE'>, timeZone: string): Date {
  if (granularity === 'HOUR') return new Date(start.getTime() + HOUR_MS);
  return startOfLocalDay(nextUnitStartDay(localDayNumber(start, timeZone), granularity), timeZone);
}

/** The buckets of a range, clipped to it: the first and last may be partial. */
export function bucketsOf(range: TimeRange, granularity: Granularity, timeZone: string, limit = Infinity): TimeRange[] {
  if (granularity === 'SUMMARIZED') return [range];
  if (granularity === 'MINUTE') throw new Error('minute buckets are for API traffic');
  const buckets: TimeRange[] = [];
  let start = bucketStart(range.from, granularity, timeZone);
  while (start < range.to && buckets.length < limit) {
    const end = nextBucketStart(start, granularity, timeZone);
    if (end > range.from) buckets.push({ from: start < range.from ? range.from : start, to: end > range.to ? range.to : end });
    start = end;
  }
  return buckets;
}

/** The (unclipped) starts of the buckets of a range, for bucketing in SQL exactly as here. */
export function bucketStartsOf(range: TimeRange, granularity: CalendarGranularity, timeZone: string): Date[] {
  const starts: Date[] = [];
  for (let start = bucketStart(range.from, granularity, timeZone); start < range.to; start = nextBucketStart(start, granularity, timeZone)) {
    starts.push(start);
  }
  return starts;
}

/** The first instant of the month holding `instant` in the zone, and of the `months`-th month after it. */
export function startOfLocalMonth(instant: Date, timeZone: string, months = 0): Date {
  const date = new Date(localDayNumber(instant, timeZone) * DAY_MS);
  return startOfLocalDay(dayNumber(date.getUTCFullYear(), date.getUTCMonth() + 1 + months, 1), timeZone);
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
  const step = 7 * DAY_MS;
  for (let t = range.from.getTime(); ; t = Math.min(t + step, range.to.getTime())) {
    if (offsetMs(timeZone, t) % HOUR_MS !== 0) return true;
    if (t >= range.to.getTime()) return false;
  }
}

export function isWholeHour(instant: Date): boolean {
  return instant.getTime() % HOUR_MS === 0;
}

import { DateTime } from 'luxon';
import { dayNumber, HOUR_MS, localDayNumber, startOfLocalDay, type TimeRange } from '../usage/time.js';

/** A calendar month in a time zone, named "YYYY-MM". */
export interface BillingMonth {
  month: string;
  /** The first instant of the 1st … of the next 1st (half-open; see `startOfLocalDay`). */
  range: TimeRange;
  /** Calendar days in the month (28…31). */
  days: number;
  /** Hours in the month (DST months have one more or one less). */
  hours: number;
}

const MONTH_PATTERN = /^(\d{4})-(0[1-9]|1[0-2])$/;

export function isMonthName(value: string): boolean {
  return MONTH_PATTERN.test(value);
}

export function billingMonth(month: string, timeZone: string): BillingMonth {
  const match = MONTH_PATTERN.exec(month);
  if (!match) throw new Error(`not a month: ${month}`);
  const year = Number(match[1]);
  const monthNumber = Number(match[2]);
  const first = dayNumber(year, monthNumber, 1);
  const next = dayNumber(year, monthNumber + 1, 1);
  const from = startOfLocalDay(first, timeZone);
  const to = startOfLocalDay(next, timeZone);
  return { month, range: { from, to }, days: next - first, hours: Math.round((to.getTime() - from.getTime()) / HOUR_MS) };
}

/** The month holding `instant` in the zone. */
export function monthOf(instant: Date, timeZone: string): string {
  return DateTime.fromJSDate(instant, { zone: timeZone }).toFormat('yyyy-MM');
}

/** `count` months ending with the one holding `now`, oldest first. */
export function lastMonths(now: Date, timeZone: string, count: number): string[] {
  const current = DateTime.fromJSDate(now, { zone: timeZone }).startOf('month');
  return Array.from({ length: count }, (_, i) => current.minus({ months: count - 1 - i }).toFormat('yyyy-MM'));
}

/**
 * Days of the month under a period `[startsAt, endsAt)` (endsAt null: open-ended). A day belongs
 * to the period in force at its first instant (local midnight; see `startOfLocalDay`), so a
 * renewal at midnight of the 16th gives days 1–15 to the old contract and 16–end to the new one,
 * whatever the month's length.
 */
export function daysCovered(month: BillingMonth, timeZone: string, startsAt: Date, endsAt: Date | null): number {
  const first = localDayNumber(month.range.from, timeZone);
  let covered = 0;
  for (let day = first; day < first + month.days; day++) {
    const t = startOfLocalDay(day, timeZone).getTime();
    if (t >= startsAt.getTime() && (endsAt === null || t < endsAt.getTime())) covered++;
  }
  return covered;
}

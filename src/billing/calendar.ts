import { DateTime } from 'luxon';
import type { TimeRange } from '../usage/time.js';

/** A calendar month in a time zone, named "YYYY-MM". */
export interface BillingMonth {
  month: string;
  /** Local midnight of the 1st … local midnight of the next 1st (half-open). */
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
  const start = DateTime.fromObject({ year: Number(match[1]), month: Number(match[2]), day: 1 }, { zone: timeZone });
  const end = start.plus({ months: 1 });
  return {
    month,
    range: { from: start.toJSDate(), to: end.toJSDate() },
    days: start.daysInMonth!,
    hours: Math.round(end.diff(start, 'hours').hours),
  };
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
 * to the period in force at its local midnight, so a renewal at midnight of the 16th gives days
 * 1–15 to the old contract and 16–end to the new one, whatever the month's length.
 */
export function daysCovered(month: BillingMonth, timeZone: string, startsAt: Date, endsAt: Date | null): number {
  let day = DateTime.fromJSDate(month.range.from, { zone: timeZone });
  let covered = 0;
  for (let i = 0; i < month.days; i++, day = day.plus({ days: 1 })) {
    const t = day.toMillis();
    if (t >= startsAt.getTime() && (endsAt === null || t < endsAt.getTime())) covered++;
  }
  return covered;
}

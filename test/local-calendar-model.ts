/**
 * An independent model of local calendars, written without the gateway's time code: the local
 * date of every minute read from Intl.DateTimeFormat, and bucket edges where that date moves on.
 * Deliberately simple and slow; tests compare the gateway's buckets with it.
 */

export type CalendarUnit = 'DAY' | 'WEEK' | 'MONTH';

const MINUTE = 60_000;
const SECOND = 1_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/** The wall-clock time in the zone at an instant ("MM/DD/YYYY, HH:MM:SS" as Intl prints it). */
export function localTime(t: number, timeZone: string): LocalTime {
  const text = formatter(timeZone).format(t);
  const match = /^(\d{2})\/(\d{2})\/(-?\d+), (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  if (!match) throw new Error(`unexpected Intl output ${text}`);
  const [, month, day, year, hour, minute, second] = match.map(Number) as number[];
  return { year: year!, month: month!, day: day!, hour: hour!, minute: minute!, second: second! };
}

/** The zone's offset at an instant in milliseconds, from the wall clock. */
export function offsetAt(t: number, timeZone: string): number {
  const l = localTime(t, timeZone);
  return Date.UTC(l.year, l.month - 1, l.day, l.hour, l.minute, l.second) - Math.floor(t / SECOND) * SECOND;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** The bucket a wall-clock time is in, as a sortable key ("2026-11-01", the ISO week's Monday, "2026-11"). */
export function unitKey(l: LocalTime, unit: CalendarUnit): string {
  if (unit === 'MONTH') return `${pad(l.year, 4)}-${pad(l.month)}`;
  if (unit === 'DAY') return `${pad(l.year, 4)}-${pad(l.month)}-${pad(l.day)}`;
  const date = new Date(Date.UTC(l.year, l.month - 1, l.day));
  const sinceMonday = (date.getUTCDay() + 6) % 7;
  date.setUTCDate(date.getUTCDate() - sinceMonday);
  return date.toISOString().slice(0, 10);
}

/**
 * The buckets of `[from, to)` clipped to it, for each unit: walking minute by minute, a bucket
 * starts at the first instant whose local date reaches a later day, week or month than any before
 * it (to the second within the minute where that happens). A clock going back over midnight does
 * not reopen the previous day.
 */
export function modelBuckets(from: number, to: number, timeZone: string, units: readonly CalendarUnit[]): Record<CalendarUnit, { from: number; to: number }[]> {
  const edges = new Map(units.map((unit) => [unit, [from]]));
  const first = localTime(from, timeZone);
  const latest = new Map(units.map((unit) => [unit, unitKey(first, unit)]));
  for (let t = Math.floor(from / MINUTE) * MINUTE + MINUTE; t < to; t += MINUTE) {
    const now = localTime(t, timeZone);
    for (const unit of units) {
      if (unitKey(now, unit) <= latest.get(unit)!) continue;
      let edge = t;
      for (let s = t - MINUTE + SECOND; s < t; s += SECOND) {
        if (s > from && unitKey(localTime(s, timeZone), unit) > latest.get(unit)!) {
          edge = s;
          break;
        }
      }
      edges.get(unit)!.push(edge);
      latest.set(unit, unitKey(now, unit));
    }
  }
  const result = {} as Record<CalendarUnit, { from: number; to: number }[]>;
  for (const [unit, list] of edges) result[unit] = list.map((edge, i) => ({ from: edge, to: list[i + 1] ?? to }));
  return result;
}

/** Instants in `[from, to)` where the zone's offset changes, found by sampling every `step` ms and bisecting to the second. */
export function offsetTransitions(timeZone: string, from: number, to: number, step: number): number[] {
  const found: number[] = [];
  let before = offsetAt(from, timeZone);
  for (let t = from; t < to; t += step) {
    const next = Math.min(t + step, to);
    const after = offsetAt(next, timeZone);
    if (after === before) continue;
    let lo = t;
    let hi = next;
    while (hi - lo > SECOND) {
      const mid = Math.floor((lo + hi) / 2 / SECOND) * SECOND;
      if (mid <= lo) break;
      if (offsetAt(mid, timeZone) === before) lo = mid;
      else hi = mid;
    }
    found.push(hi);
    before = after;
  }
  return found;
}

/** Whether the wall clock shows a new date across the transition, or lands on midnight exactly. */
export function isMidnightTransition(t: number, timeZone: string): boolean {
  const before = localTime(t - SECOND, timeZone);
  const after = localTime(t, timeZone);
  const sameDate = before.year === after.year && before.month === after.month && before.day === after.day;
  return !sameDate || (after.hour === 0 && after.minute === 0 && after.second === 0);
}

import { modelDayStart } from './billing-model.js';
import { localTime } from './local-calendar-model.js';
import type { RawUsage } from './helpers/usage-fixture.js';

/**
 * The expected report, computed from the raw hours by plain TypeScript and Intl (the local date of
 * each hour, the first instant of a date by bisection), independently of the gateway's SQL and
 * time code: what every usage report is checked against.
 */
export interface OracleQuestion {
  from: Date;
  to: Date;
  granularity: 'HOUR' | 'DAY' | 'WEEK' | 'MONTH' | 'SUMMARIZED';
  timeZone: string;
  groupBy: ('WORKSPACE' | 'DATASTREAM' | 'PROJECT' | 'APP' | 'BILLING_TAG' | 'RESOURCE' | 'API_KEY')[];
  /** Which raw rows belong to the parent (and pass the filter). */
  belongs: (usage: RawUsage) => boolean;
  aggregation: Record<string, 'SUM' | 'COUNT' | 'MAX' | 'LATEST' | 'UNIQUE_COUNT'>;
}

const COLUMN = {
  WORKSPACE: 'workspaceId',
  DATASTREAM: 'datastreamId',
  PROJECT: 'projectId',
  APP: 'appId',
  BILLING_TAG: 'billingTag',
  RESOURCE: 'resource',
  API_KEY: 'apiKeyId',
} as const;

const dayStarts = new Map<string, number>();

function bucketOf(hour: Date, q: OracleQuestion): number {
  if (q.granularity === 'SUMMARIZED') return q.from.getTime();
  if (q.granularity === 'HOUR') return hour.getTime();
  const local = localTime(hour.getTime(), q.timeZone);
  const date = new Date(Date.UTC(local.year, local.month - 1, q.granularity === 'MONTH' ? 1 : local.day));
  if (q.granularity === 'WEEK') date.setUTCDate(date.getUTCDate() - ((date.getUTCDay() + 6) % 7));
  const key = `${q.timeZone}|${date.toISOString()}`;
  let start = dayStarts.get(key);
  if (start === undefined) {
    start = modelDayStart(date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), q.timeZone);
    dayStarts.set(key, start);
  }
  return start;
}

function combine(rows: RawUsage[], aggregation: OracleQuestion['aggregation'][string]): number {
  if (aggregation === 'UNIQUE_COUNT') return new Set(rows.flatMap((r) => r.keys ?? [])).size;
  if (aggregation === 'SUM' || aggregation === 'COUNT') return rows.reduce((sum, r) => sum + Number(r.quantity), 0);
  const perHour = new Map<number, number>();
  for (const r of rows) perHour.set(r.hour.getTime(), (perHour.get(r.hour.getTime()) ?? 0) + Number(r.quantity));
  if (aggregation === 'MAX') return Math.max(...perHour.values());
  return perHour.get(Math.max(...perHour.keys()))!;
}

/** `feature|group values|bucket start (clipped to the range), ISO` → quantity; totals under bucket `total`. */
export function expectedReport(usage: RawUsage[], q: OracleQuestion): Map<string, number> {
  const groups = new Map<string, RawUsage[]>();
  for (const u of usage) {
    if (u.hour < q.from || u.hour >= q.to || !q.belongs(u)) continue;
    const group = q.groupBy.map((d) => u[COLUMN[d]] ?? '').join('|');
    const bucket = Math.max(bucketOf(u.hour, q), q.from.getTime());
    for (const key of [`${u.feature}|${group}|${new Date(bucket).toISOString()}`, `${u.feature}|${group}|total`]) {
      groups.set(key, [...(groups.get(key) ?? []), u]);
    }
  }
  return new Map([...groups].map(([key, rows]) => [key, combine(rows, q.aggregation[key.split('|')[0]!]!)]));
}

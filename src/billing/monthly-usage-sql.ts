import type { Aggregation } from '../generated/prisma/enums.js';
import type { TimeRange } from '../usage/time.js';

export interface MonthlyUsageRow {
  feature: string;
  /** The `width_bucket` of the row's hours: see `bucketMonth`. */
  bucket: number;
  /** By the feature's aggregation. */
  quantity: string;
  /** The hourly quantities added up (null for UNIQUE_COUNT). */
  hourSum: string | null;
}

export interface MonthlyUsageQuery {
  realmId: string;
  /** The months (each a range in the realm's zone), oldest first, not overlapping. */
  months: readonly TimeRange[];
  /** Usage is read up to here (the end of the current hour); the months' end when earlier. */
  to: Date;
  features: readonly { id: string; aggregation: Aggregation }[];
  /** The zone the months are in, when its month rollups may replace their hours (SUM, COUNT and UNIQUE_COUNT). */
  rollupTimeZone?: string | null;
  /** No rollup reaches past this instant: hours after it are read with fixed bounds (see `buildUsageSql`). */
  rollupHorizon?: Date;
}

/**
 * One statement: every product's used quantity per month, by the feature's aggregation (as
 * `buildUsageSql` does: hourly rows added up per hour across dimensions, then combined over the
 * month); the plain sum of hours comes along for spaces, which are billed by time in use.
 *
 * Rows are put in their month by `width_bucket` over the months' boundaries (instants computed in
 * the realm's zone), not by converting each row's hour to local time. SUM and COUNT months are the
 * plain sum of their rows, so those features are added up per month directly (no per-hour step);
 * only MAX and LATEST features, whose month depends on each hour's total, are grouped by hour
 * first. UNIQUE_COUNT features count distinct keys over the month.
 */
export function buildMonthlyUsageSql(query: MonthlyUsageQuery): { sql: string; params: unknown[]; bucketMonth: (number | null)[] } {
  const { boundaries, bucketMonth } = monthBuckets(query.months);
  const ids = (aggregations: Aggregation[]) => query.features.filter((f) => aggregations.includes(f.aggregation)).map((f) => f.id);
  const from = query.months[0]!.from;
  const inRange = (alias: string) =>
    `${alias}."realmId" = $1::uuid AND ${alias}."hour" >= $2::timestamptz AND ${alias}."hour" < $3::timestamptz`;
  const params = [
    query.realmId,
    from.toISOString(),
    query.to.toISOString(),
    boundaries.map((b) => b.toISOString()),
    ids(['SUM', 'COUNT']),
    ids(['MAX', 'LATEST']),
    ids(['LATEST']),
    ids(['UNIQUE_COUNT']),
  ];
  if (query.rollupTimeZone) {
    const split = query.rollupHorizon && query.rollupHorizon > from && query.rollupHorizon < query.to ? query.rollupHorizon : null;
    return { sql: withMonthRollups(inRange, split !== null), params: [...params, query.rollupTimeZone, ...(split ? [split.toISOString()] : [])], bucketMonth };
  }
  const sql = `
SELECT u."featureId"::text AS feature, width_bucket(u."hour", $4::timestamptz[]) AS bucket,
  SUM(u."quantity")::text AS quantity, SUM(u."quantity")::text AS "hourSum"
FROM "UsageHourly" u
WHERE ${inRange('u')} AND u."featureId" = ANY($5::uuid[])
GROUP BY u."featureId", 2
UNION ALL
${maxAndLatest(inRange)}
UNION ALL
SELECT d.feature::text, d.bucket, COUNT(*)::text, NULL
FROM (
  SELECT DISTINCT k."featureId" AS feature, width_bucket(k."hour", $4::timestamptz[]) AS bucket, k."key"
  FROM "UsageUniqueKey" k
  WHERE ${inRange('k')} AND k."featureId" = ANY($8::uuid[])
) d
GROUP BY d.feature, d.bucket`;
  return { sql, params, bucketMonth };
}

/** MAX and LATEST features: per month, the largest (or the last) hour summed over dimensions; never rolled up. */
function maxAndLatest(inRange: (alias: string) => string): string {
  return `SELECT h.feature::text, width_bucket(h.hour, $4::timestamptz[]),
  (CASE WHEN h.latest THEN (array_agg(h.quantity ORDER BY h.hour DESC))[1] ELSE MAX(h.quantity) END)::text,
  SUM(h.quantity)::text
FROM (
  SELECT u."featureId" AS feature, u."featureId" = ANY($7::uuid[]) AS latest, u."hour" AS hour, SUM(u."quantity") AS quantity
  FROM "UsageHourly" u
  WHERE ${inRange('u')} AND u."featureId" = ANY($6::uuid[])
  GROUP BY 1, 2, 3
) h
GROUP BY h.feature, 2, h.latest`;
}

/**
 * The same statement reading whole months already rolled up (README "Rollups") from the month
 * rollups of zone $9: per feature, `cut` is the last month boundary at or before its
 * `rolledThrough`; the months before it come from `UsageRollup` (distinct keys from
 * `UsageRollupKey`), the hours from it on from the hourly rows. MAX and LATEST read hours (a
 * space's hour sum is not rolled up).
 */
function withMonthRollups(inRange: (alias: string) => string, split: boolean): string {
  const rolledMonths = (t: string, ids: string) => `${t}."realmId" = $1::uuid AND ${t}."timeZone" = $9::text AND ${t}.unit = 'MONTH' AND ${t}."featureId" = ANY(${ids})
    AND ${t}.start >= $2::timestamptz AND ${t}.start < cut.rolled`;
  // With a horizon ($10), the hours after it (never rolled up) are a part of their own with fixed bounds the planner can estimate.
  const tail = (t: string) =>
    split
      ? `${inRange(t)} AND ${t}."hour" >= (SELECT min(rolled) FROM cut) AND ${t}."hour" < $10::timestamptz AND ${t}."hour" >= cut.rolled`
      : `${inRange(t)} AND ${t}."hour" >= (SELECT min(rolled) FROM cut) AND ${t}."hour" >= cut.rolled`;
  const recent = (t: string) => `${inRange(t)} AND ${t}."hour" >= $10::timestamptz AND ${t}."hour" >= cut.rolled`;
  return `
WITH cut AS MATERIALIZED (
  SELECT f.id AS "featureId", GREATEST($2::timestamptz, COALESCE((SELECT max(b.at) FROM unnest($4::timestamptz[]) AS b(at) WHERE b.at <= s."rolledThrough"), $2::timestamptz)) AS rolled
  FROM unnest($5::uuid[] || $8::uuid[]) AS f(id)
  LEFT JOIN "UsageRollupState" s ON s."realmId" = $1::uuid AND s."featureId" = f.id AND s."timeZone" = $9::text
)
SELECT x.feature::text AS feature, width_bucket(x.at, $4::timestamptz[]) AS bucket, SUM(x.quantity)::text AS quantity, SUM(x.quantity)::text AS "hourSum"
FROM (
  SELECT u."featureId" AS feature, u."hour" AS at, u."quantity" FROM "UsageHourly" u JOIN cut ON cut."featureId" = u."featureId"
  WHERE ${tail('u')} AND u."featureId" = ANY($5::uuid[])
  UNION ALL${split ? `
  SELECT u."featureId", u."hour", u."quantity" FROM "UsageHourly" u JOIN cut ON cut."featureId" = u."featureId"
  WHERE ${recent('u')} AND u."featureId" = ANY($5::uuid[])
  UNION ALL` : ''}
  SELECT r."featureId", r.start, r.quantity FROM "UsageRollup" r JOIN cut ON cut."featureId" = r."featureId"
  WHERE ${rolledMonths('r', '$5::uuid[]')}
) x
GROUP BY x.feature, 2
UNION ALL
${maxAndLatest(inRange)}
UNION ALL
SELECT d.feature::text, d.bucket, COUNT(*)::text, NULL
FROM (
  SELECT k."featureId" AS feature, width_bucket(k."hour", $4::timestamptz[]) AS bucket, k."key"
  FROM "UsageUniqueKey" k JOIN cut ON cut."featureId" = k."featureId"
  WHERE ${tail('k')} AND k."featureId" = ANY($8::uuid[])
  UNION${split ? `
  SELECT k."featureId", width_bucket(k."hour", $4::timestamptz[]), k."key"
  FROM "UsageUniqueKey" k JOIN cut ON cut."featureId" = k."featureId"
  WHERE ${recent('k')} AND k."featureId" = ANY($8::uuid[])
  UNION` : ''}
  SELECT r."featureId", width_bucket(r.start, $4::timestamptz[]), r.key
  FROM "UsageRollupKey" r JOIN cut ON cut."featureId" = r."featureId"
  WHERE ${rolledMonths('r', '$8::uuid[]')}
) d
GROUP BY d.feature, d.bucket`;
}

/**
 * The boundaries `width_bucket` sorts rows by (every month's start, and its end where the next
 * month does not start there), and which month (position in `months`) each bucket is: null for a
 * gap between months.
 */
export function monthBuckets(months: readonly TimeRange[]): { boundaries: Date[]; bucketMonth: (number | null)[] } {
  const boundaries: Date[] = [];
  const bucketMonth: (number | null)[] = [null]; // bucket 0: before the first boundary
  months.forEach((month, i) => {
    const last = boundaries[boundaries.length - 1];
    if (last && last.getTime() !== month.from.getTime()) bucketMonth.push(null); // a gap [last, month.from)
    if (!last || last.getTime() !== month.from.getTime()) boundaries.push(month.from);
    boundaries.push(month.to);
    bucketMonth.push(i);
  });
  return { boundaries, bucketMonth };
}

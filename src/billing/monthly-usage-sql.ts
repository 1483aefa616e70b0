import type { TimeRange } from '../usage/time.js';

export interface MonthlyUsageRow {
  feature: string;
  /** "YYYY-MM" in the realm's time zone. */
  month: string;
  /** By the feature's aggregation. */
  quantity: string;
  /** The hourly quantities added up (null for UNIQUE_COUNT). */
  hourSum: string | null;
}

/**
 * One statement: every product's used quantity per month of the range, in the zone. Hourly rows are
 * first added up per hour across dimensions, then combined over the month by the feature's
 * aggregation (as `buildUsageSql` does); the plain sum of hours comes along for spaces, which are
 * billed by time in use. UNIQUE_COUNT features count distinct keys over the month.
 */
export function buildMonthlyUsageSql(realmId: string, range: TimeRange, timeZone: string): { sql: string; params: unknown[] } {
  const sql = `
WITH hourly AS (
  SELECT u."featureId" AS feature, u."hour" AS hour, SUM(u."quantity") AS quantity
  FROM "UsageHourly" u
  JOIN "Feature" f0 ON f0.id = u."featureId" AND f0."aggregation" <> 'UNIQUE_COUNT'
  WHERE u."realmId" = $1::uuid AND u."hour" >= $2::timestamptz AND u."hour" < $3::timestamptz
  GROUP BY 1, 2
)
SELECT h.feature::text AS feature, to_char(date_trunc('month', h.hour AT TIME ZONE $4::text), 'YYYY-MM') AS month,
  (CASE f."aggregation"
     WHEN 'MAX' THEN MAX(h.quantity)
     WHEN 'LATEST' THEN (array_agg(h.quantity ORDER BY h.hour DESC))[1]
     ELSE SUM(h.quantity) END)::text AS quantity,
  SUM(h.quantity)::text AS "hourSum"
FROM hourly h JOIN "Feature" f ON f.id = h.feature
GROUP BY 1, 2, f."aggregation"
UNION ALL
SELECT k."featureId"::text, to_char(date_trunc('month', k."hour" AT TIME ZONE $4::text), 'YYYY-MM'), COUNT(DISTINCT k."key")::text, NULL
FROM "UsageUniqueKey" k
WHERE k."realmId" = $1::uuid AND k."hour" >= $2::timestamptz AND k."hour" < $3::timestamptz
GROUP BY 1, 2`;
  return { sql, params: [realmId, range.from.toISOString(), range.to.toISOString(), timeZone] };
}

import type { CoverageSegment, CoverageSource } from '../billing/usage-coverage.js';
import type { DimensionValues } from './dimension-key.js';
import type { TimeRange } from './time.js';
import { DIMENSIONS, DIMENSION_COLUMN, Params, parentClause, usageSqlParts, type UsageQuery } from './usage-sql.js';

export interface CoverageRow extends DimensionValues {
  parent: string;
  feature: string;
  bucket: string;
  source: CoverageSource;
  /** License or credit grant id; null for ON_DEMAND. */
  sourceId: string | null;
  /** Orders the sources of a point (the segment's position). */
  ord: number;
  quantity: string;
  /** CREDIT_GRANT: quantity × the month's price; otherwise null. */
  credits: string | null;
}

export interface BilledUsage {
  /** The hours billing read: whole realm months, up to the end of the current hour. */
  range: TimeRange;
  /** The realm's time zone, in which billing months are told. */
  realmTimeZone: string;
  /** Features whose hourly rows are attributed (see `isAttributable`). */
  featureIds: string[];
}

/**
 * One statement: for every point of a `usage` question (every parent of a batch), how much of it
 * each license, credit grant and on-demand use paid for.
 *
 * A product's hourly rows of the whole realm month (whatever the report's filters) are numbered
 * off in (hour, dimensionKey) order by a running sum; each row covers [sum before it, sum after it)
 * of the month's usage. The rows the report reads then take their overlap with each segment of the
 * month's coverage, added up per point (bucket × groupBy values).
 */
export function buildCoverageSql(query: UsageQuery, billed: BilledUsage, segments: readonly CoverageSegment[]): { sql: string; params: unknown[] } {
  const p = new Params();
  const { parents, filters, bucket, iso } = usageSqlParts(query, p);
  const text = (values: (string | null)[]) => p.add(values, 'text[]');
  const column = (name: keyof CoverageSegment) => text(segments.map((s) => (s[name] == null ? null : String(s[name]))));
  const segmentColumns = [
    column('featureId'),
    column('month'),
    text(segments.map((_, i) => String(i))),
    column('source'),
    column('sourceId'),
    column('from'),
    column('to'),
    column('unitPrice'),
  ].join(', ');
  const realmZone = p.add(billed.realmTimeZone, 'text');
  const month = (hour: string) => `to_char(date_trunc('month', ${hour} AT TIME ZONE ${realmZone}), 'YYYY-MM')`;
  const parent = parentClause(query.parentKind, 'r', parents);
  const dimensions = DIMENSIONS.map((d) => `${query.groupBy.includes(d) ? `r."${DIMENSION_COLUMN[d]}"` : 'NULL'}::text AS "${DIMENSION_COLUMN[d]}"`).join(', ');
  const overlap = `(LEAST(r.cum, COALESCE(s.hi, r.cum)) - GREATEST(r.cum - r."quantity", s.lo))`;

  const sql = `
WITH segments AS (
  SELECT s.feature::uuid AS feature, s.month, s.ord::int AS ord, s.source, s.source_id, s.lo::numeric AS lo, s.hi::numeric AS hi, s.price::numeric AS price
  FROM unnest(${segmentColumns}) AS s(feature, month, ord, source, source_id, lo, hi, price)
), ranked AS (
  SELECT u.*, ${month('u."hour"')} AS month,
    SUM(u."quantity") OVER (PARTITION BY u."featureId", ${month('u."hour"')} ORDER BY u."hour", u."dimensionKey" ROWS UNBOUNDED PRECEDING) AS cum
  FROM "UsageHourly" u
  WHERE u."realmId" = ${p.add(query.realmId, 'uuid')} AND u."hour" >= ${p.add(billed.range.from.toISOString(), 'timestamptz')}
    AND u."hour" < ${p.add(billed.range.to.toISOString(), 'timestamptz')} AND u."featureId" = ANY(${p.add(billed.featureIds, 'uuid[]')})
)
SELECT ${parent.expr}::text AS parent, r."featureId"::text AS feature, ${iso(bucket('r."hour"'))} AS bucket, ${dimensions},
  s.source, s.source_id AS "sourceId", MIN(s.ord)::int AS ord, SUM(${overlap})::text AS quantity, SUM(${overlap} * s.price)::text AS credits
FROM ranked r ${parent.join}
JOIN segments s ON s.feature = r."featureId" AND s.month = r.month AND s.lo < r.cum AND (s.hi IS NULL OR s.hi > r.cum - r."quantity")
WHERE ${parent.where} AND ${filters('r')}
GROUP BY 1, 2, 3, ${DIMENSIONS.map((_, i) => i + 4).join(', ')}, s.source, s.source_id
HAVING SUM(${overlap}) > 0`;
  return { sql, params: p.values };
}

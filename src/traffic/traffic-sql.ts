import { bucketStartsOf, hasFractionalHourOffset } from '../usage/time.js';
import type { TrafficQuery } from './traffic-request.js';

export type TrafficRowKind = 'summary' | 'series' | 'endpoint' | 'status' | 'key';

/** One row of the traffic statement: an aggregate (summary, series bucket, endpoint, status) or a key's facts. */
export interface TrafficRow {
  key: string;
  kind: TrafficRowKind;
  /** Series: the bucket's start; key: the busiest minute. ISO 8601. */
  bucket: string | null;
  endpoint: string | null;
  status: string | null;
  requests: number | null;
  errors: number | null;
  latencySumMs: number | null;
  latencyMaxMs: number | null;
  histogram: Record<string, number> | null;
  keyTier: string | null;
  keyCustomRateLimit: number | null;
  realmTier: string | null;
  realmCustomRateLimit: number | null;
  lastRequestAt: string | null;
}

export interface TrafficSqlInput extends TrafficQuery {
  apiKeyIds: string[];
  /** Traffic since this instant counts as recent use (the UNUSED alert looks 30 days back). */
  recentSince: Date;
}

const iso = (expr: string) => `to_char(${expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`;

/**
 * All keys' traffic for one question in one statement: GROUPING SETS give the summary, the series,
 * the endpoints and the statuses from one scan of the minute rows; latency histograms are merged
 * per group by adding counts per bucket index; a last part adds each key's plan, busiest minute
 * and most recent use.
 */
export function buildTrafficSql(input: TrafficSqlInput): { sql: string; params: unknown[] } {
  const params: unknown[] = [input.apiKeyIds, input.range.from.toISOString(), input.range.to.toISOString(), input.recentSince.toISOString()];
  let zoneParam: string | undefined;
  const zone = () => (zoneParam ??= `$${params.push(input.timeZone)}::text`);
  // Day, week and month starts come from `bucketStartsOf`, as for usage reports: PostgreSQL's
  // date_trunc in a zone picks the later of two local midnights (America/Havana, 1 November 2026).
  const local = (granularity: 'DAY' | 'WEEK' | 'MONTH') => {
    const starts = `$${params.push(bucketStartsOf(input.range, granularity, input.timeZone).map((d) => d.toISOString()))}::timestamptz[]`;
    return `(${starts})[width_bucket(t.minute, ${starts})]`;
  };
  const bucket = {
    MINUTE: () => 't.minute',
    // Zones off whole hours (India, Nepal) have local hours starting at :30 or :45 UTC.
    HOUR: () =>
      hasFractionalHourOffset(input.timeZone, input.range)
        ? `(t.minute - make_interval(mins => extract(minute FROM t.minute AT TIME ZONE ${zone()})::int))`
        : `(date_trunc('hour', t.minute AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')`,
    DAY: () => local('DAY'),
    WEEK: () => local('WEEK'),
    MONTH: () => local('MONTH'),
  }[input.granularity]();

  // Endpoint and status totals are cheap and feed the recommendations, so they are always computed.
  const totalSets = ['(key)', '(key, bucket)', '(key, endpoint)', '(key, status)'];
  const totalKind = `CASE WHEN GROUPING(bucket) = 0 THEN 'series' WHEN GROUPING(endpoint) = 0 THEN 'endpoint' WHEN GROUPING(status) = 0 THEN 'status' ELSE 'summary' END`;
  const histSets = ['(key, h.idx)', '(key, bucket, h.idx)', ...(input.includeEndpoints ? ['(key, endpoint, h.idx)'] : [])];
  const histKind = input.includeEndpoints
    ? `CASE WHEN GROUPING(bucket) = 0 THEN 'series' WHEN GROUPING(endpoint) = 0 THEN 'endpoint' ELSE 'summary' END`
    : `CASE WHEN GROUPING(bucket) = 0 THEN 'series' ELSE 'summary' END`;

  const histCte = input.includeLatency
    ? `,
hists AS (
  SELECT key, kind, bucket, endpoint, jsonb_object_agg(idx, n) AS histogram
  FROM (
    SELECT key, ${histKind} AS kind, bucket, ${input.includeEndpoints ? 'endpoint' : 'NULL::text AS endpoint'}, h.idx, sum(h.n::bigint) AS n
    FROM base CROSS JOIN LATERAL jsonb_each_text(base.histogram) AS h(idx, n)
    GROUP BY GROUPING SETS (${histSets.join(', ')})
  ) AS per_index
  GROUP BY key, kind, bucket, endpoint
)`
    : '';
  const histJoin = input.includeLatency
    ? `LEFT JOIN hists h ON h.key = a.key AND h.kind = a.kind AND h.bucket IS NOT DISTINCT FROM a.bucket AND h.endpoint IS NOT DISTINCT FROM a.endpoint`
    : '';

  const sql = `WITH base AS (
  SELECT t."apiKeyId" AS key, ${bucket} AS bucket, t.minute, t.endpoint, t.status::text AS status,
         t.requests, t.errors, t."latencySumMs" AS lsum, t."latencyMaxMs" AS lmax, t."latencyHistogram" AS histogram
  FROM "ApiTrafficMinute" t
  WHERE t."apiKeyId" = ANY($1::uuid[]) AND t.minute >= $2::timestamptz AND t.minute < $3::timestamptz
),
totals AS (
  SELECT key, ${totalKind} AS kind, bucket, endpoint, status,
         sum(requests)::float8 AS requests, sum(errors)::float8 AS errors, sum(lsum)::float8 AS lsum, max(lmax)::float8 AS lmax
  FROM base
  GROUP BY GROUPING SETS (${totalSets.join(', ')})
),
per_minute AS (
  SELECT key, minute, sum(requests)::float8 AS requests FROM base GROUP BY key, minute
),
peaks AS (
  SELECT DISTINCT ON (key) key, minute, requests FROM per_minute ORDER BY key, requests DESC, minute
),
recent AS (
  SELECT "apiKeyId" AS key, max(minute) AS last_minute
  FROM "ApiTrafficMinute"
  WHERE "apiKeyId" = ANY($1::uuid[]) AND minute >= $4::timestamptz
  GROUP BY "apiKeyId"
)${histCte}
SELECT a.key::text AS "key", a.kind AS "kind", ${iso('a.bucket')} AS "bucket", a.endpoint AS "endpoint", a.status AS "status",
       a.requests AS "requests", a.errors AS "errors", a.lsum AS "latencySumMs", a.lmax AS "latencyMaxMs",
       ${input.includeLatency ? 'h.histogram' : 'NULL::jsonb'} AS "histogram",
       NULL::text AS "keyTier", NULL::int AS "keyCustomRateLimit", NULL::text AS "realmTier", NULL::int AS "realmCustomRateLimit",
       NULL::text AS "lastRequestAt"
FROM totals a ${histJoin}
UNION ALL
SELECT k.id::text, 'key', ${iso('p.minute')}, NULL, NULL,
       p.requests, NULL, NULL, NULL, NULL,
       k.tier::text, k."customRateLimit", r.tier::text, r."customRateLimit", ${iso('rc.last_minute')}
FROM "ApiKey" k
JOIN "Realm" r ON r.id = k."realmId"
LEFT JOIN peaks p ON p.key = k.id
LEFT JOIN recent rc ON rc.key = k.id
WHERE k.id = ANY($1::uuid[])`;
  return { sql, params };
}

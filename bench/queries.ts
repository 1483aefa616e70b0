/**
 * The benchmarked questions, each three ways: the gateway's GraphQL document, the best hand-written
 * SQL for our storage layout returning the same numbers, and a normalizer turning either answer into
 * the same canonical rows, so every run first proves the gateway and the SQL agree.
 */
import { decodeId, encodeId } from '../src/global-id.js';
import { bucketValue } from '../src/traffic/histogram.js';
import type { GeneratedData } from './generate.js';
import { canonicalDecimal, canonicalInstant as iso } from './peer.js';
import { FEATURE_DEFS } from './generate.js';

export interface Row {
  [column: string]: string | null;
}

export interface BenchQuery {
  id: 'Q1' | 'Q2' | 'Q2S' | 'Q3' | 'Q4' | 'Q5';
  title: string;
  graphql: { query: string; variables: Record<string, unknown> };
  sql: { text: string; values: unknown[] };
  /** Canonical rows of the gateway's answer (`data`). */
  fromGateway(data: any): Row[];
  /** Canonical rows of the SQL's answer. */
  fromSql(rows: Record<string, unknown>[]): Row[];
  /** The same report read as compact `series` (parallel arrays per feature and group), where the query is a usage report. */
  series?: { graphql: { query: string; variables: Record<string, unknown> }; fromGateway(data: any): Row[] };
}

/** A `points { … }` selection rewritten as the same report's `series { … }`. */
function asSeries(document: string): string {
  return document.replace('points { feature { id } start quantity', 'series { feature { id } starts quantities');
}

/** Series flattened to the rows `points` would give: one per (series, bucket). */
function seriesPoints(series: any[]): any[] {
  return series.flatMap((s) => s.starts.map((start: string, i: number) => ({ feature: s.feature, group: s.group, start, quantity: s.quantities[i] })));
}

const DAY_MS = 86_400_000;

export function sortRows(rows: Row[]): Row[] {
  const key = (row: Row) => JSON.stringify(Object.keys(row).sort().map((k) => row[k]));
  return rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** Hourly rows added up per hour across dimensions, except UNIQUE_COUNT (distinct keys per hour). */
const uniqueFeatureIndex = FEATURE_DEFS.findIndex((f) => f.aggregation === 'UNIQUE_COUNT');

export function benchQueries(data: GeneratedData): BenchQuery[] {
  const realm = data.realms[0]!;
  const anchor = data.anchor;
  const uniqueFeature = realm.featureIds[uniqueFeatureIndex]!;
  const range = (days: number) => ({ from: new Date(anchor.getTime() - days * DAY_MS).toISOString(), to: anchor.toISOString() });

  const q1Range = range(95);
  const q2Range = range(30);
  // Q3: the last three whole calendar months (UTC) before the anchor's month.
  const q3To = new Date(Date.UTC(anchor.getUTCFullYear(), anchor.getUTCMonth(), 1));
  const q3From = new Date(Date.UTC(anchor.getUTCFullYear(), anchor.getUTCMonth() - 3, 1));
  const totalRows = realm.featureIds[FEATURE_DEFS.findIndex((f) => f.key === 'rows.total')]!;
  const q4Range = { from: new Date(anchor.getTime() - DAY_MS).toISOString(), to: anchor.toISOString() };

  const pointRows = (points: any[], extra: (p: any) => Row = () => ({})) =>
    sortRows(points.map((p) => ({ feature: raw(p.feature.id)!, start: iso(p.start), quantity: canonicalDecimal(p.quantity), ...extra(p) })));
  const raw = (globalId: string | undefined | null) => (globalId ? decodeId(globalId).id : null);

  const q1: BenchQuery = {
    id: 'Q1',
    title: 'Realm billable usage, 95 days, HOUR, grouped by feature',
    graphql: {
      query: `query Q1($range: TimeRangeInput!) { realm { usage(range: $range, granularity: HOUR, groupBy: [FEATURE]) { points { feature { id } start quantity } } } }`,
      variables: { range: q1Range },
    },
    sql: {
      // Grouped by the native columns, cast to text only on the way out (grouping by text is slower).
      text: `SELECT feature::text AS feature, hour, quantity::text AS quantity FROM (
               SELECT "featureId" AS feature, hour, SUM(quantity) AS quantity FROM "UsageHourly"
               WHERE "realmId" = $1 AND hour >= $2 AND hour < $3 AND "featureId" = ANY($4::uuid[]) GROUP BY "featureId", hour
               UNION ALL
               SELECT "featureId", hour, COUNT(DISTINCT key) FROM "UsageUniqueKey"
               WHERE "realmId" = $1 AND hour >= $2 AND hour < $3 GROUP BY "featureId", hour) s`,
      values: [realm.id, q1Range.from, q1Range.to, realm.featureIds.filter((id) => id !== uniqueFeature)],
    },
    fromGateway: (d) => pointRows(d.realm.usage.points),
    fromSql: (rows) => sortRows(rows.map((r) => ({ feature: String(r.feature), start: iso(r.hour as Date), quantity: canonicalDecimal(r.quantity as string) }))),
  };
  q1.series = { graphql: { ...q1.graphql, query: asSeries(q1.graphql.query) }, fromGateway: (d) => pointRows(seriesPoints(d.realm.usage.series)) };

  // Q2: the dashboard. Daily usage per feature of the first 50 workspaces (by id), each its own
  // usage (SELF), as a peer without tree support can answer it too; Q2S is the same over subtrees.
  const q2Document = (scope: 'SELF' | 'SUBTREE') =>
    `query Q2($range: TimeRangeInput!) { realm { workspaces(first: 50) { edges { node { id usage(range: $range, granularity: DAY, groupBy: [FEATURE], scope: ${scope}) { points { feature { id } start quantity } } } } } } }`;
  // Additive features only, so that the hand-written SQL and the peer's plain SUM mean the same.
  const additive = realm.featureIds.filter((_, i) => ['SUM', 'COUNT'].includes(FEATURE_DEFS[i]!.aggregation));
  const q2Sql = (scope: 'SELF' | 'SUBTREE') => ({
    text: `SELECT workspace::text AS workspace, feature::text AS feature, day, quantity::text AS quantity FROM (
      SELECT ${scope === 'SELF' ? 'u."workspaceId"' : 'c."ancestorId"'} AS workspace, u."featureId" AS feature,
        date_trunc('day', u.hour AT TIME ZONE 'UTC') AS day, SUM(u.quantity) AS quantity
      FROM ${scope === 'SELF' ? '"UsageHourly" u' : '"WorkspaceClosure" c JOIN "UsageHourly" u ON u."workspaceId" = c."descendantId"'}
      WHERE ${scope === 'SELF' ? 'u."workspaceId"' : 'c."ancestorId"'} = ANY(ARRAY(SELECT id FROM "Workspace" WHERE "realmId" = $1 ORDER BY id LIMIT 50))
        AND u."realmId" = $1 AND u.hour >= $2 AND u.hour < $3 AND u."featureId" = ANY($4::uuid[])
      GROUP BY 1, 2, 3) s`,
    values: [realm.id, q2Range.from, q2Range.to, additive],
  });
  const q2FromGateway = (d: any) =>
    sortRows(
      d.realm.workspaces.edges.flatMap((e: any) =>
        e.node.usage.points.map((p: any) => ({ workspace: raw(e.node.id), feature: raw(p.feature.id), start: iso(p.start), quantity: canonicalDecimal(p.quantity) })),
      ),
    );
  const q2FromSql = (rows: Record<string, unknown>[]) =>
    sortRows(rows.map((r) => ({ workspace: String(r.workspace), feature: String(r.feature), start: iso(r.day as Date), quantity: canonicalDecimal(r.quantity as string) })));
  const q2Graphql = (scope: 'SELF' | 'SUBTREE') => ({
    query: q2Document(scope).replace('groupBy: [FEATURE]', 'groupBy: [FEATURE], filter: { featureIds: $features }').replace('($range: TimeRangeInput!)', '($range: TimeRangeInput!, $features: [ID!])'),
    variables: { range: q2Range, features: additive.map((id) => encodeId('Feature', id)) },
  });
  const q2 = (id: 'Q2' | 'Q2S', scope: 'SELF' | 'SUBTREE'): BenchQuery => ({
    id,
    title: `Dashboard: workspaces(first: 50) { usage(last 30 days, DAY, groupBy FEATURE, ${scope}) }`,
    graphql: q2Graphql(scope),
    sql: q2Sql(scope),
    fromGateway: q2FromGateway,
    fromSql: q2FromSql,
    series: {
      graphql: { ...q2Graphql(scope), query: asSeries(q2Graphql(scope).query) },
      fromGateway: (d) => q2FromGateway({ realm: { workspaces: { edges: d.realm.workspaces.edges.map((e: any) => ({ node: { id: e.node.id, usage: { points: seriesPoints(e.node.usage.series) } } })) } } }),
    },
  });

  const q3: BenchQuery = {
    id: 'Q3',
    title: 'Finalized monthly unique/total rows by workspace × datastream (3 months)',
    graphql: {
      query: `query Q3($range: TimeRangeInput!, $features: [ID!]) { realm { usage(range: $range, granularity: MONTH, groupBy: [WORKSPACE, DATASTREAM], filter: { featureIds: $features }, finalizedOnly: true) { points { feature { id } start quantity group { workspace { id } datastream { id } } } } } }`,
      variables: { range: { from: q3From.toISOString(), to: q3To.toISOString() }, features: [encodeId('Feature', totalRows), encodeId('Feature', uniqueFeature)] },
    },
    sql: {
      text: `SELECT feature::text AS feature, month, workspace::text AS workspace, datastream::text AS datastream, quantity::text AS quantity FROM (
               SELECT "featureId" AS feature, date_trunc('month', hour AT TIME ZONE 'UTC') AS month, "workspaceId" AS workspace, "datastreamId" AS datastream, SUM(quantity) AS quantity
               FROM "UsageHourly" WHERE "realmId" = $1 AND hour >= $2 AND hour < $3 AND "featureId" = $4 GROUP BY 1, 2, 3, 4
               UNION ALL
               SELECT "featureId", date_trunc('month', hour AT TIME ZONE 'UTC'), "workspaceId", "datastreamId", COUNT(DISTINCT key)
               FROM "UsageUniqueKey" WHERE "realmId" = $1 AND hour >= $2 AND hour < $3 AND "featureId" = $5 GROUP BY 1, 2, 3, 4) s`,
      values: [realm.id, q3From.toISOString(), q3To.toISOString(), totalRows, uniqueFeature],
    },
    fromGateway: (d) =>
      pointRows(d.realm.usage.points, (p) => ({ workspace: raw(p.group.workspace?.id), datastream: raw(p.group.datastream?.id) })),
    series: {
      graphql: { query: '', variables: {} },
      fromGateway: (d) => pointRows(seriesPoints(d.realm.usage.series), (p) => ({ workspace: raw(p.group.workspace?.id), datastream: raw(p.group.datastream?.id) })),
    },
    fromSql: (rows) =>
      sortRows(
        rows.map((r) => ({
          feature: String(r.feature),
          start: iso(r.month as Date),
          quantity: canonicalDecimal(r.quantity as string),
          workspace: (r.workspace as string) ?? null,
          datastream: (r.datastream as string) ?? null,
        })),
      ),
  };

  const q4: BenchQuery = {
    id: 'Q4',
    title: "One API key's traffic, last 24 h, p95 latency by endpoint",
    graphql: {
      query: `query Q4($range: TimeRangeInput!) { viewer { apiKey { traffic(range: $range, granularity: HOUR, includeErrors: false, limit: 1) { endpoints { endpoint requests latency { p95 } } } } } }`,
      variables: { range: q4Range },
    },
    // Nearest-rank p95 from the merged log-bucket histograms, valued as src/traffic/histogram.ts does.
    sql: {
      text: `WITH buckets AS (
               SELECT t.endpoint, (b.key)::int AS bucket, SUM((b.value)::bigint) AS n
               FROM "ApiTrafficMinute" t CROSS JOIN LATERAL jsonb_each_text(t."latencyHistogram") AS b
               WHERE t."apiKeyId" = $1 AND t.minute >= $2 AND t.minute < $3
               GROUP BY 1, 2),
             ranked AS (
               SELECT endpoint, bucket, SUM(n) OVER (PARTITION BY endpoint ORDER BY bucket) AS upto, SUM(n) OVER (PARTITION BY endpoint) AS total
               FROM buckets)
             SELECT r.endpoint, r.total::text AS requests, MIN(r.bucket) FILTER (WHERE r.upto >= ceil(0.95 * r.total)) AS p95_bucket,
               (SELECT MAX(t."latencyMaxMs") FROM "ApiTrafficMinute" t WHERE t."apiKeyId" = $1 AND t.minute >= $2 AND t.minute < $3 AND t.endpoint = r.endpoint) AS max
             FROM ranked r GROUP BY r.endpoint, r.total`,
      values: [realm.apiKeyId, q4Range.from, q4Range.to],
    },
    fromGateway: (d) =>
      sortRows(d.viewer.apiKey.traffic.endpoints.map((e: any) => ({ endpoint: e.endpoint, requests: String(e.requests), p95: e.latency.p95.toFixed(3) }))),
    fromSql: (rows) =>
      sortRows(rows.map((r) => ({ endpoint: String(r.endpoint), requests: String(r.requests), p95: Math.min(bucketValue(Number(r.p95_bucket)), Number(r.max)).toFixed(3) }))),
  };

  const byAggregation = (aggregations: string[]) => realm.featureIds.filter((_, i) => aggregations.includes(FEATURE_DEFS[i]!.aggregation));
  const q5: BenchQuery = {
    id: 'Q5',
    title: '12-month licensed-vs-used history',
    graphql: {
      query: `{ realm { usageHistory(months: 12) { month products { feature { id } used } } } }`,
      variables: {},
    },
    // The numbers behind the chart: each product's used quantity per month by its aggregation (the
    // coverage arithmetic on top of them is a few hundred decimal operations in the gateway).
    sql: {
      // SUM and COUNT months are plain sums of their rows; only MAX and LATEST need each hour's total
      // across dimensions first; unique keys are counted over the month. Grouped by the native
      // month (text only on the way out).
      text: `SELECT feature::text AS feature, to_char(month, 'YYYY-MM') AS month, quantity::text AS quantity FROM (
               SELECT u."featureId" AS feature, date_trunc('month', u.hour AT TIME ZONE 'UTC') AS month, SUM(u.quantity) AS quantity FROM "UsageHourly" u
               WHERE u."realmId" = $1 AND u.hour >= $2 AND u.hour < $3 AND u."featureId" = ANY($4::uuid[]) GROUP BY 1, 2
               UNION ALL
               SELECT h.feature, date_trunc('month', h.hour AT TIME ZONE 'UTC'),
                 CASE WHEN h.feature = ANY($6::uuid[]) THEN (array_agg(h.quantity ORDER BY h.hour DESC))[1] ELSE MAX(h.quantity) END
               FROM (SELECT u."featureId" AS feature, u.hour, SUM(u.quantity) AS quantity FROM "UsageHourly" u
                     WHERE u."realmId" = $1 AND u.hour >= $2 AND u.hour < $3 AND u."featureId" = ANY($5::uuid[]) GROUP BY 1, 2) h
               GROUP BY h.feature, 2
               UNION ALL
               SELECT "featureId", date_trunc('month', hour AT TIME ZONE 'UTC'), COUNT(DISTINCT key)
               FROM "UsageUniqueKey" WHERE "realmId" = $1 AND hour >= $2 AND hour < $3 GROUP BY 1, 2) s`,
      values: [realm.id, ...historyRange(anchor), byAggregation(['SUM', 'COUNT']), byAggregation(['MAX', 'LATEST']), byAggregation(['LATEST'])],
    },
    fromGateway: (d) =>
      sortRows(
        d.realm.usageHistory.flatMap((m: any) =>
          m.products.filter((p: any) => p.used !== '0').map((p: any) => ({ feature: raw(p.feature.id)!, month: m.month, quantity: canonicalDecimal(p.used) })),
        ),
      ),
    fromSql: (rows) => sortRows(rows.map((r) => ({ feature: String(r.feature), month: String(r.month), quantity: canonicalDecimal(r.quantity as string) }))),
  };
  q3.series!.graphql = { ...q3.graphql, query: asSeries(q3.graphql.query) };
  return [q1, q2('Q2', 'SELF'), q2('Q2S', 'SUBTREE'), q3, q4, q5];
}

/** The 12 calendar months (UTC) ending with the current one, up to the data's end (the anchor). */
function historyRange(anchor: Date): [string, string] {
  const now = new Date();
  const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 11, 1));
  return [from.toISOString(), anchor.toISOString()];
}

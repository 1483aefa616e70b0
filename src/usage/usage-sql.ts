import type { DimensionValues } from './dimension-key.js';
import type { Granularity, TimeRange } from './time.js';

/** What a `usage` field is read for: the parent nodes it hangs off. */
export type UsageParentKind =
  | 'REALM'
  | 'WORKSPACE_SUBTREE'
  | 'WORKSPACE_SELF'
  | 'DATASTREAM'
  | 'PROJECT'
  | 'APP'
  | 'FEATURE'
  | 'API_KEY'
  | 'LICENSE';

export const DIMENSIONS = ['WORKSPACE', 'DATASTREAM', 'PROJECT', 'APP', 'BILLING_TAG', 'RESOURCE', 'API_KEY'] as const;
export type Dimension = (typeof DIMENSIONS)[number];

export const DIMENSION_COLUMN: Record<Dimension, string> = {
  WORKSPACE: 'workspaceId',
  DATASTREAM: 'datastreamId',
  PROJECT: 'projectId',
  APP: 'appId',
  BILLING_TAG: 'billingTag',
  RESOURCE: 'resource',
  API_KEY: 'apiKeyId',
};

export interface UsageFilterIds {
  featureIds?: string[];
  workspaceIds?: string[];
  datastreamIds?: string[];
  projectIds?: string[];
  appIds?: string[];
  apiKeyIds?: string[];
  billingTags?: string[];
  resources?: string[];
}

export interface UsageQuery {
  parentKind: UsageParentKind;
  parentIds: string[];
  realmId: string;
  /** A workspace-scoped key reads only usage attributed to its subtree. */
  scopeWorkspaceId: string | null;
  range: TimeRange;
  granularity: Exclude<Granularity, 'MINUTE'>;
  timeZone: string;
  filter: UsageFilterIds;
  groupBy: Dimension[];
}

export interface UsageRow extends DimensionValues {
  kind: 'point' | 'total';
  parent: string;
  feature: string;
  bucket: string | null;
  quantity: string;
}

class Params {
  values: unknown[] = [];
  add(value: unknown, cast: string): string {
    this.values.push(value);
    return `$${this.values.length}::${cast}`;
  }
}

/** How each parent kind picks its rows; `t` is the usage table's alias. */
function parentClause(kind: UsageParentKind, t: string, parents: string) {
  const column = (name: string) => ({ expr: `${t}."${name}"`, join: '', where: `${t}."${name}" = ANY(${parents})` });
  switch (kind) {
    case 'REALM':
      return column('realmId');
    case 'WORKSPACE_SELF':
      return column('workspaceId');
    case 'WORKSPACE_SUBTREE':
      return {
        expr: 'wc."ancestorId"',
        join: `JOIN "WorkspaceClosure" wc ON wc."descendantId" = ${t}."workspaceId" AND wc."ancestorId" = ANY(${parents})`,
        where: 'TRUE',
      };
    case 'DATASTREAM':
      return column('datastreamId');
    case 'PROJECT':
      return column('projectId');
    case 'APP':
      return column('appId');
    case 'FEATURE':
      return column('featureId');
    case 'API_KEY':
      return column('apiKeyId');
    case 'LICENSE':
      // A license covers its feature's usage during its contract.
      return {
        expr: 'l.id',
        join: `JOIN "License" l ON l."featureId" = ${t}."featureId" AND l.id = ANY(${parents})
               JOIN "Contract" c ON c.id = l."contractId" AND ${t}."hour" >= c."startsAt" AND ${t}."hour" < c."endsAt"`,
        where: 'TRUE',
      };
  }
}

/**
 * One statement answering a `usage` question for every parent of a batch: the points (one per
 * parent × feature × group × bucket) and the totals over the whole range (which for MAX, LATEST
 * and UNIQUE_COUNT are not the sum of the points).
 *
 * Hourly rows are first added up per hour across the dimensions not grouped by, then combined
 * across hours by the feature's aggregation: SUM/COUNT add, MAX takes the highest hour, LATEST the
 * last hour with usage. UNIQUE_COUNT counts distinct keys over the bucket from the key table.
 */
export function buildUsageSql(query: UsageQuery): { sql: string; params: unknown[] } {
  const p = new Params();
  const parents = p.add(query.parentIds, 'uuid[]');
  const realm = p.add(query.realmId, 'uuid');
  const from = p.add(query.range.from.toISOString(), 'timestamptz');
  const to = p.add(query.range.to.toISOString(), 'timestamptz');
  let zoneParam: string | undefined;
  const zone = () => (zoneParam ??= p.add(query.timeZone, 'text'));

  const dimensionSelect = (t: string) =>
    DIMENSIONS.map((d) => `${query.groupBy.includes(d) ? `${t}."${DIMENSION_COLUMN[d]}"` : 'NULL'} AS "${DIMENSION_COLUMN[d]}"`).join(', ');
  const dimensionNames = DIMENSIONS.map((d) => `"${DIMENSION_COLUMN[d]}"`).join(', ');
  const dimensionOutput = DIMENSIONS.map((d) => `"${DIMENSION_COLUMN[d]}"::text`).join(', ');

  const filters = (t: string) => {
    const conditions = [`${t}."realmId" = ${realm}`, `${t}."hour" >= ${from}`, `${t}."hour" < ${to}`];
    const ids: [keyof UsageFilterIds, string, string][] = [
      ['featureIds', 'featureId', 'uuid[]'],
      ['workspaceIds', 'workspaceId', 'uuid[]'],
      ['datastreamIds', 'datastreamId', 'uuid[]'],
      ['projectIds', 'projectId', 'uuid[]'],
      ['appIds', 'appId', 'uuid[]'],
      ['apiKeyIds', 'apiKeyId', 'uuid[]'],
      ['billingTags', 'billingTag', 'text[]'],
      ['resources', 'resource', 'text[]'],
    ];
    for (const [name, column, cast] of ids) {
      const values = query.filter[name];
      if (values) conditions.push(`${t}."${column}" = ANY(${p.add(values, cast)})`);
    }
    if (query.scopeWorkspaceId) {
      conditions.push(
        `${t}."workspaceId" IN (SELECT "descendantId" FROM "WorkspaceClosure" WHERE "ancestorId" = ${p.add(query.scopeWorkspaceId, 'uuid')})`,
      );
    }
    return conditions.join(' AND ');
  };

  const bucket = (hour: string) => {
    switch (query.granularity) {
      case 'SUMMARIZED':
        return `${from}`;
      case 'HOUR':
        return hour;
      default:
        return `(date_trunc('${query.granularity.toLowerCase()}', ${hour} AT TIME ZONE ${zone()}) AT TIME ZONE ${zone()})`;
    }
  };
  const iso = (expr: string) => `to_char(${expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`;

  const hourlyParent = parentClause(query.parentKind, 'u', parents);
  const uniqueParent = parentClause(query.parentKind, 'k', parents);
  const combined = `CASE f."aggregation"
      WHEN 'MAX' THEN MAX(h.quantity)
      WHEN 'LATEST' THEN (array_agg(h.quantity ORDER BY h.hour DESC))[1]
      ELSE SUM(h.quantity) END`;
  const withTotals = query.granularity !== 'SUMMARIZED';

  const sql = `
WITH hourly AS (
  SELECT ${hourlyParent.expr} AS parent, u."featureId" AS feature, ${dimensionSelect('u')}, u."hour" AS hour, SUM(u."quantity") AS quantity
  FROM "UsageHourly" u ${hourlyParent.join}
  JOIN "Feature" f0 ON f0.id = u."featureId" AND f0."aggregation" <> 'UNIQUE_COUNT'
  WHERE ${hourlyParent.where} AND ${filters('u')}
  GROUP BY 1, 2, ${DIMENSIONS.map((_, i) => i + 3).join(', ')}, u."hour"
), keyed AS (
  SELECT DISTINCT ${uniqueParent.expr} AS parent, k."featureId" AS feature, ${dimensionSelect('k')}, k."hour" AS hour, k."key" AS key
  FROM "UsageUniqueKey" k ${uniqueParent.join}
  WHERE ${uniqueParent.where} AND ${filters('k')}
)
SELECT 'point' AS kind, h.parent::text AS parent, h.feature::text AS feature, ${iso(bucket('h.hour'))} AS bucket, ${dimensionOutput}, (${combined})::text AS quantity
FROM hourly h JOIN "Feature" f ON f.id = h.feature
GROUP BY h.parent, h.feature, ${bucket('h.hour')}, ${dimensionNames}, f."aggregation"
${withTotals ? `UNION ALL
SELECT 'total', h.parent::text, h.feature::text, NULL, ${dimensionOutput}, (${combined})::text
FROM hourly h JOIN "Feature" f ON f.id = h.feature
GROUP BY h.parent, h.feature, ${dimensionNames}, f."aggregation"` : ''}
UNION ALL
SELECT 'point', k.parent::text, k.feature::text, ${iso(bucket('k.hour'))}, ${dimensionOutput}, COUNT(DISTINCT k.key)::text
FROM keyed k
GROUP BY k.parent, k.feature, ${bucket('k.hour')}, ${dimensionNames}
${withTotals ? `UNION ALL
SELECT 'total', k.parent::text, k.feature::text, NULL, ${dimensionOutput}, COUNT(DISTINCT k.key)::text
FROM keyed k
GROUP BY k.parent, k.feature, ${dimensionNames}` : ''}`;
  return { sql, params: p.values };
}

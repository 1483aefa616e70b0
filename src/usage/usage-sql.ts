import type { DimensionValues } from './dimension-key.js';
import type { Aggregation } from '../generated/prisma/enums.js';
import { bucketStart, bucketStartsOf, nextBucketStart, type Granularity, type TimeRange } from './time.js';
import { ROLLED_UP } from './rollups.js';

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
  /** The realm's features the question may read (after `filter.featureIds`), with their aggregation. */
  features: readonly { id: string; aggregation: Aggregation }[];
  /** Whether totals over the whole range are wanted too (for SUMMARIZED they are the points). */
  totals?: boolean;
  /**
   * The zone whose day and month rollups may replace hourly rows (see `rollupZone`): the report's
   * own zone, or any zone for SUMMARIZED. Absent: hourly rows only.
   */
  rollupTimeZone?: string | null;
  /** No rollup reaches past this instant (`rollupHorizon` of the request's time): hours after it are read with fixed bounds. */
  rollupHorizon?: Date;
}

/** A row of `buildUsageSql`: dimensions not grouped by are absent. */
export interface UsageRow extends Partial<DimensionValues> {
  kind: 'point' | 'total';
  parent: string;
  feature: string;
  bucket: string | null;
  quantity: string;
}

/** Parent kinds read through an indexed column of their own rather than the realm. */
const PARENT_COLUMN_KINDS: readonly UsageParentKind[] = ['WORKSPACE_SELF', 'DATASTREAM', 'PROJECT', 'APP', 'API_KEY'];

export class Params {
  values: unknown[] = [];
  add(value: unknown, cast: string): string {
    this.values.push(value);
    return `$${this.values.length}::${cast}`;
  }
}

/** How each parent kind picks its rows; `t` is the usage table's alias. */
export function parentClause(kind: UsageParentKind, t: string, parents: string) {
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
      // A license row covers its feature's usage during its period: within its contract, from its
      // own start to its own end (null: the contract's), as billing prorates it (`licensePeriod`).
      return {
        expr: 'l.id',
        join: `JOIN "License" l ON l."featureId" = ${t}."featureId" AND l.id = ANY(${parents})
               JOIN "Contract" c ON c.id = l."contractId"
                 AND ${t}."hour" >= GREATEST(c."startsAt", COALESCE(l."startsAt", c."startsAt"))
                 AND ${t}."hour" < LEAST(c."endsAt", COALESCE(l."endsAt", c."endsAt"))`,
        where: 'TRUE',
      };
  }
}

/**
 * The pieces every statement answering a `usage` question is built from: the parent, realm and
 * range parameters, the filters on a usage table alias, the bucket of an hour, the grouped dimensions.
 */
export function usageSqlParts(query: UsageQuery, p: Params) {
  const parents = p.add(query.parentIds, 'uuid[]');
  const realm = p.add(query.realmId, 'uuid');
  const from = p.add(query.range.from.toISOString(), 'timestamptz');
  const to = p.add(query.range.to.toISOString(), 'timestamptz');
  let startsParam: string | undefined;

  const dimensionSelect = (t: string) =>
    DIMENSIONS.map((d) => `${query.groupBy.includes(d) ? `${t}."${DIMENSION_COLUMN[d]}"` : 'NULL'} AS "${DIMENSION_COLUMN[d]}"`).join(', ');
  const dimensionNames = DIMENSIONS.map((d) => `"${DIMENSION_COLUMN[d]}"`).join(', ');
  const dimensionOutput = DIMENSIONS.map((d) => `"${DIMENSION_COLUMN[d]}"::text`).join(', ');

  /** `t`'s conditions; `time` names its time column and bounds when they are not `hour` in the range. */
  const filters = (t: string, time: { column: string; from: string; to: string } = { column: 'hour', from, to }) => {
    // Parents read by their own column (a workspace alone, a datastream, …) are rows of the caller's
    // realm already, and that column has its own (column, hour) index: the realm check is kept out
    // of index selection there. As an index condition, with the feature ids, it steers PostgreSQL
    // into the (realm, feature, hour) unique index, reading every workspace's rows of a realm to
    // answer a dashboard of 50 (see BENCHMARKS.md).
    const realmCheck = PARENT_COLUMN_KINDS.includes(query.parentKind) ? `(${t}."realmId" = ${realm}) IS TRUE` : `${t}."realmId" = ${realm}`;
    const conditions = [realmCheck, `${t}."${time.column}" >= ${time.from}`, `${t}."${time.column}" < ${time.to}`];
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
      default: {
        // The buckets' starts come from `bucketStartsOf`, so SQL and TypeScript agree on every
        // zone's days (PostgreSQL's date_trunc in a zone picks the later of two local midnights).
        const starts = (startsParam ??= p.add(
          bucketStartsOf(query.range, query.granularity, query.timeZone).map((d) => d.toISOString()),
          'timestamptz[]',
        ));
        return `(${starts})[width_bucket(${hour}, ${starts})]`;
      }
    }
  };
  const iso = (expr: string) => `to_char(${expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`;
  return { parents, realm, from, to, dimensionSelect, dimensionNames, dimensionOutput, filters, bucket, iso };
}

/**
 * One statement answering a `usage` question for every parent of a batch: the points (one per
 * parent × feature × group × bucket) and, when asked, the totals over the whole range (which for
 * MAX, LATEST and UNIQUE_COUNT are not the sum of the points).
 *
 * Each kind of feature reads its rows once, and points and totals come from one pass (GROUPING
 * SETS): SUM/COUNT features add their hourly rows straight into buckets; MAX and LATEST first add
 * hourly rows up per hour across the dimensions not grouped by, then take the highest hour or the
 * last hour with usage; UNIQUE_COUNT counts distinct keys over the bucket from the key table.
 */
export function buildUsageSql(query: UsageQuery): { sql: string; params: unknown[] } {
  const p = new Params();
  // Features are picked per kind below; the filter's feature ids are already among them.
  const { parents, realm, from, to, filters, bucket, iso } = usageSqlParts({ ...query, filter: { ...query.filter, featureIds: undefined } }, p);
  const grouped = DIMENSIONS.filter((d) => query.groupBy.includes(d));
  const withTotals = (query.totals ?? true) && query.granularity !== 'SUMMARIZED';
  const ofKind = (kinds: Aggregation[]) => query.features.filter((f) => kinds.includes(f.aggregation)).map((f) => f.id);

  /** SELECT list and GROUP BY of one part, over alias `t` whose hour column is `hour`. */
  const output = (t: string, hour: string, quantity: string, parentExpr: string) => {
    const bucketExpr = bucket(hour);
    const dims = grouped.map((d) => `${t}."${DIMENSION_COLUMN[d]}"`);
    const select = [
      withTotals ? `CASE WHEN GROUPING(${bucketExpr}) = 0 THEN 'point' ELSE 'total' END AS kind` : `'point' AS kind`,
      `${parentExpr}::text AS parent`,
      `${t}."featureId"::text AS feature`,
      `${iso(bucketExpr)} AS bucket`,
      // Only the grouped dimensions: the others are null in every row, and rows can number tens of thousands.
      ...grouped.map((d) => `${t}."${DIMENSION_COLUMN[d]}"::text AS "${DIMENSION_COLUMN[d]}"`),
      `(${quantity})::text AS quantity`,
    ].join(', ');
    const keys = [parentExpr, `${t}."featureId"`, ...dims].join(', ');
    const groupBy = withTotals ? `${keys}, GROUPING SETS ((${bucketExpr}), ())` : `${keys}, ${bucketExpr}`;
    return { select, groupBy };
  };

  /** Rows of `table` (alias `t`) of `features` straight into buckets by `quantity`. */
  const directPart = (table: string, t: string, quantity: string, features: string[]) => {
    const parent = parentClause(query.parentKind, t, parents);
    const { select, groupBy } = output(t, `${t}."hour"`, quantity, parent.expr);
    return `SELECT ${select}
FROM "${table}" ${t} ${parent.join}
WHERE ${parent.where} AND ${filters(t)} AND ${t}."featureId" = ANY(${p.add(features, 'uuid[]')})
GROUP BY ${groupBy}`;
  };

  // Whole local days (and months) already rolled up are read from the rollups; MAX stays hourly.
  const plan = rollupPlan(query);
  const rolled = plan ? rollupSources(query, plan, p, { parents, realm, from, to, filters, output }) : null;

  const parts: string[] = [];
  // By the hour without totals, an hour's largest or last total is that hour's total: MAX and LATEST
  // are added up in the same pass as SUM and COUNT (one scan of the hourly rows instead of two).
  const hourSums = query.granularity === 'HOUR' && !withTotals;
  const additive = ofKind(hourSums ? ['SUM', 'COUNT', 'MAX', 'LATEST'] : ['SUM', 'COUNT']);
  if (additive.length) parts.push(rolled ? rolled.additive(additive) : directPart('UsageHourly', 'u', 'SUM(u."quantity")', additive));
  const peaks = hourSums ? [] : ofKind(rolled ? ['MAX'] : ['MAX', 'LATEST']);
  if (peaks.length) {
    const parent = parentClause(query.parentKind, 'u', parents);
    const dims = grouped.map((d) => `u."${DIMENSION_COLUMN[d]}"`);
    const { select, groupBy } = output(
      'h',
      'h."hour"',
      `CASE WHEN bool_or(h.latest) THEN (array_agg(h.quantity ORDER BY h."hour" DESC))[1] ELSE MAX(h.quantity) END`,
      'h.parent',
    );
    parts.push(`SELECT ${select}
FROM (
  SELECT ${parent.expr} AS parent, u."featureId", ${dims.map((d) => `${d}, `).join('')}u."hour", SUM(u."quantity") AS quantity,
    u."featureId" = ANY(${p.add(ofKind(['LATEST']), 'uuid[]')}) AS latest
  FROM "UsageHourly" u ${parent.join}
  WHERE ${parent.where} AND ${filters('u')} AND u."featureId" = ANY(${p.add(peaks, 'uuid[]')})
  GROUP BY ${[parent.expr, 'u."featureId"', ...dims, 'u."hour"'].join(', ')}
) h
GROUP BY ${groupBy}`);
  }
  const latest = ofKind(['LATEST']);
  if (rolled && latest.length) parts.push(rolled.latest(latest));
  const unique = ofKind(['UNIQUE_COUNT']);
  if (unique.length) parts.push(rolled ? rolled.unique(unique) : directPart('UsageUniqueKey', 'k', 'COUNT(DISTINCT k."key")', unique));
  // No feature to read: a statement with the right columns and no rows (and no parameters: the
  // drivers refuse parameters a statement does not use) keeps callers simple.
  if (!parts.length) {
    return {
      sql: `/* usage */\nSELECT 'point' AS kind, NULL::text AS parent, NULL::text AS feature, NULL::text AS bucket, ${grouped.map((d) => `NULL::text AS "${DIMENSION_COLUMN[d]}"`).join(', ')}${grouped.length ? ', ' : ''}NULL::text AS quantity WHERE FALSE`,
      params: [],
    };
  }
  return { sql: `/* usage */\n${rolled ? `WITH ${rolled.cte}\n` : ''}${parts.join('\nUNION ALL\n')}`, params: p.values };
}

/** The whole local days inside a question's range, and its whole months when it is asked by month (or summarized). */
export interface RollupPlan {
  timeZone: string;
  wholeFrom: Date;
  wholeTo: Date;
  /** Month starts from the first whole month's to the last's end; empty when no whole month is wanted. */
  monthStarts: Date[];
}

/**
 * Whether a question may read rollups: not by HOUR, not for a license (its contract cuts hours),
 * and only when its range holds a whole local day of the rollups' zone.
 */
export function rollupPlan(query: UsageQuery): RollupPlan | null {
  const zone = query.rollupTimeZone;
  if (!zone || query.granularity === 'HOUR' || query.parentKind === 'LICENSE') return null;
  if (!query.features.some((f) => ROLLED_UP.includes(f.aggregation))) return null;
  const { from, to } = query.range;
  const firstDay = bucketStart(from, 'DAY', zone);
  const wholeFrom = firstDay.getTime() === from.getTime() ? firstDay : nextBucketStart(firstDay, 'DAY', zone);
  const wholeTo = bucketStart(to, 'DAY', zone);
  if (wholeFrom >= wholeTo) return null;
  const monthStarts: Date[] = [];
  if (query.granularity === 'MONTH' || query.granularity === 'SUMMARIZED') {
    const firstMonth = bucketStart(wholeFrom, 'MONTH', zone);
    let month = firstMonth.getTime() === wholeFrom.getTime() ? firstMonth : nextBucketStart(firstMonth, 'MONTH', zone);
    for (; month <= wholeTo; month = nextBucketStart(month, 'MONTH', zone)) monthStarts.push(month);
  }
  return { timeZone: zone, wholeFrom, wholeTo, monthStarts: monthStarts.length >= 2 ? monthStarts : [] };
}

type OutputOf = (t: string, hour: string, quantity: string, parentExpr: string) => { select: string; groupBy: string };
type FiltersOf = (t: string, time?: { column: string; from: string; to: string }) => string;

/**
 * The parts of a question that read rollups. Per feature, `cut` says how far its days are rolled
 * up in the zone (clamped to the range's whole days): the units before that come from the rollups,
 * the hours before the first whole day and from there on from the hourly rows. All rows of a part
 * go through one GROUP BY, so points and totals (GROUPING SETS) stay one pass and UNIQUE_COUNT
 * counts distinct keys across hours, days and months alike.
 */
function rollupSources(
  query: UsageQuery,
  plan: RollupPlan,
  p: Params,
  h: { parents: string; realm: string; from: string; to: string; filters: FiltersOf; output: OutputOf },
) {
  const grouped = DIMENSIONS.filter((d) => query.groupBy.includes(d)).map((d) => DIMENSION_COLUMN[d]);
  const zone = p.add(plan.timeZone, 'text');
  const wholeFrom = p.add(plan.wholeFrom.toISOString(), 'timestamptz');
  const wholeTo = p.add(plan.wholeTo.toISOString(), 'timestamptz');
  const monthFrom = p.add((plan.monthStarts[0] ?? plan.wholeFrom).toISOString(), 'timestamptz');
  const months = p.add(plan.monthStarts.map((m) => m.toISOString()), 'timestamptz[]');
  const rolledIds = query.features.filter((f) => ROLLED_UP.includes(f.aggregation)).map((f) => f.id);
  const cte = `cut AS MATERIALIZED (
  SELECT f.id AS "featureId", c.rolled, COALESCE((SELECT max(m.start) FROM unnest(${months}) AS m(start) WHERE m.start <= c.rolled), ${wholeFrom}) AS "monthTo"
  FROM unnest(${p.add(rolledIds, 'uuid[]')}) AS f(id)
  LEFT JOIN "UsageRollupState" s ON s."realmId" = ${h.realm} AND s."featureId" = f.id AND s."timeZone" = ${zone}
  CROSS JOIN LATERAL (SELECT LEAST(GREATEST(COALESCE(s."rolledThrough", ${wholeFrom}), ${wholeFrom}), ${wholeTo}) AS rolled) c
)`;

  const source = (table: string, t: string, features: string, at: string, value: string, time: { column: string; from: string; to: string }, extra?: { join: string; where: string }) => {
    const parent = parentClause(query.parentKind, t, h.parents);
    const columns = [`${parent.expr} AS parent`, `${t}."featureId"`, ...grouped.map((c) => `${t}."${c}"`), `${at} AS at`, `${value} AS value`];
    return `  SELECT ${columns.join(', ')}
  FROM "${table}" ${t}${extra ? ` ${extra.join}` : ''} ${parent.join}
  WHERE ${parent.where} AND ${h.filters(t, time)} AND ${t}."featureId" = ANY(${features})${extra ? ` AND ${extra.where}` : ''}`;
  };
  const cutJoin = (t: string) => `JOIN cut ON cut."featureId" = ${t}."featureId"`;
  /** Hourly rows: before the first whole day, and from the feature's rolled-up end (the earliest of them bounds the index scan). */
  // Hours from the rollup horizon on are never rolled up: they are read with fixed bounds the planner
  // can estimate (a bound it cannot see made it scan whole partitions by hour for a 30-day dashboard).
  const split = query.rollupHorizon && query.rollupHorizon > plan.wholeFrom ? query.rollupHorizon : plan.wholeFrom;
  const splitAt = split < query.range.to ? p.add(split.toISOString(), 'timestamptz') : h.to;
  const hours = (table: string, t: string, features: string, value: string) => [
    source(table, t, features, `${t}.hour`, value, { column: 'hour', from: h.from, to: wholeFrom }),
    ...(split > plan.wholeFrom
      ? [source(table, t, features, `${t}.hour`, value, { column: 'hour', from: '(SELECT min(rolled) FROM cut)', to: splitAt }, { join: cutJoin(t), where: `${t}.hour >= cut.rolled` })]
      : []),
    ...(splitAt !== h.to ? [source(table, t, features, `${t}.hour`, value, { column: 'hour', from: splitAt, to: h.to }, { join: cutJoin(t), where: `${t}.hour >= cut.rolled` })] : []),
  ];
  /** Rolled-up units: the whole months before the feature's rolled-up end, and the other whole days before it. */
  const units = (table: string, t: string, features: string, at: string, value: string) => {
    // The plain realm condition steers the rollup tables into their (realm, zone, unit, feature, start) key.
    const zoneUnit = (unit: string) => `${t}."realmId" = ${h.realm} AND ${t}."timeZone" = ${zone} AND ${t}.unit = '${unit}'`;
    const days = source(table, t, features, at, value, { column: 'start', from: wholeFrom, to: wholeTo }, {
      join: cutJoin(t),
      where: `${zoneUnit('DAY')} AND ${t}.start < cut.rolled AND NOT (${t}.start >= ${monthFrom} AND ${t}.start < cut."monthTo")`,
    });
    if (!plan.monthStarts.length) return [days];
    const wholeMonths = source(table, t, features, at, value, { column: 'start', from: monthFrom, to: wholeTo }, { join: cutJoin(t), where: `${zoneUnit('MONTH')} AND ${t}.start < cut."monthTo"` });
    return [days, wholeMonths];
  };
  const union = (rows: string[]) => `(\n${rows.join('\n  UNION ALL\n')}\n)`;
  const dims = grouped.map((c) => `x."${c}", `).join('');

  return {
    cte,
    additive(features: string[]) {
      const ids = p.add(features, 'uuid[]');
      const { select, groupBy } = h.output('x', 'x.at', 'SUM(x.value)', 'x.parent');
      return `SELECT ${select}\nFROM ${union([...hours('UsageHourly', 'u', ids, 'u.quantity'), ...units('UsageRollup', 'r', ids, 'r.start', 'r.quantity')])} x\nGROUP BY ${groupBy}`;
    },
    /** LATEST: a unit's row stands at its last hour with usage, which no later hour of the bucket can share with a row of another unit. */
    latest(features: string[]) {
      const ids = p.add(features, 'uuid[]');
      const { select, groupBy } = h.output('l', 'l.at', '(array_agg(l.value ORDER BY l.at DESC))[1]', 'l.parent');
      return `SELECT ${select}
FROM (
  SELECT x.parent, x."featureId", ${dims}x.at, SUM(x.value) AS value
  FROM ${union([...hours('UsageHourly', 'u', ids, 'u.quantity'), ...units('UsageRollup', 'r', ids, 'r."lastHour"', 'r.quantity')])} x
  GROUP BY x.parent, x."featureId", ${dims}x.at
) l
GROUP BY ${groupBy}`;
    },
    unique(features: string[]) {
      const ids = p.add(features, 'uuid[]');
      const { select, groupBy } = h.output('x', 'x.at', 'COUNT(DISTINCT x.value)', 'x.parent');
      return `SELECT ${select}\nFROM ${union([...hours('UsageUniqueKey', 'k', ids, 'k.key'), ...units('UsageRollupKey', 'r', ids, 'r.start', 'r.key')])} x\nGROUP BY ${groupBy}`;
    },
  };
}

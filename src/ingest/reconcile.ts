import type { PrismaClient } from '../generated/prisma/client.js';
import { eventsRetainedFrom } from '../db/partitions.js';
import { MAX_FUTURE_MS } from './event.js';
import { rollupDifferences, type RollupDifference } from '../usage/rollups.js';

export interface BucketDifference {
  realmId: string;
  featureId: string;
  hour: string;
  dimensionKey: string;
  expectedQuantity: string | null;
  actualQuantity: string | null;
  expectedEvents: string | null;
  actualEvents: string | null;
}

export interface UniqueKeyDifference {
  realmId: string;
  featureId: string;
  hour: string;
  dimensionKey: string;
  key: string;
  problem: 'missing' | 'unexpected';
}

export interface ReconcileReport {
  /** Buckets recomputed from raw events. */
  bucketsChecked: number;
  /** Buckets with no raw events behind them (aggregates imported directly, like the demo seed): not checkable. */
  importedBuckets: number;
  differences: BucketDifference[];
  uniqueKeyDifferences: UniqueKeyDifference[];
  /**
   * Buckets before `checkableFrom` are not checked: event retention (EVENT_RETENTION_DAYS) dropped
   * raw events that may have fed them. Null when retention never dropped any.
   */
  checkableFrom: Date | null;
  /** Stored buckets older than `checkableFrom`: could not be checked. */
  uncheckedBuckets: number;
  /** Rolled-up days and months recomputed from the hourly rows. */
  rollupUnitsChecked: number;
  rollupDifferences: RollupDifference[];
}

const HOUR_OF = (column: string) => `(date_trunc('hour', ${column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')`;
const ISO = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`;

/**
 * Recomputes every hourly bucket (and the distinct keys of UNIQUE_COUNT features) from the raw
 * events and lists where the stored values differ. Read-only.
 */
export async function reconcile(prisma: PrismaClient, options: { realmId?: string; limit?: number } = {}): Promise<ReconcileReport> {
  const limit = options.limit ?? 1000;
  const params: unknown[] = [];
  const realmFilter = (alias: string) => {
    if (!options.realmId) return 'TRUE';
    if (!params.length) params.push(options.realmId);
    return `${alias}."realmId" = $1::uuid`;
  };
  // An event of hour H was received at H − MAX_FUTURE_MS or later: buckets from `checkableFrom` on
  // have all their events in retained partitions; older ones may have lost some.
  const retainedFrom = await eventsRetainedFrom(prisma);
  const checkableFrom = retainedFrom ? new Date(retainedFrom.getTime() + MAX_FUTURE_MS) : null;
  const checkable = (hour: string) => `${hour} >= '${checkableFrom ? checkableFrom.toISOString() : '-infinity'}'::timestamptz`;
  // Buckets with only voided events are checked too: they must be empty.
  const live = `FILTER (WHERE e."voidedAt" IS NULL)`;
  const expected = `
    SELECT e."realmId", e."featureId", ${HOUR_OF('e."occurredAt"')} AS hour, e."dimensionKey",
      coalesce(CASE f."aggregation"
        WHEN 'MAX' THEN MAX(e."quantity") ${live}
        WHEN 'LATEST' THEN (array_agg(e."quantity" ORDER BY e."occurredAt" DESC, e.id DESC) ${live})[1]
        WHEN 'UNIQUE_COUNT' THEN COUNT(DISTINCT e."uniqueKey") ${live}
        ELSE SUM(e."quantity") ${live} END, 0) AS quantity,
      COUNT(*) ${live} AS events
    FROM "UsageEvent" e JOIN "Feature" f ON f.id = e."featureId"
    WHERE ${realmFilter('e')} AND ${checkable(HOUR_OF('e."occurredAt"'))}
    GROUP BY e."realmId", e."featureId", ${HOUR_OF('e."occurredAt"')}, e."dimensionKey", f."aggregation"`;

  const [counts] = await prisma.$queryRawUnsafe<{ checked: bigint; imported: bigint; unchecked: bigint }[]>(
    `WITH x AS (${expected})
     SELECT (SELECT count(*) FROM x) AS checked,
            (SELECT count(*) FROM "UsageHourly" h WHERE ${realmFilter('h')} AND NOT ${checkable('h.hour')}) AS unchecked,
            (SELECT count(*) FROM "UsageHourly" h WHERE ${realmFilter('h')} AND ${checkable('h.hour')}
               AND NOT EXISTS (SELECT 1 FROM x WHERE x."realmId" = h."realmId" AND x."featureId" = h."featureId" AND x.hour = h.hour AND x."dimensionKey" = h."dimensionKey")) AS imported`,
    ...params,
  );
  const differences = await prisma.$queryRawUnsafe<BucketDifference[]>(
    `WITH x AS (${expected})
     SELECT x."realmId"::text AS "realmId", x."featureId"::text AS "featureId", ${ISO('x.hour')} AS hour, x."dimensionKey",
            x.quantity::text AS "expectedQuantity", h.quantity::text AS "actualQuantity",
            x.events::text AS "expectedEvents", h."eventCount"::text AS "actualEvents"
     FROM x LEFT JOIN "UsageHourly" h
       ON h."realmId" = x."realmId" AND h."featureId" = x."featureId" AND h.hour = x.hour AND h."dimensionKey" = x."dimensionKey"
     WHERE h.id IS NULL OR h.quantity <> x.quantity OR h."eventCount" <> x.events
     ORDER BY 1, 2, 3, 4 LIMIT ${limit}`,
    ...params,
  );
  const uniqueKeyDifferences = await prisma.$queryRawUnsafe<UniqueKeyDifference[]>(
    `WITH sent AS (
       SELECT DISTINCT e."realmId", e."featureId", ${HOUR_OF('e."occurredAt"')} AS hour, e."dimensionKey", e."uniqueKey" AS key
       FROM "UsageEvent" e WHERE e."uniqueKey" IS NOT NULL AND e."voidedAt" IS NULL AND ${realmFilter('e')} AND ${checkable(HOUR_OF('e."occurredAt"'))}
     ), stored AS (
       SELECT k."realmId", k."featureId", k.hour, k."dimensionKey", k.key FROM "UsageUniqueKey" k
       WHERE ${realmFilter('k')} AND ${checkable('k.hour')} AND EXISTS (
         SELECT 1 FROM "UsageEvent" e WHERE e."realmId" = k."realmId" AND e."featureId" = k."featureId"
           AND e."dimensionKey" = k."dimensionKey" AND ${HOUR_OF('e."occurredAt"')} = k.hour)
     )
     SELECT coalesce(s."realmId", t."realmId")::text AS "realmId", coalesce(s."featureId", t."featureId")::text AS "featureId",
            ${ISO('coalesce(s.hour, t.hour)')} AS hour, coalesce(s."dimensionKey", t."dimensionKey") AS "dimensionKey",
            coalesce(s.key, t.key) AS key, CASE WHEN t.key IS NULL THEN 'missing' ELSE 'unexpected' END AS problem
     FROM sent s FULL JOIN stored t
       ON s."realmId" = t."realmId" AND s."featureId" = t."featureId" AND s.hour = t.hour AND s."dimensionKey" = t."dimensionKey" AND s.key = t.key
     WHERE s.key IS NULL OR t.key IS NULL
     ORDER BY 1, 2, 3, 4, 5 LIMIT ${limit}`,
    ...params,
  );
  const rollups = await rollupDifferences(prisma, { realmId: options.realmId, limit });
  return {
    bucketsChecked: Number(counts!.checked),
    importedBuckets: Number(counts!.imported),
    checkableFrom,
    uncheckedBuckets: Number(counts!.unchecked),
    differences,
    uniqueKeyDifferences,
    rollupUnitsChecked: rollups.unitsChecked,
    rollupDifferences: rollups.differences,
  };
}

/**
 * Day and month rollups of the hourly usage, in the realm's time zone (README "Rollups").
 *
 * A feature's days are rolled up up to `UsageRollupState.rolledThrough`, a local midnight; every
 * day before it, and every month ending by it, then has its rows in `UsageRollup` (and, for
 * UNIQUE_COUNT, its distinct keys in `UsageRollupKey`). Reports read those units instead of their
 * hours. A day is rolled up only once nothing but a correction can change it any more: it is final
 * (the feature's watermark) **and** older than ingestion's lateness window, since ingestion still
 * accepts late events into final buckets. Corrections recompute the units they touch in their own
 * transaction (`refreshRollups`); both sides take the realm's rollup lock, so a correction
 * committed while the job runs is either seen by the job or recomputed by the correction.
 */
import type { Feature, PrismaClient } from '../generated/prisma/client.js';
import { Prisma } from '../generated/prisma/client.js';
import type { Aggregation } from '../generated/prisma/enums.js';
import { DIMENSION_NAMES } from './dimension-key.js';
import { DEFAULT_LATENESS_WINDOW_MS } from '../ingest/lateness.js';
import { bucketStart, HOUR_MS, localDayNumber, nextBucketStart, startOfLocalDay } from './time.js';

type Tx = Prisma.TransactionClient;
type Db = PrismaClient | Tx;
export type RollupUnit = 'DAY' | 'MONTH';

/** MAX is not rolled up: a bucket's maximum is over each hour's total across dimensions, which per-combination days cannot give. */
export const ROLLED_UP: readonly Aggregation[] = ['SUM', 'COUNT', 'LATEST', 'UNIQUE_COUNT'];

/**
 * Ingestion refuses events older than its lateness window (`DEFAULT_LATENESS_WINDOW_MS`). Beyond it, this margin:
 * the time an ingestion batch that accepted an event just inside the window may still take to commit (its transaction), plus clock differences between processes.
 */
export const ROLLUP_MARGIN_MS = HOUR_MS;

const DIMS = DIMENSION_NAMES.map((name) => `"${name}"`).join(', ');
const dimsOf = (alias: string) => DIMENSION_NAMES.map((name) => `${alias}."${name}"`).join(', ');

/**
 * The instant the rollup job (run with the default lateness window) never rolls up past at `now`:
 * reports read hours from here on without asking how far the rollups reach.
 */
export function rollupHorizon(now: Date): Date {
  return new Date(now.getTime() - DEFAULT_LATENESS_WINDOW_MS - ROLLUP_MARGIN_MS);
}

/** Where a feature's days may be rolled up to now: the local midnight at or before both its watermark and the lateness horizon. */
export function rollupTarget(watermark: Date, now: Date, timeZone: string, latenessWindowMs: number): Date {
  const horizon = new Date(now.getTime() - latenessWindowMs - ROLLUP_MARGIN_MS);
  const limit = watermark < horizon ? watermark : horizon;
  return startOfLocalDay(localDayNumber(limit, timeZone), timeZone);
}

/** The unit starts from `from` (a unit start) up to and including `to` (a unit start): consecutive boundaries. */
export function unitBoundaries(from: Date, to: Date, unit: RollupUnit, timeZone: string): Date[] {
  const boundaries = [from];
  for (let start = from; start < to; ) boundaries.push((start = nextBucketStart(start, unit, timeZone)));
  return boundaries;
}

/** The months ending in `(after, through]`, as consecutive boundaries (empty when none). */
function monthsEndingBetween(after: Date, through: Date, timeZone: string): Date[] {
  const boundaries: Date[] = [];
  for (let start = bucketStart(after, 'MONTH', timeZone); ; ) {
    const end = nextBucketStart(start, 'MONTH', timeZone);
    if (end > through) break;
    if (!boundaries.length) boundaries.push(start);
    boundaries.push(end);
    start = end;
  }
  return boundaries;
}

/** Takes the realm's rollup lock until the transaction ends (the job and corrections). */
async function lockRealm(tx: Tx, realmId: string) {
  await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(hashtextextended('usage-rollup:' || $1::text, 0))`, realmId);
}

const ARRAY = '$5::timestamptz[]';
const IN_UNITS = (t: string) =>
  `${t}."realmId" = $1::uuid AND ${t}."featureId" = $2::uuid AND ${t}.hour >= (${ARRAY})[1] AND ${t}.hour < (${ARRAY})[array_length(${ARRAY}, 1)]`;

/**
 * What the units `[boundaries[i], boundaries[i+1])` ($5) of feature $2 of realm $1 hold, from the
 * hourly rows: (start, end, dimensionKey, dimensions, quantity, lastHour). The job writes it; the
 * reconciliation compares it with what is stored.
 */
export function unitRowsSql(aggregation: Aggregation): string {
  if (aggregation === 'UNIQUE_COUNT') {
    // The combination's distinct keys over the unit (never a sum of its days or hours).
    return `SELECT (${ARRAY})[k.bucket] AS start, (${ARRAY})[k.bucket + 1] AS "end", k."dimensionKey", ${dimsOf('k')}, COUNT(DISTINCT k.key)::numeric AS quantity, NULL::timestamptz AS "lastHour"
     FROM (SELECT width_bucket(u.hour, ${ARRAY}) AS bucket, u.* FROM "UsageUniqueKey" u WHERE ${IN_UNITS('u')}) k
     GROUP BY k.bucket, k."dimensionKey", ${dimsOf('k')}`;
  }
  const quantity = aggregation === 'LATEST' ? `(array_agg(u.quantity ORDER BY u.hour DESC))[1]` : 'SUM(u.quantity)';
  const lastHour = aggregation === 'LATEST' ? 'MAX(u.hour)' : 'NULL::timestamptz';
  return `SELECT (${ARRAY})[u.bucket] AS start, (${ARRAY})[u.bucket + 1] AS "end", u."dimensionKey", ${dimsOf('u')}, ${quantity} AS quantity, ${lastHour} AS "lastHour"
     FROM (SELECT width_bucket(h.hour, ${ARRAY}) AS bucket, h.* FROM "UsageHourly" h WHERE ${IN_UNITS('h')}) u
     GROUP BY u.bucket, u."dimensionKey", ${dimsOf('u')}`;
}

/** The distinct keys of the units (UNIQUE_COUNT), from the hourly keys: (start, dimensionKey, dimensions, key). */
export const UNIT_KEYS_SQL = `SELECT DISTINCT (${ARRAY})[width_bucket(k.hour, ${ARRAY})] AS start, k."dimensionKey", ${dimsOf('k')}, k.key
       FROM "UsageUniqueKey" k WHERE ${IN_UNITS('k')}`;

/** The stored rows of the feature's units of one zone and unit ($1 realm, $2 feature, $3 zone, $4 unit) starting in $5's span. */
const OF_UNITS = (t: string) => `${t}."realmId" = $1::uuid AND ${t}."timeZone" = $3::text AND ${t}.unit = $4::"RollupUnit" AND ${t}."featureId" = $2::uuid
    AND ${t}.start >= (${ARRAY})[1] AND ${t}.start < (${ARRAY})[array_length(${ARRAY}, 1)]`;

/**
 * Rewrites the feature's units `[boundaries[i], boundaries[i+1])` from the hourly rows (and the
 * hourly distinct keys): the same statements build and repair them.
 */
export async function writeUnits(db: Db, realmId: string, feature: { id: string; aggregation: Aggregation }, timeZone: string, unit: RollupUnit, boundaries: Date[]) {
  if (boundaries.length < 2 || !ROLLED_UP.includes(feature.aggregation)) return;
  const params = [realmId, feature.id, timeZone, unit, boundaries.map((b) => b.toISOString())];
  await db.$executeRawUnsafe(`DELETE FROM "UsageRollup" r WHERE ${OF_UNITS('r')}`, ...params);
  await db.$executeRawUnsafe(
    `INSERT INTO "UsageRollup" ("realmId", "featureId", "timeZone", unit, start, "end", "dimensionKey", ${DIMS}, quantity, "lastHour")
     SELECT $1::uuid, $2::uuid, $3::text, $4::"RollupUnit", x.* FROM (${unitRowsSql(feature.aggregation)}) x`,
    ...params,
  );
  if (feature.aggregation !== 'UNIQUE_COUNT') return;
  await db.$executeRawUnsafe(`DELETE FROM "UsageRollupKey" r WHERE ${OF_UNITS('r')}`, ...params);
  await db.$executeRawUnsafe(
    `INSERT INTO "UsageRollupKey" ("realmId", "featureId", "timeZone", unit, start, "dimensionKey", ${DIMS}, key)
     SELECT $1::uuid, $2::uuid, $3::text, $4::"RollupUnit", x.* FROM (${UNIT_KEYS_SQL}) x`,
    ...params,
  );
}

export interface RollupDifference {
  realmId: string;
  featureId: string;
  timeZone: string;
  unit: RollupUnit;
  start: string;
  dimensionKey: string;
  /** `key` set: a distinct key of the unit missing or unexpected in `UsageRollupKey`. */
  key: string | null;
  expected: string | null;
  stored: string | null;
}

/**
 * Recomputes every rolled-up unit (up to its feature's `rolledThrough`) from the hourly rows and
 * lists where the stored rollups differ, with their distinct keys. Read-only.
 */
export async function rollupDifferences(prisma: PrismaClient, options: { realmId?: string; limit?: number } = {}): Promise<{ unitsChecked: number; differences: RollupDifference[] }> {
  const limit = options.limit ?? 1000;
  const states = await prisma.$queryRawUnsafe<{ realmId: string; featureId: string; timeZone: string; rolledThrough: Date; aggregation: Aggregation; first: Date | null }[]>(
    `SELECT s."realmId"::text AS "realmId", s."featureId"::text AS "featureId", s."timeZone", s."rolledThrough", f.aggregation::text AS aggregation,
       (SELECT min(h.hour) FROM "UsageHourly" h WHERE h."realmId" = s."realmId" AND h."featureId" = s."featureId") AS first
     FROM "UsageRollupState" s JOIN "Feature" f ON f.id = s."featureId"
     WHERE ${options.realmId ? `s."realmId" = $1::uuid` : 'TRUE'} ORDER BY 1, 2, 3`,
    ...(options.realmId ? [options.realmId] : []),
  );
  const differences: RollupDifference[] = [];
  let unitsChecked = 0;
  const iso = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`;
  for (const state of states) {
    const zone = state.timeZone;
    const through = state.rolledThrough;
    const from = state.first && state.first < through ? state.first : through;
    const spans: [RollupUnit, Date[]][] = [
      ['DAY', unitBoundaries(bucketStart(from, 'DAY', zone), through, 'DAY', zone)],
      ['MONTH', [bucketStart(from, 'MONTH', zone), ...monthsEndingBetween(bucketStart(from, 'MONTH', zone), through, zone).slice(1)]],
    ];
    for (const [unit, boundaries] of spans) {
      if (boundaries.length < 2) boundaries.push(boundaries[0]!);
      const params = [state.realmId, state.featureId, zone, unit, boundaries.map((b) => b.toISOString())];
      const [{ count }] = await prisma.$queryRawUnsafe<{ count: bigint }[]>(`SELECT count(*) AS count FROM (${unitRowsSql(state.aggregation)}) x WHERE $3::text IS NOT NULL AND $4::text IS NOT NULL`, ...params) as [{ count: bigint }];
      unitsChecked += Number(count);
      const fields = `$1::text AS "realmId", $2::text AS "featureId", $3::text AS "timeZone", $4::text AS unit`;
      // Every stored unit of the feature and zone is compared: one beyond rolledThrough is unexpected.
      const stored = (table: string) => `SELECT * FROM "${table}" r WHERE r."realmId" = $1::uuid AND r."timeZone" = $3::text AND r.unit = $4::"RollupUnit" AND r."featureId" = $2::uuid`;
      const rows = await prisma.$queryRawUnsafe<RollupDifference[]>(
        `SELECT ${fields}, ${iso('coalesce(x.start, r.start)')} AS start, coalesce(x."dimensionKey", r."dimensionKey") AS "dimensionKey", NULL AS key,
           CASE WHEN x.start IS NULL THEN NULL ELSE x.quantity::text || coalesce(' at ' || ${iso('x."lastHour"')}, '') END AS expected,
           CASE WHEN r.start IS NULL THEN NULL ELSE r.quantity::text || coalesce(' at ' || ${iso('r."lastHour"')}, '') END AS stored
         FROM (${unitRowsSql(state.aggregation)}) x FULL JOIN (${stored('UsageRollup')}) r ON r.start = x.start AND r."dimensionKey" = x."dimensionKey"
         WHERE x.start IS NULL OR r.start IS NULL OR r.quantity <> x.quantity OR r."lastHour" IS DISTINCT FROM x."lastHour" OR r."end" <> x."end"
         ORDER BY 5, 6 LIMIT ${limit}`,
        ...params,
      );
      differences.push(...rows);
      if (state.aggregation === 'UNIQUE_COUNT') {
        differences.push(
          ...(await prisma.$queryRawUnsafe<RollupDifference[]>(
            `SELECT ${fields}, ${iso('coalesce(x.start, r.start)')} AS start, coalesce(x."dimensionKey", r."dimensionKey") AS "dimensionKey", coalesce(x.key, r.key) AS key,
               CASE WHEN x.key IS NULL THEN NULL ELSE 'present' END AS expected, CASE WHEN r.key IS NULL THEN NULL ELSE 'present' END AS stored
             FROM (${UNIT_KEYS_SQL}) x FULL JOIN (${stored('UsageRollupKey')}) r ON r.start = x.start AND r."dimensionKey" = x."dimensionKey" AND r.key = x.key
             WHERE x.key IS NULL OR r.key IS NULL
             ORDER BY 5, 6, 7 LIMIT ${limit}`,
            ...params,
          )),
        );
      }
    }
  }
  return { unitsChecked, differences: differences.slice(0, limit) };
}

export interface RollupRun {
  /** Features whose rollups moved on. */
  features: number;
  days: number;
  months: number;
}

/**
 * The rollup job: for every realm (or one), rolls each feature's days up to `rollupTarget` in the
 * realm's time zone, and the months that ended by then; drops rollups of zones the realm left.
 * Idempotent; safe to run from several processes at once (the realm lock serialises them).
 */
export async function rollUpUsage(prisma: PrismaClient, options: { now?: Date; realmId?: string; latenessWindowMs?: number; signal?: { stopped: boolean } } = {}): Promise<RollupRun> {
  const now = options.now ?? new Date();
  // Imported here: reports (usage-sql) import this module, and neither ingestion nor the loader should come with it.
  const { featureWatermark } = await import('./usage-loader.js');
  const latenessWindowMs = options.latenessWindowMs ?? DEFAULT_LATENESS_WINDOW_MS;
  const realms = await prisma.realm.findMany({
    where: options.realmId ? { id: options.realmId } : {},
    select: { id: true, timeZone: true, features: { where: { aggregation: { in: [...ROLLED_UP] } }, orderBy: { id: 'asc' } } },
  });
  const run: RollupRun = { features: 0, days: 0, months: 0 };
  for (const realm of realms) {
    const zone = realm.timeZone;
    const stale = await prisma.usageRollupState.count({ where: { realmId: realm.id, timeZone: { not: zone } } });
    if (stale) {
      await prisma.$transaction(async (tx) => {
        await lockRealm(tx, realm.id);
        for (const table of ['UsageRollupState', 'UsageRollup', 'UsageRollupKey']) {
          await tx.$executeRawUnsafe(`DELETE FROM "${table}" WHERE "realmId" = $1::uuid AND "timeZone" <> $2::text`, realm.id, zone);
        }
      });
    }
    for (const feature of realm.features) {
      if (options.signal?.stopped) return run;
      const target = rollupTarget(featureWatermark(feature as Feature, now), now, zone, latenessWindowMs);
      const moved = await prisma.$transaction(
        async (tx) => {
          await lockRealm(tx, realm.id);
          const [state] = await tx.$queryRawUnsafe<{ rolledThrough: Date }[]>(
            `SELECT "rolledThrough" FROM "UsageRollupState" WHERE "realmId" = $1::uuid AND "featureId" = $2::uuid AND "timeZone" = $3::text`,
            realm.id,
            feature.id,
            zone,
          );
          let from = state?.rolledThrough;
          if (!from) {
            const first = await tx.usageHourly.aggregate({ where: { realmId: realm.id, featureId: feature.id }, _min: { hour: true } });
            from = first._min.hour ? bucketStart(first._min.hour, 'DAY', zone) : target;
            if (from > target) from = target;
          }
          if (state && target <= from) return null;
          const days = unitBoundaries(from, target, 'DAY', zone);
          const months = monthsEndingBetween(from, target, zone);
          await writeUnits(tx, realm.id, feature, zone, 'DAY', days);
          await writeUnits(tx, realm.id, feature, zone, 'MONTH', months);
          await tx.$executeRawUnsafe(
            `INSERT INTO "UsageRollupState" ("realmId", "featureId", "timeZone", "rolledThrough", "updatedAt") VALUES ($1::uuid, $2::uuid, $3::text, $4::timestamptz, now())
             ON CONFLICT ("realmId", "featureId", "timeZone") DO UPDATE SET "rolledThrough" = EXCLUDED."rolledThrough", "updatedAt" = now()`,
            realm.id,
            feature.id,
            zone,
            target.toISOString(),
          );
          return { days: Math.max(days.length - 1, 0), months: Math.max(months.length - 1, 0) };
        },
        { timeout: 600_000, maxWait: 60_000 },
      );
      if (moved) {
        run.features += 1;
        run.days += moved.days;
        run.months += moved.months;
      }
    }
  }
  // Fresh statistics, or the planner takes a first large rollup for a few rows (nested loops over it).
  if (run.days > 0) await prisma.$executeRawUnsafe(`ANALYZE "UsageRollup", "UsageRollupKey", "UsageRollupState"`);
  return run;
}

/**
 * Inside a correction's transaction, after its buckets were recomputed: recomputes every rolled-up
 * day and month (in any zone) holding a changed hour, so rollups stay equal to the hourly rows.
 */
export async function refreshRollups(tx: Tx, realmId: string, changed: readonly { featureId: string; hour: Date | string }[]): Promise<void> {
  if (!changed.length) return;
  await lockRealm(tx, realmId);
  const states = await tx.$queryRawUnsafe<{ featureId: string; timeZone: string; rolledThrough: Date; aggregation: Aggregation }[]>(
    `SELECT s."featureId"::text AS "featureId", s."timeZone", s."rolledThrough", f.aggregation::text AS aggregation
     FROM "UsageRollupState" s JOIN "Feature" f ON f.id = s."featureId"
     WHERE s."realmId" = $1::uuid AND s."featureId" = ANY($2::uuid[])`,
    realmId,
    [...new Set(changed.map((c) => c.featureId))],
  );
  for (const state of states) {
    const hours = changed.filter((c) => c.featureId === state.featureId).map((c) => new Date(c.hour)).filter((h) => h < state.rolledThrough);
    const zone = state.timeZone;
    const days = [...new Set(hours.map((h) => bucketStart(h, 'DAY', zone).getTime()))].sort((a, b) => a - b);
    // Consecutive days are rewritten by one run of statements (a backfill touches up to 35 of them).
    let run: Date[] = [];
    const flush = async () => {
      await writeUnits(tx, realmId, { id: state.featureId, aggregation: state.aggregation }, zone, 'DAY', run);
      run = [];
    };
    for (const day of days) {
      const start = new Date(day);
      if (run.length && run[run.length - 1]!.getTime() !== day) await flush();
      if (!run.length) run.push(start);
      run.push(nextBucketStart(start, 'DAY', zone));
    }
    await flush();
    const months = [...new Set(hours.map((h) => bucketStart(h, 'MONTH', zone).getTime()))];
    for (const month of months) {
      const end = nextBucketStart(new Date(month), 'MONTH', zone);
      if (end <= state.rolledThrough) await writeUnits(tx, realmId, { id: state.featureId, aggregation: state.aggregation }, zone, 'MONTH', [new Date(month), end]);
    }
  }
}

/** `USAGE_ROLLUPS=false`: reports read hourly rows only (the job still runs); for comparisons and as a way out. */
export function rollupsRead(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.USAGE_ROLLUPS !== 'false';
}

/** `ROLLUP_INTERVAL_MS`: how often the gateway runs the rollup job (default 15 minutes; 0 turns it off). */
export function rollupIntervalMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.ROLLUP_INTERVAL_MS;
  if (raw === undefined || raw === '') return 15 * 60_000;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`ROLLUP_INTERVAL_MS must be a whole number of milliseconds (0 turns the rollup job off), not "${raw}"`);
  return value;
}

export interface RollupJob {
  stop(): Promise<void>;
}

/**
 * Runs the rollup job every `intervalMs`, the first time a minute after start at most (not during
 * start-up, when the embedded database's one connection serves the first requests); never two runs
 * at once in this process. `stop` ends a run after the feature in progress.
 */
export function startRollupJob(prisma: PrismaClient, intervalMs: number, onRun: (error: unknown, run?: RollupRun) => void): RollupJob {
  let running: Promise<void> | null = null;
  const signal = { stopped: false };
  const tick = () => {
    running ??= rollUpUsage(prisma, { signal })
      .then((run) => onRun(null, run), (error: unknown) => onRun(error))
      .finally(() => {
        running = null;
      });
  };
  const first = setTimeout(tick, Math.min(intervalMs, 60_000));
  const timer = setInterval(tick, intervalMs);
  first.unref();
  timer.unref();
  return {
    async stop() {
      signal.stopped = true;
      clearTimeout(first);
      clearInterval(timer);
      await running;
    },
  };
}

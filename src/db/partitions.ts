/**
 * Time partitions of the big append-mostly tables (declarative RANGE partitioning, the same on
 * PostgreSQL and PGlite), created ahead and dropped after retention by the gateway itself.
 *
 * - UsageEvent: one partition per UTC day of receipt (`receivedOn`); whole days are dropped once
 *   older than EVENT_RETENTION_DAYS (a DROP TABLE: constant time, no row-by-row DELETE).
 * - UsageHourly, UsageUniqueKey (by `hour`) and ApiTrafficMinute (by `minute`): one per UTC month, kept.
 *
 * Each table also has a DEFAULT partition: a row outside every period (history imported by the
 * seed, a timestamp the maintenance did not expect, maintenance that fell behind) is stored there
 * instead of failing the write. `ensurePartitions` gives every period holding such rows its own
 * partition, moving the rows out of DEFAULT in the same transaction, so the DEFAULT stays small.
 */
import type { PrismaClient } from '../generated/prisma/client.js';
import { DEFAULT_LATENESS_WINDOW_MS } from '../ingest/pipeline.js';
import { MAX_FUTURE_MS } from '../ingest/event.js';
import { configureEventRetention, DEFAULT_EVENT_RETENTION_DAYS, eventRetentionDays, MIN_EVENT_RETENTION_DAYS } from './retention-window.js';

export { DEFAULT_EVENT_RETENTION_DAYS, MIN_EVENT_RETENTION_DAYS };

const DAY_MS = 86_400_000;

type Period = 'day' | 'month';

interface PartitionedTable {
  table: string;
  column: string;
  period: Period;
  /** SQL type of the partition column: how a bound is written. */
  type: 'date' | 'timestamptz';
}

export const PARTITIONED_TABLES: readonly PartitionedTable[] = [
  { table: 'UsageEvent', column: 'receivedOn', period: 'day', type: 'date' },
  { table: 'UsageHourly', column: 'hour', period: 'month', type: 'timestamptz' },
  { table: 'UsageUniqueKey', column: 'hour', period: 'month', type: 'timestamptz' },
  { table: 'ApiTrafficMinute', column: 'minute', period: 'month', type: 'timestamptz' },
];

/** Partitions are made this many days ahead of now. */
export const PARTITIONS_AHEAD_DAYS = 7;
/** How often a running gateway ensures partitions and applies retention. */
export const PARTITION_MAINTENANCE_INTERVAL_MS = 3_600_000;

const pad = (n: number) => String(n).padStart(2, '0');
const isoDay = (date: Date) => date.toISOString().slice(0, 10);

/** The UTC start of the period containing `at`. */
export function periodStart(at: Date, period: Period): Date {
  return period === 'day'
    ? new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()))
    : new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
}

export function nextPeriod(start: Date, period: Period): Date {
  return period === 'day'
    ? new Date(start.getTime() + DAY_MS)
    : new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
}

/** `UsageEvent_p2026_12_04`, `UsageHourly_p2026_12`: the name says the period (retention reads it back). */
export function partitionName(table: string, start: Date, period: Period): string {
  const month = `${start.getUTCFullYear()}_${pad(start.getUTCMonth() + 1)}`;
  return `${table}_p${period === 'day' ? `${month}_${pad(start.getUTCDate())}` : month}`;
}

function parsePartitionName(table: PartitionedTable, name: string): Date | null {
  const match = new RegExp(`^${table.table}_p(\\d{4})_(\\d{2})(?:_(\\d{2}))?$`).exec(name);
  if (!match) return null;
  return new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, match[3] ? Number(match[3]) : 1));
}

function bound(table: PartitionedTable, at: Date): string {
  return table.type === 'date' ? isoDay(at) : `${isoDay(at)} 00:00:00+00`;
}

/** The periods [from, to] of a table, each given by its start. */
function periodsBetween(table: PartitionedTable, from: Date, to: Date): Date[] {
  const starts: Date[] = [];
  for (let start = periodStart(from, table.period); start <= to; start = nextPeriod(start, table.period)) starts.push(start);
  return starts;
}

/** The partitions (but DEFAULT) of each partitioned table, by name. */
export async function listPartitions(prisma: PrismaClient): Promise<Map<string, string[]>> {
  const rows = await prisma.$queryRawUnsafe<{ parent: string; name: string }[]>(
    `SELECT parent.relname AS parent, child.relname AS name
     FROM pg_inherits i
       JOIN pg_class child ON child.oid = i.inhrelid
       JOIN pg_class parent ON parent.oid = i.inhparent
       JOIN pg_namespace n ON n.oid = parent.relnamespace
     WHERE n.nspname = current_schema() AND parent.relname = ANY($1::text[]) AND NOT pg_get_expr(child.relpartbound, child.oid) = 'DEFAULT'
     ORDER BY 1, 2`,
    PARTITIONED_TABLES.map((t) => t.table),
  );
  const byTable = new Map<string, string[]>(PARTITIONED_TABLES.map((t) => [t.table, []]));
  for (const row of rows) byTable.get(row.parent)!.push(row.name);
  return byTable;
}

/** Starts of the periods that have rows waiting in the table's DEFAULT partition. */
async function periodsInDefault(prisma: PrismaClient, table: PartitionedTable): Promise<Date[]> {
  const start =
    table.type === 'date' ? `"${table.column}"` : `date_trunc('${table.period}', "${table.column}" AT TIME ZONE 'UTC')::date`;
  const rows = await prisma.$queryRawUnsafe<{ start: string }[]>(`SELECT DISTINCT (${start})::text AS start FROM "${table.table}_default"`);
  return rows.map((row) => periodStart(new Date(`${row.start}T00:00:00Z`), table.period));
}

/**
 * Creates one period's partition. Its rows in DEFAULT move into it first, in the same transaction
 * (ATTACH refuses a range DEFAULT still holds rows of); DEFAULT is locked meanwhile, so no row of
 * the period can land there between the move and the ATTACH. Returns false when it already existed.
 */
async function createPartition(prisma: PrismaClient, table: PartitionedTable, start: Date): Promise<boolean> {
  const name = partitionName(table.table, start, table.period);
  const from = bound(table, start);
  const to = bound(table, nextPeriod(start, table.period));
  return prisma.$transaction(
    async (tx) => {
      await tx.$executeRawUnsafe(`LOCK TABLE "${table.table}_default" IN ACCESS EXCLUSIVE MODE`);
      // Another gateway may have made it while this one waited for the lock.
      const [exists] = await tx.$queryRawUnsafe<{ exists: boolean }[]>(`SELECT to_regclass($1) IS NOT NULL AS exists`, `"${name}"`);
      if (exists!.exists) return false;
      await tx.$executeRawUnsafe(`CREATE TABLE "${name}" (LIKE "${table.table}" INCLUDING DEFAULTS)`);
      await tx.$executeRawUnsafe(
        `WITH moved AS (DELETE FROM "${table.table}_default" WHERE "${table.column}" >= '${from}' AND "${table.column}" < '${to}' RETURNING *)
         INSERT INTO "${name}" SELECT * FROM moved`,
      );
      await tx.$executeRawUnsafe(`ALTER TABLE "${table.table}" ATTACH PARTITION "${name}" FOR VALUES FROM ('${from}') TO ('${to}')`);
      return true;
    },
    { timeout: 600_000, maxWait: 60_000 },
  );
}

export interface EnsureOptions {
  now?: Date;
  aheadDays?: number;
  latenessWindowMs?: number;
}

/**
 * Ensures a partition for every period of [now − lateness window, now + aheadDays] (receipt days
 * from yesterday for UsageEvent) and for every period with rows in DEFAULT. Returns the partitions created.
 */
export async function ensurePartitions(prisma: PrismaClient, options: EnsureOptions = {}): Promise<string[]> {
  const now = options.now ?? new Date();
  const ahead = new Date(now.getTime() + (options.aheadDays ?? PARTITIONS_AHEAD_DAYS) * DAY_MS);
  const lateness = options.latenessWindowMs ?? DEFAULT_LATENESS_WINDOW_MS;
  const existing = await listPartitions(prisma);
  const created: string[] = [];
  for (const table of PARTITIONED_TABLES) {
    const earliest = table.table === 'UsageEvent' ? new Date(now.getTime() - DAY_MS) : new Date(now.getTime() - lateness - MAX_FUTURE_MS);
    const wanted = new Map<string, Date>();
    for (const start of [...periodsBetween(table, earliest, ahead), ...(await periodsInDefault(prisma, table))]) {
      wanted.set(partitionName(table.table, start, table.period), start);
    }
    const have = new Set(existing.get(table.table));
    for (const [name, start] of [...wanted].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (have.has(name)) continue;
      if (await createPartition(prisma, table, start)) created.push(name);
    }
  }
  return created;
}

export interface RetentionOptions {
  now?: Date;
  retentionDays?: number;
}

/**
 * Drops the UsageEvent partitions of receipt days older than the retention (every event of the day
 * received more than `retentionDays` ago), a whole day at a time, and records the day as dropped
 * (`UsageEventDay.eventsDroppedAt`, read by `reconcile`). Returns the partitions dropped.
 */
export async function dropExpiredEvents(prisma: PrismaClient, options: RetentionOptions = {}): Promise<string[]> {
  const retentionDays = options.retentionDays ?? eventRetentionDays();
  if (!(retentionDays >= MIN_EVENT_RETENTION_DAYS)) {
    throw new RangeError(`event retention must be at least ${MIN_EVENT_RETENTION_DAYS} days (the lateness window plus the future-skew allowance)`);
  }
  const today = periodStart(options.now ?? new Date(), 'day');
  const table = PARTITIONED_TABLES.find((t) => t.table === 'UsageEvent')!;
  const dropped: string[] = [];
  for (const name of (await listPartitions(prisma)).get(table.table)!) {
    const start = parsePartitionName(table, name);
    if (!start || start.getTime() + (1 + retentionDays) * DAY_MS > today.getTime()) continue;
    await prisma.$transaction(async (tx) => {
      await tx.$executeRawUnsafe(`DROP TABLE "${name}"`);
      await tx.$executeRawUnsafe(
        `INSERT INTO "UsageEventDay" (day, closed, "eventsDroppedAt") VALUES ($1::date, true, now())
         ON CONFLICT (day) DO UPDATE SET closed = true, "eventsDroppedAt" = now()`,
        isoDay(start),
      );
    });
    dropped.push(name);
  }
  return dropped;
}

/**
 * The first instant whose raw events are all retained, or null when retention never dropped any:
 * the day after the newest dropped receipt day.
 */
export async function eventsRetainedFrom(prisma: PrismaClient): Promise<Date | null> {
  const [row] = await prisma.$queryRawUnsafe<{ day: string | null }[]>(
    `SELECT (max(day) + 1)::text AS day FROM "UsageEventDay" WHERE "eventsDroppedAt" IS NOT NULL`,
  );
  return row?.day ? new Date(`${row.day}T00:00:00Z`) : null;
}

export interface MaintenanceResult {
  created: string[];
  dropped: string[];
}

/** One maintenance pass: partitions ahead, then retention. */
export async function maintainPartitions(prisma: PrismaClient, options: EnsureOptions & RetentionOptions = {}): Promise<MaintenanceResult> {
  const created = await ensurePartitions(prisma, options);
  const dropped = await dropExpiredEvents(prisma, options);
  return { created, dropped };
}

export interface PartitionMaintenance {
  /** The pass run at start. */
  first: Promise<MaintenanceResult | undefined>;
  stop(): Promise<void>;
}

/** Runs a pass now and every `intervalMs`; a failed pass is reported and retried at the next one. */
export function startPartitionMaintenance(
  prisma: PrismaClient,
  options: {
    retentionDays?: number;
    intervalMs?: number;
    onError?: (error: unknown) => void;
    onPass?: (result: MaintenanceResult) => void;
  } = {},
): PartitionMaintenance {
  if (options.retentionDays !== undefined) configureEventRetention(options.retentionDays);
  let running: Promise<MaintenanceResult | undefined> = Promise.resolve(undefined);
  let stopped = false;
  const pass = () => {
    running = running.then(async () => {
      if (stopped) return undefined;
      try {
        const result = await maintainPartitions(prisma, { retentionDays: options.retentionDays });
        options.onPass?.(result);
        return result;
      } catch (error) {
        options.onError?.(error);
        return undefined;
      }
    });
    return running;
  };
  const first = pass();
  const timer = setInterval(() => void pass(), options.intervalMs ?? PARTITION_MAINTENANCE_INTERVAL_MS);
  timer.unref();
  return {
    first,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

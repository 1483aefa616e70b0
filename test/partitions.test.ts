import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseEventRetentionDays } from '../src/config.js';
import { openAdapter, openPGlite, type DatabaseTarget } from '../src/db/adapters.js';
import { readPGliteEmptyTemplate } from '../src/db/pglite-empty-template.js';
import { openDatabase, type Database } from '../src/db/database.js';
import {
  DEFAULT_EVENT_RETENTION_DAYS,
  dropExpiredEvents,
  ensurePartitions,
  listPartitions,
  maintainPartitions,
  MIN_EVENT_RETENTION_DAYS,
  partitionName,
  PARTITIONS_AHEAD_DAYS,
  periodStart,
} from '../src/db/partitions.js';
import { createSchemaEngine, noFilters, projectRoot, readMigrationsList } from '../src/db/schema-engine.js';
import { createScratchDatabase } from '../src/db/scratch-database.js';
import { encodeId } from '../src/global-id.js';
import { MAX_FUTURE_MS } from '../src/ingest/event.js';
import { DEFAULT_LATENESS_WINDOW_MS, ingestBatch } from '../src/ingest/pipeline.js';
import { reconcile } from '../src/ingest/reconcile.js';
import { buildUsageSql, type UsageQuery } from '../src/usage/usage-sql.js';
import { createApp } from '../src/yoga.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from './helpers/database.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm, insertUsage } from './helpers/usage-fixture.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
/** The migration that partitions the tables. */
const PARTITIONING = '20261204160000_time_partitions';

/** The partition a row of `table` is stored in. */
async function partitionOf(db: Database, table: string, where: string, ...params: unknown[]): Promise<string[]> {
  const rows = await db.prisma.$queryRawUnsafe<{ partition: string }[]>(`SELECT DISTINCT tableoid::regclass::text AS partition FROM "${table}" WHERE ${where}`, ...params);
  return rows.map((row) => row.partition.replaceAll('"', ''));
}

async function explain(db: Database, sql: string, params: unknown[]): Promise<string> {
  const rows = await db.prisma.$queryRawUnsafe<{ 'QUERY PLAN': string }[]>(`EXPLAIN ${sql}`, ...params);
  return rows.map((row) => row['QUERY PLAN']).join('\n');
}

describe('event retention settings', () => {
  it('never allow a retention shorter than the lateness window plus the future-skew allowance', () => {
    expect(MIN_EVENT_RETENTION_DAYS).toBe(Math.ceil((DEFAULT_LATENESS_WINDOW_MS + MAX_FUTURE_MS) / DAY));
    expect(DEFAULT_EVENT_RETENTION_DAYS).toBe(36);
    expect(parseEventRetentionDays(undefined)).toBe(36);
    expect(parseEventRetentionDays('90')).toBe(90);
    expect(() => parseEventRetentionDays('35')).toThrow(ConfigError);
    expect(() => parseEventRetentionDays('35')).toThrow(/EVENT_RETENTION_DAYS must be a whole number of days from 36 .* \(got "35"\)/);
    expect(() => parseEventRetentionDays('36.5')).toThrow(ConfigError);
  });
});

describe('time partitions', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let realm: Awaited<ReturnType<typeof createUsageRealm>>;
  const now = new Date();
  const target = () => ({ realmId: realm.realm.id, workspaceId: null });

  beforeAll(async () => {
    db = await createTestDatabase();
    realm = await createUsageRealm(db.prisma, 'UTC');
  });
  afterAll(() => db?.destroy());

  it('are made ahead: receipt days from yesterday to a week ahead, months from the lateness window on', async () => {
    // The migration made them around its own time; the gateway's pass keeps them ahead as time goes on.
    expect(await ensurePartitions(db.prisma, { now })).toEqual([]);
    const later = new Date(now.getTime() + 90 * DAY);
    const created = await ensurePartitions(db.prisma, { now: later });
    const partitions = await listPartitions(db.prisma);
    for (const at of [now, later]) {
      for (let day = -1; day <= PARTITIONS_AHEAD_DAYS; day++) {
        const name = partitionName('UsageEvent', periodStart(new Date(at.getTime() + day * DAY), 'day'), 'day');
        expect(partitions.get('UsageEvent')).toContain(name);
        if (at === later) expect(created).toContain(name);
      }
      for (const table of ['UsageHourly', 'UsageUniqueKey', 'ApiTrafficMinute']) {
        for (const t of [at.getTime() - DEFAULT_LATENESS_WINDOW_MS, at.getTime(), at.getTime() + PARTITIONS_AHEAD_DAYS * DAY]) {
          expect(partitions.get(table)).toContain(partitionName(table, periodStart(new Date(t), 'month'), 'month'));
        }
      }
    }
    expect(created).toContain(partitionName('UsageHourly', periodStart(new Date(later.getTime() + PARTITIONS_AHEAD_DAYS * DAY), 'month'), 'month'));
    // A second pass (another gateway, the next hour) finds them all there.
    expect(await ensurePartitions(db.prisma, { now: later })).toEqual([]);
  });

  it('an event as late as the lateness window allows lands in its month partition and counts', async () => {
    const late = new Date(now.getTime() - DEFAULT_LATENESS_WINDOW_MS + HOUR);
    const result = await ingestBatch(db.prisma, target(), [{ idempotencyKey: 'late-1', feature: 'tx', timestamp: late.toISOString(), quantity: '2.5' }], { now });
    expect(result).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
    expect(await partitionOf(db, 'UsageHourly', `"realmId" = $1::uuid AND hour = $2::timestamptz`, realm.realm.id, new Date(Math.floor(late.getTime() / HOUR) * HOUR).toISOString())).toEqual([
      partitionName('UsageHourly', periodStart(late, 'month'), 'month'),
    ]);
    expect(await partitionOf(db, 'UsageEvent', `"idempotencyKey" = 'late-1'`)).toEqual([partitionName('UsageEvent', periodStart(now, 'day'), 'day')]);
    const tooLate = await ingestBatch(db.prisma, target(), [{ idempotencyKey: 'late-2', feature: 'tx', timestamp: new Date(now.getTime() - DEFAULT_LATENESS_WINDOW_MS - HOUR).toISOString(), quantity: '1' }], { now });
    expect(tooLate.rejected.map((r) => r.code)).toEqual(['TOO_LATE']);
  });

  it('rows of a period without a partition go to DEFAULT, and move to their own partition when it is made', async () => {
    const hour = new Date('2019-03-05T10:00:00Z');
    await insertUsage(db.prisma, realm.realm.id, { tx: realm.features.tx.id }, [{ feature: 'tx', hour, quantity: '7' }]);
    const where = `"realmId" = $1::uuid AND hour = $2::timestamptz`;
    expect(await partitionOf(db, 'UsageHourly', where, realm.realm.id, hour.toISOString())).toEqual(['UsageHourly_default']);
    const created = await ensurePartitions(db.prisma, { now });
    expect(created).toEqual(['UsageHourly_p2019_03']);
    expect(await partitionOf(db, 'UsageHourly', where, realm.realm.id, hour.toISOString())).toEqual(['UsageHourly_p2019_03']);
    const [row] = await db.prisma.$queryRawUnsafe<{ quantity: string }[]>(`SELECT quantity::text FROM "UsageHourly" WHERE ${where}`, realm.realm.id, hour.toISOString());
    expect(row!.quantity).toBe('7.000000000');
    expect(await db.prisma.$queryRawUnsafe<unknown[]>(`SELECT 1 FROM "UsageHourly_default"`)).toEqual([]);
  });

  it("the report statement reads only the partitions of the asked range (EXPLAIN)", async () => {
    const from = periodStart(now, 'month');
    const query: UsageQuery = {
      parentKind: 'REALM',
      parentIds: [realm.realm.id],
      realmId: realm.realm.id,
      scopeWorkspaceId: null,
      range: { from, to: new Date(from.getTime() + 7 * DAY) },
      granularity: 'HOUR',
      timeZone: 'UTC',
      filter: {},
      groupBy: [],
      features: Object.values(realm.features).map((f) => ({ id: f.id, aggregation: f.aggregation })),
    };
    const { sql, params } = buildUsageSql(query);
    const plan = await explain(db, sql, params);
    const month = partitionName('UsageHourly', from, 'month');
    expect(plan).toContain(month);
    expect(plan).toContain(partitionName('UsageUniqueKey', from, 'month'));
    const partitions = await listPartitions(db.prisma);
    const others = [...partitions.get('UsageHourly')!, ...partitions.get('UsageUniqueKey')!].filter((name) => !name.endsWith(month.slice('UsageHourly'.length)));
    expect(others.length).toBeGreaterThan(2);
    for (const other of [...others, 'UsageHourly_default', 'UsageUniqueKey_default']) expect(plan).not.toMatch(new RegExp(`\\b${other}\\b`));
  });

  it('a key stored on an earlier, retained day is a duplicate today, never counted twice', async () => {
    const yesterday = new Date(periodStart(now, 'day').getTime() - DAY);
    const occurredAt = new Date(now.getTime() - 2 * HOUR).toISOString();
    // As a gateway would have stored it yesterday (its bucket is left out: only the key matters here).
    await db.prisma.$executeRawUnsafe(
      `INSERT INTO "UsageEvent" ("realmId", "idempotencyKey", "featureId", "occurredAt", quantity, "receivedOn")
       VALUES ($1::uuid, 'sent-yesterday', $2::uuid, $3::timestamptz, 1, $4::date)`,
      realm.realm.id,
      realm.features.tx.id,
      occurredAt,
      yesterday.toISOString().slice(0, 10),
    );
    const resent = await ingestBatch(db.prisma, target(), [{ idempotencyKey: 'sent-yesterday', feature: 'tx', timestamp: occurredAt, quantity: '1' }], { now });
    expect(resent.accepted).toBe(0);
    expect(await db.prisma.usageEvent.count({ where: { idempotencyKey: 'sent-yesterday' } })).toBe(1);
  });

  it('the first ingestion of a day closes the earlier days; a transaction of a closed day is refused and retried', async () => {
    const today = periodStart(now, 'day').toISOString().slice(0, 10);
    const earlier = new Date(periodStart(now, 'day').getTime() - 3 * DAY).toISOString().slice(0, 10);
    await db.prisma.$executeRawUnsafe(`INSERT INTO "UsageEventDay" (day, closed) VALUES ($1::date, false)`, earlier);
    await ingestBatch(db.prisma, target(), [{ idempotencyKey: 'closes', feature: 'tx', timestamp: now.toISOString(), quantity: '1' }], { now });
    const days = await db.prisma.$queryRawUnsafe<{ day: string; closed: boolean }[]>(`SELECT day::text AS day, closed FROM "UsageEventDay" ORDER BY day`);
    expect(days).toContainEqual({ day: earlier, closed: true });
    expect(days).toContainEqual({ day: today, closed: false });
    // As if the day had ended and the next day's first transaction had closed it meanwhile.
    await db.prisma.$executeRawUnsafe(`UPDATE "UsageEventDay" SET closed = true WHERE day = $1::date`, today);
    try {
      await expect(ingestBatch(db.prisma, target(), [{ idempotencyKey: 'on-closed-day', feature: 'tx', timestamp: now.toISOString(), quantity: '1' }], { now })).rejects.toMatchObject({
        code: '40001',
      });
      expect(await db.prisma.usageEvent.count({ where: { idempotencyKey: 'on-closed-day' } })).toBe(0);
    } finally {
      await db.prisma.$executeRawUnsafe(`UPDATE "UsageEventDay" SET closed = false WHERE day = $1::date`, today);
    }
  });

  // Two connections: PGlite is one. A transaction of yesterday still running at midnight, and today's first.
  it.runIf(testDatabaseKind() === 'postgres')('at midnight, today\'s first ingestion waits for yesterday\'s transactions and sees their keys', async () => {
    const yesterday = new Date(periodStart(now, 'day').getTime() - DAY).toISOString().slice(0, 10);
    await db.prisma.$executeRawUnsafe(
      `INSERT INTO "UsageEventDay" (day, closed) VALUES ($1::date, false) ON CONFLICT (day) DO UPDATE SET closed = false`,
      yesterday,
    );
    const late = new pg.Client({ connectionString: (db.target as { url: string }).url });
    await late.connect();
    try {
      // As insertEvents does on its day: hold the day's row FOR SHARE, insert, not committed yet.
      await late.query('BEGIN');
      await late.query(`SELECT closed FROM "UsageEventDay" WHERE day = $1::date FOR SHARE`, [yesterday]);
      await late.query(
        `INSERT INTO "UsageEvent" ("realmId", "idempotencyKey", "featureId", "occurredAt", quantity, "receivedOn") VALUES ($1, 'across-midnight', $2, now(), 1, $3::date)`,
        [realm.realm.id, realm.features.tx.id, yesterday],
      );
      const today = ingestBatch(db.prisma, target(), [{ idempotencyKey: 'across-midnight', feature: 'tx', timestamp: now.toISOString(), quantity: '1' }], { now });
      // Today's batch must be waiting for yesterday's transaction (closing the day), not inserting beside it.
      const waiting = async () =>
        (await late.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)).rows[0].n;
      for (let i = 0; i < 200 && (await waiting()) === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(await waiting()).toBe(1);
      await late.query('COMMIT');
      expect((await today).accepted).toBe(0);
      expect(await db.prisma.usageEvent.count({ where: { idempotencyKey: 'across-midnight' } })).toBe(1);
      const [day] = await db.prisma.$queryRawUnsafe<{ closed: boolean }[]>(`SELECT closed FROM "UsageEventDay" WHERE day = $1::date`, yesterday);
      expect(day!.closed).toBe(true);
    } finally {
      await late.end();
    }
  });

  it("UsageEvent checks no foreign key per row, yet a deleted feature or realm takes its events along, and TRUNCATE \"Realm\" CASCADE empties it", async () => {
    const foreignKeys = await db.prisma.$queryRawUnsafe<{ conname: string }[]>(
      `SELECT conname FROM pg_constraint WHERE conrelid = '"UsageEvent"'::regclass AND contype = 'f'`,
    );
    expect(foreignKeys).toEqual([]);
    const other = await db.prisma.realm.create({ data: { name: 'Deleted realm', slug: `deleted-${randomBytes(4).toString('hex')}` } });
    const feature = (key: string) => db.prisma.feature.create({ data: { realmId: other.id, key, name: key, service: 'test', unit: 'TRANSACTION', aggregation: 'SUM' } });
    const [kept, dropped] = [await feature('kept'), await feature('dropped')];
    const at = new Date(now.getTime() - HOUR).toISOString();
    const events = ['kept', 'dropped'].flatMap((key) => [1, 2].map((n) => ({ idempotencyKey: `${key}-${n}`, feature: key, timestamp: at, quantity: '1' })));
    expect((await ingestBatch(db.prisma, { realmId: other.id, workspaceId: null }, events, { now })).accepted).toBe(4);
    const eventsOf = (where: { realmId?: string; featureId?: string }) => db.prisma.usageEvent.count({ where });
    const othersBefore = await db.prisma.usageEvent.count({ where: { realmId: { not: other.id } } });
    expect(othersBefore).toBeGreaterThan(0);

    await db.prisma.feature.delete({ where: { id: dropped.id } });
    expect(await eventsOf({ featureId: dropped.id })).toBe(0);
    expect(await eventsOf({ featureId: kept.id })).toBe(2);
    await db.prisma.realm.delete({ where: { id: other.id } });
    expect(await eventsOf({ realmId: other.id })).toBe(0);
    expect(await db.prisma.usageEvent.count({ where: { realmId: { not: other.id } } })).toBe(othersBefore);

    // In a transaction rolled back: the other tests' realms stay.
    const rollback = new Error('rollback');
    await expect(
      db.prisma.$transaction(async (tx) => {
        await tx.$executeRawUnsafe(`TRUNCATE "Realm" CASCADE`);
        expect(await tx.usageEvent.count()).toBe(0);
        throw rollback;
      }),
    ).rejects.toBe(rollback);
    expect(await db.prisma.usageEvent.count()).toBe(othersBefore);
  });

  // Last: it drops today's events.
  it('retention drops whole days of events; a resend of a dropped event is TOO_LATE, never counted twice', async () => {
    const occurredAt = new Date(now.getTime() - HOUR);
    const sent = { idempotencyKey: 'kept-then-dropped', feature: 'tx', timestamp: occurredAt.toISOString(), quantity: '4' };
    expect((await ingestBatch(db.prisma, target(), [sent], { now })).accepted).toBe(1);
    const hour = new Date(Math.floor(occurredAt.getTime() / HOUR) * HOUR);
    const bucket = () => db.prisma.usageHourly.findFirstOrThrow({ where: { realmId: realm.realm.id, featureId: realm.features.tx.id, hour } });
    const before = await bucket();
    const todayPartition = partitionName('UsageEvent', periodStart(now, 'day'), 'day');

    // One day short of the retention: nothing goes.
    expect(await dropExpiredEvents(db.prisma, { now: new Date(now.getTime() + DEFAULT_EVENT_RETENTION_DAYS * DAY) })).not.toContain(todayPartition);
    const later = new Date(now.getTime() + (DEFAULT_EVENT_RETENTION_DAYS + 1) * DAY);
    const result = await maintainPartitions(db.prisma, { now: later });
    expect(result.dropped).toContain(todayPartition);
    expect((await listPartitions(db.prisma)).get('UsageEvent')).not.toContain(todayPartition);
    expect(await db.prisma.usageEvent.count({ where: { idempotencyKey: sent.idempotencyKey } })).toBe(0);

    const resent = await ingestBatch(db.prisma, target(), [sent], { now: later });
    expect(resent.accepted).toBe(0);
    expect(resent.rejected.map((r) => r.code)).toEqual(['TOO_LATE']);
    expect((await bucket()).quantity.toFixed()).toBe(before.quantity.toFixed());

    // What verify can still check: buckets of dropped days are named as not checkable.
    const report = await reconcile(db.prisma, { realmId: realm.realm.id });
    expect(report.checkableFrom!.getTime()).toBe(periodStart(now, 'day').getTime() + DAY + MAX_FUTURE_MS);
    expect(report.uncheckedBuckets).toBeGreaterThan(0);
    expect(report.differences).toEqual([]);
  });
});

/** A database at the migration before the partitioning one, and how to open and drop it. */
async function databaseBeforePartitioning(): Promise<{ target: DatabaseTarget; drop(): Promise<void> }> {
  let target: DatabaseTarget;
  let drop: () => Promise<void>;
  if (testDatabaseKind() === 'pglite') {
    const dir = path.join(projectRoot, 'node_modules/.cache', `ugw-partitions-${randomBytes(4).toString('hex')}`);
    target = { kind: 'pglite', dir };
    drop = async () => rmSync(dir, { recursive: true, force: true });
  } else {
    const scratch = await createScratchDatabase(process.env.TEST_DATABASE_URL!, 'ugw_partitions');
    target = { kind: 'postgres', url: scratch.url };
    drop = scratch.drop;
  }
  // A new PGlite directory starts from the initialized empty one (as the schema engine's shim does)
  // instead of running initdb: what is tested starts with the migrations.
  const adapter =
    target.kind === 'pglite'
      ? await (async () => {
          const pglite = await openPGlite(target.dir, readPGliteEmptyTemplate());
          return { factory: new PrismaPGlite(pglite), close: () => pglite.close() };
        })()
      : await openAdapter(target, { poolSize: 1 });
  try {
    const engine = await createSchemaEngine(adapter.factory);
    try {
      const list = readMigrationsList();
      list.migrationDirectories = list.migrationDirectories.filter((m) => m.path < PARTITIONING);
      await engine.applyMigrations({ migrationsList: list, filters: noFilters });
    } finally {
      engine.free();
    }
  } finally {
    await adapter.close();
  }
  return { target, drop };
}

describe('the partitioning migration', { timeout: 300_000 }, () => {
  it('converts a populated database keeping every row, number and report', async () => {
    const database = await databaseBeforePartitioning();
    const now = new Date();
    const today = periodStart(now, 'day').getTime();
    try {
      let db = await openDatabase(database.target, { migrate: false });
      const realm = await createUsageRealm(db.prisma, 'UTC');
      const ids = Object.fromEntries(Object.entries(realm.features).map(([key, f]) => [key, f.id]));
      // Hours of the last weeks (with their raw events, received on several days) and of an older month (imported).
      const recent = Array.from({ length: 40 }, (_, i) => new Date(today - (i + 1) * 17 * HOUR));
      const old = new Date('2026-03-10T08:00:00Z');
      const workspaces = [realm.tree.left.id, realm.tree.leaf.id, realm.tree.right.id];
      await insertUsage(db.prisma, realm.realm.id, ids, [
        ...recent.map((hour, i) => ({ feature: 'tx', hour, quantity: `${i + 1}.25`, workspaceId: workspaces[i % 3] })),
        ...recent.map((hour, i) => ({ feature: 'rows', hour, keys: [`k${i % 7}`], workspaceId: workspaces[i % 3] })),
        { feature: 'tx', hour: old, quantity: '1000.5' },
      ]);
      // The raw events behind the recent buckets, as the ingestion before the migration stored them.
      for (const [i, hour] of recent.entries()) {
        for (const [feature, quantity, uniqueKey] of [
          ['tx', `${i + 1}.25`, null],
          ['rows', '1', `k${i % 7}`],
        ] as const) {
          await db.prisma.$executeRawUnsafe(
            `INSERT INTO "UsageEvent" ("realmId", "idempotencyKey", "featureId", "occurredAt", quantity, "uniqueKey", "workspaceId", "dimensionKey", "receivedAt")
             SELECT $1::uuid, $2, $3::uuid, $4::timestamptz, $5::numeric, $6, $7::uuid, h."dimensionKey", $4::timestamptz + interval '10 minutes'
             FROM "UsageHourly" h WHERE h."featureId" = $3::uuid AND h.hour = $4::timestamptz`,
            realm.realm.id,
            `${feature}-${i}`,
            ids[feature],
            hour.toISOString(),
            quantity,
            uniqueKey,
            workspaces[i % 3],
          );
        }
      }
      await db.prisma.apiTrafficMinute.createMany({
        data: recent.slice(0, 5).map((minute, i) => ({
          apiKeyId: realm.admin.record.id,
          minute,
          endpoint: `op${i}`,
          status: 'OK' as const,
          requests: i + 1,
          errors: 0,
          latencySumMs: 1.5 * (i + 1),
          latencyMaxMs: 1.5,
          latencyHistogram: { '12': i + 1 },
        })),
      });

      const tables = ['UsageEvent', 'UsageHourly', 'UsageUniqueKey', 'ApiTrafficMinute'];
      const dump = async (d: Database) =>
        Object.fromEntries(
          await Promise.all(
            tables.map(async (table) => {
              const rows = await d.prisma.$queryRawUnsafe<{ row: string }[]>(`SELECT (to_jsonb(t) - 'receivedOn')::text AS row FROM "${table}" t ORDER BY 1`);
              return [table, rows.map((r) => r.row)] as const;
            }),
          ),
        );
      const range = { from: new Date(today - 60 * DAY).toISOString(), to: new Date(today + DAY).toISOString() };
      const reports = async (d: Database) => {
        const app = createApp({ prisma: d.prisma, now: () => now });
        const answers = [];
        for (const [granularity, groupBy] of [
          ['HOUR', '[]'],
          ['DAY', '[WORKSPACE]'],
          ['MONTH', '[]'],
        ]) {
          const { body } = await graphql(
            app,
            `{ realm { usage(range: { from: "${range.from}", to: "${range.to}" }, granularity: ${granularity}, groupBy: ${groupBy}) {
                 points { start feature { key } quantity group { workspace { name } } } totals { feature { key } quantity } } } }`,
            { key: realm.admin.key },
          );
          expect(body.errors).toBeUndefined();
          answers.push(body.data);
        }
        const { body } = await graphql(app, `{ realm { usage(range: { from: "2026-03-01T00:00:00Z", to: "2026-04-01T00:00:00Z" }) { totals { feature { key } quantity } } } }`, { key: realm.admin.key });
        answers.push(body.data);
        return answers;
      };
      // The buckets recomputed from the raw events beside the stored ones (what reconcile compares;
      // reconcile itself needs the new schema).
      const numbers = (d: Database) =>
        d.prisma.$queryRawUnsafe<{ row: string }[]>(
          `SELECT concat_ws(' ', h."featureId", h.hour, h."dimensionKey", h.quantity, h."eventCount", x.sum, x.keys, x.events) AS row
           FROM "UsageHourly" h LEFT JOIN (
             SELECT "featureId", date_trunc('hour', "occurredAt") AS hour, "dimensionKey", SUM(quantity) AS sum, COUNT(DISTINCT "uniqueKey") AS keys, COUNT(*) AS events
             FROM "UsageEvent" GROUP BY 1, 2, 3) x
           ON x."featureId" = h."featureId" AND x.hour = h.hour AND x."dimensionKey" = h."dimensionKey"
           ORDER BY 1`,
        );
      const rowsBefore = await dump(db);
      const reportsBefore = await reports(db);
      const numbersBefore = await numbers(db);
      expect(rowsBefore.UsageEvent).toHaveLength(80);
      expect(numbersBefore).toHaveLength(81);
      expect(reportsBefore[0].realm.usage.totals.length).toBeGreaterThan(0);
      await db.close();

      db = await openDatabase(database.target);
      try {
        const applied = await db.prisma.$queryRawUnsafe<{ migration_name: string }[]>(`SELECT migration_name FROM _prisma_migrations WHERE migration_name = $1`, PARTITIONING);
        expect(applied).toHaveLength(1);
        const [kind] = await db.prisma.$queryRawUnsafe<{ relkind: string }[]>(`SELECT relkind::text FROM pg_class WHERE relname = 'UsageHourly'`);
        expect(kind!.relkind).toBe('p');
        expect(await dump(db)).toEqual(rowsBefore);
        expect(await reports(db)).toEqual(reportsBefore);
        expect(await numbers(db)).toEqual(numbersBefore);
        // Each row is in the partition of its period; events by their day of receipt.
        expect(await partitionOf(db, 'UsageHourly', `hour = $1::timestamptz`, old.toISOString())).toEqual(['UsageHourly_p2026_03']);
        const received = new Date(recent[0]!.getTime() + 10 * 60_000);
        expect(await partitionOf(db, 'UsageEvent', `"idempotencyKey" = 'tx-0'`)).toEqual([partitionName('UsageEvent', periodStart(received, 'day'), 'day')]);
        expect(await db.prisma.$queryRawUnsafe<unknown[]>(`SELECT 1 FROM "UsageHourly_default" UNION ALL SELECT 1 FROM "UsageEvent_default"`)).toEqual([]);

        // The gateway's maintenance changes no number either.
        await maintainPartitions(db.prisma, { now });
        expect(await reports(db)).toEqual(reportsBefore);

        // Keys stored before the migration stay taken; new events count, with ids after the old ones.
        const target = { realmId: realm.realm.id, workspaceId: null };
        const resent = await ingestBatch(db.prisma, target, [{ idempotencyKey: 'tx-0', feature: 'tx', timestamp: recent[0]!.toISOString(), quantity: '1.25', workspaceId: encodeId('Workspace', workspaces[0]!) }], { now });
        expect(resent.accepted).toBe(0);
        const added = await ingestBatch(db.prisma, target, [{ idempotencyKey: 'after-migration', feature: 'tx', timestamp: now.toISOString(), quantity: '3' }], { now });
        expect(added.accepted).toBe(1);
        const maxOld = rowsBefore.UsageHourly!.map((row) => BigInt(JSON.parse(row).id)).reduce((a, b) => (a > b ? a : b));
        const newest = await db.prisma.usageHourly.findFirstOrThrow({ orderBy: { id: 'desc' } });
        expect(newest.id > maxOld).toBe(true);
        expect((await reconcile(db.prisma)).differences).toEqual([]);
      } finally {
        await db.close();
      }
    } finally {
      await database.drop();
    }
  });
});

/**
 * Day and month rollups (README "Rollups"), on both databases, in America/Havana, where 1 November
 * 2026 has two local midnights (04:00Z and 05:00Z: the day starts at 04:00Z and lasts 25 h), and
 * Europe/Berlin (25 October 2026 lasts 25 h). Reports must give the same numbers whether they read
 * rollups or hourly rows only, whatever parent, grouping, granularity and range.
 */
import { DateTime } from 'luxon';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildMonthlyUsageSql } from '../src/billing/monthly-usage-sql.js';
import { reconcile } from '../src/ingest/reconcile.js';
import { dimensionKey } from '../src/usage/dimension-key.js';
import { rollUpUsage } from '../src/usage/rollups.js';
import { buildUsageSql, type Dimension, type UsageQuery, type UsageParentKind } from '../src/usage/usage-sql.js';
import { startOfLocalMonth, type Granularity } from '../src/usage/time.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm, FEATURES, insertUsage, type RawUsage } from './helpers/usage-fixture.js';

type UsageRealm = Awaited<ReturnType<typeof createUsageRealm>>;

let db: TestDatabase;
let app: App;
let now = new Date('2026-11-12T12:00:00Z');
const unexpected: unknown[] = [];

const HAVANA = 'America/Havana';
let havana: UsageRealm;
let usage: RawUsage[];

const API_NOW = new Date('2027-01-20T12:00:00Z');
const API_REPORT = `query ($range: TimeRangeInput!, $granularity: Granularity!, $timeZone: TimeZone) {
  realm { usage(range: $range, granularity: $granularity, timeZone: $timeZone, groupBy: [FEATURE, WORKSPACE]) {
    points { feature { key } start end quantity isFinal group { workspace { id } } } totals { feature { key } quantity group { workspace { id } } } } } }`;
const API_CASES: [string, string | undefined][] = [['DAY', undefined], ['MONTH', undefined], ['WEEK', undefined], ['SUMMARIZED', undefined], ['DAY', 'Asia/Kolkata'], ['MONTH', 'UTC']];
const apiReportsBefore: { report: { points: unknown[] }; statements: string[] }[] = [];

/** One report of the Havana realm through GraphQL: its answer and the SQL statements it ran. */
async function askReport(granularity: string, timeZone?: string) {
  const { body, statements } = await graphql(app, API_REPORT, {
    key: havana.admin.key,
    variables: { range: { from: '2026-10-10T00:00:00Z', to: '2026-11-30T00:00:00Z' }, granularity, timeZone },
  });
  expect(body.errors).toBeUndefined();
  return { report: body.data.realm.usage, statements };
}

/** A small deterministic generator: the same usage on every run. */
function lcg(seed: number) {
  let state = seed;
  return () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
}

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => now, onUnexpectedError: (error) => unexpected.push(error) });
  havana = await createUsageRealm(db.prisma, HAVANA);
  const { tree, streams, apps } = havana;
  const combos = [
    { workspaceId: tree.left.id, datastreamId: streams[0]!.id },
    { workspaceId: tree.leaf.id, datastreamId: streams[1]!.id, billingTag: 'a|b' },
    { workspaceId: tree.right.id, appId: apps[1]!.id },
    {},
  ];
  const random = lcg(16);
  usage = [];
  // 25 October to 12 November 2026 (UTC): the month change and Havana's 25-hour 1 November inside,
  // a week of October before them (a rolled-up October month), a week of November after.
  for (let t = Date.UTC(2026, 9, 25); t < Date.UTC(2026, 10, 12); t += 3_600_000) {
    for (const combo of combos) {
      if (random() < 0.5) continue;
      const hour = new Date(t);
      usage.push({ feature: 'tx', hour, quantity: `${Math.floor(random() * 100)}.5`, ...combo });
      usage.push({ feature: 'req', hour, quantity: String(1 + Math.floor(random() * 9)), ...combo });
      usage.push({ feature: 'spaces', hour, quantity: String(Math.floor(random() * 20)), ...combo });
      usage.push({ feature: 'storage', hour, quantity: String(Math.floor(random() * 1000)), ...combo });
      usage.push({ feature: 'rows', hour, keys: [...new Set([0, 1, 2].map(() => `k${Math.floor(random() * 8)}`))], ...combo });
    }
  }
  await insertUsage(db.prisma, havana.realm.id, featureIds(havana), usage);
  // The API's answers before any rollup, for 'reports through the API' to compare with once rolled up.
  now = API_NOW;
  for (const [granularity, zone] of API_CASES) {
    apiReportsBefore.push(await askReport(granularity, zone));
  }
}, 120_000);
afterAll(async () => {
  await db?.destroy();
});
afterEach(() => {
  expect(unexpected.splice(0)).toEqual([]);
});

const featureIds = (u: UsageRealm) => Object.fromEntries(Object.entries(u.features).map(([key, f]) => [key, f.id]));
const allFeatures = (u: UsageRealm) => Object.values(u.features).map((f) => ({ id: f.id, aggregation: f.aggregation }));

/** The rows of one usage question, read with or without rollups, in a comparable order. */
async function rowsOf(query: UsageQuery, withRollups: boolean) {
  const read = async (rollupHorizon?: Date) => {
    const { sql, params } = buildUsageSql({ ...query, rollupTimeZone: withRollups ? HAVANA : null, rollupHorizon });
    const rows = await db.prisma.$queryRawUnsafe<Record<string, unknown>[]>(sql, ...params);
    return { sql, rows: rows.map((row) => JSON.stringify(row)).sort() };
  };
  const answer = await read();
  if (withRollups) {
    // Hours after the rollup horizon are read as a part of their own; wherever the horizon falls
    // (inside the rolled-up days, or before what is rolled up), the rows are the same.
    for (const horizon of [new Date('2026-11-05T07:00:00Z'), new Date('2026-10-28T00:00:00Z')]) {
      const split = await read(horizon);
      expect(split.sql).not.toEqual(answer.sql);
      expect(split.rows).toEqual(answer.rows);
    }
  }
  return answer;
}

const RANGES = {
  /** Whole local months: October and November in Havana. */
  months: { from: new Date('2026-10-01T04:00:00Z'), to: new Date('2026-12-01T05:00:00Z') },
  /** Starts and ends inside local days (of the usage), on whole UTC hours. */
  ragged: { from: new Date('2026-10-25T13:00:00Z'), to: new Date('2026-11-09T07:00:00Z') },
};
const PARENTS: [UsageParentKind, (u: UsageRealm) => string[]][] = [
  ['REALM', (u) => [u.realm.id]],
  ['WORKSPACE_SUBTREE', (u) => [u.tree.root.id, u.tree.left.id]],
  ['WORKSPACE_SELF', (u) => [u.tree.leaf.id, u.tree.right.id]],
];
const GROUPINGS: Dimension[][] = [[], ['WORKSPACE'], ['WORKSPACE', 'DATASTREAM', 'BILLING_TAG', 'APP']];
const GRANULARITIES: Exclude<Granularity, 'MINUTE' | 'HOUR'>[] = ['DAY', 'WEEK', 'MONTH', 'SUMMARIZED'];

/**
 * The hourly-only answers, read once per question: the hourly rows never change in this file's
 * realm (the rollup job only adds rollups), so every later answer is compared with the answer
 * before any rollup ("every report is unchanged").
 */
const hourlyAnswers = new Map<string, Promise<{ sql: string; rows: string[] }>>();

/** Every question of the matrix answers the same with and without rollups; returns how many read rollups. */
async function expectSameAnswers(u: UsageRealm, timeZone = HAVANA, granularities = GRANULARITIES) {
  let compared = 0;
  for (const [parentKind, parents] of PARENTS) {
    for (const groupBy of GROUPINGS) {
      for (const granularity of granularities) {
        for (const [name, range] of Object.entries(RANGES)) {
          const query: UsageQuery = {
            parentKind,
            parentIds: parents(u),
            realmId: u.realm.id,
            scopeWorkspaceId: null,
            range,
            granularity,
            timeZone,
            filter: {},
            groupBy,
            features: allFeatures(u),
            totals: true,
          };
          const question = `${u.realm.id} ${parentKind} ${groupBy.join(',')} ${granularity} ${name} ${timeZone}`;
          if (!hourlyAnswers.has(question)) hourlyAnswers.set(question, rowsOf(query, false));
          const hourly = await hourlyAnswers.get(question)!;
          const rolled = await rowsOf(query, true);
          expect(hourly.sql).not.toContain('UsageRollup');
          expect(rolled.sql, `${parentKind} ${groupBy} ${granularity} ${name}`).toContain('UsageRollup');
          expect(rolled.rows, `${parentKind} ${groupBy.join(',')} ${granularity} ${name} ${timeZone}`).toEqual(hourly.rows);
          expect(hourly.rows.length).toBeGreaterThan(0);
          compared += 1;
        }
      }
    }
  }
  return compared;
}

async function state(u: UsageRealm, feature: keyof UsageRealm['features']) {
  return db.prisma.usageRollupState.findUnique({ where: { realmId_featureId_timeZone: { realmId: u.realm.id, featureId: u.features[feature].id, timeZone: u.realm.timeZone } } });
}

/** The local day (or month) of each unit, computed with luxon from the stated usage: the independent truth. */
function expectedUnits(u: UsageRealm, unit: 'DAY' | 'MONTH', through: Date) {
  // Per hour of the usage (each hour holds many rows): luxon's zone arithmetic is the costly part.
  const hours = new Map<number, { label: string; end: Date }>();
  const unitOf = (d: Date) => {
    let hour = hours.get(d.getTime());
    if (!hour) {
      const local = DateTime.fromJSDate(d, { zone: HAVANA });
      const end = local.plus(unit === 'DAY' ? { days: 1 } : { months: 1 }).startOf(unit === 'DAY' ? 'day' : 'month');
      hour = { label: local.toFormat(unit === 'DAY' ? 'yyyy-MM-dd' : 'yyyy-MM'), end: end.toJSDate() };
      hours.set(d.getTime(), hour);
    }
    return hour;
  };
  const units = new Map<string, { quantity: number; lastHour: number; keys: Set<string> }>();
  for (const row of usage) {
    // Only units wholly before `through` are rolled up (their end, as luxon sees it, at or before it).
    const { label, end } = unitOf(row.hour);
    if (end > through) continue;
    const key = `${row.feature}|${label}|${dimensionKey(row)}`;
    const entry = units.get(key) ?? { quantity: 0, lastHour: -1, keys: new Set<string>() };
    const aggregation = FEATURES.find((f) => f.key === row.feature)!.aggregation;
    if (aggregation === 'LATEST') {
      if (row.hour.getTime() > entry.lastHour) entry.quantity = Number(row.quantity);
    } else entry.quantity += Number(row.quantity ?? 0);
    entry.lastHour = Math.max(entry.lastHour, row.hour.getTime());
    for (const k of row.keys ?? []) entry.keys.add(k);
    units.set(key, entry);
  }
  return new Map(
    [...units]
      .filter(([key]) => !key.startsWith('spaces|'))
      .map(([key, e]) => [key, key.startsWith('rows|') ? e.keys.size : e.quantity]),
  );
}

async function storedUnits(u: UsageRealm, unit: 'DAY' | 'MONTH') {
  const keyOf = new Map(Object.entries(u.features).map(([key, f]) => [f.id, key]));
  const rows = await db.prisma.usageRollup.findMany({ where: { realmId: u.realm.id, unit } });
  const label = (d: Date) => DateTime.fromJSDate(d, { zone: HAVANA }).toFormat(unit === 'DAY' ? 'yyyy-MM-dd' : 'yyyy-MM');
  return new Map(rows.map((r) => [`${keyOf.get(r.featureId)}|${label(r.start)}|${r.dimensionKey}`, Number(r.quantity)]));
}

describe('the rollup job', { timeout: 300_000 }, () => {
  it('rolls up nothing that ingestion may still change: days must be past the lateness window as well as final', async () => {
    const run = await rollUpUsage(db.prisma, { now: new Date('2026-11-20T12:00:00Z'), realmId: havana.realm.id });
    // 20 November less 35 days and an hour is 16 October 11:00Z: the states say days before 16 October are rolled up (there is no usage there).
    expect(run.days).toBe(0);
    expect(await db.prisma.usageRollup.count({ where: { realmId: havana.realm.id } })).toBe(0);
    expect((await state(havana, 'tx'))!.rolledThrough.toISOString()).toBe('2026-10-16T04:00:00.000Z');
    expect(await state(havana, 'spaces')).toBeNull();
  });

  it('gives the same answers from rollups as from hourly rows before any day is rolled up', async () => {
    expect(await expectSameAnswers(havana)).toBe(PARENTS.length * GROUPINGS.length * GRANULARITIES.length * 2);
  });

  it('rolls up part of the range: reports spanning rolled-up and hourly days (and a rolled-up October) are unchanged', async () => {
    // 11 December 12:00Z less 35 days and an hour: 6 November 11:00Z, so days up to 5 November are rolled up.
    await rollUpUsage(db.prisma, { now: new Date('2026-12-11T12:00:00Z'), realmId: havana.realm.id });
    const through = (await state(havana, 'tx'))!.rolledThrough;
    expect(through.toISOString()).toBe('2026-11-06T05:00:00.000Z');
    expect(await storedUnits(havana, 'DAY')).toEqual(expectedUnits(havana, 'DAY', through));
    expect(await storedUnits(havana, 'MONTH')).toEqual(expectedUnits(havana, 'MONTH', through));
    expect([...(await storedUnits(havana, 'MONTH')).keys()].every((key) => key.includes('|2026-10|'))).toBe(true);
    await expectSameAnswers(havana);
  });

  it('builds exactly what the hourly rows give, across the 25-hour 1 November, then every report is unchanged', async () => {
    const run = await rollUpUsage(db.prisma, { now: new Date('2027-01-20T12:00:00Z'), realmId: havana.realm.id });
    expect(run.months).toBeGreaterThan(0);
    const through = (await state(havana, 'rows'))!.rolledThrough;
    expect(await storedUnits(havana, 'DAY')).toEqual(expectedUnits(havana, 'DAY', through));
    expect(await storedUnits(havana, 'MONTH')).toEqual(expectedUnits(havana, 'MONTH', through));
    // Havana's 1 November: from the first midnight (04:00Z) to 2 November's (05:00Z).
    const first = await db.prisma.usageRollup.findFirst({ where: { realmId: havana.realm.id, unit: 'DAY', start: new Date('2026-11-01T04:00:00Z') } });
    expect(first?.end.toISOString()).toBe('2026-11-02T05:00:00.000Z');
    // UNIQUE_COUNT: a month is the distinct keys over the month, not the sum of its days.
    const rows = havana.features.rows.id;
    const month = await db.prisma.usageRollup.findFirst({ where: { featureId: rows, unit: 'MONTH', dimensionKey: dimensionKey({}) , start: new Date('2026-10-01T04:00:00Z') } });
    const days = await db.prisma.usageRollup.findMany({ where: { featureId: rows, unit: 'DAY', dimensionKey: dimensionKey({}), start: { lt: new Date('2026-11-01T04:00:00Z') } } });
    expect(Number(month!.quantity)).toBeLessThanOrEqual(8);
    expect(days.reduce((sum, d) => sum + Number(d.quantity), 0)).toBeGreaterThan(Number(month!.quantity));
    await expectSameAnswers(havana);
    // A summary in another zone reads the realm zone's rollups: any partition of the range will do.
    await expectSameAnswers(havana, 'Asia/Kolkata', ['SUMMARIZED']);
  });

  it('gives the 12-month history (billing) the same numbers from month rollups as from hours', async () => {
    const months = [-2, -1, 0, 1, 2].map((n) => ({
      from: startOfLocalMonth(new Date('2026-10-15T12:00:00Z'), HAVANA, n),
      to: startOfLocalMonth(new Date('2026-10-15T12:00:00Z'), HAVANA, n + 1),
    }));
    const run = async (rollupTimeZone: string | null, rollupHorizon?: Date) => {
      const { sql, params } = buildMonthlyUsageSql({ realmId: havana.realm.id, months, to: new Date('2027-01-20T12:00:00Z'), features: allFeatures(havana), rollupTimeZone, rollupHorizon });
      return { sql, rows: (await db.prisma.$queryRawUnsafe<Record<string, unknown>[]>(sql, ...params)).map((r) => JSON.stringify(r)).sort() };
    };
    const rolled = await run(HAVANA);
    expect(rolled.sql).toContain('UsageRollupKey');
    expect(rolled.rows).toEqual((await run(null)).rows);
    expect(rolled.rows.length).toBeGreaterThan(8);
    // The hours after a rollup horizon as a part of their own: inside the rolled-up days, or before them.
    for (const horizon of [new Date('2026-11-05T07:00:00Z'), new Date('2026-10-28T00:00:00Z')]) {
      const split = await run(HAVANA, horizon);
      expect(split.sql).not.toEqual(rolled.sql);
      expect(split.rows).toEqual(rolled.rows);
    }
  });

  it('is idempotent', async () => {
    const before = await db.prisma.usageRollup.count();
    expect(await rollUpUsage(db.prisma, { now: new Date('2027-01-20T12:00:00Z'), realmId: havana.realm.id })).toEqual({ features: 0, days: 0, months: 0 });
    expect(await db.prisma.usageRollup.count()).toBe(before);
  });
});

describe('reports through the API', { timeout: 300_000 }, () => {
  it('answer DAY and MONTH reports in the realm zone and another zone alike with and without rollups, with the same statement count', async () => {
    // The answers before any rollup were read in the file's beforeAll (apiReportsBefore); the rollup
    // job tests above rolled everything up to this `now` (again here when this test runs alone: a no-op after them).
    now = API_NOW;
    await rollUpUsage(db.prisma, { now, realmId: havana.realm.id });
    expect(await db.prisma.usageRollup.count({ where: { realmId: havana.realm.id } })).toBeGreaterThan(0);
    for (const [i, [granularity, zone]] of API_CASES.entries()) {
      const after = await askReport(granularity, zone);
      expect(after.report, `${granularity} ${zone}`).toEqual(apiReportsBefore[i]!.report);
      expect(after.statements.length).toBe(apiReportsBefore[i]!.statements.length);
      const usageStatement = after.statements.find((sql) => sql.includes('/* usage */'))!;
      // Reports in the realm's zone (and summaries) read the rollups; other zones' days and months read hours.
      expect(usageStatement.includes('UsageRollup'), `${granularity} ${zone}`).toBe(!zone || granularity === 'SUMMARIZED');
    }
    expect(apiReportsBefore[0]!.report.points.length).toBeGreaterThan(100);
  });
});

describe('corrections and reconciliation', { timeout: 300_000 }, () => {
  const INGEST = `mutation ($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted rejected { index code message } } }`;
  const VOID = `mutation ($key: String!, $reopen: Boolean) { voidUsageEvent(idempotencyKey: $key, reopen: $reopen) { voided reopenedBuckets userErrors { code } } }`;
  const AMEND = `mutation ($key: String!, $event: AmendedUsageEventInput!, $reopen: Boolean) { amendUsageEvent(idempotencyKey: $key, event: $event, reopen: $reopen) { amended reopenedBuckets userErrors { code } } }`;
  const berlin = 'Europe/Berlin';
  let u: UsageRealm;

  /** Every rolled-up unit of the realm equals its hours, and so do the report answers. */
  async function expectExact() {
    const report = await reconcile(db.prisma, { realmId: u.realm.id });
    expect(report.rollupDifferences).toEqual([]);
    expect(report.rollupUnitsChecked).toBeGreaterThan(0);
    const range = { from: new Date('2026-10-01T00:00:00Z'), to: new Date('2026-11-10T00:00:00Z') };
    for (const granularity of ['DAY', 'MONTH', 'SUMMARIZED'] as const) {
      const query: UsageQuery = { parentKind: 'REALM', parentIds: [u.realm.id], realmId: u.realm.id, scopeWorkspaceId: null, range, granularity, timeZone: berlin, filter: {}, groupBy: ['BILLING_TAG'], features: allFeatures(u), totals: true };
      const run = async (rollupTimeZone: string | null) => {
        const { sql, params } = buildUsageSql({ ...query, rollupTimeZone });
        return (await db.prisma.$queryRawUnsafe<Record<string, unknown>[]>(sql, ...params)).map((r) => JSON.stringify(r)).sort();
      };
      expect(await run(berlin)).toEqual(await run(null));
    }
    return report;
  }

  it('keeps rollups exact when a reopened correction changes a rolled-up day, and verify reports a tampered rollup', async () => {
    u = await createUsageRealm(db.prisma, berlin);
    // Events around Berlin's 25-hour 25 October, ingested when they happened.
    const events = [];
    for (let t = Date.UTC(2026, 9, 23); t < Date.UTC(2026, 9, 28); t += 2 * 3_600_000) {
      const timestamp = new Date(t + 600_000).toISOString();
      const tag = t % (6 * 3_600_000) ? 'a' : 'b';
      events.push({ idempotencyKey: `tx-${t}`, feature: 'tx', timestamp, quantity: '2.25', billingTag: tag });
      events.push({ idempotencyKey: `st-${t}`, feature: 'storage', timestamp, quantity: String(t / 3_600_000 % 97), billingTag: tag });
      events.push({ idempotencyKey: `rows-${t}`, feature: 'rows', timestamp, uniqueKey: `key-${(t / 3_600_000) % 5}`, billingTag: tag });
    }
    now = new Date('2026-10-28T01:00:00Z');
    const { body } = await graphql(app, INGEST, { key: u.admin.key, variables: { events } });
    expect(body.data.ingestUsage).toEqual({ accepted: events.length, rejected: [] });

    now = new Date('2026-12-20T12:00:00Z');
    await rollUpUsage(db.prisma, { now, realmId: u.realm.id });
    expect((await state(u, 'tx'))!.rolledThrough.toISOString()).toBe('2026-11-14T23:00:00.000Z');
    const clean = await expectExact();
    expect(clean.differences).toEqual([]);

    // Void the last storage event of 25 October (LATEST) and a key of the month (UNIQUE_COUNT), and move a tx event to today.
    const lastOf25 = `st-${Date.UTC(2026, 9, 25, 22)}`;
    for (const key of [lastOf25, `rows-${Date.UTC(2026, 9, 24, 4)}`]) {
      const voided = await graphql(app, VOID, { key: u.admin.key, variables: { key, reopen: true } });
      expect(voided.body.data.voidUsageEvent).toMatchObject({ voided: 1, userErrors: [] });
    }
    const amended = await graphql(app, AMEND, {
      key: u.admin.key,
      variables: { key: `tx-${Date.UTC(2026, 9, 25, 0)}`, event: { feature: 'tx', timestamp: '2026-12-20T10:00:00Z', quantity: '7' }, reopen: true },
    });
    expect(amended.body.data.amendUsageEvent).toMatchObject({ amended: 1, userErrors: [] });
    await expectExact();

    // A tampered rollup (and a removed distinct key) is reported.
    await db.prisma.$executeRawUnsafe(`UPDATE "UsageRollup" SET quantity = quantity + 1 WHERE "featureId" = $1::uuid AND unit = 'MONTH'`, u.features.tx.id);
    await db.prisma.$executeRawUnsafe(
      `DELETE FROM "UsageRollupKey" WHERE ctid IN (SELECT ctid FROM "UsageRollupKey" WHERE "featureId" = $1::uuid AND unit = 'DAY' LIMIT 1)`,
      u.features.rows.id,
    );
    const tampered = await reconcile(db.prisma, { realmId: u.realm.id });
    expect(tampered.rollupDifferences).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ featureId: u.features.tx.id, unit: 'MONTH', key: null }),
        expect.objectContaining({ featureId: u.features.rows.id, unit: 'DAY', key: expect.any(String), expected: 'present', stored: null }),
      ]),
    );
  });
});


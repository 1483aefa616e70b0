import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../src/global-id.js';
import { configureReportCache } from '../src/usage/report-cache.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm, FEATURES, insertUsage, type RawUsage } from './helpers/usage-fixture.js';

const HOUR = 3_600_000;
const DATA_FROM = Date.UTC(2026, 2, 20); // spans the spring DST changes of Europe (29 March) and Sydney (5 April)
const DATA_HOURS = 24 * 24;
// Within a day of the data's end: the last buckets are not final, so `isFinal` varies inside a series.
const NOW = new Date(DATA_FROM + (DATA_HOURS + 20) * HOUR);

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;

function random(seed: number) {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

beforeAll(async () => {
  // Statement counts below are of uncached reads; the cache has its own test file.
  configureReportCache({ maxBytes: 0, ttlMs: 1000 });
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => NOW, onUnexpectedError: (error) => console.error(error) });
  realm = await createUsageRealm(db.prisma, 'Europe/Berlin');
  const next = random(7);
  const pick = <T>(values: T[]) => values[Math.floor(next() * values.length)]!;
  const usage: RawUsage[] = [];
  for (let h = 0; h < DATA_HOURS; h++) {
    for (const feature of FEATURES) {
      if (next() < 0.5) continue;
      const workspace = pick([realm.tree.root, realm.tree.left, realm.tree.right, null]);
      const row: RawUsage = {
        feature: feature.key,
        hour: new Date(DATA_FROM + h * HOUR),
        workspaceId: workspace?.id ?? null,
        appId: next() < 0.5 ? pick(realm.apps).id : null,
        billingTag: pick(['blue', 'green', null]),
        resource: pick(['maps', 'search']),
      };
      if (feature.aggregation === 'UNIQUE_COUNT') row.keys = [`k${Math.floor(next() * 30)}`, `k${Math.floor(next() * 30)}`];
      else row.quantity = `${Math.floor(next() * 2000)}.${Math.floor(next() * 1000)}`;
      usage.push(row);
    }
  }
  const featureIds = Object.fromEntries(Object.entries(realm.features).map(([key, f]) => [key, f.id]));
  await insertUsage(db.prisma, realm.realm.id, featureIds, usage);
});

afterAll(() => db?.destroy());

const group = 'group { workspace { id } app { id } billingTag resource }';

interface Point {
  start: string;
  end: string;
  quantity: string;
  isFinal: boolean;
  feature: { key: string };
  group: unknown;
}
interface Series {
  feature: { key: string };
  unit: string;
  group: unknown;
  starts: string[];
  ends: string[];
  quantities: string[];
  isFinal: boolean[];
}

/** The points regrouped per feature and group, in order of first appearance. */
function regroup(points: (Point & { unit: string })[]): Series[] {
  const series = new Map<string, Series>();
  for (const p of points) {
    const key = JSON.stringify([p.feature.key, p.group]);
    if (!series.has(key)) series.set(key, { feature: p.feature, unit: p.unit, group: p.group, starts: [], ends: [], quantities: [], isFinal: [] });
    const s = series.get(key)!;
    s.starts.push(p.start);
    s.ends.push(p.end);
    s.quantities.push(p.quantity);
    s.isFinal.push(p.isFinal);
  }
  return [...series.values()];
}

const range = `range: { from: "${new Date(DATA_FROM).toISOString()}", to: "${new Date(DATA_FROM + DATA_HOURS * HOUR).toISOString()}" }`;

describe('UsageReport.series', () => {
  const cases: [string, string, string][] = [
    ['HOUR', '[FEATURE]', 'UTC'],
    ['DAY', '[FEATURE]', 'Europe/Berlin'],
    ['DAY', '[WORKSPACE, BILLING_TAG]', 'Australia/Sydney'],
    ['WEEK', '[APP, RESOURCE]', 'America/New_York'],
    ['MONTH', '[WORKSPACE]', 'Asia/Kolkata'],
    ['SUMMARIZED', '[BILLING_TAG]', 'Europe/Berlin'],
  ];
  it.each(cases)('%s grouped by %s in %s: series are the points regrouped, read by the same statement', async (granularity, groupBy, timeZone) => {
    const args = `${range}, granularity: ${granularity}, groupBy: ${groupBy}, timeZone: "${timeZone}"`;
    const both = await graphql(
      app,
      `{ realm { usage(${args}) {
          points { start end quantity unit isFinal feature { key } ${group} }
          series { feature { key } unit ${group} starts ends quantities isFinal } } } }`,
      { key: realm.admin.key },
    );
    expect(both.body.errors).toBeUndefined();
    const { points, series } = both.body.data.realm.usage;
    if (granularity === 'SUMMARIZED') expect(points.length).toBe(series.length);
    else expect(points.length).toBeGreaterThan(series.length);
    expect(series).toEqual(regroup(points));
    for (const s of series as Series[]) {
      for (const quantity of s.quantities) expect(quantity).toMatch(/^\d+(\.\d+)?$/);
      expect([...s.starts].sort()).toEqual(s.starts);
    }
    if (granularity === 'HOUR') expect((series as Series[]).some((s) => s.isFinal.includes(true) && s.isFinal.includes(false))).toBe(true);

    // One statement whichever of points and series are asked, and the same number of statements in all.
    const pointsOnly = await graphql(app, `{ realm { usage(${args}) { points { start quantity ${group} } } } }`, { key: realm.admin.key });
    const seriesOnly = await graphql(app, `{ realm { usage(${args}) { series { starts quantities ${group} } } } }`, { key: realm.admin.key });
    const usageStatements = (statements: string[]) => statements.filter((sql) => sql.includes('/* usage */')).length;
    expect(usageStatements(both.statements)).toBe(1);
    expect(usageStatements(seriesOnly.statements)).toBe(1);
    expect(both.statements.length).toBe(pointsOnly.statements.length);
    expect(seriesOnly.statements.length).toBe(pointsOnly.statements.length);
  });

  it('is priced as one object per series, not per point', async () => {
    const args = `${range}, granularity: HOUR, groupBy: [FEATURE]`;
    const asPoints = await graphql(app, `{ realm { usage(${args}) { points { start quantity } } } }`, { key: realm.admin.key });
    const asSeries = await graphql(app, `{ realm { usage(${args}) { series { starts quantities } } } }`, { key: realm.admin.key });
    const points = asPoints.body.data.realm.usage.points.length;
    const series = asSeries.body.data.realm.usage.series.length;
    expect(series).toBe(FEATURES.length);
    // realm, usage, the list field, then 2 fields per object.
    expect(asPoints.body.extensions?.cost.actual).toBe(3 + 2 * points);
    expect(asSeries.body.extensions?.cost.actual).toBe(3 + 2 * series);
    expect(asSeries.body.extensions?.cost.requested).toBe(asPoints.body.extensions?.cost.requested);
  });

  it('a scoped key sees the series of its subtree only, as its points', async () => {
    const args = `${range}, granularity: DAY, groupBy: [WORKSPACE]`;
    const { body } = await graphql(app, `{ realm { usage(${args}) { points { start end quantity unit isFinal feature { key } ${group} } series { feature { key } unit ${group} starts ends quantities isFinal } } } }`, {
      key: realm.scoped.key,
    });
    expect(body.errors).toBeUndefined();
    expect(body.data.realm.usage.series).toEqual(regroup(body.data.realm.usage.points));
    const workspaces = new Set(body.data.realm.usage.series.map((s: { group: { workspace: { id: string } | null } }) => s.group.workspace?.id ?? null));
    expect(workspaces).toEqual(new Set([encodeId('Workspace', realm.tree.left.id)]));
  });
});

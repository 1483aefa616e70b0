/**
 * The benchmark's claim that the gateway and the hand-written SQL return the same numbers, checked
 * on a small instance of its generator: every benchmarked question (Q1–Q5), row for row, and the
 * SQL statements each request runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRealms, generate, readMarker, type GeneratedData, type Scale } from '../bench/generate.js';
import { benchQueries, type BenchQuery } from '../bench/queries.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { graphql } from './helpers/graphql.js';

// Four months and a bit: Q1 reads 95 days, Q3 the three whole months before the current one.
const TINY: Scale = { name: 'S', workspaces: [6, 2], datastreamsPerWorkspace: 2, days: 130 };

let db: TestDatabase;
let app: App;
let data: GeneratedData;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma });
  data = await generate(db.prisma, TINY, { concurrency: 1 });
}, 120_000);

afterAll(() => db?.destroy());

describe('the benchmark generator', () => {
  it('writes what it promises: every realm, hourly rows for each, unique keys and traffic, and a marker', async () => {
    expect(data.realms.map((r) => r.id)).toEqual(describeRealms(TINY).map((r) => r.id));
    // 12 datastreams (realm 0) and 4 (realm 1), 0.52 rows per datastream-hour: 6 and 2 rows an hour.
    expect(data.hourlyRows).toBe((6 + 2) * 24 * TINY.days);
    expect(data.uniqueKeyRows).toBeGreaterThan(0);
    expect(data.trafficRows).toBe(2 * 5 * 2 * 1440);
    expect(await readMarker(db.prisma, TINY)).toEqual(data.anchor);
    expect(await readMarker(db.prisma, { ...TINY, name: 'M' })).toBeNull();
  });
});

describe('each benchmarked question', () => {
  const cases: BenchQuery['id'][] = ['Q1', 'Q2', 'Q2S', 'Q3', 'Q4', 'Q5'];
  it.each(cases)('%s: the gateway and the hand-written SQL give the same rows', async (id) => {
    const query = benchQueries(data).find((q) => q.id === id)!;
    const { body, statements } = await graphql(app, query.graphql.query, { key: data.realms[0]!.apiKey, variables: query.graphql.variables });
    expect(body.errors).toBeUndefined();
    const fromGateway = query.fromGateway(body.data);
    const fromSql = query.fromSql(await db.prisma.$queryRawUnsafe<Record<string, unknown>[]>(query.sql.text, ...query.sql.values));
    expect(fromGateway.length).toBeGreaterThan(0);
    expect(fromGateway).toEqual(fromSql);
    // Authentication, then at most a handful of reads whatever the number of points.
    expect(statements.length).toBeLessThanOrEqual(7);
  });

  it('usage statements read each kind of feature once and skip totals nobody asked for', async () => {
    const q1 = benchQueries(data).find((q) => q.id === 'Q1')!;
    // Q1's document over its last two days: the statements are the same text whatever the range
    // (its 95 days, with every row compared, are the Q1 case above), at a fraction of the points.
    const variables = { range: { from: new Date(data.anchor.getTime() - 2 * 86_400_000).toISOString(), to: data.anchor.toISOString() } };
    const { statements } = await graphql(app, q1.graphql.query, { key: data.realms[0]!.apiKey, variables });
    const usage = statements.filter((sql) => sql.includes('/* usage */'));
    expect(usage).toHaveLength(1);
    expect(usage[0]).not.toContain('GROUPING SETS');
    // By the hour without totals, MAX and LATEST hours are their totals: one pass with SUM and COUNT.
    expect(usage[0]!.match(/FROM "UsageHourly"/g)).toHaveLength(1);
    expect(usage[0]!.match(/FROM "UsageUniqueKey"/g)).toHaveLength(1);
    const withTotals = q1.graphql.query.replace('points {', 'totals { quantity } points {');
    const again = await graphql(app, withTotals, { key: data.realms[0]!.apiKey, variables });
    const totalsSql = again.statements.find((sql) => sql.includes('/* usage */'))!;
    expect(totalsSql).toContain('GROUPING SETS');
    // A range's MAX is its largest hour, not the sum: with totals, MAX and LATEST keep their own pass.
    expect(totalsSql.match(/FROM "UsageHourly"/g)).toHaveLength(2);
  });
});

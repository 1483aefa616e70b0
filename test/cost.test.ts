import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'graphql';
import { costIsConstant, MAX_QUERY_BREADTH, MAX_QUERY_COST, MAX_QUERY_DEPTH } from '../src/plugins/query-cost.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma });
  realm = await createUsageRealm(db.prisma);
});
afterAll(() => db?.destroy());

describe('query cost', () => {
  it('every response carries extensions.cost { requested, actual, limit }, computed before execution', async () => {
    const { body } = await graphql(app, '{ realm { name workspaces(first: 10) { edges { node { name } } } } }', { key: realm.admin.key });
    // realm 1 + name 1 + workspaces (1 + 10 × (edges 1 + node 1 + name 1))
    expect(body.extensions?.cost).toEqual({ requested: 33, actual: expect.any(Number), limit: MAX_QUERY_COST });
    // actual counts what came back: realm, name, workspaces, edges, and node + name for each of the 4 workspaces
    expect(body.extensions?.cost.actual).toBe(1 + 1 + 1 + 1 + 4 * 2);
  });

  it('usage fields cost one point per day of hourly buckets', async () => {
    const day = await graphql(app, '{ realm { usage(range: { from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z" }, granularity: HOUR) { warnings } } }', { key: realm.admin.key });
    const month = await graphql(app, '{ realm { usage(range: { from: "2026-01-01T00:00:00Z", to: "2026-01-31T00:00:00Z" }, granularity: HOUR) { warnings } } }', { key: realm.admin.key });
    expect(month.body.extensions?.cost.requested - day.body.extensions?.cost.requested).toBe(29);
  });

  it('a query over the cost limit is refused with QUERY_TOO_COMPLEX, the computed cost and the limit, before anything runs', async () => {
    const { body, statements } = await graphql(
      app,
      '{ realm { workspaces(first: 100) { edges { node { datastreams(first: 100) { edges { node { name } } } } } } } }',
      { key: realm.admin.key },
    );
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', kind: 'complexity', cost: expect.any(Number), limit: MAX_QUERY_COST });
    expect(body.errors![0]!.extensions!.cost).toBeGreaterThan(MAX_QUERY_COST);
    expect(body.data).toBeUndefined();
    expect(statements.filter((sql) => sql.includes('"Workspace"'))).toEqual([]);
  });

  it('depth and the number of selections (aliases) are limited too', async () => {
    const deep = `{ realm { workspaces(first: 1) { edges { node { ${'parent { '.repeat(MAX_QUERY_DEPTH)} name ${'} '.repeat(MAX_QUERY_DEPTH)} } } } } }`;
    const tooDeep = await graphql(app, deep, { key: realm.admin.key });
    expect(tooDeep.body.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', kind: 'depth', limit: MAX_QUERY_DEPTH });
    const wide = `{ ${Array.from({ length: MAX_QUERY_BREADTH + 1 }, (_, i) => `a${i}: viewer { scopes }`).join(' ')} }`;
    const tooWide = await graphql(app, wide, { key: realm.admin.key });
    expect(tooWide.body.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', kind: 'breadth', limit: MAX_QUERY_BREADTH });
  });

  it('a document is priced once only when its cost cannot change: variables and timeframes are priced on every request', async () => {
    expect(costIsConstant(parse('{ realm { workspaces(first: 10) { totalCount } } }'))).toBe(true);
    expect(costIsConstant(parse('query($n: Int) { realm { workspaces(first: $n) { totalCount } } }'))).toBe(false);
    expect(costIsConstant(parse('{ realm { usage(timeframe: THIS_MONTH) { warnings } } }'))).toBe(false);
    expect(costIsConstant(parse('{ realm { features(first: 1) { edges { node { dimensionValues(dimension: "x") { totalCount } } } } } }'))).toBe(false);
    const document = 'query($n: Int) { realm { workspaces(first: $n) { edges { node { name } } } } }';
    const small = await graphql(app, document, { key: realm.admin.key, variables: { n: 1 } });
    const large = await graphql(app, document, { key: realm.admin.key, variables: { n: 10 } });
    expect(large.body.extensions?.cost.requested - small.body.extensions?.cost.requested).toBe(9 * 3);
    const constant = '{ realm { workspaces(first: 2) { edges { node { name } } } } }';
    const first = await graphql(app, constant, { key: realm.admin.key });
    const again = await graphql(app, constant, { key: realm.admin.key });
    expect(again.body.extensions?.cost).toEqual(first.body.extensions?.cost);
    expect(first.body.extensions?.cost.requested).toBe(1 + 1 + 2 * 3);
  });
});

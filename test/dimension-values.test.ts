import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../src/global-id.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm, insertUsage } from './helpers/usage-fixture.js';

const NOW = new Date('2026-06-11T10:00:00Z');
const HOUR = new Date('2026-06-05T08:00:00Z');
const LATER = new Date('2026-06-05T09:00:00Z');
const OLD = new Date('2026-05-01T08:00:00Z'); // 41 days back: outside the default LAST_30_DAYS

let db: TestDatabase;
let app: App;
let r: Awaited<ReturnType<typeof createUsageRealm>>;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => NOW, onUnexpectedError: (error) => console.error(error) });
  r = await createUsageRealm(db.prisma, 'Europe/Berlin');
  const { left, leaf, right } = r.tree;
  await insertUsage(db.prisma, r.realm.id, { tx: r.features.tx.id, rows: r.features.rows.id }, [
    { feature: 'tx', hour: HOUR, quantity: '5', workspaceId: left.id, billingTag: 'alpha', resource: 'r1', appId: r.apps[0]!.id, datastreamId: r.streams[0]!.id },
    { feature: 'tx', hour: HOUR, quantity: '2', workspaceId: leaf.id, billingTag: 'beta', resource: 'r2', appId: r.apps[0]!.id, datastreamId: r.streams[1]!.id },
    { feature: 'tx', hour: HOUR, quantity: '7', workspaceId: right.id, billingTag: 'gamma', appId: r.apps[1]!.id, datastreamId: r.streams[2]!.id, apiKeyId: r.admin.record.id },
    // Left's usage attributed to right's app: the left-scoped key sees the tag, not the app.
    { feature: 'tx', hour: LATER, quantity: '1', workspaceId: left.id, billingTag: 'alphabet', appId: r.apps[1]!.id },
    { feature: 'tx', hour: OLD, quantity: '40', workspaceId: right.id, billingTag: 'old' },
    { feature: 'rows', hour: HOUR, keys: ['a', 'b'], workspaceId: left.id, billingTag: 'alpha' },
    { feature: 'rows', hour: LATER, keys: ['b', 'c'], workspaceId: left.id, billingTag: 'alpha' },
  ]);
});
afterAll(() => db?.destroy());

const VALUES = `edges { cursor node { value name group { billingTag resource app { name } workspace { name } } usage { feature { key } quantity } } } pageInfo { hasNextPage endCursor }`;

async function values(key: string, args: string) {
  const response = await graphql(app, `{ realm { dimensionValues(${args}) { ${VALUES} } } }`, { key });
  expect(response.body.errors).toBeUndefined();
  const connection = response.body.data.realm.dimensionValues;
  return { connection, statements: response.statements, nodes: connection.edges.map((e: { node: unknown }) => e.node) as any[] };
}

const usageOf = (node: { usage: { feature: { key: string }; quantity: string }[] }) => Object.fromEntries(node.usage.map((u) => [u.feature.key, u.quantity]));

describe('Realm.dimensionValues', () => {
  it('lists the billing tags in use in the range, by value, with their usage per feature (UNIQUE_COUNT distinct over the range)', async () => {
    const { nodes } = await values(r.admin.key, 'dimension: BILLING_TAG');
    expect(nodes.map((n) => n.value)).toEqual(['alpha', 'alphabet', 'beta', 'gamma']);
    expect(usageOf(nodes[0])).toEqual({ tx: '5', rows: '3' });
    expect(usageOf(nodes[3])).toEqual({ tx: '7' });
    expect(nodes[0].group.billingTag).toBe('alpha');
    expect(nodes[0].name).toBeNull();
  });

  it('takes a range or timeframe (default LAST_30_DAYS), bounded by the hourly range limit', async () => {
    const { nodes } = await values(r.admin.key, 'dimension: BILLING_TAG, range: { from: "2026-04-20T00:00:00Z", to: "2026-06-11T00:00:00Z" }');
    expect(nodes.map((n) => n.value)).toEqual(['alpha', 'alphabet', 'beta', 'gamma', 'old']);
    const tooLong = await graphql(app, `{ realm { dimensionValues(dimension: BILLING_TAG, range: { from: "2026-01-01T00:00:00Z", to: "2026-06-11T00:00:00Z" }) { edges { cursor } } } }`, { key: r.admin.key });
    expect(tooLong.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'RANGE_TOO_LARGE', maxDays: 95 });
  });

  it('a workspace-scoped key sees the values of its subtree\'s usage only, and only objects it can read', async () => {
    const tags = await values(r.scoped.key, 'dimension: BILLING_TAG');
    expect(tags.nodes.map((n) => n.value)).toEqual(['alpha', 'alphabet', 'beta']);
    const apps = await values(r.scoped.key, 'dimension: APP');
    // Right's app carries left's usage (alphabet), but the left-scoped key cannot read it.
    expect(apps.nodes.map((n) => n.name)).toEqual(['app 0']);
    expect(usageOf(apps.nodes[0])).toEqual({ tx: '7' });
    const workspaces = await values(r.scoped.key, 'dimension: WORKSPACE');
    expect(workspaces.nodes.map((n) => n.name).sort()).toEqual(['leaf', 'left']);
    expect((await values(r.scoped.key, 'dimension: API_KEY')).nodes).toEqual([]);
    const projects = await values(r.scoped.key, 'dimension: DATASTREAM');
    expect(projects.nodes.map((n) => n.name).sort()).toEqual(['stream 0', 'stream 1']);

    const realmWideApps = await values(r.admin.key, 'dimension: APP');
    expect(realmWideApps.nodes.map((n) => [n.name, usageOf(n)])).toEqual([
      ['app 0', { tx: '7' }],
      ['app 1', { tx: '8' }],
    ]);
    expect(realmWideApps.nodes[0].value).toBe(encodeId('App', r.apps[0]!.id));
  });

  it('searches case-insensitively (tags by value, objects by name, features by key or name)', async () => {
    expect((await values(r.admin.key, 'dimension: BILLING_TAG, search: "ALPHA"')).nodes.map((n) => n.value)).toEqual(['alpha', 'alphabet']);
    expect((await values(r.admin.key, 'dimension: WORKSPACE, search: "LEF"')).nodes.map((n) => n.name)).toEqual(['left']);
    expect((await values(r.admin.key, 'dimension: RESOURCE')).nodes.map((n) => n.value)).toEqual(['r1', 'r2']);
    expect((await values(r.admin.key, 'dimension: FEATURE')).nodes.map((n) => n.name).sort()).toEqual(['rows', 'tx']);
  });

  it('pages forward with cursors, one statement for the page and one for its usage whatever its size', async () => {
    const first = await values(r.admin.key, 'dimension: BILLING_TAG, first: 2');
    expect(first.nodes.map((n) => n.value)).toEqual(['alpha', 'alphabet']);
    expect(first.connection.pageInfo.hasNextPage).toBe(true);
    const second = await values(r.admin.key, `dimension: BILLING_TAG, first: 2, after: "${first.connection.pageInfo.endCursor}"`);
    expect(second.nodes.map((n) => n.value)).toEqual(['beta', 'gamma']);
    expect(second.connection.pageInfo.hasNextPage).toBe(false);
    const all = await values(r.admin.key, 'dimension: BILLING_TAG, first: 4');
    expect(all.statements.length).toBe(first.statements.length);
    const appsFirst = await values(r.admin.key, 'dimension: APP, first: 1');
    const appsNext = await values(r.admin.key, `dimension: APP, first: 1, after: "${appsFirst.connection.pageInfo.endCursor}"`);
    expect(appsNext.nodes.map((n) => n.name)).toEqual(['app 1']);
  });

  it('refuses bad cursors, backward paging and a cursor of another dimension', async () => {
    const bad = await graphql(app, `{ realm { dimensionValues(dimension: BILLING_TAG, after: "%%%") { edges { cursor } } } }`, { key: r.admin.key });
    expect(bad.body.errors?.[0]?.extensions?.reason).toBe('INVALID_CURSOR');
    const backward = await graphql(app, `{ realm { dimensionValues(dimension: BILLING_TAG, last: 2) { edges { cursor } } } }`, { key: r.admin.key });
    expect(backward.body.errors?.[0]?.extensions?.reason).toBe('INVALID_PAGINATION');
    const tagCursor = (await values(r.admin.key, 'dimension: BILLING_TAG, first: 1')).connection.pageInfo.endCursor;
    const mixed = await graphql(app, `{ realm { dimensionValues(dimension: APP, after: "${tagCursor}") { edges { cursor } } } }`, { key: r.admin.key });
    expect(mixed.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('needs usage:read, and costs more for a longer range', async () => {
    const { createKey } = await import('./helpers/fixtures.js');
    const billingOnly = await createKey(db.prisma, r.realm.id, { scopes: ['billing:read'] });
    const refused = await graphql(app, `{ realm { dimensionValues(dimension: BILLING_TAG) { edges { cursor } } } }`, { key: billingOnly.key });
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const short = await graphql(app, `{ realm { dimensionValues(dimension: BILLING_TAG, timeframe: LAST_7_DAYS) { edges { cursor } } } }`, { key: r.admin.key });
    const long = await graphql(app, `{ realm { dimensionValues(dimension: BILLING_TAG, timeframe: LAST_90_DAYS) { edges { cursor } } } }`, { key: r.admin.key });
    expect(long.body.extensions!.cost.requested - short.body.extensions!.cost.requested).toBe(83);
  });
});

import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, reportCacheSettings } from '../src/config.js';
import { encodeId } from '../src/global-id.js';
import { startLiveHub } from '../src/live/hub.js';
import { configureReportCache, reportCacheStats } from '../src/usage/report-cache.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';
import { freePort, startServer } from './server/server-process.js';
import { testDatabaseKind } from './helpers/database.js';

const NOW = new Date('2026-06-15T12:00:00Z');

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
let tx: string;
const unexpected: unknown[] = [];

const INGEST = `mutation ($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted rejected { index code message } } }`;
const AMEND = `mutation ($key: String!, $event: AmendedUsageEventInput!, $reopen: Boolean) { amendUsageEvent(idempotencyKey: $key, event: $event, reopen: $reopen) { amended reopenedBuckets userErrors { code message } } }`;

async function ingest(events: Record<string, unknown>[]) {
  const { body } = await graphql(app, INGEST, { key: realm.admin.key, variables: { events } });
  expect(body.errors).toBeUndefined();
  expect(body.data.ingestUsage.rejected).toEqual([]);
}

beforeAll(async () => {
  configureReportCache({ maxBytes: 8 * 1024 * 1024, ttlMs: 600_000 });
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => NOW, onUnexpectedError: (error) => unexpected.push(error) });
  realm = await createUsageRealm(db.prisma, 'UTC');
  tx = encodeId('Feature', realm.features.tx.id);
  const workspaces = [realm.tree.root.id, realm.tree.left.id, realm.tree.leaf.id, realm.tree.right.id];
  const events = [];
  for (let day = 8; day <= 15; day++) {
    for (let i = 0; i < 8; i++) {
      events.push({
        idempotencyKey: `seed-${day}-${i}`,
        feature: 'tx',
        timestamp: `2026-06-${String(day).padStart(2, '0')}T${String(i).padStart(2, '0')}:15:00Z`,
        quantity: `${day}.${i}5`,
        workspaceId: encodeId('Workspace', workspaces[i % 4]!),
      });
    }
  }
  await ingest(events);
});
afterAll(() => db?.destroy());
afterEach(() => {
  expect(unexpected.splice(0)).toEqual([]);
});

const usageStatements = (statements: string[]) => statements.filter((sql) => sql.includes('/* usage */')).length;

/** tx's report over final days (its arrival delay is 2 h: everything before 10:00 on the 15th is final). */
const FINAL = `range: { from: "2026-06-08T00:00:00Z", to: "2026-06-15T00:00:00Z" }, granularity: DAY, filter: { featureIds: ["${'TX'}"] }`;
const reportQuery = (args: string, fields = 'points { start end quantity isFinal feature { key name } } totals { quantity } series { starts quantities isFinal } finalizedThrough warnings') =>
  `{ realm { usage(${args.replace('TX', tx)}) { ${fields} } } }`;

async function report(args: string, key = realm.admin.key, fields?: string) {
  const response = await graphql(app, reportQuery(args, fields), { key });
  expect(response.body.errors).toBeUndefined();
  return { usage: response.body.data.realm.usage, statements: response.statements };
}

const dayTotal = (usage: { points: { start: string; quantity: string }[] }, day: string) => usage.points.find((p) => p.start.startsWith(day))?.quantity;

describe('the finalized report cache', () => {
  it('serves a report of final buckets again without a statement, equal to the uncached answer', async () => {
    const first = await report(FINAL);
    expect(usageStatements(first.statements)).toBe(1);
    expect(first.usage.points).toHaveLength(7);
    expect(first.usage.points.every((p: { isFinal: boolean }) => p.isFinal)).toBe(true);
    const second = await report(FINAL);
    expect(second.usage).toEqual(first.usage);
    expect(usageStatements(second.statements)).toBe(0);
    expect(second.statements.length).toBe(first.statements.length - 1);
    // Another key with the same visibility (the whole realm) gets the same cached answer.
    const other = await createKey(db.prisma, realm.realm.id, { scopes: ['usage:read'] });
    const third = await report(FINAL, other.key);
    expect(third.usage).toEqual(first.usage);
    expect(usageStatements(third.statements)).toBe(0);
    expect(reportCacheStats().entries).toBeGreaterThan(0);
    // An hour later the same answer is still final and cached; its finalizedThrough is the later one.
    const later = createApp({ prisma: db.prisma, now: () => new Date(NOW.getTime() + 3_600_000), onUnexpectedError: (error) => unexpected.push(error) });
    const response = await graphql(later, reportQuery(FINAL), { key: realm.admin.key });
    expect(usageStatements(response.statements)).toBe(0);
    expect(response.body.data.realm.usage).toEqual({ ...first.usage, finalizedThrough: '2026-06-15T11:00:00.000Z' });
    expect(first.usage.finalizedThrough).toBe('2026-06-15T10:00:00.000Z');
  });

  it('never caches a report with a bucket that is not final', async () => {
    const args = `range: { from: "2026-06-14T00:00:00Z", to: "2026-06-15T12:00:00Z" }, granularity: HOUR, filter: { featureIds: ["TX"] }`;
    const first = await report(args);
    expect(first.usage.series[0].isFinal).toContain(true);
    const again = await report(args);
    expect(usageStatements(again.statements)).toBe(1);
    expect(again.usage).toEqual(first.usage);
    // An empty bucket not yet final could still receive usage: a range ending after the watermark is not cached even when every point is final.
    const emptyTail = `range: { from: "2026-06-14T00:00:00Z", to: "2026-06-15T11:00:00Z" }, granularity: SUMMARIZED, filter: { featureIds: ["TX"] }`;
    await report(emptyTail);
    expect(usageStatements((await report(emptyTail)).statements)).toBe(1);
  });

  it('a late event into a final bucket invalidates the cached answer', async () => {
    const before = await report(FINAL);
    expect(usageStatements((await report(FINAL)).statements)).toBe(0);
    await ingest([{ idempotencyKey: 'late-1', feature: 'tx', timestamp: '2026-06-12T20:00:00Z', quantity: '0.001' }]);
    const after = await report(FINAL);
    expect(usageStatements(after.statements)).toBe(1);
    expect(dayTotal(after.usage, '2026-06-12')).toBe((Number(dayTotal(before.usage, '2026-06-12')) + 0.001).toFixed(3).replace(/0+$/, ''));
    expect(usageStatements((await report(FINAL)).statements)).toBe(0);
  });

  it('a correction that reopens a final bucket invalidates the cached answer', async () => {
    const before = await report(FINAL);
    expect(usageStatements((await report(FINAL)).statements)).toBe(0);
    const { body } = await graphql(app, AMEND, {
      key: realm.admin.key,
      variables: { key: 'late-1', event: { feature: 'tx', timestamp: '2026-06-12T20:00:00Z', quantity: '1000' }, reopen: true },
    });
    expect(body.errors).toBeUndefined();
    expect(body.data.amendUsageEvent).toMatchObject({ amended: 1, reopenedBuckets: 1, userErrors: [] });
    const after = await report(FINAL);
    expect(usageStatements(after.statements)).toBe(1);
    expect(Number(dayTotal(after.usage, '2026-06-12')) - Number(dayTotal(before.usage, '2026-06-12'))).toBeCloseTo(1000 - 0.001, 6);
  });

  it("a key with a narrower subtree never gets a wider key's cached answer", async () => {
    const args = `${FINAL}, groupBy: [WORKSPACE]`;
    const fields = 'points { quantity group { workspace { id } } } totals { quantity }';
    const wide = await report(args, realm.admin.key, fields);
    expect(usageStatements((await report(args, realm.admin.key, fields)).statements)).toBe(0);
    const narrow = await report(args, realm.scoped.key, fields);
    expect(usageStatements(narrow.statements)).toBe(1);
    const seen = new Set(narrow.usage.points.map((p: { group: { workspace: { id: string } } }) => p.group.workspace.id));
    expect(seen).toEqual(new Set([encodeId('Workspace', realm.tree.left.id), encodeId('Workspace', realm.tree.leaf.id)]));
    expect(narrow.usage.points.length).toBeLessThan(wide.usage.points.length);
    // And the wider key is not served the narrower answer either.
    expect((await report(args, realm.admin.key, fields)).usage).toEqual(wide.usage);
  });

  it('a cached answer names the features as they are now', async () => {
    await report(FINAL);
    await db.prisma.feature.update({ where: { id: realm.features.tx.id }, data: { name: 'Transactions (renamed)' } });
    const renamed = await report(FINAL);
    expect(usageStatements(renamed.statements)).toBe(0);
    expect(renamed.usage.points[0].feature.name).toBe('Transactions (renamed)');
  });

  it('can be turned off', async () => {
    configureReportCache({ maxBytes: 0, ttlMs: 1 });
    try {
      await report(FINAL);
      expect(usageStatements((await report(FINAL)).statements)).toBe(1);
      expect(reportCacheStats()).toEqual({ entries: 0, bytes: 0 });
    } finally {
      configureReportCache({ maxBytes: 8 * 1024 * 1024, ttlMs: 600_000 });
    }
  });

  it('is sized and timed by REPORT_CACHE_MAX_BYTES and REPORT_CACHE_TTL_MS', () => {
    expect(reportCacheSettings({})).toEqual({ maxBytes: 64 * 1024 * 1024, ttlMs: 60_000 });
    expect(reportCacheSettings({ REPORT_CACHE_MAX_BYTES: '0', REPORT_CACHE_TTL_MS: '5000' })).toEqual({ maxBytes: 0, ttlMs: 5000 });
    expect(reportCacheSettings({ REPORT_CACHE_MAX_BYTES: '16MiB' }).maxBytes).toBe(16 * 1024 * 1024);
    expect(() => reportCacheSettings({ REPORT_CACHE_MAX_BYTES: 'lots' })).toThrow(ConfigError);
    expect(() => reportCacheSettings({ REPORT_CACHE_TTL_MS: '0' })).toThrow(/REPORT_CACHE_TTL_MS/);
  });
});

describe.runIf(testDatabaseKind() === 'postgres')('the cache of another gateway process', () => {
  it('forgets its cached final answer when this process reopens and corrects a bucket (PostgreSQL NOTIFY)', async () => {
    // This process tells the others through its own LISTEN hub, as a gateway started by `npm start` does.
    const hub = await startLiveHub(db.prisma, db.target);
    const port = await freePort();
    const server = startServer({ DATABASE_URL: (db.target as { url: string }).url, PORT: String(port), HOST: '127.0.0.1', SEED_DEMO: 'false' });
    try {
      await server.waitForLine(/listening on/, 60_000);
      const other = async () => {
        const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${realm.admin.key}` },
          body: JSON.stringify({ query: reportQuery(FINAL, 'totals { quantity }') }),
        });
        const body = (await response.json()) as { data: { realm: { usage: { totals: { quantity: string }[] } } } };
        return body.data.realm.usage.totals[0]!.quantity;
      };
      const before = await other();
      expect(await other()).toBe(before); // now from its cache (REPORT_CACHE_TTL_MS: 60 s)
      const { body } = await graphql(app, AMEND, {
        key: realm.admin.key,
        variables: { key: 'seed-9-0', event: { feature: 'tx', timestamp: '2026-06-09T00:15:00Z', quantity: '9.06' }, reopen: true },
      });
      expect(body.data.amendUsageEvent).toMatchObject({ amended: 1, userErrors: [] });
      const expected = (await report(FINAL, realm.admin.key, 'totals { quantity }')).usage.totals[0].quantity;
      expect(expected).not.toBe(before);
      await vi.waitFor(async () => expect(await other()).toBe(expected), { timeout: 10_000, interval: 100 });
    } finally {
      await server.stop();
      await hub.close();
    }
  }, 120_000);
});

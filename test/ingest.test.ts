import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../src/global-id.js';
import { reconcile } from '../src/ingest/reconcile.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

const NOW = new Date('2026-06-15T12:00:00Z');
const HOUR = 3_600_000;

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
/** Masked errors, for the tests that cause one on purpose; any other shows on stderr. */
const unexpected: unknown[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => NOW, onUnexpectedError: (error) => unexpected.push(error) });
  realm = await createUsageRealm(db.prisma, 'UTC');
});
afterAll(() => db?.destroy());
afterEach(() => {
  // Any masked error a test did not expect fails it.
  expect(unexpected.splice(0)).toEqual([]);
});

const INGEST = `mutation ($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted duplicates rejected { index code message } } }`;

let counter = 0;
function event(overrides: Record<string, unknown> = {}) {
  return { idempotencyKey: `e-${++counter}`, feature: 'tx', timestamp: '2026-06-15T10:30:00Z', quantity: '1.5', ...overrides };
}

async function ingest(events: unknown[], key = realm.admin.key) {
  const { body } = await graphql(app, INGEST, { key, variables: { events } });
  return body;
}

async function total(feature: string, extra = '') {
  const id = encodeId('Feature', realm.features[feature as keyof typeof realm.features].id);
  const { body } = await graphql(app, `{ realm { usage(range: { from: "2026-06-01T00:00:00Z", to: "2026-06-16T00:00:00Z" }, filter: { featureIds: ["${id}"] } ${extra}) { totals { quantity } } } }`, { key: realm.admin.key });
  return body.data.realm.usage.totals[0]?.quantity ?? '0';
}

describe('ingestUsage', () => {
  it('counts events into hourly buckets by each feature\'s aggregation', async () => {
    const workspaceId = encodeId('Workspace', realm.tree.leaf.id);
    const result = await ingest([
      event({ feature: 'tx', quantity: '2.25', workspaceId }),
      event({ feature: 'tx', quantity: '0.75', workspaceId, timestamp: '2026-06-15T10:59:59Z' }),
      event({ feature: 'spaces', quantity: '3', timestamp: '2026-06-15T09:10:00Z' }),
      event({ feature: 'spaces', quantity: '5', timestamp: '2026-06-15T09:20:00Z' }),
      event({ feature: 'spaces', quantity: '4', timestamp: '2026-06-15T09:30:00Z' }),
      event({ feature: 'storage', quantity: '7', timestamp: '2026-06-15T08:50:00Z' }),
      event({ feature: 'storage', quantity: '6', timestamp: '2026-06-15T08:10:00Z' }),
      event({ feature: 'rows', uniqueKey: 'a', quantity: undefined }),
      event({ feature: 'rows', uniqueKey: 'b', quantity: undefined }),
      event({ feature: 'rows', uniqueKey: 'a', quantity: undefined }),
    ]);
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({ ingestUsage: { accepted: 10, duplicates: 0, rejected: [] } });
    expect(await total('tx')).toBe('3');
    expect(await total('spaces')).toBe('5');
    expect(await total('storage')).toBe('7');
    expect(await total('rows')).toBe('2');
    // a later batch in the same buckets
    await ingest([event({ feature: 'rows', uniqueKey: 'c', quantity: undefined }), event({ feature: 'spaces', quantity: '9', timestamp: '2026-06-15T09:59:00Z' }), event({ feature: 'storage', quantity: '1', timestamp: '2026-06-15T08:55:00Z' })]);
    expect(await total('rows')).toBe('3');
    expect(await total('spaces')).toBe('9');
    expect(await total('storage')).toBe('1');
  });

  it('the same idempotency key with the same content is a duplicate; with other content a DUPLICATE_MISMATCH, and the first stays', async () => {
    const before = await total('req');
    const first = event({ feature: 'req', quantity: '10' });
    expect((await ingest([first])).data.ingestUsage.accepted).toBe(1);
    const again = await ingest([first, { ...first, quantity: '99' }]);
    expect(again.data.ingestUsage.accepted).toBe(0);
    expect(again.data.ingestUsage.duplicates).toBe(1);
    expect(again.data.ingestUsage.rejected).toEqual([{ index: 1, code: 'DUPLICATE_MISMATCH', message: expect.stringContaining(first.idempotencyKey) }]);
    expect(Number(await total('req'))).toBe(Number(before) + 10);
  });

  it('rejects each bad event with its index and a code, and accepts the valid ones of the batch', async () => {
    const other = await db.prisma.realm.create({ data: { name: 'Other', slug: `other-${Date.now()}` } });
    const otherProject = await db.prisma.project.create({ data: { realmId: other.id, name: 'theirs' } });
    const before = await total('tx');
    const result = await ingest([
      event({ feature: 'nope' }),
      event({ projectId: encodeId('Project', otherProject.id) }),
      event({ quantity: '-1' }),
      event({ quantity: '1.0000000001' }),
      event({ timestamp: '2026-06-15T12:06:00Z' }),
      event({ timestamp: '2026-01-01T00:00:00Z' }),
      event({ feature: 'rows', quantity: undefined }),
      event({ workspaceId: 'garbage' }),
      event({ quantity: '4' }),
    ]);
    expect(result.data.ingestUsage.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([
      [0, 'UNKNOWN_FEATURE'],
      [1, 'UNKNOWN_DIMENSION'],
      [2, 'INVALID_QUANTITY'],
      [3, 'INVALID_QUANTITY'],
      [4, 'TIMESTAMP_IN_FUTURE'],
      [5, 'TOO_LATE'],
      [6, 'MISSING_UNIQUE_KEY'],
      [7, 'UNKNOWN_DIMENSION'],
    ]);
    expect(result.data.ingestUsage.accepted).toBe(1);
    expect(Number(await total('tx'))).toBe(Number(before) + 4);
  });

  it('validates each event on its own: a bad timestamp or quantity rejects that event, not the call', async () => {
    const before = await total('tx');
    const result = await ingest([
      event({ quantity: '2' }),
      event({ timestamp: 'yesterday' }),
      event({ quantity: '1e3' }),
      event({ quantity: 'abc' }),
      event({ timestamp: '2026-06-15T10:30:00' }),
      event({ timestamp: '2026-02-30T10:30:00Z' }),
      event({ quantity: '3', timestamp: '2026-06-15T12:30:00+02:00' }),
    ]);
    expect(result.errors).toBeUndefined();
    expect(result.data.ingestUsage.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([
      [1, 'INVALID_TIMESTAMP'],
      [2, 'INVALID_QUANTITY'],
      [3, 'INVALID_QUANTITY'],
      [4, 'INVALID_TIMESTAMP'],
      [5, 'INVALID_TIMESTAMP'],
    ]);
    expect(result.data.ingestUsage.rejected[0].message).toMatch(/RFC 3339.*"yesterday"/);
    expect(result.data.ingestUsage.accepted).toBe(2);
    expect(Number(await total('tx'))).toBe(Number(before) + 5);

    const { ingestBatch } = await import('../src/ingest/pipeline.js');
    const raw = await ingestBatch(db.prisma, { realmId: realm.realm.id, workspaceId: null }, [event({ quantity: 'abc' }), event({ timestamp: 'yesterday' }), 'not an object', event({ idempotencyKey: '' }), event()], { now: NOW });
    expect(raw.rejected.map((r) => [r.index, r.code])).toEqual([
      [0, 'INVALID_QUANTITY'],
      [1, 'INVALID_TIMESTAMP'],
      [2, 'INVALID_EVENT'],
      [3, 'INVALID_EVENT'],
    ]);
    expect(raw.accepted).toBe(1);
  });

  it('rejects an event with a NUL or another control character, or an over-long text, alone (INVALID_EVENT) and stores the rest', async () => {
    const before = await total('tx');
    const long = 'x'.repeat(257);
    const result = await ingest([
      event({ billingTag: 'a\u0000b' }),
      event({ quantity: '2' }),
      event({ resource: '\u0000' }),
      event({ idempotencyKey: `nul-\u0000-${counter}` }),
      event({ feature: 'tx\u0000' }),
      event({ workspaceId: '\u0000' }),
      event({ feature: 'rows', uniqueKey: 'k\u0000', quantity: undefined }),
      event({ billingTag: 'bell\u0007' }),
      event({ resource: 'half \ud800 pair' }),
      event({ billingTag: long }),
      event({ idempotencyKey: long }),
      event({ quantity: '3', billingTag: `${'y'.repeat(255)}\u{1F680}`, resource: ' trimmed\t' }),
    ]);
    expect(result.errors).toBeUndefined();
    expect(result.data.ingestUsage.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([
      [0, 'INVALID_EVENT'],
      [2, 'INVALID_EVENT'],
      [3, 'INVALID_EVENT'],
      [4, 'INVALID_EVENT'],
      [5, 'INVALID_EVENT'],
      [6, 'INVALID_EVENT'],
      [7, 'INVALID_EVENT'],
      [8, 'INVALID_EVENT'],
      [9, 'INVALID_EVENT'],
      [10, 'INVALID_EVENT'],
    ]);
    const messages = result.data.ingestUsage.rejected.map((r: { message: string }) => r.message);
    expect(messages[0]).toMatch(/`billingTag` contains U\+0000 .*position 2/);
    expect(messages[8]).toMatch(/`billingTag` is longer than 256 characters/);
    for (const message of messages) expect(message.length).toBeLessThan(400);
    expect(result.data.ingestUsage.accepted).toBe(2);
    expect(Number(await total('tx'))).toBe(Number(before) + 5);
    const stored = await db.prisma.usageEvent.findFirstOrThrow({ where: { realmId: realm.realm.id, billingTag: { startsWith: 'yyy' } } });
    expect(stored.resource).toBe('trimmed');
  });

  it('inside one batch the stored event, or else the first occurrence, decides: same content is a duplicate, other content a DUPLICATE_MISMATCH', async () => {
    const before = Number(await total('req'));
    const stored = event({ feature: 'req', quantity: '10' });
    expect((await ingest([stored])).data.ingestUsage.accepted).toBe(1);
    const later = { ...stored, timestamp: '2026-06-15T10:30:01Z' };
    const again = await ingest([later, stored, stored, later]);
    expect(again.data.ingestUsage).toMatchObject({ accepted: 0, duplicates: 2 });
    expect(again.data.ingestUsage.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([
      [0, 'DUPLICATE_MISMATCH'],
      [3, 'DUPLICATE_MISMATCH'],
    ]);

    const fresh = event({ feature: 'req', quantity: '1' });
    const other = { ...fresh, quantity: '2' };
    const batch = await ingest([fresh, other, fresh, { ...fresh, idempotencyKey: `${fresh.idempotencyKey}-b` }]);
    expect(batch.data.ingestUsage).toMatchObject({ accepted: 2, duplicates: 1 });
    expect(batch.data.ingestUsage.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([[1, 'DUPLICATE_MISMATCH']]);
    expect(Number(await total('req'))).toBe(before + 10 + 1 + 1);
  });

  it('needs the usage:write scope, and at most 1,000 events a call', async () => {
    const readOnly = await createKey(db.prisma, realm.realm.id, { scopes: ['usage:read'] });
    const denied = await ingest([event()], readOnly.key);
    expect(denied.errors?.[0]).toMatchObject({ message: expect.stringContaining('`usage:write`'), extensions: { code: 'FORBIDDEN' } });
    const tooMany = await ingest(Array.from({ length: 1001 }, () => event()));
    expect(tooMany.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'TOO_MANY_EVENTS' });
  });

  it('refuses more than 1,000 events before coercing any of them, and the same document with fewer events still works', async () => {
    // Each of these events lacks required fields: coercing them would answer input errors instead.
    const { body } = await graphql(app, INGEST, { key: realm.admin.key, variables: { events: Array.from({ length: 100_000 }, () => ({})) } });
    expect(body.errors).toHaveLength(1);
    expect(body.errors?.[0]).toMatchObject({ message: expect.stringContaining('100000'), extensions: { code: 'BAD_USER_INPUT', reason: 'TOO_MANY_EVENTS', max: 1000 } });
    expect((await ingest([event()])).data.ingestUsage.accepted).toBe(1);

    const literal = `mutation { ingestUsage(events: [${'{ idempotencyKey: "x", feature: "tx", timestamp: "t" }, '.repeat(1001)}]) { accepted } }`;
    const inline = await graphql(app, literal, { key: realm.admin.key });
    expect(inline.body.errors).toHaveLength(1);
    expect(inline.body.errors?.[0]?.extensions).toMatchObject({ reason: 'TOO_MANY_EVENTS' });
  });

  it('a key scoped to a workspace can only attribute usage to its subtree', async () => {
    const writer = await createKey(db.prisma, realm.realm.id, { workspaceId: realm.tree.left.id, scopes: ['usage:write'] });
    const result = await ingest(
      [event({ workspaceId: encodeId('Workspace', realm.tree.leaf.id) }), event({ workspaceId: encodeId('Workspace', realm.tree.right.id) }), event()],
      writer.key,
    );
    expect(result.data.ingestUsage.accepted).toBe(1);
    expect(result.data.ingestUsage.rejected.map((r: { code: string }) => r.code)).toEqual(['UNKNOWN_DIMENSION', 'UNKNOWN_DIMENSION']);
  });

  it('a failure mid-batch leaves no trace', async () => {
    await db.prisma.$executeRawUnsafe(`CREATE OR REPLACE FUNCTION fail_on_1337() RETURNS trigger AS $$
      BEGIN IF NEW.quantity = 13.37 THEN RAISE EXCEPTION 'simulated crash'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`);
    await db.prisma.$executeRawUnsafe(`CREATE TRIGGER fail_on_1337 BEFORE INSERT ON "UsageHourly" FOR EACH ROW EXECUTE FUNCTION fail_on_1337()`);
    try {
      const events = await db.prisma.usageEvent.count();
      const buckets = await db.prisma.usageHourly.count();
      const before = await total('tx');
      const result = await ingest([event({ quantity: '1', timestamp: '2026-06-14T01:00:00Z' }), event({ quantity: '13.37', timestamp: '2026-06-14T02:00:00Z' })]);
      expect(result.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
      expect(unexpected.splice(0).map((error) => String(error))).toEqual([expect.stringContaining('simulated crash')]);
      expect(await db.prisma.usageEvent.count()).toBe(events);
      expect(await db.prisma.usageHourly.count()).toBe(buckets);
      expect(await total('tx')).toBe(before);
    } finally {
      await db.prisma.$executeRawUnsafe('DROP TRIGGER fail_on_1337 ON "UsageHourly"');
    }
  });
});

describe('late data, revisions and finality', () => {
  it('late events still count, and the buckets they change are listed by usageRevisions', async () => {
    const since = new Date();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const late = event({ feature: 'tx', quantity: '8', timestamp: '2026-06-10T03:15:00Z', billingTag: 'late' });
    expect((await ingest([late])).data.ingestUsage.accepted).toBe(1);
    const { body } = await graphql(
      app,
      `query ($since: DateTime!) { usageRevisions(since: $since, first: 10) { edges { node { hour feature { key } billingTag quantity revision revisedAt } } } }`,
      { key: realm.admin.key, variables: { since: since.toISOString() } },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data.usageRevisions.edges.map((e: { node: unknown }) => e.node)).toEqual([
      { hour: '2026-06-10T03:00:00.000Z', feature: { key: 'tx' }, billingTag: 'late', quantity: '8', revision: 1, revisedAt: expect.any(String) },
    ]);
  });

  it('finalizeUsage moves the feature watermark that usage reports', async () => {
    const id = encodeId('Feature', realm.features.storage.id);
    const report = async () =>
      (await graphql(app, `{ realm { usage(timeframe: LAST_7_DAYS, filter: { featureIds: ["${id}"] }) { finalizedThrough } } }`, { key: realm.admin.key })).body.data.realm.usage.finalizedThrough;
    expect(await report()).toBe(new Date(NOW.getTime() - 48 * HOUR).toISOString());
    const { body } = await graphql(app, `mutation { finalizeUsage(feature: "${id}", through: "2026-06-15T11:00:00Z") { key } }`, { key: realm.admin.key });
    expect(body.errors).toBeUndefined();
    expect(await report()).toBe('2026-06-15T11:00:00.000Z');
    const future = await graphql(app, `mutation { finalizeUsage(feature: "${id}", through: "2026-06-16T00:00:00Z") { key } }`, { key: realm.admin.key });
    expect(future.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
  });
});

describe('reconciliation', () => {
  it('after random concurrent overlapping batches nothing is double-counted and every bucket matches its events', async () => {
    const pool = Array.from({ length: 300 }, (_, i) => ({
      idempotencyKey: `c-${i}`,
      feature: ['tx', 'req', 'spaces', 'storage', 'rows'][i % 5],
      timestamp: new Date(Date.UTC(2026, 5, 12) + (i % 17) * 1_800_000 + i * 1000).toISOString(),
      quantity: String((i % 7) + 1),
      uniqueKey: `k-${i % 23}`,
      workspaceId: encodeId('Workspace', [realm.tree.root.id, realm.tree.leaf.id][i % 2]!),
    }));
    const batches = Array.from({ length: 8 }, (_, b) => pool.filter((_, i) => (i + b) % 3 !== 0));
    const results = await Promise.all(batches.map((batch) => ingest(batch)));
    const accepted = results.reduce((sum, r) => sum + r.data.ingestUsage.accepted, 0);
    expect(accepted).toBe(pool.length);
    const report = await reconcile(db.prisma, { realmId: realm.realm.id });
    expect(report.differences).toEqual([]);
    expect(report.uniqueKeyDifferences).toEqual([]);
    expect(report.bucketsChecked).toBeGreaterThan(0);
    const stored = await db.prisma.usageEvent.count({ where: { idempotencyKey: { startsWith: 'c-' } } });
    expect(stored).toBe(pool.length);
  });

  it('reports a bucket that no longer matches its events', async () => {
    const bucket = await db.prisma.usageHourly.findFirstOrThrow({ where: { realmId: realm.realm.id, eventCount: { gt: 0 } } });
    await db.prisma.usageHourly.update({ where: { id_hour: { id: bucket.id, hour: bucket.hour } }, data: { quantity: { increment: 1 } } });
    const report = await reconcile(db.prisma, { realmId: realm.realm.id });
    expect(report.differences).toHaveLength(1);
    expect(report.differences[0]).toMatchObject({ featureId: bucket.featureId, dimensionKey: bucket.dimensionKey });
    await db.prisma.usageHourly.update({ where: { id_hour: { id: bucket.id, hour: bucket.hour } }, data: { quantity: { decrement: 1 } } });
  });
});


import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_ACTOR } from '../src/admin/audit.js';
import { encodeId } from '../src/global-id.js';
import { amendUsageEvent, backfillUsage, CorrectionRefused, voidUsageEvent } from '../src/ingest/corrections.js';
import { ingestBatch } from '../src/ingest/pipeline.js';
import { reconcile } from '../src/ingest/reconcile.js';
import { dimensionKey } from '../src/usage/dimension-key.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

const NOW = new Date('2026-06-15T12:00:00Z');

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
/** A usage:write key scoped to the `left` workspace (left and leaf). */
let leftWriter: string;
const unexpected: unknown[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => NOW, onUnexpectedError: (error) => unexpected.push(error) });
  realm = await createUsageRealm(db.prisma, 'UTC');
  leftWriter = (await createKey(db.prisma, realm.realm.id, { workspaceId: realm.tree.left.id, scopes: ['usage:read', 'usage:write'] })).key;
});
afterAll(() => db?.destroy());
afterEach(() => {
  expect(unexpected.splice(0)).toEqual([]);
});

const INGEST = `mutation ($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted duplicates rejected { index code message } } }`;
const PAYLOAD = `added amended voided unchanged reopenedBuckets revisions { hour quantity revision reopenedAt } userErrors { field code message }`;
const AMEND = `mutation ($key: String!, $event: AmendedUsageEventInput!, $reopen: Boolean) { amendUsageEvent(idempotencyKey: $key, event: $event, reopen: $reopen) { ${PAYLOAD} } }`;
const VOID = `mutation ($key: String!, $reopen: Boolean) { voidUsageEvent(idempotencyKey: $key, reopen: $reopen) { ${PAYLOAD} } }`;
const BACKFILL = `mutation ($feature: ID!, $range: TimeRangeInput!, $events: [UsageEventInput!]!, $mode: BackfillMode!, $reopen: Boolean) {
  backfillUsage(feature: $feature, range: $range, events: $events, mode: $mode, reopen: $reopen) { ${PAYLOAD} } }`;

let counter = 0;
const nextKey = () => `c-${++counter}`;

/** One GraphQL call; the answer is checked field by field. */
async function call(query: string, variables: Record<string, unknown>, key = realm.admin.key): Promise<any> {
  return (await graphql(app, query, { key, variables })).body;
}

async function ingest(events: Record<string, unknown>[], key = realm.admin.key) {
  const body = await call(INGEST, { events }, key);
  expect(body.errors).toBeUndefined();
  expect(body.data.ingestUsage.rejected).toEqual([]);
  return body.data.ingestUsage;
}

/** The feature's stored bucket of one hour (all dimensions together), straight from the table. */
async function hourTotal(feature: keyof typeof realm.features, hour: string) {
  const rows = await db.prisma.usageHourly.findMany({ where: { featureId: realm.features[feature].id, hour: new Date(hour) } });
  return rows.reduce((sum, row) => sum + Number(row.quantity), 0);
}

async function distinctKeys(feature: keyof typeof realm.features, hour: string) {
  const rows = await db.prisma.usageUniqueKey.findMany({ where: { featureId: realm.features[feature].id, hour: new Date(hour) }, orderBy: { key: 'asc' } });
  return rows.map((row) => row.key);
}

/** The `userErrors` of a refused correction (a refusal is never a GraphQL error), after checking it changed nothing. */
function refused(body: any): { field: string[]; code: string; message: string }[] {
  expect(body.errors).toBeUndefined();
  const payload = Object.values(body.data)[0] as { added: number; amended: number; voided: number; revisions: unknown[]; userErrors: { field: string[]; code: string; message: string }[] };
  expect(payload.userErrors.length).toBeGreaterThan(0);
  expect([payload.added, payload.amended, payload.voided, payload.revisions.length]).toEqual([0, 0, 0, 0]);
  return payload.userErrors;
}

/** The audit entries of one event's corrections. */
async function auditOf(action: string, idempotencyKey: string) {
  const entries = await db.prisma.auditEntry.findMany({ where: { realmId: realm.realm.id, action }, orderBy: { createdAt: 'asc' } });
  return entries.filter((entry) => (entry.changes as { after?: { idempotencyKey?: string } }).after?.idempotencyKey === idempotencyKey);
}

async function expectReconciled() {
  const report = await reconcile(db.prisma, { realmId: realm.realm.id });
  expect(report.differences).toEqual([]);
  expect(report.uniqueKeyDifferences).toEqual([]);
}

describe('amendUsageEvent', () => {
  it('replaces the content of an event: its old bucket and its new one are recomputed, the revisions move, and it is audited', async () => {
    const key = nextKey();
    await ingest([{ idempotencyKey: key, feature: 'tx', timestamp: '2026-06-15T10:30:00Z', quantity: '2.5' }, { idempotencyKey: nextKey(), feature: 'tx', timestamp: '2026-06-15T10:40:00Z', quantity: '1' }]);
    expect(await hourTotal('tx', '2026-06-15T10:00:00Z')).toBe(3.5);
    const moved = await call(AMEND, { key, event: { feature: 'tx', timestamp: '2026-06-15T11:15:00Z', quantity: '4.000000001' } });
    expect(moved.errors).toBeUndefined();
    expect(moved.data.amendUsageEvent).toMatchObject({ added: 0, amended: 1, voided: 0, unchanged: 0, reopenedBuckets: 0, userErrors: [] });
    expect(moved.data.amendUsageEvent.revisions.map((r: { hour: string; quantity: string; reopenedAt: null }) => [r.hour, r.quantity, r.reopenedAt])).toEqual([
      ['2026-06-15T10:00:00.000Z', '1', null],
      ['2026-06-15T11:00:00.000Z', '4.000000001', null],
    ]);
    const stored = await db.prisma.usageHourly.findFirstOrThrow({ where: { featureId: realm.features.tx.id, hour: new Date('2026-06-15T11:00:00Z') } });
    expect(stored.quantity.toFixed()).toBe('4.000000001');
    // Amending to the same content again changes nothing.
    const same = await call(AMEND, { key, event: { feature: 'tx', timestamp: '2026-06-15T11:15:00Z', quantity: '4.000000001' } });
    expect(same.data.amendUsageEvent).toMatchObject({ amended: 0, unchanged: 1, revisions: [] });
    const audit = await auditOf('usage.amend', key);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      targetType: 'Feature',
      targetId: realm.features.tx.id,
      changes: { before: null, after: { idempotencyKey: key, before: { quantity: '2.5', occurredAt: '2026-06-15T10:30:00.000Z' }, after: { quantity: '4.000000001', occurredAt: '2026-06-15T11:15:00.000Z' }, reopenedBuckets: [] } },
    });
    // A re-send of the original content is now a mismatch: the amended content stays.
    const resent = await call(INGEST, { events: [{ idempotencyKey: key, feature: 'tx', timestamp: '2026-06-15T10:30:00Z', quantity: '2.5' }] });
    expect(resent.data.ingestUsage.rejected.map((r: { code: string }) => r.code)).toEqual(['DUPLICATE_MISMATCH']);
    await expectReconciled();
  });

  it('refuses unknown and voided events and bad content with codes, writing nothing', async () => {
    const missing = await call(AMEND, { key: 'nope', event: { feature: 'tx', timestamp: '2026-06-15T11:00:00Z', quantity: '1' } });
    expect(refused(missing)).toEqual([{ field: ['idempotencyKey'], code: 'EVENT_NOT_FOUND', message: expect.stringContaining('"nope"') }]);
    const key = nextKey();
    await ingest([{ idempotencyKey: key, feature: 'tx', timestamp: '2026-06-15T11:05:00Z', quantity: '1' }]);
    const bad = await call(AMEND, { key, event: { feature: 'tx', timestamp: '2026-06-15T11:05:00Z', quantity: 1.5 } });
    expect(refused(bad)).toEqual([{ field: ['event'], code: 'INVALID_QUANTITY', message: expect.stringContaining('send it as a string') }]);
    const unknownFeature = await call(AMEND, { key, event: { feature: 'nope', timestamp: '2026-06-15T11:05:00Z', quantity: '1' } });
    expect(refused(unknownFeature)[0]!.code).toBe('UNKNOWN_FEATURE');
    expect((await call(VOID, { key })).data.voidUsageEvent).toMatchObject({ voided: 1, userErrors: [] });
    const voided = await call(AMEND, { key, event: { feature: 'tx', timestamp: '2026-06-15T11:05:00Z', quantity: '2' } });
    expect(refused(voided)[0]!.code).toBe('EVENT_VOIDED');
  });

  it('needs usage:write', async () => {
    const reader = (await createKey(db.prisma, realm.realm.id, { scopes: ['usage:read'] })).key;
    const body = await call(VOID, { key: 'anything' }, reader);
    expect(body.errors[0].extensions.code).toBe('FORBIDDEN');
  });
});

describe('voidUsageEvent', () => {
  it('takes an event out of its bucket; its key stays taken, so a re-send counts nothing; voiding twice changes nothing', async () => {
    const key = nextKey();
    await ingest([{ idempotencyKey: key, feature: 'req', timestamp: '2026-06-15T11:20:00Z', quantity: '3' }, { idempotencyKey: nextKey(), feature: 'req', timestamp: '2026-06-15T11:21:00Z', quantity: '2' }]);
    const before = await hourTotal('req', '2026-06-15T11:00:00Z');
    const voided = await call(VOID, { key });
    expect(voided.data.voidUsageEvent).toMatchObject({ voided: 1, revisions: [{ quantity: String(before - 3) }] });
    expect(await hourTotal('req', '2026-06-15T11:00:00Z')).toBe(before - 3);
    const resent = await call(INGEST, { events: [{ idempotencyKey: key, feature: 'req', timestamp: '2026-06-15T11:20:00Z', quantity: '3' }] });
    expect(resent.data.ingestUsage).toMatchObject({ accepted: 0, duplicates: 1, rejected: [] });
    expect(await hourTotal('req', '2026-06-15T11:00:00Z')).toBe(before - 3);
    const again = await call(VOID, { key });
    expect(again.data.voidUsageEvent).toMatchObject({ voided: 0, unchanged: 1, revisions: [] });
    expect(await auditOf('usage.void', key)).toHaveLength(1);
    await expectReconciled();
  });

  it('keeps UNIQUE_COUNT exact: a key stays counted while another live event of the bucket carries it', async () => {
    const hour = '2026-06-15T11:00:00Z';
    const [a1, a2, b] = [nextKey(), nextKey(), nextKey()];
    await ingest([
      { idempotencyKey: a1, feature: 'rows', timestamp: '2026-06-15T11:10:00Z', uniqueKey: 'row-a' },
      { idempotencyKey: a2, feature: 'rows', timestamp: '2026-06-15T11:20:00Z', uniqueKey: 'row-a' },
      { idempotencyKey: b, feature: 'rows', timestamp: '2026-06-15T11:30:00Z', uniqueKey: 'row-b' },
    ]);
    expect(await hourTotal('rows', hour)).toBe(2);
    const first = await call(VOID, { key: a1 });
    // The value and the distinct keys did not change (the event count did).
    expect(first.data.voidUsageEvent).toMatchObject({ voided: 1, revisions: [{ quantity: '2' }] });
    expect(await hourTotal('rows', hour)).toBe(2);
    expect(await distinctKeys('rows', hour)).toEqual(['row-a', 'row-b']);
    await call(VOID, { key: a2 });
    expect(await hourTotal('rows', hour)).toBe(1);
    expect(await distinctKeys('rows', hour)).toEqual(['row-b']);
    // Amending b's key to another one: same count, other distinct keys, so a new revision.
    const renamed = await call(AMEND, { key: b, event: { feature: 'rows', timestamp: '2026-06-15T11:30:00Z', uniqueKey: 'row-c' } });
    expect(renamed.data.amendUsageEvent.revisions).toHaveLength(1);
    expect(await distinctKeys('rows', hour)).toEqual(['row-c']);
    await expectReconciled();
  });
});

describe('final buckets', () => {
  // tx has a 2-hour arrival delay: at 12:00 the buckets before 10:00 are final.
  it('change only with reopen: true; the revision and the audit entry say so', async () => {
    const key = nextKey();
    await ingest([{ idempotencyKey: key, feature: 'tx', timestamp: '2026-06-15T08:30:00Z', quantity: '5' }]);
    const before = await hourTotal('tx', '2026-06-15T08:00:00Z');
    const [final] = refused(await call(VOID, { key }));
    expect(final).toMatchObject({ field: ['reopen'], code: 'BUCKET_FINAL' });
    expect(final!.message).toContain('tx 2026-06-15T08:00:00.000Z');
    expect(final!.message).toContain('reopen: true');
    expect(await hourTotal('tx', '2026-06-15T08:00:00Z')).toBe(before);
    expect((await db.prisma.usageEvent.findFirstOrThrow({ where: { idempotencyKey: key } })).voidedAt).toBeNull();

    const amendRefused = await call(AMEND, { key, event: { feature: 'tx', timestamp: '2026-06-15T10:30:00Z', quantity: '5' } });
    expect(refused(amendRefused)[0]!.code).toBe('BUCKET_FINAL');

    const reopened = await call(AMEND, { key, event: { feature: 'tx', timestamp: '2026-06-15T08:30:00Z', quantity: '7' }, reopen: true });
    expect(reopened.errors).toBeUndefined();
    expect(reopened.data.amendUsageEvent).toMatchObject({ reopenedBuckets: 1, userErrors: [] });
    expect(reopened.data.amendUsageEvent.revisions[0].reopenedAt).not.toBeNull();
    expect(await hourTotal('tx', '2026-06-15T08:00:00Z')).toBe(before + 2);
    const [entry] = await auditOf('usage.amend', key);
    expect(entry!.changes).toMatchObject({ after: { after: { quantity: '7' }, reopenedBuckets: ['tx 2026-06-15T08:00:00.000Z'] } });
    // A correction that does not change a final bucket needs no reopen.
    const other = nextKey();
    await ingest([{ idempotencyKey: other, feature: 'tx', timestamp: '2026-06-15T11:30:00Z', quantity: '1' }]);
    expect((await call(AMEND, { key: other, event: { feature: 'tx', timestamp: '2026-06-15T11:31:00Z', quantity: '1' } })).data.amendUsageEvent).toMatchObject({ amended: 1, userErrors: [] });
  });
});

describe('backfillUsage', () => {
  const feature = () => encodeId('Feature', realm.features.spaces.id);
  const day = { from: '2026-06-14T00:00:00Z', to: '2026-06-15T00:00:00Z' };
  // spaces (MAX) has a 2-day arrival delay: the 14th is not final at noon on the 15th.

  it('REPLACE makes the range exactly the events sent: others voided, re-sent keys rewritten, imported buckets reset', async () => {
    const [kept, dropped] = [nextKey(), nextKey()];
    await ingest([
      { idempotencyKey: kept, feature: 'spaces', timestamp: '2026-06-14T05:10:00Z', quantity: '9' },
      { idempotencyKey: dropped, feature: 'spaces', timestamp: '2026-06-14T06:10:00Z', quantity: '4' },
      { idempotencyKey: nextKey(), feature: 'spaces', timestamp: '2026-06-15T01:10:00Z', quantity: '8' },
    ]);
    // An aggregate imported without events, inside the range.
    await db.prisma.usageHourly.create({ data: { realmId: realm.realm.id, featureId: realm.features.spaces.id, hour: new Date('2026-06-14T20:00:00Z'), dimensionKey: dimensionKey({}), quantity: '100', eventCount: 0 } });
    const fresh = nextKey();
    const body = await call(BACKFILL, {
      feature: feature(),
      range: day,
      mode: 'REPLACE',
      events: [
        { idempotencyKey: kept, feature: 'spaces', timestamp: '2026-06-14T05:20:00Z', quantity: '3' },
        { idempotencyKey: fresh, feature: 'spaces', timestamp: '2026-06-14T07:00:00Z', quantity: 6 },
      ],
    });
    expect(body.errors).toBeUndefined();
    expect(body.data.backfillUsage).toMatchObject({ added: 1, amended: 1, voided: 1, unchanged: 0, reopenedBuckets: 0, userErrors: [] });
    expect(await hourTotal('spaces', '2026-06-14T05:00:00Z')).toBe(3);
    expect(await hourTotal('spaces', '2026-06-14T06:00:00Z')).toBe(0);
    expect(await hourTotal('spaces', '2026-06-14T07:00:00Z')).toBe(6);
    expect(await hourTotal('spaces', '2026-06-14T20:00:00Z')).toBe(0);
    expect(await hourTotal('spaces', '2026-06-15T01:00:00Z')).toBe(8);
    expect((await db.prisma.usageEvent.findFirstOrThrow({ where: { idempotencyKey: dropped } })).voidedAt).not.toBeNull();
    const entry = await db.prisma.auditEntry.findFirstOrThrow({ where: { realmId: realm.realm.id, action: 'usage.backfill' }, orderBy: { createdAt: 'desc' } });
    expect(entry.changes).toMatchObject({ after: { mode: 'REPLACE', added: 1, amended: 1, voided: 1 } });
    // Sending the same backfill again changes nothing.
    const again = await call(BACKFILL, {
      feature: feature(),
      range: day,
      mode: 'REPLACE',
      events: [
        { idempotencyKey: kept, feature: 'spaces', timestamp: '2026-06-14T05:20:00Z', quantity: '3' },
        { idempotencyKey: fresh, feature: 'spaces', timestamp: '2026-06-14T07:00:00Z', quantity: 6 },
      ],
    });
    expect(again.data.backfillUsage).toMatchObject({ added: 0, amended: 0, voided: 0, unchanged: 2, revisions: [] });
    await expectReconciled();
  });

  it('is all or nothing: one event outside the range or feature refuses it, every rejection listed', async () => {
    const before = await db.prisma.usageEvent.count();
    const body = await call(BACKFILL, {
      feature: feature(),
      range: day,
      mode: 'REPLACE',
      events: [
        { idempotencyKey: nextKey(), feature: 'spaces', timestamp: '2026-06-14T08:00:00Z', quantity: '1' },
        { idempotencyKey: nextKey(), feature: 'spaces', timestamp: '2026-06-15T08:00:00Z', quantity: '1' },
        { idempotencyKey: nextKey(), feature: 'tx', timestamp: '2026-06-14T08:00:00Z', quantity: '1' },
        { idempotencyKey: nextKey(), feature: 'spaces', timestamp: '2026-06-14T08:00:00Z', quantity: '1', projectID: 'x' },
      ],
    });
    expect(refused(body).map((e) => [e.field.join('.'), e.code])).toEqual([
      ['events.1', 'OUTSIDE_BACKFILL'],
      ['events.2', 'OUTSIDE_BACKFILL'],
      ['events.3', 'UNKNOWN_FIELD'],
    ]);
    expect(await db.prisma.usageEvent.count()).toBe(before);
    const range = await call(BACKFILL, { feature: feature(), range: { from: '2026-06-14T00:30:00Z', to: '2026-06-15T00:00:00Z' }, mode: 'ADD', events: [] });
    expect(refused(range)).toEqual([{ field: ['range'], code: 'INVALID_RANGE', message: expect.stringContaining('whole UTC hours') }]);
    const long = await call(BACKFILL, { feature: feature(), range: { from: '2026-01-01T00:00:00Z', to: '2026-06-15T00:00:00Z' }, mode: 'REPLACE', events: [] });
    expect(refused(long)[0]!.code).toBe('RANGE_TOO_LARGE');
    const conflict = await call(BACKFILL, {
      feature: feature(),
      range: day,
      mode: 'REPLACE',
      // A key already used by an event of another feature.
      events: [{ idempotencyKey: (await db.prisma.usageEvent.findFirstOrThrow({ where: { featureId: realm.features.tx.id } })).idempotencyKey, feature: 'spaces', timestamp: '2026-06-14T08:00:00Z', quantity: '1' }],
    });
    expect(refused(conflict).map((e) => e.code)).toEqual(['DUPLICATE_MISMATCH']);
    expect(await db.prisma.usageEvent.count()).toBe(before);
  });

  it('ADD adds to the range; a re-sent event with the same content is not counted again', async () => {
    const key = nextKey();
    const events = [{ idempotencyKey: key, feature: 'tx', timestamp: '2026-06-15T11:45:00Z', quantity: '2' }];
    const range = { from: '2026-06-15T11:00:00Z', to: '2026-06-15T12:00:00Z' };
    const before = await hourTotal('tx', '2026-06-15T11:00:00Z');
    const first = await call(BACKFILL, { feature: encodeId('Feature', realm.features.tx.id), range, mode: 'ADD', events });
    expect(first.data.backfillUsage).toMatchObject({ added: 1, unchanged: 0 });
    const second = await call(BACKFILL, { feature: encodeId('Feature', realm.features.tx.id), range, mode: 'ADD', events });
    expect(second.data.backfillUsage).toMatchObject({ added: 0, unchanged: 1, revisions: [] });
    expect(await hourTotal('tx', '2026-06-15T11:00:00Z')).toBe(before + 2);
    const mismatch = await call(BACKFILL, { feature: encodeId('Feature', realm.features.tx.id), range, mode: 'ADD', events: [{ ...events[0], quantity: '3' }] });
    expect(refused(mismatch).map((e) => e.code)).toEqual(['DUPLICATE_MISMATCH']);
    await expectReconciled();
  });
});

describe('a workspace key', () => {
  it('corrects only events attributed inside its subtree, and REPLACE leaves the rest of the realm alone', async () => {
    const left = encodeId('Workspace', realm.tree.leaf.id);
    const right = encodeId('Workspace', realm.tree.right.id);
    const [inside, outside] = [nextKey(), nextKey()];
    await ingest([
      { idempotencyKey: inside, feature: 'req', timestamp: '2026-06-15T10:05:00Z', quantity: '1', workspaceId: left },
      { idempotencyKey: outside, feature: 'req', timestamp: '2026-06-15T10:06:00Z', quantity: '1', workspaceId: right },
    ]);
    expect(refused(await call(VOID, { key: outside }, leftWriter))[0]!.code).toBe('EVENT_NOT_FOUND');
    const moveOut = await call(AMEND, { key: inside, event: { feature: 'req', timestamp: '2026-06-15T10:05:00Z', quantity: '1', workspaceId: right } }, leftWriter);
    expect(refused(moveOut)[0]!.code).toBe('UNKNOWN_DIMENSION');
    expect((await call(AMEND, { key: inside, event: { feature: 'req', timestamp: '2026-06-15T10:05:00Z', quantity: '2', workspaceId: left } }, leftWriter)).data.amendUsageEvent).toMatchObject({ amended: 1, userErrors: [] });

    const replaced = await call(
      BACKFILL,
      { feature: encodeId('Feature', realm.features.req.id), range: { from: '2026-06-15T10:00:00Z', to: '2026-06-15T11:00:00Z' }, mode: 'REPLACE', events: [] },
      leftWriter,
    );
    expect(replaced.errors).toBeUndefined();
    expect(replaced.data.backfillUsage.userErrors).toEqual([]);
    expect(replaced.data.backfillUsage.voided).toBeGreaterThanOrEqual(1);
    expect((await db.prisma.usageEvent.findFirstOrThrow({ where: { idempotencyKey: inside } })).voidedAt).not.toBeNull();
    expect((await db.prisma.usageEvent.findFirstOrThrow({ where: { idempotencyKey: outside } })).voidedAt).toBeNull();
    const rightBucket = await db.prisma.usageHourly.findMany({ where: { featureId: realm.features.req.id, hour: new Date('2026-06-15T10:00:00Z'), workspaceId: realm.tree.right.id } });
    expect(rightBucket.map((b) => b.quantity.toFixed())).toEqual(['1']);
    await expectReconciled();
  });
});

describe('statements', () => {
  it('a correction runs the same statements whatever the number of buckets it moves (set-based, loader-backed payload)', async () => {
    const DOC = `mutation ($key: String!, $event: AmendedUsageEventInput!) { amendUsageEvent(idempotencyKey: $key, event: $event) {
      amended revisions { hour quantity feature { key } workspace { id } } userErrors { code } } }`;
    const workspaceId = encodeId('Workspace', realm.tree.leaf.id);
    const [one, two] = [nextKey(), nextKey()];
    await ingest([
      { idempotencyKey: one, feature: 'tx', timestamp: '2026-06-15T11:10:00Z', quantity: '1', workspaceId },
      { idempotencyKey: two, feature: 'tx', timestamp: '2026-06-15T11:20:00Z', quantity: '1', workspaceId },
    ]);
    // Same hour: one bucket moves. Another hour: two buckets move.
    const sameHour = await graphql(app, DOC, { key: realm.admin.key, variables: { key: one, event: { feature: 'tx', timestamp: '2026-06-15T11:10:00Z', quantity: '2', workspaceId } } });
    const otherHour = await graphql(app, DOC, { key: realm.admin.key, variables: { key: two, event: { feature: 'tx', timestamp: '2026-06-15T10:20:00Z', quantity: '1', workspaceId } } });
    expect(sameHour.body.data.amendUsageEvent.revisions).toHaveLength(1);
    expect(otherHour.body.data.amendUsageEvent.revisions).toHaveLength(2);
    expect(otherHour.body.data.amendUsageEvent.revisions.map((r: { feature: { key: string } }) => r.feature.key)).toEqual(['tx', 'tx']);
    expect(otherHour.statements.length).toBe(sameHour.statements.length);
  });
});

describe('concurrency', () => {
  it('corrections racing ingestion of the same buckets leave them equal to their events', async () => {
    const hour = '2026-06-15T11';
    const keys = Array.from({ length: 12 }, () => nextKey());
    await ingest(keys.map((k, i) => ({ idempotencyKey: k, feature: i % 2 ? 'tx' : 'rows', timestamp: `${hour}:${String(10 + i).padStart(2, '0')}:00Z`, quantity: i % 2 ? '1.25' : undefined, uniqueKey: i % 2 ? undefined : `u${i % 4}` })));
    const target = { realmId: realm.realm.id, workspaceId: null, actor: SYSTEM_ACTOR };
    const more = (n: number) =>
      ingestBatch(db.prisma, target, Array.from({ length: 20 }, (_, i) => ({ idempotencyKey: `${nextKey()}-${n}`, feature: i % 2 ? 'tx' : 'rows', timestamp: `${hour}:${String(30 + i).padStart(2, '0')}:00Z`, quantity: i % 2 ? '0.5' : undefined, uniqueKey: i % 2 ? undefined : `u${i % 6}` })), { now: NOW });
    await Promise.all([
      more(1),
      ...keys.slice(0, 4).map((k) => voidUsageEvent(db.prisma, target, k, { now: NOW })),
      more(2),
      ...keys.slice(4, 8).map((k, i) => amendUsageEvent(db.prisma, target, k, { feature: i % 2 ? 'tx' : 'rows', timestamp: `${hour}:59:00Z`, quantity: i % 2 ? '3' : undefined, uniqueKey: i % 2 ? undefined : 'u-amended' }, { now: NOW })),
      backfillUsage(db.prisma, target, { featureId: realm.features.tx.id, from: new Date(`${hour}:00:00Z`), to: new Date('2026-06-15T12:00:00Z'), mode: 'ADD', events: [{ idempotencyKey: nextKey(), feature: 'tx', timestamp: `${hour}:45:00Z`, quantity: '7' }] }, { now: NOW }),
    ]);
    await expectReconciled();
  });
});

describe('quota rules', () => {
  it('follow the corrected numbers: an amend that crosses a threshold raises the alert', async () => {
    const feature = await db.prisma.feature.create({ data: { realmId: realm.realm.id, key: 'quota-tx', name: 'quota tx', service: 'test', unit: 'TRANSACTION', aggregation: 'SUM', arrivalDelaySeconds: 7200 } });
    const rule = await db.prisma.quotaRule.create({ data: { realmId: realm.realm.id, featureId: feature.id, period: 'DAY', thresholdQuantity: '10' } });
    const key = nextKey();
    await ingest([{ idempotencyKey: key, feature: 'quota-tx', timestamp: '2026-06-15T11:00:00Z', quantity: '6' }]);
    expect(await db.prisma.alert.count({ where: { ruleId: rule.id } })).toBe(0);
    await call(AMEND, { key, event: { feature: 'quota-tx', timestamp: '2026-06-15T11:00:00Z', quantity: '12' } });
    const alerts = await db.prisma.alert.findMany({ where: { ruleId: rule.id } });
    expect(alerts.map((a) => a.quantity.toFixed())).toEqual(['12']);
  });
});

describe('property: buckets after any sequence of ingest, amend, void and backfill equal an independent model', () => {
  type Kind = 'SUM' | 'COUNT' | 'UNIQUE_COUNT';
  interface Content {
    feature: Kind;
    minute: number;
    quantity: string;
    uniqueKey: string;
    leaf: boolean;
  }
  const HOURS = ['2026-06-15T09', '2026-06-15T10', '2026-06-15T11'];
  const content = fc.record({
    feature: fc.constantFrom<Kind>('SUM', 'COUNT', 'UNIQUE_COUNT'),
    minute: fc.integer({ min: 0, max: HOURS.length * 60 - 1 }),
    quantity: fc.constantFrom('1', '0.5', '2.25', '0.000000001', '12345678901234567890'),
    uniqueKey: fc.constantFrom('a', 'b', 'c'),
    leaf: fc.boolean(),
  });
  const key = fc.constantFrom('k0', 'k1', 'k2', 'k3', 'k4', 'k5');
  const op = fc.oneof(
    fc.record({ type: fc.constant('ingest' as const), events: fc.array(fc.tuple(key, content), { minLength: 1, maxLength: 5 }) }),
    fc.record({ type: fc.constant('amend' as const), key, content }),
    fc.record({ type: fc.constant('void' as const), key }),
    fc.record({
      type: fc.constant('backfill' as const),
      mode: fc.constantFrom('REPLACE' as const, 'ADD' as const),
      feature: fc.constantFrom<Kind>('SUM', 'COUNT', 'UNIQUE_COUNT'),
      hour: fc.integer({ min: 0, max: HOURS.length - 1 }),
      events: fc.uniqueArray(fc.tuple(key, content), { maxLength: 3, selector: ([k]) => k }),
    }),
  );

  const timestampOf = (minute: number) => new Date(Date.parse(`${HOURS[0]}:00:00Z`) + minute * 60_000);
  const sameContent = (a: Content, b: Content) => JSON.stringify(a) === JSON.stringify(b);
  const NANOS = 1_000_000_000n;
  const nanos = (q: string) => {
    const [whole, fraction = ''] = q.split('.');
    return BigInt(whole!) * NANOS + BigInt(fraction.padEnd(9, '0'));
  };

  it('for SUM, COUNT and UNIQUE_COUNT features', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 7 }), async (ops) => {
        run++;
        // A fresh set of features per run; a long arrival delay, so no bucket is final.
        const features = Object.fromEntries(
          await Promise.all(
            (['SUM', 'COUNT', 'UNIQUE_COUNT'] as const).map(async (aggregation) => [
              aggregation,
              await db.prisma.feature.create({
                data: { realmId: realm.realm.id, key: `p${run}-${aggregation}`, name: `p${run}`, service: 'test', unit: 'REQUEST', aggregation, arrivalDelaySeconds: 864_000 },
              }),
            ]),
          ),
        ) as Record<Kind, { id: string; key: string }>;
        const target = { realmId: realm.realm.id, workspaceId: null, actor: SYSTEM_ACTOR };
        const raw = (k: string, c: Content) => ({
          idempotencyKey: `p${run}-${k}`,
          feature: features[c.feature].key,
          timestamp: timestampOf(c.minute).toISOString(),
          ...(c.feature === 'UNIQUE_COUNT' ? { uniqueKey: c.uniqueKey } : { quantity: c.quantity }),
          ...(c.leaf ? { workspaceId: encodeId('Workspace', realm.tree.leaf.id) } : {}),
        });
        // The model: every stored event by key, with whether it is voided; only what the rules say.
        const model = new Map<string, { content: Content; voided: boolean }>();
        const canonical = (c: Content): Content => (c.feature === 'UNIQUE_COUNT' ? { ...c, quantity: '1' } : { ...c, uniqueKey: '' });

        for (const operation of ops) {
          if (operation.type === 'ingest') {
            await ingestBatch(db.prisma, target, operation.events.map(([k, c]) => raw(k, c)), { now: NOW });
            for (const [k, c] of operation.events) if (!model.has(k)) model.set(k, { content: canonical(c), voided: false });
          } else if (operation.type === 'amend') {
            const stored = model.get(operation.key);
            const outcome = await amendUsageEvent(db.prisma, target, `p${run}-${operation.key}`, raw(operation.key, operation.content), { now: NOW }).catch((e: unknown) => e);
            if (!stored) expect((outcome as CorrectionRefused).code).toBe('EVENT_NOT_FOUND');
            else if (stored.voided) expect((outcome as CorrectionRefused).code).toBe('EVENT_VOIDED');
            else {
              expect(outcome).not.toBeInstanceOf(Error);
              stored.content = canonical(operation.content);
            }
          } else if (operation.type === 'void') {
            const stored = model.get(operation.key);
            const outcome = await voidUsageEvent(db.prisma, target, `p${run}-${operation.key}`, { now: NOW }).catch((e: unknown) => e);
            if (!stored) expect((outcome as CorrectionRefused).code).toBe('EVENT_NOT_FOUND');
            else stored.voided = true;
          } else {
            const inRange = (c: Content) => c.feature === operation.feature && Math.floor(c.minute / 60) === operation.hour;
            const events = operation.events.map(([k, c]) => [k, canonical({ ...c, feature: operation.feature, minute: operation.hour * 60 + (c.minute % 60) })] as const);
            const from = new Date(`${HOURS[operation.hour]}:00:00Z`);
            const outcome = await backfillUsage(
              db.prisma,
              target,
              { featureId: features[operation.feature].id, from, to: new Date(from.getTime() + 3_600_000), mode: operation.mode, events: events.map(([k, c]) => raw(k, c)) },
              { now: NOW },
            ).catch((e: unknown) => e);
            const refused = events.some(([k, c]) => {
              const stored = model.get(k);
              if (!stored) return false;
              if (operation.mode === 'REPLACE') return !inRange(stored.content);
              return stored.voided || !sameContent(stored.content, c);
            });
            if (refused) {
              expect((outcome as CorrectionRefused).code).toBe('BACKFILL_REJECTED');
              continue;
            }
            expect(outcome).not.toBeInstanceOf(Error);
            if (operation.mode === 'REPLACE') {
              for (const [k, stored] of model) if (inRange(stored.content) && !events.some(([sent]) => sent === k)) stored.voided = true;
            }
            for (const [k, c] of events) {
              const stored = model.get(k);
              if (!stored) model.set(k, { content: c, voided: false });
              else if (operation.mode === 'REPLACE') model.set(k, { content: c, voided: false });
            }
          }
        }

        // The model's buckets: feature, hour, workspace → quantity in billionths, events, distinct keys.
        const expected = new Map<string, { nanos: bigint; events: number; keys: Set<string> }>();
        for (const { content: c, voided } of model.values()) {
          if (voided) continue;
          const id = `${features[c.feature].id}|${HOURS[Math.floor(c.minute / 60)]}|${c.leaf}`;
          const bucket = expected.get(id) ?? { nanos: 0n, events: 0, keys: new Set<string>() };
          bucket.events++;
          if (c.feature === 'UNIQUE_COUNT') bucket.keys.add(c.uniqueKey);
          else bucket.nanos += nanos(c.quantity);
          expected.set(id, bucket);
        }
        const stored = await db.prisma.usageHourly.findMany({ where: { featureId: { in: Object.values(features).map((f) => f.id) } } });
        const storedKeys = await db.prisma.usageUniqueKey.findMany({ where: { featureId: features.UNIQUE_COUNT.id } });
        const actual = new Map<string, { quantity: string; events: number; keys: string[] }>();
        for (const row of stored) {
          if (row.eventCount === 0n && row.quantity.isZero()) continue;
          const id = `${row.featureId}|${row.hour.toISOString().slice(0, 13)}|${row.workspaceId !== null}`;
          const keys = storedKeys.filter((k) => k.featureId === row.featureId && k.hour.getTime() === row.hour.getTime() && k.dimensionKey === row.dimensionKey).map((k) => k.key);
          actual.set(id, { quantity: row.quantity.toFixed(), events: Number(row.eventCount), keys: keys.sort() });
        }
        const wanted = new Map(
          [...expected].map(([id, b]) => {
            const unique = id.startsWith(features.UNIQUE_COUNT.id);
            const quantity = unique ? String(b.keys.size) : `${b.nanos / NANOS}${b.nanos % NANOS ? `.${(b.nanos % NANOS).toString().padStart(9, '0').replace(/0+$/, '')}` : ''}`;
            return [id, { quantity, events: b.events, keys: [...b.keys].sort() }];
          }),
        );
        expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(wanted));
      }),
      // Modest by default (the file stays well under 30 s per database); PROPERTY_RUNS=500 for a deeper search.
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 20) },
    );
    await expectReconciled();
  }, 600_000);
});

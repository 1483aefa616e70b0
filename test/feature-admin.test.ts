import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_ARRIVAL_DELAY_SECONDS } from '../src/admin/features.js';
import { encodeId } from '../src/global-id.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm, insertUsage } from './helpers/usage-fixture.js';

const NOW = new Date('2026-06-15T12:00:00Z');

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
let other: Awaited<ReturnType<typeof createUsageRealm>>;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => NOW, exposeQueryStats: true, onUnexpectedError: (error) => console.error('UNEXPECTED', error) });
  realm = await createUsageRealm(db.prisma, 'UTC');
  other = await createUsageRealm(db.prisma, 'UTC');
}, 60_000);
afterAll(() => db?.destroy());

const FIELDS = 'feature { id key name service unit aggregation arrivalDelaySeconds archivedAt } userErrors { field code message }';
const CREATE = `mutation ($input: CreateFeatureInput!) { createFeature(input: $input) { ${FIELDS} } }`;
const UPDATE = `mutation ($input: UpdateFeatureInput!) { updateFeature(input: $input) { ${FIELDS} } }`;
const ARCHIVE = `mutation ($id: ID!) { archiveFeature(id: $id) { ${FIELDS} } }`;
const AUDIT = `query ($targetId: ID) { viewer { realm { auditLog(first: 20, filter: { targetId: $targetId }) { edges { node { action actorType actorKeyPrefix targetType targetId before after requestId } } } } } }`;

async function call(query: string, variables: Record<string, unknown>, key = realm.admin.key) {
  const response = await graphql(app, query, { key, variables });
  expect(response.body.errors).toBeUndefined();
  return { payload: Object.values(response.body.data!)[0] as any, statements: response.body.extensions?.queryStats?.sqlStatements as number };
}
const codes = (payload: { userErrors: { code: string }[] }) => payload.userErrors.map((e) => e.code);

let counter = 0;
const input = (overrides: Record<string, unknown> = {}) => ({ key: `meter.n${++counter}`, name: 'A meter', service: 'test', unit: 'TRANSACTION', aggregation: 'SUM', ...overrides });
async function newFeature(overrides: Record<string, unknown> = {}, key = realm.admin.key) {
  const { payload } = await call(CREATE, { input: input(overrides) }, key);
  expect(payload.userErrors).toEqual([]);
  return payload.feature as { id: string; key: string };
}
const auditOf = async (targetId: string) => (await graphql(app, AUDIT, { key: realm.admin.key, variables: { targetId } })).body.data.viewer.realm.auditLog.edges.map((e: any) => e.node);

describe('createFeature', () => {
  it('creates a meter with the default arrival delay, audited as feature.create', async () => {
    const { payload } = await call(CREATE, { input: { key: 'maps.tiles', name: ' Map tiles ', service: 'maps', unit: 'REQUEST', aggregation: 'COUNT' } });
    expect(payload).toMatchObject({ userErrors: [], feature: { key: 'maps.tiles', name: 'Map tiles', service: 'maps', unit: 'REQUEST', aggregation: 'COUNT', arrivalDelaySeconds: 7200, archivedAt: null } });
    const [entry] = await auditOf(payload.feature.id);
    expect(entry).toMatchObject({
      action: 'feature.create',
      actorType: 'API_KEY',
      actorKeyPrefix: realm.admin.record.prefix,
      targetType: 'Feature',
      targetId: payload.feature.id,
      before: null,
      after: { key: 'maps.tiles', name: 'Map tiles', service: 'maps', unit: 'REQUEST', aggregation: 'COUNT', arrivalDelaySeconds: 7200, archivedAt: null },
    });
    const listed = await graphql(app, '{ viewer { realm { features(first: 50) { edges { node { key } } } } } }', { key: realm.admin.key });
    expect(listed.body.data.viewer.realm.features.edges.map((e: any) => e.node.key)).toContain('maps.tiles');
  });

  it.each([
    ['an empty key', { key: '' }, 'INVALID_KEY', 'key'],
    ['an upper-case key', { key: 'Maps.tiles' }, 'INVALID_KEY', 'key'],
    ['a key starting with a digit', { key: '1tiles' }, 'INVALID_KEY', 'key'],
    ['a key with a space', { key: 'map tiles' }, 'INVALID_KEY', 'key'],
    ['a key of 64 characters', { key: 'a'.repeat(64) }, 'INVALID_KEY', 'key'],
    ['a key with a non-ASCII letter', { key: 'kachel.ä' }, 'INVALID_KEY', 'key'],
    ['a blank name', { name: '   ' }, 'BLANK', 'name'],
    ['a name of 201 characters', { name: 'n'.repeat(201) }, 'TOO_LONG', 'name'],
    ['a name with a control character', { name: 'a\u0007b' }, 'INVALID_STRING', 'name'],
    ['a blank service', { service: '' }, 'BLANK', 'service'],
    ['a service of 101 characters', { service: 's'.repeat(101) }, 'TOO_LONG', 'service'],
    ['a service with a line break', { service: 'a\nb' }, 'INVALID_STRING', 'service'],
    ['a negative arrival delay', { arrivalDelaySeconds: -1 }, 'INVALID_ARRIVAL_DELAY', 'arrivalDelaySeconds'],
    ['an arrival delay over 30 days', { arrivalDelaySeconds: MAX_ARRIVAL_DELAY_SECONDS + 1 }, 'INVALID_ARRIVAL_DELAY', 'arrivalDelaySeconds'],
    ['an empty idempotency key', { idempotencyKey: '' }, 'INVALID_IDEMPOTENCY_KEY', 'idempotencyKey'],
  ])('refuses %s', async (_name, overrides, code, field) => {
    const before = await db.prisma.feature.count();
    const { payload } = await call(CREATE, { input: input(overrides) });
    expect(payload.feature).toBeNull();
    expect(payload.userErrors).toEqual([{ field: ['input', field], code, message: expect.any(String) }]);
    expect(await db.prisma.feature.count()).toBe(before);
  });

  it('accepts the edges: a one-letter key, 63 characters, "_", "." and "-", delays 0 and 30 days', async () => {
    for (const overrides of [{ key: 'z' }, { key: `a${'b'.repeat(62)}` }, { key: 'a_b.c-d9' }, { key: 'delay.zero', arrivalDelaySeconds: 0 }, { key: 'delay.max', arrivalDelaySeconds: MAX_ARRIVAL_DELAY_SECONDS }]) {
      await newFeature(overrides);
    }
  });

  it('keys are unique per realm (archived features keep theirs), not across realms', async () => {
    const first = await newFeature({ key: 'unique.one' });
    expect(codes((await call(CREATE, { input: input({ key: 'unique.one' }) })).payload)).toEqual(['DUPLICATE_KEY']);
    expect(codes((await call(CREATE, { input: input({ key: 'tx' }) })).payload)).toEqual(['DUPLICATE_KEY']);
    await call(ARCHIVE, { id: first.id });
    expect(codes((await call(CREATE, { input: input({ key: 'unique.one' }) })).payload)).toEqual(['DUPLICATE_KEY']);
    await newFeature({ key: 'unique.one' }, other.admin.key);
  });

  it('two concurrent creations of one key: one feature, one DUPLICATE_KEY', async () => {
    const results = await Promise.all([call(CREATE, { input: input({ key: 'race.key' }) }), call(CREATE, { input: input({ key: 'race.key' }) })]);
    expect(results.map((r) => codes(r.payload)).sort()).toEqual([[], ['DUPLICATE_KEY']]);
    expect(await db.prisma.feature.count({ where: { realmId: realm.realm.id, key: 'race.key' } })).toBe(1);
  });

  it('an idempotency key replays the same feature without a second audit entry; another input with it is IDEMPOTENCY_MISMATCH', async () => {
    const request = input({ key: 'idem.meter', idempotencyKey: 'create-idem-meter' });
    const first = (await call(CREATE, { input: request })).payload;
    const again = (await call(CREATE, { input: request })).payload;
    expect(again).toEqual(first);
    expect(await auditOf(first.feature.id)).toHaveLength(1);
    const mismatch = (await call(CREATE, { input: { ...request, name: 'Another name' } })).payload;
    expect(mismatch).toMatchObject({ feature: null, userErrors: [{ field: ['input', 'idempotencyKey'], code: 'IDEMPOTENCY_MISMATCH' }] });
    // Another realm's keys are another namespace.
    expect((await call(CREATE, { input: request }, other.admin.key)).payload.userErrors).toEqual([]);
  });
});

describe('updateFeature', () => {
  it('renames and changes service and delay, audited with only the changed fields', async () => {
    const feature = await newFeature({ name: 'Old', service: 'old' });
    const { payload } = await call(UPDATE, { input: { id: feature.id, name: 'New', service: 'new', arrivalDelaySeconds: 60 } });
    expect(payload).toMatchObject({ userErrors: [], feature: { name: 'New', service: 'new', arrivalDelaySeconds: 60, key: feature.key } });
    const [entry] = await auditOf(feature.id);
    expect(entry).toMatchObject({ action: 'feature.update', before: { name: 'Old', service: 'old', arrivalDelaySeconds: 7200 }, after: { name: 'New', service: 'new', arrivalDelaySeconds: 60 } });
  });

  it('unit and aggregation change while there is no usage; once there is, they are IMMUTABLE_FIELD', async () => {
    const feature = await newFeature();
    const changed = (await call(UPDATE, { input: { id: feature.id, unit: 'GB', aggregation: 'MAX' } })).payload;
    expect(changed).toMatchObject({ userErrors: [], feature: { unit: 'GB', aggregation: 'MAX' } });
    const uuid = Buffer.from(feature.id, 'base64url').toString().split(':')[1]!;
    await insertUsage(db.prisma, realm.realm.id, { metered: uuid }, [{ feature: 'metered', hour: new Date('2026-06-01T00:00:00Z'), quantity: '1' }]);
    const refused = (await call(UPDATE, { input: { id: feature.id, unit: 'ROW', aggregation: 'SUM', name: 'Renamed' } })).payload;
    expect(refused).toMatchObject({ feature: null });
    expect(refused.userErrors.map((e: any) => [e.field, e.code])).toEqual([
      [['input', 'unit'], 'IMMUTABLE_FIELD'],
      [['input', 'aggregation'], 'IMMUTABLE_FIELD'],
    ]);
    // Nothing half-written: the name did not change either.
    expect(await db.prisma.feature.findUniqueOrThrow({ where: { id: uuid } })).toMatchObject({ name: 'A meter', unit: 'GB', aggregation: 'MAX' });
    // Giving the same unit and aggregation is no change; the rest goes through.
    expect((await call(UPDATE, { input: { id: feature.id, unit: 'GB', aggregation: 'MAX', name: 'Renamed' } })).payload).toMatchObject({ userErrors: [], feature: { name: 'Renamed' } });
  });

  it('refuses bad values, and ids that are not this realm\'s features', async () => {
    const feature = await newFeature();
    const bad = async (changes: Record<string, unknown>) => codes((await call(UPDATE, { input: { id: feature.id, ...changes } })).payload);
    expect(await bad({ name: '' })).toEqual(['BLANK']);
    expect(await bad({ service: 'x'.repeat(101) })).toEqual(['TOO_LONG']);
    expect(await bad({ arrivalDelaySeconds: -5 })).toEqual(['INVALID_ARRIVAL_DELAY']);
    for (const id of [encodeId('Feature', other.features.tx.id), encodeId('Workspace', realm.tree.root.id), encodeId('Feature', '00000000-0000-7000-8000-000000000000'), 'not-an-id']) {
      expect((await call(UPDATE, { input: { id, name: 'x' } })).payload.userErrors).toEqual([{ field: ['input', 'id'], code: 'NOT_FOUND', message: 'No such feature.' }]);
    }
    expect(await db.prisma.feature.findUniqueOrThrow({ where: { id: other.features.tx.id } })).toMatchObject({ name: 'tx' });
  });
});

describe('archiveFeature', () => {
  it('hides the feature from Realm.features unless includeArchived; node(id) and its usage still answer', async () => {
    const feature = await newFeature({ key: 'archive.me' });
    const uuid = Buffer.from(feature.id, 'base64url').toString().split(':')[1]!;
    await insertUsage(db.prisma, realm.realm.id, { m: uuid }, [{ feature: 'm', hour: new Date('2026-06-02T00:00:00Z'), quantity: '5' }]);
    const { payload } = await call(ARCHIVE, { id: feature.id });
    expect(payload).toMatchObject({ userErrors: [], feature: { key: 'archive.me', archivedAt: NOW.toISOString() } });
    const keys = async (includeArchived?: boolean) =>
      (await graphql(app, `{ viewer { realm { features(first: 100${includeArchived === undefined ? '' : `, includeArchived: ${includeArchived}`}) { totalCount edges { node { key } } } } } }`, { key: realm.admin.key })).body.data.viewer.realm.features.edges.map(
        (e: any) => e.node.key,
      );
    expect(await keys()).not.toContain('archive.me');
    expect(await keys(false)).not.toContain('archive.me');
    expect(await keys(true)).toContain('archive.me');
    const node = await graphql(app, `{ node(id: "${feature.id}") { ... on Feature { key archivedAt usage(range: { from: "2026-06-01T00:00:00Z", to: "2026-06-03T00:00:00Z" }, granularity: MONTH) { points { quantity } } } } }`, {
      key: realm.admin.key,
    });
    expect(node.body.data.node).toEqual({ key: 'archive.me', archivedAt: NOW.toISOString(), usage: { points: [{ quantity: '5' }] } });
    const [entry] = await auditOf(feature.id);
    expect(entry).toMatchObject({ action: 'feature.archive', before: { archivedAt: null }, after: { archivedAt: NOW.toISOString() } });
    expect(codes((await call(ARCHIVE, { id: feature.id })).payload)).toEqual(['ALREADY_ARCHIVED']);
    expect(codes((await call(UPDATE, { input: { id: feature.id, name: 'x' } })).payload)).toEqual(['ARCHIVED']);
  });

  it('another realm\'s feature, or another type\'s id, is NOT_FOUND', async () => {
    for (const id of [encodeId('Feature', other.features.req.id), encodeId('Datastream', realm.streams[0]!.id)]) {
      expect((await call(ARCHIVE, { id })).payload.userErrors).toEqual([{ field: ['id'], code: 'NOT_FOUND', message: 'No such feature.' }]);
    }
    expect(await db.prisma.feature.findUniqueOrThrow({ where: { id: other.features.req.id } })).toMatchObject({ archivedAt: null });
  });
});

describe('authorization', () => {
  it('needs admin:write on a realm-wide key: keys:manage, billing:write, a scoped admin or a read-only key is FORBIDDEN', async () => {
    const feature = await newFeature();
    const keys = [
      (await createKey(db.prisma, realm.realm.id, { scopes: ['keys:manage', 'billing:write', 'billing:read', 'usage:read'] })).key,
      (await createKey(db.prisma, realm.realm.id, { scopes: ['admin:write'], workspaceId: realm.tree.left.id })).key,
      (await createKey(db.prisma, realm.realm.id, { scopes: ['usage:read'] })).key,
    ];
    for (const key of keys) {
      for (const [query, variables] of [
        [CREATE, { input: input() }],
        [UPDATE, { input: { id: feature.id, name: 'x' } }],
        [ARCHIVE, { id: feature.id }],
      ] as const) {
        const response = await graphql(app, query, { key, variables });
        expect(response.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      }
    }
    const adminOnly = (await createKey(db.prisma, realm.realm.id, { scopes: ['admin:write'] })).key;
    expect((await call(UPDATE, { input: { id: feature.id, name: 'By admin:write' } }, adminOnly)).payload.userErrors).toEqual([]);
  });
});

describe('statement counts', () => {
  it('are the same in a realm with two hundred features and usage as in a fresh one', async () => {
    const big = await createUsageRealm(db.prisma, 'UTC');
    await db.prisma.feature.createMany({ data: Array.from({ length: 200 }, (_, i) => ({ realmId: big.realm.id, key: `bulk.${i}`, name: `bulk ${i}`, service: 'bulk', unit: 'ROW', aggregation: 'SUM' })) });
    await insertUsage(db.prisma, big.realm.id, { tx: big.features.tx.id }, Array.from({ length: 300 }, (_, i) => ({ feature: 'tx', hour: new Date(Date.UTC(2026, 4, 1, i)), quantity: '1' })));
    const small = await createUsageRealm(db.prisma, 'UTC');
    const counts = async (target: typeof big) => {
      const created = await call(CREATE, { input: input({ idempotencyKey: `stmt-${target.realm.id}` }) }, target.admin.key);
      const updated = await call(UPDATE, { input: { id: created.payload.feature.id, name: 'renamed', unit: 'GB' } }, target.admin.key);
      expect(updated.payload.userErrors).toEqual([]);
      const archived = await call(ARCHIVE, { id: created.payload.feature.id }, target.admin.key);
      return [created.statements, updated.statements, archived.statements];
    };
    const [inBig, inSmall] = [await counts(big), await counts(small)];
    expect(inBig).toEqual(inSmall);
    expect(inBig.every((n) => n > 0 && n < 20)).toBe(true);
  });
});

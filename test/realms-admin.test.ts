import { readFileSync } from 'node:fs';
import { parse, validate } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperatorKey } from '../src/admin/operators.js';
import { Authenticator } from '../src/auth/authenticate.js';
import { SCOPES } from '../src/auth/scopes.js';
import { useUsageExportEndpoints } from '../src/exports/http.js';
import { encodeId } from '../src/global-id.js';
import { useIngestEndpoint } from '../src/ingest/http.js';
import { schema } from '../src/schema/index.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

let db: TestDatabase;
let app: App;
let operator: { key: string; prefix: string; id: string };
let realmA: Awaited<ReturnType<typeof createUsageRealm>>;
let realmB: Awaited<ReturnType<typeof createUsageRealm>>;
let counter = 0;

/** An hour of cache: only `forgetCachedRealm`/`forgetCachedKey` can make a change apply at once. */
const LONG_TTL_MS = 3_600_000;

beforeAll(async () => {
  db = await createTestDatabase();
  const authenticator = new Authenticator(db.prisma, LONG_TTL_MS);
  app = createApp({
    prisma: db.prisma,
    exposeQueryStats: true,
    authCacheTtlMs: LONG_TTL_MS,
    plugins: [useIngestEndpoint({ prisma: db.prisma, authenticator }), useUsageExportEndpoints({ prisma: db.prisma, authenticator })],
  });
  const created = await createOperatorKey(db.prisma, { name: 'test operator' });
  if ('userErrors' in created) throw new Error('operator key');
  operator = { key: created.secret, prefix: created.prefix, id: created.id };
  realmA = await createUsageRealm(db.prisma);
  realmB = await createUsageRealm(db.prisma);
});
afterAll(() => db?.destroy());

/** A GraphQL request with an X-Request-Id, answering the body and the statements it ran. */
async function call(query: string, options: { key: string; variables?: Record<string, unknown>; requestId?: string }) {
  const response = await app.fetch('http://gateway.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${options.key}`, ...(options.requestId ? { 'x-request-id': options.requestId } : {}) },
    body: JSON.stringify({ query, variables: options.variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: Array<{ message: string; extensions?: Record<string, any> }>; extensions?: Record<string, any> };
  return { status: response.status, body, statements: body.extensions?.queryStats?.sqlStatements as number };
}

const REALM = 'id name slug timeZone tier customRateLimit suspendedAt';
const CREATE = `mutation ($input: CreateRealmInput!) { createRealm(input: $input) { realm { ${REALM} } adminKey { id prefix scopes workspace { id } } adminKeySecret userErrors { field code message } } }`;
const UPDATE = `mutation ($input: UpdateRealmInput!) { updateRealm(input: $input) { realm { ${REALM} } userErrors { field code message } } }`;
const SUSPEND = `mutation ($id: ID!) { suspendRealm(id: $id) { realm { ${REALM} } userErrors { field code message } } }`;
const RESUME = `mutation ($id: ID!) { resumeRealm(id: $id) { realm { ${REALM} } userErrors { field code message } } }`;

const newSlug = () => `realm-${Date.now().toString(36)}-${++counter}`;

async function createRealm(input: Record<string, unknown>, key = operator.key, requestId?: string) {
  return call(CREATE, { key, variables: { input: { name: 'Globex', slug: newSlug(), ...input } }, requestId });
}

function auditEntries(where: { realmId?: string; targetId?: string; action?: string }) {
  return db.prisma.auditEntry.findMany({ where, orderBy: { id: 'asc' } });
}

describe('createRealm', () => {
  it('creates a realm and a realm-wide admin key with every realm scope, shown once, audited with the request id', async () => {
    const slug = newSlug();
    const created = await createRealm({ name: 'Globex Corp', slug, timeZone: 'America/New_York', tier: 'ENTERPRISE', customRateLimit: 5000 }, operator.key, 'req-create-realm-1');
    expect(created.status).toBe(200);
    const payload = created.body.data.createRealm;
    expect(payload.userErrors).toEqual([]);
    expect(payload.realm).toMatchObject({ name: 'Globex Corp', slug, timeZone: 'America/New_York', tier: 'ENTERPRISE', customRateLimit: 5000, suspendedAt: null });
    expect(payload.adminKey.scopes).toEqual([...SCOPES]);
    expect(payload.adminKey.scopes).not.toContain('realms:manage');
    expect(payload.adminKey.workspace).toBeNull();
    expect(payload.adminKeySecret.startsWith(`${payload.adminKey.prefix}_`)).toBe(true);

    // The admin key works, in its new realm, and can create further keys there.
    const viewer = await call('{ viewer { kind realm { id slug } workspace { id } } }', { key: payload.adminKeySecret });
    expect(viewer.body.data.viewer).toEqual({ kind: 'API_KEY', realm: { id: payload.realm.id, slug }, workspace: null });
    const more = await call('mutation { createApiKey(input: { name: "reader", scopes: ["usage:read"] }) { apiKey { prefix } userErrors { code } } }', { key: payload.adminKeySecret });
    expect(more.body.data.createApiKey.userErrors).toEqual([]);

    const realmId = Buffer.from(payload.realm.id, 'base64url').toString().split(':')[1]!;
    const entries = await auditEntries({ realmId });
    expect(entries.map((e) => e.action)).toEqual(['realm.create', 'apiKey.create', 'apiKey.create']);
    const [realmEntry, keyEntry] = entries;
    expect(realmEntry).toMatchObject({ actorType: 'OPERATOR', actorId: operator.id, actorPrefix: operator.prefix, requestId: 'req-create-realm-1', targetType: 'Realm', targetId: realmId });
    expect(realmEntry!.changes).toEqual({ before: null, after: { name: 'Globex Corp', slug, timeZone: 'America/New_York', tier: 'ENTERPRISE', customRateLimit: 5000, suspendedAt: null } });
    expect(keyEntry).toMatchObject({ actorType: 'OPERATOR', requestId: 'req-create-realm-1', targetType: 'ApiKey' });
    const secretPart = payload.adminKeySecret.slice(payload.adminKey.prefix.length + 1);
    expect(JSON.stringify(entries.map((e) => e.changes))).not.toContain(secretPart);
    expect(JSON.stringify(entries.map((e) => e.changes))).not.toMatch(/secretHash|[0-9a-f]{64}/);
  });

  it('defaults: UTC, FREE, no custom limit', async () => {
    const { body } = await createRealm({});
    expect(body.data.createRealm.realm).toMatchObject({ timeZone: 'UTC', tier: 'FREE', customRateLimit: null });
  });

  it('an idempotency key makes a retry answer the same realm and key, without the secret; another input is IDEMPOTENCY_MISMATCH', async () => {
    const input = { name: 'Initech', slug: newSlug(), idempotencyKey: `onboard-initech-${counter}` };
    const first = (await call(CREATE, { key: operator.key, variables: { input } })).body.data.createRealm;
    expect(first.userErrors).toEqual([]);
    const realmsBefore = await db.prisma.realm.count();
    const auditBefore = await db.prisma.auditEntry.count();
    const replay = (await call(CREATE, { key: operator.key, variables: { input } })).body.data.createRealm;
    expect(replay).toEqual({ ...first, adminKeySecret: null });
    expect(await db.prisma.realm.count()).toBe(realmsBefore);
    expect(await db.prisma.auditEntry.count()).toBe(auditBefore);

    const mismatch = (await call(CREATE, { key: operator.key, variables: { input: { ...input, name: 'Initech 2' } } })).body.data.createRealm;
    expect(mismatch).toMatchObject({ realm: null, adminKey: null, adminKeySecret: null, userErrors: [{ field: ['input', 'idempotencyKey'], code: 'IDEMPOTENCY_MISMATCH' }] });
    const invalid = (await call(CREATE, { key: operator.key, variables: { input: { ...input, idempotencyKey: '' } } })).body.data.createRealm;
    expect(invalid.userErrors).toEqual([expect.objectContaining({ code: 'INVALID_IDEMPOTENCY_KEY' })]);
    expect(await db.prisma.realm.count()).toBe(realmsBefore);
  });

  it.each([
    ['an empty name', { name: '  ' }, ['input', 'name'], 'BLANK'],
    ['an over-long name', { name: 'x'.repeat(201) }, ['input', 'name'], 'TOO_LONG'],
    ['a control character in the name', { name: 'a\u0007b' }, ['input', 'name'], 'INVALID_STRING'],
    ['an upper-case slug', { slug: 'Globex' }, ['input', 'slug'], 'INVALID_KEY'],
    ['a two-character slug', { slug: 'ab' }, ['input', 'slug'], 'INVALID_KEY'],
    ['a 64-character slug', { slug: 'a'.repeat(64) }, ['input', 'slug'], 'INVALID_KEY'],
    ['a slug starting with a hyphen', { slug: '-globex' }, ['input', 'slug'], 'INVALID_KEY'],
    ['a slug with an underscore', { slug: 'glo_bex' }, ['input', 'slug'], 'INVALID_KEY'],
    ['an unknown time zone', { timeZone: 'Mars/Olympus_Mons' }, ['input', 'timeZone'], 'INVALID_TIME_ZONE'],
    ['a custom rate limit on FREE', { customRateLimit: 500 }, ['input', 'customRateLimit'], 'INVALID_RATE_LIMIT'],
    ['a custom rate limit of 0', { tier: 'ENTERPRISE', customRateLimit: 0 }, ['input', 'customRateLimit'], 'INVALID_RATE_LIMIT'],
    ['a custom rate limit over 1,000,000', { tier: 'ENTERPRISE', customRateLimit: 1_000_001 }, ['input', 'customRateLimit'], 'INVALID_RATE_LIMIT'],
  ])('%s is a user error and writes nothing', async (_name, input, field, code) => {
    const before = await Promise.all([db.prisma.realm.count(), db.prisma.apiKey.count(), db.prisma.auditEntry.count()]);
    const { body } = await createRealm(input);
    expect(body.errors).toBeUndefined();
    expect(body.data.createRealm).toEqual({ realm: null, adminKey: null, adminKeySecret: null, userErrors: [{ field, code, message: expect.any(String) }] });
    expect(await Promise.all([db.prisma.realm.count(), db.prisma.apiKey.count(), db.prisma.auditEntry.count()])).toEqual(before);
  });

  it('a NUL anywhere in the input is refused before the mutation runs (BAD_USER_INPUT, INVALID_STRING)', async () => {
    const before = await db.prisma.realm.count();
    const { body } = await createRealm({ name: 'a\u0000b' });
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_STRING' });
    expect(await db.prisma.realm.count()).toBe(before);
  });

  it('a slug is unique: DUPLICATE_KEY, also against realms made outside the API', async () => {
    const before = await db.prisma.realm.count();
    const { body } = await createRealm({ slug: realmA.realm.slug });
    expect(body.data.createRealm.userErrors).toEqual([{ field: ['input', 'slug'], code: 'DUPLICATE_KEY', message: expect.stringContaining(realmA.realm.slug) }]);
    expect(await db.prisma.realm.count()).toBe(before);
  });

  it('two concurrent creates of one slug: exactly one realm, the other DUPLICATE_KEY', async () => {
    const slug = newSlug();
    const answers = await Promise.all([createRealm({ slug }), createRealm({ slug })]);
    const codes = answers.map((a) => a.body.data.createRealm.userErrors.map((e: { code: string }) => e.code).join()).sort();
    expect(codes).toEqual(['', 'DUPLICATE_KEY']);
    expect(await db.prisma.realm.count({ where: { slug } })).toBe(1);
  });
});

describe('who may manage realms', () => {
  const operatorOnly = [
    ['createRealm', () => createRealm({}, realmA.admin.key)],
    ['updateRealm', () => call(UPDATE, { key: realmA.admin.key, variables: { input: { id: encodeId('Realm', realmA.realm.id), name: 'mine now' } } })],
    ['suspendRealm', () => call(SUSPEND, { key: realmA.admin.key, variables: { id: encodeId('Realm', realmB.realm.id) } })],
    ['resumeRealm', () => call(RESUME, { key: realmA.admin.key, variables: { id: encodeId('Realm', realmA.realm.id) } })],
    ['realms', () => call('{ realms(first: 5) { edges { node { id } } } }', { key: realmA.admin.key })],
    ['auditLog', () => call('{ auditLog(first: 5) { edges { node { action } } } }', { key: realmA.admin.key })],
  ] as const;

  it.each(operatorOnly)("%s: a realm's key with every scope gets FORBIDDEN, and nothing changes", async (_field, run) => {
    const before = await db.prisma.realm.findMany({ orderBy: { id: 'asc' } });
    const { body } = await run();
    expect(body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(body.data?.[_field] ?? null).toBeNull();
    expect(await db.prisma.realm.findMany({ orderBy: { id: 'asc' } })).toEqual(before);
  });

  it("a realm's key never sees another realm: node(id) and realm(id) answer null", async () => {
    const other = encodeId('Realm', realmB.realm.id);
    const { body } = await call(`{ node(id: "${other}") { id } realm(id: "${other}") { id } own: realm { slug } }`, { key: realmA.admin.key });
    expect(body.data).toEqual({ node: null, realm: null, own: { slug: realmA.realm.slug } });
  });

  it("an operator sees every realm (node, realm(id), realms) but none of a realm's contents", async () => {
    const id = encodeId('Realm', realmB.realm.id);
    const { body } = await call(
      `{ node(id: "${id}") { ... on Realm { slug } } realm(id: "${id}") { slug suspendedAt workspaces(first: 5) { totalCount } features(first: 5) { totalCount } } own: realm { id } }`,
      { key: operator.key },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({ node: { slug: realmB.realm.slug }, realm: { slug: realmB.realm.slug, suspendedAt: null, workspaces: { totalCount: 0 }, features: { totalCount: 0 } }, own: null });
    for (const field of ['apiKeys(first: 5) { totalCount }', 'usage(timeframe: LAST_7_DAYS) { totals { quantity } }', 'contracts(first: 5) { totalCount }']) {
      const denied = await call(`{ realm(id: "${id}") { ${field} } }`, { key: operator.key });
      expect(denied.body.errors?.[0]?.extensions?.code, field).toBe('FORBIDDEN');
    }
    const workspace = encodeId('Workspace', realmB.tree.root.id);
    expect((await call(`{ node(id: "${workspace}") { id } }`, { key: operator.key })).body.data).toEqual({ node: null });
  });

  it('an operator is a viewer without a realm, with realms:manage only', async () => {
    const { body } = await call('{ viewer { kind keyPrefix scopes apiKey { id } realm { id } workspace { id } } }', { key: operator.key });
    expect(body.errors).toBeUndefined();
    expect(body.data.viewer).toEqual({ kind: 'OPERATOR', keyPrefix: operator.prefix, scopes: ['realms:manage'], apiKey: null, realm: null, workspace: null });
  });

  it("an operator cannot create a realm's keys; no realm key can hold or grant realms:manage", async () => {
    const byOperator = await call('mutation { createApiKey(input: { name: "x", scopes: ["usage:read"] }) { apiKey { id } userErrors { code } } }', { key: operator.key });
    expect(byOperator.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const escalate = await call('mutation { createApiKey(input: { name: "x", scopes: ["realms:manage"] }) { apiKey { id } userErrors { code } } }', { key: realmA.admin.key });
    expect(escalate.body.data.createApiKey).toEqual({ apiKey: null, userErrors: [{ code: 'INVALID_SCOPE' }] });
    const forged = await createKey(db.prisma, realmA.realm.id, { scopes: ['realms:manage', 'keys:manage'] });
    const withForged = await call('{ realms(first: 1) { totalCount } }', { key: forged.key });
    expect(withForged.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('realms: every realm, oldest first, paged, filtered by suspension', async () => {
    const all = await db.prisma.realm.findMany({ orderBy: { id: 'asc' }, select: { id: true, slug: true, suspendedAt: true } });
    const page = await call('{ realms(first: 2) { totalCount pageInfo { hasNextPage endCursor } edges { node { slug } } } }', { key: operator.key });
    expect(page.body.data.realms.totalCount).toBe(all.length);
    expect(page.body.data.realms.edges.map((e: { node: { slug: string } }) => e.node.slug)).toEqual(all.slice(0, 2).map((r) => r.slug));
    const next = await call(`{ realms(first: 100, after: "${page.body.data.realms.pageInfo.endCursor}") { edges { node { slug } } } }`, { key: operator.key });
    expect(next.body.data.realms.edges.map((e: { node: { slug: string } }) => e.node.slug)).toEqual(all.slice(2).map((r) => r.slug));
    const active = await call('{ realms(first: 100, filter: { suspended: false }) { totalCount } suspended: realms(first: 100, filter: { suspended: true }) { totalCount } }', { key: operator.key });
    expect(active.body.data.realms.totalCount).toBe(all.filter((r) => !r.suspendedAt).length);
    expect(active.body.data.suspended.totalCount).toBe(all.filter((r) => r.suspendedAt).length);
  });
});

describe('updateRealm', () => {
  it('renames, moves the time zone and the tier; the slug stays; audited with what changed', async () => {
    const created = (await createRealm({ tier: 'ENTERPRISE', customRateLimit: 2000 })).body.data.createRealm;
    const id = created.realm.id;
    const updated = await call(UPDATE, { key: operator.key, variables: { input: { id, name: 'Globex Intl', timeZone: 'Asia/Tokyo' } }, requestId: 'req-update-1' });
    expect(updated.body.data.updateRealm).toEqual({ realm: { ...created.realm, name: 'Globex Intl', timeZone: 'Asia/Tokyo' }, userErrors: [] });
    const realmId = Buffer.from(id, 'base64url').toString().split(':')[1]!;
    const [entry] = await auditEntries({ realmId, action: 'realm.update' });
    expect(entry).toMatchObject({ requestId: 'req-update-1', actorType: 'OPERATOR', changes: { before: { name: 'Globex', timeZone: 'UTC' }, after: { name: 'Globex Intl', timeZone: 'Asia/Tokyo' } } });

    const keepsCustom = await call(UPDATE, { key: operator.key, variables: { input: { id, tier: 'STARTER' } } });
    expect(keepsCustom.body.data.updateRealm.userErrors).toEqual([{ field: ['input', 'tier'], code: 'INVALID_RATE_LIMIT', message: expect.stringContaining('customRateLimit: null') }]);
    const moved = await call(UPDATE, { key: operator.key, variables: { input: { id, tier: 'STARTER', customRateLimit: null } } });
    expect(moved.body.data.updateRealm.realm).toMatchObject({ tier: 'STARTER', customRateLimit: null });

    const unchanged = await auditEntries({ realmId, action: 'realm.update' });
    await call(UPDATE, { key: operator.key, variables: { input: { id, name: 'Globex Intl' } } });
    expect(await auditEntries({ realmId, action: 'realm.update' })).toHaveLength(unchanged.length);
  });

  it("a new tier applies to the realm's keys at once", async () => {
    const created = (await createRealm({ tier: 'FREE' })).body.data.createRealm;
    const limited = createApp({ prisma: db.prisma, authCacheTtlMs: LONG_TTL_MS, rateLimiter: (await import('../src/rate-limit/limiter.js')).createMemoryRateLimiter() });
    const limit = async () => (await graphql(limited, '{ viewer { rateLimit { limit } } }', { key: created.adminKeySecret })).body.data.viewer.rateLimit.limit;
    expect(await limit()).toBe(60);
    await call(UPDATE, { key: operator.key, variables: { input: { id: created.realm.id, tier: 'PROFESSIONAL' } } });
    expect(await limit()).toBe(1000);
  });

  it.each([
    ['an unknown realm', () => ({ id: encodeId('Realm', '00000000-0000-7000-8000-000000000000'), name: 'x' }), ['input', 'id'], 'NOT_FOUND'],
    ['an id of another type', () => ({ id: encodeId('Workspace', realmA.tree.root.id), name: 'x' }), ['input', 'id'], 'NOT_FOUND'],
    ['a malformed id', () => ({ id: 'not-an-id', name: 'x' }), ['input', 'id'], 'NOT_FOUND'],
    ['an empty name', () => ({ id: encodeId('Realm', realmB.realm.id), name: '' }), ['input', 'name'], 'BLANK'],
    ['an unknown time zone', () => ({ id: encodeId('Realm', realmB.realm.id), timeZone: 'Europe/Atlantis' }), ['input', 'timeZone'], 'INVALID_TIME_ZONE'],
    ['a custom limit on a FREE realm', () => ({ id: encodeId('Realm', realmB.realm.id), customRateLimit: 100 }), ['input', 'customRateLimit'], 'INVALID_RATE_LIMIT'],
  ])('%s is a user error and changes nothing', async (_name, input, field, code) => {
    const before = await db.prisma.realm.findUnique({ where: { id: realmB.realm.id } });
    const { body } = await call(UPDATE, { key: operator.key, variables: { input: input() } });
    expect(body.data.updateRealm).toEqual({ realm: null, userErrors: [{ field, code, message: expect.any(String) }] });
    expect(await db.prisma.realm.findUnique({ where: { id: realmB.realm.id } })).toEqual(before);
  });

  it('the slug cannot change: UpdateRealmInput has no slug', async () => {
    const { body } = await call(UPDATE, { key: operator.key, variables: { input: { id: encodeId('Realm', realmB.realm.id), slug: 'renamed' } } });
    expect(body.errors?.[0]?.message).toMatch(/slug/);
  });
});

describe('suspension', () => {
  const HOUR = new Date(Date.now() - 3 * 3_600_000);

  async function routes(key: string) {
    const graphqlAnswer = await call('{ viewer { realm { slug } } }', { key });
    const ingest = await app.fetch('http://gateway.test/ingest', {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-ndjson' },
      body: JSON.stringify({ idempotencyKey: `suspension-${++counter}`, feature: 'tx', timestamp: HOUR.toISOString(), quantity: '1' }),
    });
    const month = new Date().toISOString().slice(0, 7);
    const monthly = await app.fetch(`http://gateway.test/exports/usage/monthly.csv?month=${month}`, { headers: { authorization: `Bearer ${key}` } });
    const daily = await app.fetch('http://gateway.test/exports/usage/daily.csv', { headers: { authorization: `Bearer ${key}` } });
    const codeOf = async (response: Response) => (response.status === 403 ? ((await response.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]!.extensions.code : response.status);
    return {
      graphql: graphqlAnswer.status === 403 ? graphqlAnswer.body.errors?.[0]?.extensions?.code : graphqlAnswer.status,
      graphqlData: graphqlAnswer.body.data ?? null,
      ingest: await codeOf(ingest),
      monthly: await codeOf(monthly),
      daily: await codeOf(daily),
    };
  }

  it("refuses every route of a suspended realm's keys at once (403 REALM_SUSPENDED), deletes nothing, and resuming restores access", async () => {
    const realm = await createUsageRealm(db.prisma);
    const id = encodeId('Realm', realm.realm.id);
    const working = { graphql: 200, graphqlData: { viewer: { realm: { slug: realm.realm.slug } } }, ingest: 200, monthly: 200, daily: 200 };
    // Every key's row is now in the hour-long caches.
    expect(await routes(realm.admin.key)).toEqual(working);
    const counts = () => Promise.all([db.prisma.workspace.count({ where: { realmId: realm.realm.id } }), db.prisma.apiKey.count({ where: { realmId: realm.realm.id } }), db.prisma.usageEvent.count({ where: { realmId: realm.realm.id } })]);
    const before = await counts();

    const suspended = await call(SUSPEND, { key: operator.key, variables: { id }, requestId: 'req-suspend-1' });
    expect(suspended.body.data.suspendRealm.userErrors).toEqual([]);
    expect(suspended.body.data.suspendRealm.realm.suspendedAt).not.toBeNull();
    const refused = { graphql: 'REALM_SUSPENDED', graphqlData: null, ingest: 'REALM_SUSPENDED', monthly: 'REALM_SUSPENDED', daily: 'REALM_SUSPENDED' };
    expect(await routes(realm.admin.key)).toEqual(refused);
    expect(await routes(realm.scoped.key)).toEqual(refused);
    expect(await counts()).toEqual(before);
    // Other realms are untouched.
    expect((await routes(realmA.admin.key)).graphql).toBe(200);

    // The operator still sees it, listed among the suspended.
    const listed = await call('{ realms(first: 100, filter: { suspended: true }) { edges { node { id } } } }', { key: operator.key });
    expect(listed.body.data.realms.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(id);

    // Suspending again changes nothing and logs nothing.
    await call(SUSPEND, { key: operator.key, variables: { id } });
    expect((await auditEntries({ realmId: realm.realm.id, action: 'realm.suspend' })).map((e) => e.requestId)).toEqual(['req-suspend-1']);

    const resumed = await call(RESUME, { key: operator.key, variables: { id }, requestId: 'req-resume-1' });
    expect(resumed.body.data.resumeRealm.realm.suspendedAt).toBeNull();
    expect(await routes(realm.admin.key)).toEqual(working);
    const entries = await auditEntries({ realmId: realm.realm.id });
    expect(entries.map((e) => [e.action, e.requestId, e.actorType])).toEqual([
      ['realm.suspend', 'req-suspend-1', 'OPERATOR'],
      ['realm.resume', 'req-resume-1', 'OPERATOR'],
    ]);
    expect(entries[0]!.changes).toEqual({ before: { suspendedAt: null }, after: { suspendedAt: expect.any(String) } });
  });

  it('a suspension made by another process applies within the key cache TTL', async () => {
    const realm = await createUsageRealm(db.prisma);
    const ttl = 1500;
    const elsewhere = createApp({ prisma: db.prisma, authCacheTtlMs: ttl });
    const status = async () => (await graphql(elsewhere, '{ viewer { scopes } }', { key: realm.admin.key })).status;
    expect(await status()).toBe(200);
    // Written straight to the database, as another gateway process would.
    await db.prisma.realm.update({ where: { id: realm.realm.id }, data: { suspendedAt: new Date(Date.now() - 1000) } });
    expect(await status()).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, ttl + 100));
    expect(await status()).toBe(403);
  });

  it.each([
    ['suspendRealm', SUSPEND],
    ['resumeRealm', RESUME],
  ])('%s of an unknown or malformed id is NOT_FOUND', async (field, mutation) => {
    for (const id of [encodeId('Realm', '00000000-0000-7000-8000-000000000000'), encodeId('Workspace', realmA.tree.root.id), 'nope']) {
      const { body } = await call(mutation, { key: operator.key, variables: { id } });
      expect(body.data[field]).toEqual({ realm: null, userErrors: [{ field: ['id'], code: 'NOT_FOUND', message: 'No such realm.' }] });
    }
  });
});

describe('API key mutations: audit and idempotency', () => {
  const CREATE_KEY = 'mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id prefix scopes } userErrors { field code } } }';

  it('createApiKey, rotateApiKey and revokeApiKey write audit entries with the request id, never a secret', async () => {
    const created = await call(CREATE_KEY, { key: realmA.admin.key, variables: { input: { name: 'audited', scopes: ['usage:read'], workspaceId: encodeId('Workspace', realmA.tree.left.id) } }, requestId: 'req-key-create' });
    const { apiKey, secret } = created.body.data.createApiKey;
    const keyId = Buffer.from(apiKey.id, 'base64url').toString().split(':')[1]!;
    const rotated = await call(`mutation { rotateApiKey(id: "${apiKey.id}", gracePeriodSeconds: 60) { secret userErrors { code } } }`, { key: realmA.admin.key, requestId: 'req-key-rotate' });
    await call(`mutation { revokeApiKey(id: "${apiKey.id}") { userErrors { code } } }`, { key: realmA.admin.key, requestId: 'req-key-revoke' });
    await call(`mutation { revokeApiKey(id: "${apiKey.id}") { userErrors { code } } }`, { key: realmA.admin.key, requestId: 'req-key-revoke-again' });

    const entries = await auditEntries({ targetId: keyId });
    expect(entries.map((e) => [e.action, e.requestId, e.realmId, e.actorType, e.actorId])).toEqual([
      ['apiKey.create', 'req-key-create', realmA.realm.id, 'API_KEY', realmA.admin.record.id],
      ['apiKey.rotate', 'req-key-rotate', realmA.realm.id, 'API_KEY', realmA.admin.record.id],
      ['apiKey.revoke', 'req-key-revoke', realmA.realm.id, 'API_KEY', realmA.admin.record.id],
    ]);
    expect(entries[0]!.changes).toEqual({
      before: null,
      after: { name: 'audited', prefix: apiKey.prefix, scopes: ['usage:read'], workspaceId: encodeId('Workspace', realmA.tree.left.id), tier: null, customRateLimit: null, revokedAt: null },
    });
    expect(entries[1]!.changes).toEqual({ before: { previousSecretExpiresAt: null, secretRotatedAt: null }, after: { previousSecretExpiresAt: expect.any(String), secretRotatedAt: expect.any(String) } });
    expect(entries[2]!.changes).toEqual({ before: { revokedAt: null }, after: { revokedAt: expect.any(String) } });
    const text = JSON.stringify(entries.map((e) => ({ ...e, id: String(e.id) })));
    for (const s of [secret, rotated.body.data.rotateApiKey.secret]) expect(text).not.toContain(s.slice(apiKey.prefix.length + 1));
    expect(text).not.toMatch(/[0-9a-f]{64}/);
  });

  it('createApiKey with an idempotency key: a replay answers the same key with secret null; another input is IDEMPOTENCY_MISMATCH', async () => {
    const input = { name: 'ci', scopes: ['usage:write', 'usage:read'], idempotencyKey: 'ci-key-1' };
    const first = (await call(CREATE_KEY, { key: realmA.admin.key, variables: { input } })).body.data.createApiKey;
    expect(first.secret).toEqual(expect.any(String));
    const keysBefore = await db.prisma.apiKey.count();
    const auditBefore = await db.prisma.auditEntry.count();
    // The same scopes in another order are the same input.
    const replay = (await call(CREATE_KEY, { key: realmA.admin.key, variables: { input: { ...input, scopes: ['usage:read', 'usage:write'] } } })).body.data.createApiKey;
    expect(replay).toEqual({ ...first, secret: null });
    expect(await db.prisma.apiKey.count()).toBe(keysBefore);
    expect(await db.prisma.auditEntry.count()).toBe(auditBefore);
    const mismatch = (await call(CREATE_KEY, { key: realmA.admin.key, variables: { input: { ...input, name: 'ci 2' } } })).body.data.createApiKey;
    expect(mismatch).toEqual({ secret: null, apiKey: null, userErrors: [{ field: ['input', 'idempotencyKey'], code: 'IDEMPOTENCY_MISMATCH' }] });
    // Idempotency keys are per realm: realm B's same key creates its own.
    const inB = (await call(CREATE_KEY, { key: realmB.admin.key, variables: { input } })).body.data.createApiKey;
    expect(inB.userErrors).toEqual([]);
    expect(inB.secret).toEqual(expect.any(String));
    expect(inB.apiKey.id).not.toBe(first.apiKey.id);
  });
});

describe('statement counts', () => {
  it('are constant in the number of realms, keys and workspaces', async () => {
    const create = async () => (await createRealm({ idempotencyKey: `count-${++counter}` })).statements;
    const suspend = async (id: string) => (await call(SUSPEND, { key: operator.key, variables: { id } })).statements;
    const list = async () => (await call('{ realms(first: 3) { totalCount edges { node { slug suspendedAt } } } }', { key: operator.key })).statements;
    const createKeyIn = async () => (await call(CREATE_KEY_SMALL, { key: realmA.admin.key, variables: { input: { name: `k${++counter}`, scopes: ['usage:read'], workspaceId: encodeId('Workspace', realmA.tree.leaf.id), idempotencyKey: `k-${counter}` } } })).statements;
    const first = { create: await create(), list: await list(), key: await createKeyIn() };
    const firstSuspend = await suspend((await createRealm({})).body.data.createRealm.realm.id);
    for (let i = 0; i < 15; i++) await createRealm({});
    await Promise.all(Array.from({ length: 20 }, () => createKey(db.prisma, realmA.realm.id)));
    expect({ create: await create(), list: await list(), key: await createKeyIn() }).toEqual(first);
    expect(await suspend((await createRealm({})).body.data.createRealm.realm.id)).toBe(firstSuspend);
  });
});

const CREATE_KEY_SMALL = 'mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } userErrors { code } } }';

describe('README "Operators and realms"', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = /^## Operators and realms\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? '';
  // Marked "# with an operator key": test/readme.test.ts runs the other examples with the demo's realm key.
  const examples = [...section.matchAll(/^```graphql\n(# with an operator key\n[\s\S]*?)^```/gm)].map((m) => m[1]!);

  it('has operator examples', () => expect(examples.length).toBeGreaterThanOrEqual(2));

  it.each(examples.map((body, i) => [i, body]))('example %i is valid and answers with data for an operator', async (_i, body) => {
    expect(validate(schema, parse(body as string)).map((e) => e.message)).toEqual([]);
    const { body: answer } = await call(body as string, { key: operator.key });
    expect(answer.errors).toBeUndefined();
    expect(JSON.stringify(answer.data)).not.toMatch(/"userErrors":\[\{/);
    expect(JSON.stringify(answer.data)).toMatch(/"slug":"/);
  });
});

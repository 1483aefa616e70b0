import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../src/global-id.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
let other: Awaited<ReturnType<typeof createUsageRealm>>;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma });
  realm = await createUsageRealm(db.prisma);
  other = await createUsageRealm(db.prisma);
});
afterAll(() => db?.destroy());

const CREATE = `mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id name prefix scopes workspace { name } } userErrors { field code message } } }`;

async function create(input: Record<string, unknown>, key = realm.admin.key) {
  return (await graphql(app, CREATE, { key, variables: { input } })).body;
}

const whoAmI = async (key: string) => (await graphql(app, '{ viewer { apiKey { name } } }', { key })).status;

describe('key management', () => {
  it('createApiKey shows the secret once; afterwards only the prefix', async () => {
    const body = await create({ name: 'reporting', scopes: ['usage:read'] });
    const { secret, apiKey, userErrors } = body.data.createApiKey;
    expect(userErrors).toEqual([]);
    expect(secret.startsWith(`${apiKey.prefix}_`)).toBe(true);
    expect(await whoAmI(secret)).toBe(200);
    const listed = await graphql(app, '{ realm { apiKeys(first: 50) { edges { node { prefix name } } } } }', { key: realm.admin.key });
    expect(JSON.stringify(listed.body)).not.toContain(secret);
    expect(JSON.stringify(listed.body)).toContain(apiKey.prefix);
  });

  it('revokeApiKey takes effect on the very next request', async () => {
    const { secret, apiKey } = (await create({ name: 'short-lived', scopes: ['usage:read'] })).data.createApiKey;
    expect(await whoAmI(secret)).toBe(200);
    const revoked = await graphql(app, `mutation { revokeApiKey(id: "${apiKey.id}") { apiKey { revokedAt } userErrors { code } } }`, { key: realm.admin.key });
    expect(revoked.body.data.revokeApiKey.apiKey.revokedAt).not.toBeNull();
    expect(await whoAmI(secret)).toBe(401);
  });

  it('rotateApiKey issues a new secret; the old one works for the grace period only', async () => {
    const { secret: first, apiKey } = (await create({ name: 'rotating', scopes: ['usage:read'] })).data.createApiKey;
    const rotate = async (grace: number) =>
      (await graphql(app, `mutation { rotateApiKey(id: "${apiKey.id}", gracePeriodSeconds: ${grace}) { secret apiKey { prefix } userErrors { code } } }`, { key: realm.admin.key })).body.data.rotateApiKey;
    const withGrace = await rotate(3600);
    expect(withGrace.apiKey.prefix).toBe(apiKey.prefix);
    expect(await whoAmI(withGrace.secret)).toBe(200);
    expect(await whoAmI(first)).toBe(200);
    const immediate = await rotate(0);
    expect(await whoAmI(immediate.secret)).toBe(200);
    expect(await whoAmI(withGrace.secret)).toBe(401);
    expect(await whoAmI(first)).toBe(401);
    expect((await rotate(8 * 86_400)).userErrors).toEqual([{ code: 'INVALID_GRACE_PERIOD' }]);
  });

  it.each([
    ['an unknown scope', { name: 'x', scopes: ['usage:everything'] }, 'INVALID_SCOPE'],
    ['no scope', { name: 'x', scopes: [] }, 'INVALID_SCOPE'],
    ['an empty name', { name: ' ', scopes: ['usage:read'] }, 'INVALID_NAME'],
    ['a negative rate limit', { name: 'x', scopes: ['usage:read'], customRateLimit: -5 }, 'INVALID_RATE_LIMIT'],
  ])('%s is a user error', async (_name, input, code) => {
    const body = await create(input);
    expect(body.data.createApiKey).toMatchObject({ secret: null, apiKey: null, userErrors: [{ code }] });
  });

  it('no key can grant scopes or a workspace range wider than its own', async () => {
    const manager = await createKey(db.prisma, realm.realm.id, { workspaceId: realm.tree.left.id, scopes: ['usage:read', 'keys:manage'] });
    const wider = await create({ name: 'x', scopes: ['usage:write'], workspaceId: encodeId('Workspace', realm.tree.leaf.id) }, manager.key);
    expect(wider.data.createApiKey.userErrors).toEqual([{ field: ['input', 'scopes'], code: 'SCOPE_ESCALATION', message: expect.stringContaining('usage:write') }]);
    const realmWide = await create({ name: 'x', scopes: ['usage:read'] }, manager.key);
    expect(realmWide.data.createApiKey.userErrors[0].code).toBe('SCOPE_ESCALATION');
    const sideways = await create({ name: 'x', scopes: ['usage:read'], workspaceId: encodeId('Workspace', realm.tree.right.id) }, manager.key);
    expect(sideways.data.createApiKey.userErrors[0].code).toBe('NOT_FOUND');
    const below = await create({ name: 'x', scopes: ['usage:read'], workspaceId: encodeId('Workspace', realm.tree.leaf.id) }, manager.key);
    expect(below.data.createApiKey).toMatchObject({ userErrors: [], apiKey: { workspace: { name: 'leaf' } } });
  });

  it("another realm's key cannot be revoked or rotated: it does not exist for the caller", async () => {
    const theirs = encodeId('ApiKey', other.admin.record.id);
    const revoke = await graphql(app, `mutation { revokeApiKey(id: "${theirs}") { apiKey { id } userErrors { code } } }`, { key: realm.admin.key });
    expect(revoke.body.data.revokeApiKey).toEqual({ apiKey: null, userErrors: [{ code: 'NOT_FOUND' }] });
    expect(await whoAmI(other.admin.key)).toBe(200);
    const rotate = await graphql(app, `mutation { rotateApiKey(id: "${theirs}") { secret userErrors { code } } }`, { key: realm.admin.key });
    expect(rotate.body.data.rotateApiKey).toEqual({ secret: null, userErrors: [{ code: 'NOT_FOUND' }] });
  });

  it('managing keys needs keys:manage', async () => {
    const reader = await createKey(db.prisma, realm.realm.id, { scopes: ['usage:read'] });
    const body = await create({ name: 'x', scopes: ['usage:read'] }, reader.key);
    expect(body.errors?.[0]).toMatchObject({ extensions: { code: 'FORBIDDEN' }, message: expect.stringContaining('keys:manage') });
  });
});

describe('authorization matrix: every node type, root field and usage filter, for four kinds of caller', () => {
  type Caller = 'realm-wide' | 'workspace-scoped' | 'other realm' | 'revoked';
  const callers = (): Record<Caller, string> => ({
    'realm-wide': realm.admin.key,
    'workspace-scoped': realm.scoped.key,
    'other realm': other.admin.key,
    revoked: '',
  });
  let revokedKey = '';
  beforeAll(async () => {
    revokedKey = (await createKey(db.prisma, realm.realm.id, { revokedAt: new Date(Date.now() - 1000) })).key;
  });

  async function nodes(caller: Caller) {
    const contract = await db.prisma.contract.upsert({
      where: { id: '00000000-0000-7000-8000-000000000001' },
      update: {},
      create: { id: '00000000-0000-7000-8000-000000000001', realmId: realm.realm.id, name: 'c', startsAt: new Date('2026-01-01'), endsAt: new Date('2027-01-01') },
    });
    const license =
      (await db.prisma.license.findFirst({ where: { contractId: contract.id, featureId: realm.features.tx.id } })) ??
      (await db.prisma.license.create({ data: { contractId: contract.id, featureId: realm.features.tx.id, quantityPerMonth: '10' } }));
    const ids: Record<string, string> = {
      realm: encodeId('Realm', realm.realm.id),
      'workspace (scope root)': encodeId('Workspace', realm.tree.left.id),
      'workspace (below scope)': encodeId('Workspace', realm.tree.leaf.id),
      'workspace (above scope)': encodeId('Workspace', realm.tree.root.id),
      'workspace (beside scope)': encodeId('Workspace', realm.tree.right.id),
      'datastream (in scope)': encodeId('Datastream', realm.streams[0]!.id),
      'datastream (beside scope)': encodeId('Datastream', realm.streams[2]!.id),
      project: encodeId('Project', realm.project.id),
      'app (in scope)': encodeId('App', realm.apps[0]!.id),
      'app (beside scope)': encodeId('App', realm.apps[1]!.id),
      feature: encodeId('Feature', realm.features.tx.id),
      'api key (realm-wide)': encodeId('ApiKey', realm.admin.record.id),
      'api key (scoped)': encodeId('ApiKey', realm.scoped.record.id),
      contract: encodeId('Contract', contract.id),
      license: encodeId('License', license.id),
    };
    const key = caller === 'revoked' ? revokedKey : callers()[caller];
    const entries = Object.entries(ids);
    const query = `{ ${entries.map(([, id], i) => `n${i}: node(id: "${id}") { id }`).join(' ')} }`;
    const response = await graphql(app, query, { key });
    if (response.status === 401) return 'UNAUTHENTICATED';
    return Object.fromEntries(
      entries.map(([name], i) => {
        const error = response.body.errors?.find((e) => e.path?.[0] === `n${i}`);
        return [name, error ? error.extensions?.code : response.body.data[`n${i}`] ? 'visible' : 'null'];
      }),
    );
  }

  it('node(id:) for each node type', async () => {
    const all = (value: string) => ({
      realm: value, 'workspace (scope root)': value, 'workspace (below scope)': value, 'workspace (above scope)': value,
      'workspace (beside scope)': value, 'datastream (in scope)': value, 'datastream (beside scope)': value, project: value,
      'app (in scope)': value, 'app (beside scope)': value, feature: value, 'api key (realm-wide)': value, 'api key (scoped)': value,
      contract: value, license: value,
    });
    expect(await nodes('realm-wide')).toEqual(all('visible'));
    expect(await nodes('other realm')).toEqual(all('null'));
    expect(await nodes('revoked')).toBe('UNAUTHENTICATED');
    expect(await nodes('workspace-scoped')).toEqual({
      ...all('null'),
      realm: 'visible',
      'workspace (scope root)': 'visible',
      'workspace (below scope)': 'visible',
      'datastream (in scope)': 'visible',
      project: 'visible',
      'app (in scope)': 'visible',
      feature: 'visible',
      'api key (scoped)': 'visible',
      // contract and license: billing objects exist for realm-wide keys only (null, as on GitHub)
    });
  });

  it('root fields and usage filters', async () => {
    const leftFilter = `filter: { workspaceIds: ["${encodeId('Workspace', realm.tree.left.id)}", "${encodeId('Workspace', realm.tree.right.id)}"] }`;
    const query = `{ viewer { realm { name } } realm { workspaces(first: 20) { totalCount } usage(timeframe: LAST_24_HOURS, ${leftFilter}) { warnings } } usageRevisions(since: "2000-01-01T00:00:00Z", first: 1) { totalCount: edges { cursor } } }`;
    const results: Record<string, unknown> = {};
    for (const caller of ['realm-wide', 'workspace-scoped', 'other realm'] as const) {
      const { body } = await graphql(app, query, { key: callers()[caller] });
      expect(body.errors, caller).toBeUndefined();
      results[caller] = { realm: body.data.viewer.realm.name, workspaces: body.data.realm.workspaces.totalCount, warnings: body.data.realm.usage.warnings.length };
    }
    expect(results).toEqual({
      'realm-wide': { realm: 'Usage realm', workspaces: 4, warnings: 0 },
      'workspace-scoped': { realm: 'Usage realm', workspaces: 2, warnings: 1 }, // `right` is outside its subtree
      'other realm': { realm: 'Usage realm', workspaces: 4, warnings: 3 }, // its own realm; both ids are foreign, so the filter matches nothing
    });
    const revoked = await graphql(app, query, { key: revokedKey });
    expect(revoked.status).toBe(401);
  });
});

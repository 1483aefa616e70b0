import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../src/auth/api-key-secret.js';
import { SCOPES } from '../src/auth/scopes.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey, createRealm } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';

let db: TestDatabase;
let app: App;
let key: string;
let keyId: string;
let revokedKey: string;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma });
  const realm = await createRealm(db.prisma, 'Acme');
  const created = await createKey(db.prisma, realm.id);
  key = created.key;
  keyId = created.record.id;
  revokedKey = (await createKey(db.prisma, realm.id, { revokedAt: new Date(Date.now() - 1000) })).key;
});

afterAll(() => db?.destroy());

const viewerQuery = '{ viewer { realm { name } } }';

describe('authentication', () => {
  it('accepts `Bearer <key>` and `Token <key>`', async () => {
    for (const scheme of ['Bearer', 'Token', 'bearer']) {
      const { status, body } = await graphql(app, viewerQuery, { authorization: `${scheme} ${key}` });
      expect(status).toBe(200);
      expect(body.errors).toBeUndefined();
      expect(body.data).toEqual({ viewer: { realm: { name: 'Acme' } } });
    }
  });

  it('answers a missing, malformed, unknown, wrong or revoked key alike: 401 UNAUTHENTICATED, no hint of which', async () => {
    const prefix = key.slice(0, 'ugw_00000000'.length);
    const cases: Record<string, string | undefined> = {
      missing: undefined,
      'no scheme': key,
      'other scheme': `Basic ${key}`,
      malformed: 'Bearer not-a-key',
      unknown: 'Bearer ugw_00000000_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
      'right prefix, wrong secret': `Bearer ${prefix}_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb`,
      revoked: `Bearer ${revokedKey}`,
    };
    const bodies = new Set<string>();
    for (const [name, authorization] of Object.entries(cases)) {
      const response = await graphql(app, viewerQuery, authorization === undefined ? {} : { authorization });
      expect(response.status, name).toBe(401);
      expect(response.headers.get('www-authenticate'), name).toBe('Bearer');
      expect(response.body.errors?.[0]?.extensions?.code, name).toBe('UNAUTHENTICATED');
      // Only a request id (if any) differs.
      bodies.add(JSON.stringify({ ...response.body, extensions: { ...response.body.extensions, requestId: undefined } }));
    }
    expect(bodies.size).toBe(1);
  });

  it('stores only a hash of the secret', async () => {
    const record = await db.prisma.apiKey.findUniqueOrThrow({ where: { id: keyId } });
    // the secret part may itself contain '_': everything after the prefix
    expect(JSON.stringify(record)).not.toContain(key.slice(record.prefix.length + 1));
    expect(record.secretHash).toBe(hashSecret(key));
    expect(key.startsWith(record.prefix)).toBe(true);
  });

  it('records when a key was last used, off the request path', async () => {
    await graphql(app, viewerQuery, { key });
    await expect.poll(async () => (await db.prisma.apiKey.findUniqueOrThrow({ where: { id: keyId } })).lastUsedAt, { timeout: 5_000 }).not.toBeNull();
  });

  it('a key sees its scopes and its realm through `viewer`', async () => {
    const { body } = await graphql(app, '{ viewer { scopes workspace { name } apiKey { prefix revokedAt } } }', { key });
    expect(body.data.viewer).toMatchObject({ scopes: [...SCOPES], workspace: null });
    expect(key.startsWith(body.data.viewer.apiKey.prefix)).toBe(true);
  });
});

describe('the key cache (AUTH_CACHE_TTL_MS)', () => {
  it('reuses a key row within the TTL: the second request authenticates without SQL', async () => {
    const cached = createApp({ prisma: db.prisma, authCacheTtlMs: 60_000 });
    const first = await graphql(cached, '{ __typename }', { key });
    const second = await graphql(cached, '{ __typename }', { key });
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(first.statements.some((sql) => sql.includes('"ApiKey"'))).toBe(true);
    expect(second.statements.filter((sql) => sql.includes('"ApiKey"'))).toEqual([]);
  });

  it('still checks the secret on every request', async () => {
    const cached = createApp({ prisma: db.prisma, authCacheTtlMs: 60_000 });
    expect((await graphql(cached, '{ __typename }', { key })).status).toBe(200);
    expect((await graphql(cached, '{ __typename }', { key: `${key.slice(0, -1)}${key.endsWith('x') ? 'y' : 'x'}` })).status).toBe(401);
    // A key of the same length and prefix that differs in its first secret character, then the right key again.
    const secretStart = key.indexOf('_', 4) + 1;
    const other = `${key.slice(0, secretStart)}${key[secretStart] === 'A' ? 'B' : 'A'}${key.slice(secretStart + 1)}`;
    expect((await graphql(cached, '{ __typename }', { key: other })).status).toBe(401);
    expect((await graphql(cached, '{ __typename }', { key })).status).toBe(200);
  });

  it('a key revoked through this process fails on the very next request despite the cache', async () => {
    const realm = await createRealm(db.prisma, 'Cache revocation');
    const admin = await createKey(db.prisma, realm.id);
    const victim = await createKey(db.prisma, realm.id);
    const cached = createApp({ prisma: db.prisma, authCacheTtlMs: 60_000 });
    expect((await graphql(cached, '{ __typename }', { key: victim.key })).status).toBe(200);
    const id = Buffer.from(`ApiKey:${victim.record.id}`).toString('base64url');
    const revoked = await graphql(cached, `mutation { revokeApiKey(id: "${id}") { userErrors { code } } }`, { key: admin.key });
    expect(revoked.body.data.revokeApiKey.userErrors).toEqual([]);
    expect((await graphql(cached, '{ __typename }', { key: victim.key })).status).toBe(401);
  });

  it('a key revoked by another process is accepted at most until the TTL runs out', async () => {
    const realm = await createRealm(db.prisma, 'Cache expiry');
    const victim = await createKey(db.prisma, realm.id);
    const cached = createApp({ prisma: db.prisma, authCacheTtlMs: 2000 });
    expect((await graphql(cached, '{ __typename }', { key: victim.key })).status).toBe(200);
    // Another gateway revokes it: this process cannot know until its cached row expires.
    await db.prisma.apiKey.update({ where: { id: victim.record.id }, data: { revokedAt: new Date() } });
    expect((await graphql(cached, '{ __typename }', { key: victim.key })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 2050));
    expect((await graphql(cached, '{ __typename }', { key: victim.key })).status).toBe(401);
    // Without the cache (the default of createApp) the revocation applies at once.
    expect((await graphql(app, '{ __typename }', { key: victim.key })).status).toBe(401);
  });
});

describe('AUTH_CACHE_TTL_MS', () => {
  it('is a number of milliseconds from 0 (off) to 300000; anything else stops the start with a clear message', async () => {
    const { ConfigError, loadConfig } = await import('../src/config.js');
    expect(loadConfig({}).authCacheTtlMs).toBeUndefined();
    expect(loadConfig({ AUTH_CACHE_TTL_MS: '0' }).authCacheTtlMs).toBe(0);
    expect(loadConfig({ AUTH_CACHE_TTL_MS: '2500' }).authCacheTtlMs).toBe(2500);
    for (const bad of ['-1', 'soon', '300001', '1.5']) expect(() => loadConfig({ AUTH_CACHE_TTL_MS: bad }), bad).toThrow(ConfigError);
    expect(() => loadConfig({ AUTH_CACHE_TTL_MS: 'soon' })).toThrow(/AUTH_CACHE_TTL_MS must be a whole number of milliseconds from 0 to 300000/);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../src/global-id.js';
import type { Tier } from '../src/generated/prisma/enums.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

/** No key may gain what it does not hold: scopes, a wider workspace range, or a higher rate limit. */
let db: TestDatabase;
let app: App;
let r: Awaited<ReturnType<typeof createUsageRealm>>;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma });
  r = await createUsageRealm(db.prisma);
});
afterAll(() => db?.destroy());

const ROTATE = `mutation ($id: ID!) { rotateApiKey(id: $id, gracePeriodSeconds: 0) { secret apiKey { id } userErrors { field code } } }`;
const REVOKE = `mutation ($id: ID!) { revokeApiKey(id: $id) { apiKey { revokedAt } userErrors { field code } } }`;
const CREATE = `mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { tier customRateLimit } userErrors { field code message } } }`;

const whoAmI = async (key: string) => (await graphql(app, '{ viewer { apiKey { id } } }', { key })).status;

async function keyWith(options: { scopes?: string[]; workspaceId?: string; tier?: Tier | null; customRateLimit?: number | null }) {
  const key = await createKey(db.prisma, r.realm.id, { scopes: options.scopes, workspaceId: options.workspaceId });
  if (options.tier !== undefined || options.customRateLimit !== undefined) {
    await db.prisma.apiKey.update({ where: { id: key.record.id }, data: { tier: options.tier ?? null, customRateLimit: options.customRateLimit ?? null } });
  }
  return { key: key.key, id: encodeId('ApiKey', key.record.id) };
}

describe('rotateApiKey and revokeApiKey reach only keys the caller could have made', () => {
  it('a keys:manage-only key cannot rotate or revoke a key with more scopes (no take-over)', async () => {
    const manager = await keyWith({ scopes: ['keys:manage'] });
    const target = await keyWith({});
    const rotated = await graphql(app, ROTATE, { key: manager.key, variables: { id: target.id } });
    expect(rotated.body.data.rotateApiKey).toEqual({ secret: null, apiKey: null, userErrors: [{ field: ['id'], code: 'SCOPE_ESCALATION' }] });
    const revoked = await graphql(app, REVOKE, { key: manager.key, variables: { id: target.id } });
    expect(revoked.body.data.revokeApiKey).toEqual({ apiKey: null, userErrors: [{ field: ['id'], code: 'SCOPE_ESCALATION' }] });
    expect(await whoAmI(target.key)).toBe(200);
  });

  it('a keys:manage-only key may rotate and revoke a key with a subset of its scopes', async () => {
    const manager = await keyWith({ scopes: ['keys:manage', 'usage:read'] });
    const target = await keyWith({ scopes: ['usage:read'] });
    const rotated = await graphql(app, ROTATE, { key: manager.key, variables: { id: target.id } });
    expect(rotated.body.data.rotateApiKey.userErrors).toEqual([]);
    expect(await whoAmI(rotated.body.data.rotateApiKey.secret)).toBe(200);
    const revoked = await graphql(app, REVOKE, { key: manager.key, variables: { id: target.id } });
    expect(revoked.body.data.revokeApiKey.userErrors).toEqual([]);
  });

  it('a workspace-scoped key with every scope cannot reach a realm-wide key or a sibling subtree', async () => {
    const manager = await keyWith({ workspaceId: r.tree.left.id });
    const sibling = await keyWith({ scopes: ['usage:read'], workspaceId: r.tree.right.id });
    for (const target of [encodeId('ApiKey', r.admin.record.id), sibling.id]) {
      const rotated = await graphql(app, ROTATE, { key: manager.key, variables: { id: target } });
      expect(rotated.body.data.rotateApiKey).toEqual({ secret: null, apiKey: null, userErrors: [{ field: ['id'], code: 'NOT_FOUND' }] });
      const revoked = await graphql(app, REVOKE, { key: manager.key, variables: { id: target } });
      expect(revoked.body.data.revokeApiKey.userErrors).toEqual([{ field: ['id'], code: 'NOT_FOUND' }]);
    }
    expect(await whoAmI(r.admin.key)).toBe(200);
    expect(await whoAmI(sibling.key)).toBe(200);
    const below = await keyWith({ scopes: ['usage:read'], workspaceId: r.tree.leaf.id });
    const rotated = await graphql(app, ROTATE, { key: manager.key, variables: { id: below.id } });
    expect(rotated.body.data.rotateApiKey.userErrors).toEqual([]);
  });

  it('no key can rotate a key with a higher rate limit than its own (it would get its secret)', async () => {
    const manager = await keyWith({ tier: 'FREE' });
    const enterprise = await keyWith({ scopes: ['usage:read'], tier: 'ENTERPRISE', customRateLimit: 100_000 });
    const rotated = await graphql(app, ROTATE, { key: manager.key, variables: { id: enterprise.id } });
    expect(rotated.body.data.rotateApiKey).toEqual({ secret: null, apiKey: null, userErrors: [{ field: ['id'], code: 'TIER_ESCALATION' }] });
    expect(await whoAmI(enterprise.key)).toBe(200);
  });
});

describe('createApiKey cannot grant a rate limit above the caller’s own, nor its realm’s', () => {
  it('a FREE key cannot create an ENTERPRISE key with a custom limit of 1,000,000', async () => {
    const free = await keyWith({ tier: 'FREE' });
    const created = await graphql(app, CREATE, { key: free.key, variables: { input: { name: 'x', scopes: ['usage:read'], tier: 'ENTERPRISE', customRateLimit: 1_000_000 } } });
    expect(created.body.data.createApiKey).toMatchObject({ secret: null, apiKey: null, userErrors: [{ field: ['input', 'customRateLimit'], code: 'TIER_ESCALATION' }] });
    const tierOnly = await graphql(app, CREATE, { key: free.key, variables: { input: { name: 'x', scopes: ['usage:read'], tier: 'PROFESSIONAL' } } });
    expect(tierOnly.body.data.createApiKey).toMatchObject({ secret: null, userErrors: [{ field: ['input', 'tier'], code: 'TIER_ESCALATION' }] });
    const same = await graphql(app, CREATE, { key: free.key, variables: { input: { name: 'x', scopes: ['usage:read'], tier: 'FREE' } } });
    expect(same.body.data.createApiKey).toMatchObject({ userErrors: [], apiKey: { tier: 'FREE' } });
  });

  it("a key below its realm's tier cannot create a key that inherits the realm's tier", async () => {
    await db.prisma.realm.update({ where: { id: r.realm.id }, data: { tier: 'PROFESSIONAL' } });
    try {
      const starter = await keyWith({ tier: 'STARTER' });
      const inherit = await graphql(app, CREATE, { key: starter.key, variables: { input: { name: 'x', scopes: ['usage:read'] } } });
      expect(inherit.body.data.createApiKey.userErrors).toEqual([{ field: ['input', 'tier'], code: 'TIER_ESCALATION', message: expect.stringContaining('1000') }]);
      const lower = await graphql(app, CREATE, { key: starter.key, variables: { input: { name: 'x', scopes: ['usage:read'], tier: 'FREE' } } });
      expect(lower.body.data.createApiKey.userErrors).toEqual([]);
    } finally {
      await db.prisma.realm.update({ where: { id: r.realm.id }, data: { tier: 'FREE' } });
    }
  });

  it("a key of its own ENTERPRISE tier cannot grant more than its realm's limit", async () => {
    const enterprise = await keyWith({ tier: 'ENTERPRISE', customRateLimit: 50_000 });
    const above = await graphql(app, CREATE, { key: enterprise.key, variables: { input: { name: 'x', scopes: ['usage:read'], customRateLimit: 10_000 } } });
    expect(above.body.data.createApiKey.userErrors).toEqual([{ field: ['input', 'customRateLimit'], code: 'TIER_ESCALATION', message: expect.stringContaining('60') }]);
  });

  it('an ENTERPRISE realm key may grant custom limits up to its own', async () => {
    await db.prisma.realm.update({ where: { id: r.realm.id }, data: { tier: 'ENTERPRISE', customRateLimit: 5000 } });
    try {
      const admin = await keyWith({});
      const ok = await graphql(app, CREATE, { key: admin.key, variables: { input: { name: 'x', scopes: ['usage:read'], customRateLimit: 5000 } } });
      expect(ok.body.data.createApiKey).toMatchObject({ userErrors: [], apiKey: { customRateLimit: 5000 } });
      const above = await graphql(app, CREATE, { key: admin.key, variables: { input: { name: 'x', scopes: ['usage:read'], customRateLimit: 5001 } } });
      expect(above.body.data.createApiKey.userErrors[0].code).toBe('TIER_ESCALATION');
    } finally {
      await db.prisma.realm.update({ where: { id: r.realm.id }, data: { tier: 'FREE', customRateLimit: null } });
    }
  });
});

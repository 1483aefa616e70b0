import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useUsageExportEndpoints } from '../src/exports/http.js';
import { encodeId } from '../src/global-id.js';
import { createMemoryRateLimiter } from '../src/rate-limit/limiter.js';
import { TrafficRecorder } from '../src/traffic/recorder.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey, createRealm } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm, insertUsage } from './helpers/usage-fixture.js';

/**
 * Portal sessions over real HTTP (yoga.fetch), on the real clock: authentication reads the wall
 * clock, so sessions are created and expire on it. Usage sits three days back, in a UTC realm.
 * The session under test sees workspace `left` (⊃ leaf) and feature `tx` only.
 */
const HOUR = new Date(Math.floor((Date.now() - 3 * 86_400_000) / 3_600_000) * 3_600_000);
const MONTH = HOUR.toISOString().slice(0, 7);
const RANGE = `{ from: "${new Date(HOUR.getTime() - 86_400_000).toISOString()}", to: "${new Date(HOUR.getTime() + 86_400_000).toISOString()}" }`;

/** Authenticating a session: its row joined with its creating key, realm and workspace ancestors. */
const STATEMENTS_PER_SESSION_REQUEST = 1;

let db: TestDatabase;
let app: App;
let consoleDir: string;
let r: Awaited<ReturnType<typeof createUsageRealm>>;
let session: { id: string; token: string; url: string };

const CREATE = `mutation ($input: CreatePortalSessionInput!) {
  createPortalSession(input: $input) {
    token url
    portalSession { id prefix sections scopes path expiresAt revokedAt workspace { name } features { key } }
    userErrors { field code message }
  }
}`;

function input(overrides: Record<string, unknown> = {}) {
  return { workspaceId: encodeId('Workspace', r.tree.left.id), featureIds: [encodeId('Feature', r.features.tx.id)], sections: ['explorer', 'download'], expiresInSeconds: 3600, ...overrides };
}

async function create(key: string, overrides: Record<string, unknown> = {}, on: App = app) {
  const response = await graphql(on, CREATE, { key, variables: { input: input(overrides) } });
  expect(response.body.errors).toBeUndefined();
  return response.body.data.createPortalSession;
}

async function createOk(key: string, overrides: Record<string, unknown> = {}, on: App = app) {
  const payload = await create(key, overrides, on);
  expect(payload.userErrors).toEqual([]);
  return { id: payload.portalSession.id as string, token: payload.token as string, url: payload.url as string, payload };
}

const exportCsv = (token: string, on: App = app) => on.fetch(`http://gateway.test/exports/usage/monthly.csv?month=${MONTH}`, { headers: { authorization: `Bearer ${token}` } });

beforeAll(async () => {
  db = await createTestDatabase();
  r = await createUsageRealm(db.prisma, 'UTC');
  const features = Object.fromEntries(Object.entries(r.features).map(([key, f]) => [key, f.id]));
  await insertUsage(db.prisma, r.realm.id, features, [
    { feature: 'tx', hour: HOUR, quantity: '5', workspaceId: r.tree.left.id, appId: r.apps[0]!.id },
    { feature: 'tx', hour: HOUR, quantity: '2', workspaceId: r.tree.leaf.id },
    { feature: 'tx', hour: HOUR, quantity: '7', workspaceId: r.tree.right.id, appId: r.apps[1]!.id },
    { feature: 'req', hour: HOUR, quantity: '3', workspaceId: r.tree.left.id },
  ]);
  consoleDir = mkdtempSync(path.join(tmpdir(), 'portal-console-'));
  writeFileSync(path.join(consoleDir, 'index.html'), '<!doctype html><head><!--console-settings--></head><body></body>');
  app = createApp({ prisma: db.prisma, console: { dir: consoleDir, defaultKey: 'ugw_00000000_demo-key-never-in-a-portal-page' }, plugins: [useUsageExportEndpoints({ prisma: db.prisma })] });
  session = await createOk(r.admin.key);
});
afterAll(async () => {
  await db?.destroy();
  if (consoleDir) rmSync(consoleDir, { recursive: true, force: true });
});

describe('createPortalSession', () => {
  it('returns a ugwps_ token once, stored hashed, and a URL carrying it in the fragment only', async () => {
    const { payload } = await createOk(r.admin.key);
    expect(payload.token).toMatch(/^ugwps_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}$/);
    expect(payload.url).toBe(`http://gateway.test/portal/${payload.portalSession.id}#token=${payload.token}`);
    expect(payload.portalSession).toMatchObject({
      prefix: payload.token.slice(0, 14),
      sections: ['explorer', 'download'],
      // What the sections need, never keys:manage, although the creator holds every scope.
      scopes: ['usage:read'],
      path: `/portal/${payload.portalSession.id}`,
      revokedAt: null,
      workspace: { name: 'left' },
      features: [{ key: 'tx' }],
    });
    const row = await db.prisma.portalSession.findUniqueOrThrow({ where: { prefix: payload.portalSession.prefix } });
    expect(row.secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(row)).not.toContain(payload.token.slice(15));
    const expiresIn = new Date(payload.portalSession.expiresAt).getTime() - Date.now();
    expect(expiresIn).toBeGreaterThan(3_500_000);
    expect(expiresIn).toBeLessThanOrEqual(3_600_000);
  });

  it('is audited, without the token', async () => {
    const { payload } = await createOk(r.admin.key);
    const entry = await db.prisma.auditEntry.findFirstOrThrow({ where: { action: 'portalSession.create', targetId: (await db.prisma.portalSession.findUniqueOrThrow({ where: { prefix: payload.portalSession.prefix } })).id } });
    expect(entry).toMatchObject({ realmId: r.realm.id, actorType: 'API_KEY', actorId: r.admin.record.id, targetType: 'PortalSession' });
    expect(entry.changes).toMatchObject({ before: null, after: { prefix: payload.portalSession.prefix, sections: ['explorer', 'download'], scopes: ['usage:read'], workspaceId: encodeId('Workspace', r.tree.left.id) } });
    expect(JSON.stringify(entry.changes)).not.toContain(payload.token);
  });

  it.each([
    ['expiresInSeconds 0', { expiresInSeconds: 0 }, 'INVALID_EXPIRY', ['input', 'expiresInSeconds']],
    ['expiresInSeconds over a day', { expiresInSeconds: 86_401 }, 'INVALID_EXPIRY', ['input', 'expiresInSeconds']],
    ['an unknown workspace', { workspaceId: encodeId('Workspace', randomUUID()) }, 'NOT_FOUND', ['input', 'workspaceId']],
    ['a workspace id of another type', { workspaceId: encodeId('Feature', randomUUID()) }, 'NOT_FOUND', ['input', 'workspaceId']],
    ['an unknown section', { sections: ['explorer', 'bogus'] }, 'INVALID_SECTION', ['input', 'sections']],
    ['a billing section', { sections: ['plan'] }, 'INVALID_SECTION', ['input', 'sections']],
    ['the API keys section', { sections: ['keys'] }, 'INVALID_SECTION', ['input', 'sections']],
    ['no section', { sections: [] }, 'INVALID_SECTION', ['input', 'sections']],
    ['no feature', { featureIds: [] }, 'INVALID_FEATURES', ['input', 'featureIds']],
  ])('refuses %s with a code', async (_name, overrides, code, field) => {
    const before = await db.prisma.portalSession.count();
    const payload = await create(r.admin.key, overrides);
    expect(payload.userErrors).toEqual([{ field, code, message: expect.any(String) }]);
    expect(payload.token).toBeNull();
    expect(await db.prisma.portalSession.count()).toBe(before);
  });

  it("refuses a feature of another realm (NOT_FOUND, naming it)", async () => {
    const other = await createRealm(db.prisma);
    const foreign = await db.prisma.feature.create({ data: { realmId: other.id, key: 'foreign', name: 'foreign', service: 't', unit: 'REQUEST', aggregation: 'SUM' } });
    const foreignId = encodeId('Feature', foreign.id);
    const payload = await create(r.admin.key, { featureIds: [encodeId('Feature', r.features.tx.id), foreignId] });
    expect(payload.userErrors).toEqual([{ field: ['input', 'featureIds'], code: 'NOT_FOUND', message: expect.stringContaining(foreignId) }]);
  });

  it('needs keys:manage', async () => {
    const reader = await createKey(db.prisma, r.realm.id, { scopes: ['usage:read'] });
    const response = await graphql(app, CREATE, { key: reader.key, variables: { input: input() } });
    expect(response.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

describe('what a session sees', () => {
  it('is a read-only viewer of its subtree, without the creating key', async () => {
    const response = await graphql(app, '{ viewer { kind scopes apiKey { id } workspace { name } portalSession { id sections expiresAt } } }', { key: session.token });
    expect(response.body.errors).toBeUndefined();
    expect(response.body.data.viewer).toEqual({
      kind: 'PORTAL_SESSION',
      scopes: ['usage:read'],
      apiKey: null,
      workspace: { name: 'left' },
      portalSession: { id: session.id, sections: ['explorer', 'download'], expiresAt: expect.any(String) },
    });
  });

  it('authenticates with one statement per request (read every time, never cached)', async () => {
    const viaKey = await graphql(app, '{ viewer { scopes } }', { key: r.admin.key });
    const viaSession = await graphql(app, '{ viewer { scopes } }', { key: session.token });
    expect(viaKey.statements).toHaveLength(1);
    expect(viaSession.statements).toHaveLength(STATEMENTS_PER_SESSION_REQUEST);
    expect(viaSession.statements[0]).toContain('"PortalSession"');
  });

  it('node(id): its subtree and its features only', async () => {
    const NODE = '{ node(id: $id) { id } }'.replace('{ node', 'query ($id: ID!) { node');
    const visible = async (id: string) => (await graphql(app, NODE, { key: session.token, variables: { id } })).body.data?.node?.id ?? null;
    expect(await visible(encodeId('Workspace', r.tree.left.id))).not.toBeNull();
    expect(await visible(encodeId('Workspace', r.tree.leaf.id))).not.toBeNull();
    expect(await visible(encodeId('Feature', r.features.tx.id))).not.toBeNull();
    expect(await visible(encodeId('Workspace', r.tree.right.id))).toBeNull();
    expect(await visible(encodeId('Workspace', r.tree.root.id))).toBeNull();
    expect(await visible(encodeId('Feature', r.features.req.id))).toBeNull();
    expect(await visible(encodeId('Datastream', r.streams[2]!.id))).toBeNull();
  });

  it('nested relations: the realm lists its subtree and its features only', async () => {
    const response = await graphql(app, '{ viewer { realm { workspaces(first: 50) { edges { node { name } } } features(first: 50) { edges { node { key } } } } } }', { key: session.token });
    expect(response.body.errors).toBeUndefined();
    const realm = response.body.data.viewer.realm;
    expect(realm.workspaces.edges.map((e: any) => e.node.name).sort()).toEqual(['leaf', 'left']);
    expect(realm.features.edges.map((e: any) => e.node.key)).toEqual(['tx']);
  });

  it('usage reports and their group nodes: its subtree and its features only, even when asked for others', async () => {
    const query = `{ viewer { realm { usage(range: ${RANGE}, granularity: DAY, groupBy: [WORKSPACE, FEATURE]) { warnings totals { quantity feature { key } group { workspace { name } } } } } } }`;
    const mine = await graphql(app, query, { key: session.token });
    expect(mine.body.errors).toBeUndefined();
    const totals = mine.body.data.viewer.realm.usage.totals.map((t: any) => `${t.feature.key}:${t.group.workspace?.name}:${t.quantity}`).sort();
    expect(totals).toEqual(['tx:leaf:2', 'tx:left:5']);
    // The same question by the creating key sees the rest: the restriction is the session's.
    const admin = await graphql(app, query, { key: r.admin.key });
    expect(admin.body.data.viewer.realm.usage.totals).toHaveLength(4);
    const filtered = await graphql(app, `query ($f: [ID!]) { viewer { realm { usage(range: ${RANGE}, filter: { featureIds: $f }) { warnings totals { quantity } } } } }`, {
      key: session.token,
      variables: { f: [encodeId('Feature', r.features.req.id)] },
    });
    expect(filtered.body.data.viewer.realm.usage.totals).toEqual([]);
    expect(filtered.body.data.viewer.realm.usage.warnings.join(' ')).toContain('outside this key');
  });

  it('exports: its subtree and its features only', async () => {
    const response = await exportCsv(session.token);
    expect(response.status).toBe(200);
    const rows = parse(await response.text(), { columns: true }) as Record<string, string>[];
    expect(rows.length).toBeGreaterThan(0);
    const text = JSON.stringify(rows);
    expect(text).toContain('left');
    expect(text).not.toContain('right');
    expect(text).not.toContain('"req"');
    const admin = parse(await (await exportCsv(r.admin.key)).text(), { columns: true }) as Record<string, string>[];
    expect(admin.length).toBeGreaterThan(rows.length);
  });

  it('cannot create keys or sessions, list keys, or read billing', async () => {
    const key = await graphql(app, 'mutation { createApiKey(input: { name: "x", scopes: ["usage:read"] }) { secret } }', { key: session.token });
    expect(key.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const portal = await graphql(app, CREATE, { key: session.token, variables: { input: input() } });
    expect(portal.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const keys = await graphql(app, '{ viewer { realm { apiKeys(first: 5) { totalCount } } } }', { key: session.token });
    expect(keys.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const billing = await graphql(app, '{ viewer { realm { contracts(first: 5) { totalCount } } } }', { key: session.token });
    expect(billing.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

describe('never more than its creator', () => {
  it('a subtree key creates sessions inside its subtree only', async () => {
    const scoped = await createKey(db.prisma, r.realm.id, { workspaceId: r.tree.left.id, scopes: ['usage:read', 'keys:manage'] });
    const outside = await create(scoped.key, { workspaceId: encodeId('Workspace', r.tree.right.id) });
    expect(outside.userErrors).toEqual([{ field: ['input', 'workspaceId'], code: 'NOT_FOUND', message: expect.any(String) }]);
    const inside = await createOk(scoped.key, { workspaceId: encodeId('Workspace', r.tree.leaf.id) });
    const seen = await graphql(app, '{ viewer { realm { workspaces(first: 50) { edges { node { name } } } } } }', { key: inside.token });
    expect(seen.body.data.viewer.realm.workspaces.edges.map((e: any) => e.node.name)).toEqual(['leaf']);
  });

  it('a creator without usage:read cannot hand it out', async () => {
    const manager = await createKey(db.prisma, r.realm.id, { scopes: ['keys:manage'] });
    const payload = await create(manager.key);
    expect(payload.userErrors).toEqual([{ field: ['input', 'sections'], code: 'SCOPE_ESCALATION', message: expect.any(String) }]);
  });

  it('stops when its creating key is revoked', async () => {
    const creator = await createKey(db.prisma, r.realm.id, { scopes: ['usage:read', 'keys:manage'] });
    const created = await createOk(creator.key);
    expect((await graphql(app, '{ viewer { kind } }', { key: created.token })).status).toBe(200);
    await db.prisma.apiKey.update({ where: { id: creator.record.id }, data: { revokedAt: new Date() } });
    const after = await graphql(app, '{ viewer { kind } }', { key: created.token });
    expect(after.status).toBe(401);
    expect(after.body.errors?.[0]?.extensions?.code).toBe('SESSION_EXPIRED');
  });

  it('a wrong secret with a real prefix is a plain 401 UNAUTHENTICATED', async () => {
    const forged = `${session.token.slice(0, 15)}${'A'.repeat(32)}`;
    const response = await graphql(app, '{ viewer { kind } }', { key: forged });
    expect(response.status).toBe(401);
    expect(response.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('expiry and revocation', () => {
  it('expires: 401 SESSION_EXPIRED on /graphql and on the exports', async () => {
    const short = await createOk(r.admin.key, { expiresInSeconds: 1 });
    expect((await graphql(app, '{ viewer { kind } }', { key: short.token })).status).toBe(200);
    expect((await exportCsv(short.token)).status).toBe(200);
    const expiresAt = new Date(short.payload.portalSession.expiresAt).getTime();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now()) + 20));
    const graph = await graphql(app, '{ viewer { kind } }', { key: short.token });
    expect(graph.status).toBe(401);
    expect(graph.body.errors?.[0]).toMatchObject({ extensions: { code: 'SESSION_EXPIRED' }, message: expect.stringContaining('expired') });
    const csv = await exportCsv(short.token);
    expect(csv.status).toBe(401);
    expect((await csv.json()).errors[0].extensions.code).toBe('SESSION_EXPIRED');
  });

  it('revocation applies to the very next request, is audited once, and the session stays listed', async () => {
    const victim = await createOk(r.admin.key);
    expect((await graphql(app, '{ viewer { kind } }', { key: victim.token })).status).toBe(200);
    const REVOKE = 'mutation ($id: ID!) { revokePortalSession(id: $id) { portalSession { id revokedAt } userErrors { code } } }';
    const revoked = await graphql(app, REVOKE, { key: r.admin.key, variables: { id: victim.id } });
    expect(revoked.body.data.revokePortalSession).toMatchObject({ portalSession: { id: victim.id, revokedAt: expect.any(String) }, userErrors: [] });
    const graph = await graphql(app, '{ viewer { kind } }', { key: victim.token });
    expect(graph.status).toBe(401);
    expect(graph.body.errors?.[0]).toMatchObject({ extensions: { code: 'SESSION_EXPIRED' }, message: expect.stringContaining('revoked') });
    expect((await exportCsv(victim.token)).status).toBe(401);
    await graphql(app, REVOKE, { key: r.admin.key, variables: { id: victim.id } });
    const uuid = (await db.prisma.portalSession.findFirstOrThrow({ where: { prefix: victim.token.slice(0, 14) } })).id;
    expect(await db.prisma.auditEntry.count({ where: { action: 'portalSession.revoke', targetId: uuid } })).toBe(1);
    const listed = await graphql(app, '{ viewer { realm { portalSessions(first: 100) { totalCount edges { node { id revokedAt } } } } } }', { key: r.admin.key });
    expect(listed.body.data.viewer.realm.portalSessions.edges).toContainEqual({ node: { id: victim.id, revokedAt: expect.any(String) } });
  });

  it('a subtree key neither sees nor revokes sessions outside its subtree', async () => {
    const scoped = await createKey(db.prisma, r.realm.id, { workspaceId: r.tree.right.id, scopes: ['usage:read', 'keys:manage'] });
    const revoked = await graphql(app, 'mutation ($id: ID!) { revokePortalSession(id: $id) { userErrors { code } } }', { key: scoped.key, variables: { id: session.id } });
    expect(revoked.body.data.revokePortalSession.userErrors).toEqual([{ code: 'NOT_FOUND' }]);
    const listed = await graphql(app, '{ viewer { realm { portalSessions(first: 100) { totalCount } } } }', { key: scoped.key });
    expect(listed.body.data.viewer.realm.portalSessions.totalCount).toBe(0);
    expect((await graphql(app, '{ viewer { kind } }', { key: session.token })).status).toBe(200);
  });
});

describe('rate limits and traffic', () => {
  it("counts against its creating key's rate limit", async () => {
    const creator = await createKey(db.prisma, r.realm.id, { scopes: ['usage:read', 'keys:manage'] });
    await db.prisma.apiKey.update({ where: { id: creator.record.id }, data: { customRateLimit: 4 } });
    const limited = createApp({ prisma: db.prisma, rateLimiter: createMemoryRateLimiter() });
    const created = await createOk(creator.key, {}, limited); // request 1 (the creator's)
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await graphql(limited, '{ viewer { kind } }', { key: created.token })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const creatorNow = await graphql(limited, '{ viewer { kind } }', { key: creator.key });
    expect(creatorNow.status).toBe(429);
  });

  it("is recorded as its creating key's API traffic", async () => {
    const creator = await createKey(db.prisma, r.realm.id, { scopes: ['usage:read', 'keys:manage'] });
    const created = await createOk(creator.key);
    const recorder = new TrafficRecorder(db.prisma, { flushIntervalMs: 3_600_000 });
    const recorded = createApp({ prisma: db.prisma, trafficRecorder: recorder });
    await graphql(recorded, 'query PortalRead { viewer { kind } }', { key: created.token });
    await recorder.close();
    const rows = await db.prisma.apiTrafficMinute.findMany({ where: { apiKeyId: creator.record.id } });
    expect(rows.map((row) => [row.endpoint, row.requests])).toEqual([['PortalRead', 1]]);
  });
});

describe('the portal page and its frame-ancestors', () => {
  const page = (p: string) => app.fetch(`http://gateway.test${p}`);

  it('serves /portal/<id> without the demo key, framable by the realm origins only; / stays unframable', async () => {
    const none = await page(`/portal/${session.id}`);
    expect(none.status).toBe(200);
    expect(none.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const html = await none.text();
    expect(html).toContain('"portal":true');
    expect(html).not.toContain('demo-key-never-in-a-portal-page');
    const SET = 'mutation ($o: [String!]!) { setPortalOrigins(origins: $o) { portalOrigins userErrors { field code } } }';
    const set = await graphql(app, SET, { key: r.admin.key, variables: { o: ['https://customer.example', 'https://app.customer.example:8443/', 'http://localhost:5173'] } });
    expect(set.body.data.setPortalOrigins).toEqual({ portalOrigins: ['https://customer.example', 'https://app.customer.example:8443', 'http://localhost:5173'], userErrors: [] });
    const framable = await page(`/portal/${session.id}`);
    expect(framable.headers.get('content-security-policy')).toContain('frame-ancestors https://customer.example https://app.customer.example:8443 http://localhost:5173');
    expect((await page('/')).headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(await db.prisma.auditEntry.count({ where: { action: 'realm.setPortalOrigins', realmId: r.realm.id } })).toBe(1);
    const listed = await graphql(app, '{ viewer { realm { portalOrigins } } }', { key: r.admin.key });
    expect(listed.body.data.viewer.realm.portalOrigins).toHaveLength(3);
  });

  it.each([['javascript:alert(1)'], ['https://a.example/path'], ["https://a.example; script-src 'unsafe-inline'"], ['http://plain.example'], ['*']])('refuses the origin %s', async (origin) => {
    const response = await graphql(app, 'mutation ($o: [String!]!) { setPortalOrigins(origins: $o) { portalOrigins userErrors { field code } } }', { key: r.admin.key, variables: { o: [origin] } });
    expect(response.body.data.setPortalOrigins).toEqual({ portalOrigins: null, userErrors: [{ field: ['origins', '0'], code: 'INVALID_ORIGIN' }] });
  });

  it('answers 404 for an unknown or malformed session id', async () => {
    expect((await page(`/portal/${encodeId('PortalSession', randomUUID())}`)).status).toBe(404);
    expect((await page('/portal/not-an-id')).status).toBe(404);
  });

  it('setPortalOrigins needs keys:manage on a realm-wide key', async () => {
    const scoped = await createKey(db.prisma, r.realm.id, { workspaceId: r.tree.left.id, scopes: ['usage:read', 'keys:manage'] });
    const response = await graphql(app, 'mutation { setPortalOrigins(origins: []) { userErrors { code } } }', { key: scoped.key });
    expect(response.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

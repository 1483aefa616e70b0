import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperatorKey } from '../src/admin/operators.js';
import { encodeId } from '../src/global-id.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql, mutationPayload } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

// The audit log: append-only at the database, and Realm.auditLog's filters and who may read it.

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
let other: Awaited<ReturnType<typeof createUsageRealm>>;
let operatorKey: string;
let createdId: string;
let otherCreatedId: string;
const OLD = new Date('2020-01-01T00:00:00Z');

const CREATE = `mutation ($input: CreateWorkspaceInput!) { createWorkspace(input: $input) { workspace { id } userErrors { field code message } } }`;
const RENAME = `mutation ($input: UpdateWorkspaceInput!) { updateWorkspace(input: $input) { workspace { id } userErrors { field code message } } }`;
const LOG = `query ($filter: AuditLogFilter, $first: Int) { viewer { realm { auditLog(first: $first, filter: $filter) { edges { node { id action actorType targetId before after createdAt } } } } } }`;

type Node = { id: string; action: string; actorType: string; targetId: string | null; before: Record<string, unknown> | null; after: Record<string, unknown> | null; createdAt: string };
async function log(key: string, filter?: Record<string, unknown>): Promise<Node[]> {
  const response = await graphql(app, LOG, { key, variables: { filter, first: 100 } });
  expect(response.body.errors).toBeUndefined();
  return (response.body.data.viewer.realm.auditLog.edges as Array<{ node: Node }>).map((e) => e.node);
}

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma });
  realm = await createUsageRealm(db.prisma, 'UTC');
  other = await createUsageRealm(db.prisma, 'UTC');
  const operator = await createOperatorKey(db.prisma, { name: 'audit log test' });
  if (!('secret' in operator)) throw new Error(JSON.stringify(operator));
  operatorKey = operator.secret;
  await db.prisma.auditEntry.create({
    data: { realmId: realm.realm.id, actorType: 'SYSTEM', action: 'workspace.create', targetType: 'Workspace', targetId: realm.tree.root.id, changes: { before: null, after: { name: 'root' } }, createdAt: OLD },
  });
  const root = encodeId('Workspace', realm.tree.root.id);
  createdId = (await mutationPayload(app, CREATE, { key: realm.admin.key, variables: { input: { name: 'Audited', parentId: root } } })).workspace.id;
  await mutationPayload(app, RENAME, { key: realm.admin.key, variables: { input: { id: createdId, name: 'Audited, renamed' } } });
  otherCreatedId = (await mutationPayload(app, CREATE, { key: other.admin.key, variables: { input: { name: 'Elsewhere', parentId: encodeId('Workspace', other.tree.root.id) } } })).workspace.id;
});
afterAll(() => db?.destroy());

describe(`the audit log on ${testDatabaseKind()}`, () => {
  it('is append-only at the database: UPDATE, DELETE and TRUNCATE fail and change nothing', async () => {
    const before = await db.prisma.auditEntry.findMany({ orderBy: { id: 'asc' } });
    expect(before.length).toBeGreaterThanOrEqual(4);
    const attempts: Array<[string, () => Promise<unknown>]> = [
      ['UPDATE', () => db.prisma.$executeRawUnsafe(`UPDATE "AuditEntry" SET "action" = 'tampered'`)],
      ['UPDATE of one entry', () => db.prisma.auditEntry.update({ where: { id: before[0]!.id }, data: { actorType: 'OPERATOR' } })],
      ['DELETE', () => db.prisma.$executeRawUnsafe(`DELETE FROM "AuditEntry"`)],
      ['DELETE of one entry', () => db.prisma.auditEntry.delete({ where: { id: before[0]!.id } })],
      ['TRUNCATE', () => db.prisma.$executeRawUnsafe(`TRUNCATE "AuditEntry"`)],
      ['TRUNCATE … CASCADE of the realms', () => db.prisma.$executeRawUnsafe(`TRUNCATE "Realm", "AuditEntry" CASCADE`)],
    ];
    for (const [what, attempt] of attempts) {
      await expect(attempt(), what).rejects.toThrow(/append-only/);
    }
    expect(await db.prisma.auditEntry.findMany({ orderBy: { id: 'asc' } })).toEqual(before);
    expect(await db.prisma.realm.count()).toBeGreaterThanOrEqual(2);
  });

  it("answers a realm-wide admin key its realm's entries, newest first, filtered by actions, target and time", async () => {
    const all = await log(realm.admin.key);
    expect(all.map((e) => [e.action, e.targetId])).toEqual([
      ['workspace.update', createdId],
      ['workspace.create', createdId],
      ['workspace.create', encodeId('Workspace', realm.tree.root.id)],
    ]);
    expect(all[0]).toMatchObject({ actorType: 'API_KEY', before: { name: 'Audited' }, after: { name: 'Audited, renamed' } });
    expect(all.some((e) => e.targetId === otherCreatedId)).toBe(false);

    expect((await log(realm.admin.key, { actions: ['workspace.update'] })).map((e) => e.targetId)).toEqual([createdId]);
    expect((await log(realm.admin.key, { actions: ['workspace.update', 'workspace.create'] })).length).toBe(3);
    expect(await log(realm.admin.key, { actions: ['apiKey.revoke'] })).toEqual([]);
    expect((await log(realm.admin.key, { targetId: createdId })).map((e) => e.action)).toEqual(['workspace.update', 'workspace.create']);
    expect((await log(realm.admin.key, { since: '2021-01-01T00:00:00Z' })).map((e) => e.targetId)).toEqual([createdId, createdId]);
    expect((await log(realm.admin.key, { since: OLD.toISOString() })).length).toBe(3);
    expect((await log(realm.admin.key, { since: OLD.toISOString(), actions: ['workspace.create'], targetId: createdId })).length).toBe(1);
    // Another realm's node as the target: nothing (never another realm's entries).
    expect(await log(realm.admin.key, { targetId: otherCreatedId })).toEqual([]);
  });

  it('answers a realm-wide key with keys:manage only; refuses a workspace-scoped admin key and a read-only key (FORBIDDEN)', async () => {
    const keysManager = (await createKey(db.prisma, realm.realm.id, { scopes: ['keys:manage'] })).key;
    expect((await log(keysManager)).length).toBe(3);
    const scopedAdmin = (await createKey(db.prisma, realm.realm.id, { workspaceId: realm.tree.root.id, scopes: ['admin:write', 'keys:manage'] })).key;
    const readOnly = (await createKey(db.prisma, realm.realm.id, { scopes: ['usage:read', 'billing:read'] })).key;
    for (const key of [scopedAdmin, readOnly]) {
      const response = await graphql(app, LOG, { key, variables: {} });
      expect(response.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      expect(JSON.stringify(response.body.data ?? null)).not.toContain('workspace.create');
    }
    // Query.auditLog is the operators': a realm's admin key is refused there too.
    const operatorsLog = await graphql(app, '{ auditLog(first: 5) { edges { node { id } } } }', { key: realm.admin.key });
    expect(operatorsLog.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(operatorsLog.body.data?.auditLog ?? null).toBeNull();
  });

  it("answers an operator every realm's entries through Query.auditLog, with the same filters", async () => {
    const response = await graphql(app, '{ auditLog(first: 100, filter: { actions: ["workspace.create"], since: "2021-01-01T00:00:00Z" }) { edges { node { targetId } } } }', { key: operatorKey });
    expect(response.body.errors).toBeUndefined();
    const targets = (response.body.data.auditLog.edges as Array<{ node: { targetId: string } }>).map((e) => e.node.targetId);
    expect(targets).toEqual([otherCreatedId, createdId]);
  });
});

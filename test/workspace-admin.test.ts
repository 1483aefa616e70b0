import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/db/database.js';
import { insertWorkspace, MAX_WORKSPACE_DEPTH } from '../src/db/workspace-tree.js';
import type { PrismaClient } from '../src/generated/prisma/client.js';
import { encodeId } from '../src/global-id.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from './helpers/database.js';
import { createKey, createWorkspaceChain } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

const NOW = new Date('2026-06-15T12:00:00Z');

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
let other: Awaited<ReturnType<typeof createUsageRealm>>;
/** admin:write scoped to `left`. */
let scopedAdmin: string;
let readOnly: string;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => NOW, exposeQueryStats: true, onUnexpectedError: (error) => console.error("UNEXPECTED", error) });
  realm = await createUsageRealm(db.prisma, 'UTC');
  other = await createUsageRealm(db.prisma, 'UTC');
  scopedAdmin = (await createKey(db.prisma, realm.realm.id, { workspaceId: realm.tree.left.id, scopes: ['admin:write', 'usage:read'] })).key;
  readOnly = (await createKey(db.prisma, realm.realm.id, { scopes: ['usage:read'] })).key;
}, 60_000);
afterAll(() => db?.destroy());

const wid = (id: string) => encodeId('Workspace', id);
const FIELDS = 'workspace { id name depth archivedAt parent { id } } userErrors { field code message }';
const CREATE = `mutation ($input: CreateWorkspaceInput!) { createWorkspace(input: $input) { ${FIELDS} } }`;
const UPDATE = `mutation ($input: UpdateWorkspaceInput!) { updateWorkspace(input: $input) { ${FIELDS} } }`;
const MOVE = `mutation ($input: MoveWorkspaceInput!) { moveWorkspace(input: $input) { ${FIELDS} } }`;
const ARCHIVE = `mutation ($id: ID!) { archiveWorkspace(id: $id) { ${FIELDS} } }`;
const UNARCHIVE = `mutation ($id: ID!) { unarchiveWorkspace(id: $id) { ${FIELDS} } }`;

async function call(query: string, variables: Record<string, unknown>, key = realm.admin.key, target = app) {
  const response = await graphql(target, query, { key, variables });
  expect(response.body.errors).toBeUndefined();
  return { payload: Object.values(response.body.data!)[0] as any, statements: response.body.extensions?.queryStats?.sqlStatements as number };
}
const create = async (input: Record<string, unknown>, key?: string) => (await call(CREATE, { input }, key)).payload;
const update = async (input: Record<string, unknown>, key?: string) => (await call(UPDATE, { input }, key)).payload;
const move = async (input: Record<string, unknown>, key?: string) => (await call(MOVE, { input }, key)).payload;
const archive = async (id: string, key?: string) => (await call(ARCHIVE, { id }, key)).payload;
const unarchive = async (id: string, key?: string) => (await call(UNARCHIVE, { id }, key)).payload;
const codes = (payload: { userErrors: { code: string }[] }) => payload.userErrors.map((e) => e.code);

let named = 0;
const unique = (prefix = 'ws') => `${prefix} ${++named}`;

/** A new root with a fresh name, created through the API; returns its global id. */
async function newRoot(name = unique('root')): Promise<string> {
  const payload = await create({ name });
  expect(payload.userErrors).toEqual([]);
  return payload.workspace.id;
}
async function newChild(parentId: string, name = unique()): Promise<string> {
  const payload = await create({ name, parentId });
  expect(payload.userErrors).toEqual([]);
  return payload.workspace.id;
}
const raw = (globalId: string) => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;

/**
 * The closure table and depths are what the parent links say: recomputed from `parentId` by a
 * recursive query, compared row for row for the whole realm.
 */
async function expectConsistentTree(prisma: PrismaClient, realmId: string) {
  const expected = await prisma.$queryRaw<{ a: string; d: string; depth: number }[]>`
    WITH RECURSIVE pairs AS (
      SELECT id AS a, id AS d, 0 AS depth FROM "Workspace" WHERE "realmId" = ${realmId}::uuid
      UNION ALL
      SELECT p.a, w.id, p.depth + 1 FROM pairs p JOIN "Workspace" w ON w."parentId" = p.d
    ) SELECT a::text, d::text, depth FROM pairs ORDER BY a, d`;
  const actual = await prisma.$queryRaw<{ a: string; d: string; depth: number }[]>`
    SELECT c."ancestorId"::text AS a, c."descendantId"::text AS d, c.depth FROM "WorkspaceClosure" c
    JOIN "Workspace" w ON w.id = c."descendantId" WHERE w."realmId" = ${realmId}::uuid ORDER BY a, d`;
  expect(actual).toEqual(expected);
  const depths = await prisma.$queryRaw<{ id: string; depth: number; expected: number }[]>`
    SELECT w.id::text, w.depth, (SELECT max(c.depth) FROM "WorkspaceClosure" c WHERE c."descendantId" = w.id)::int AS expected
    FROM "Workspace" w WHERE w."realmId" = ${realmId}::uuid AND w.depth <> (SELECT max(c.depth) FROM "WorkspaceClosure" c WHERE c."descendantId" = w.id)`;
  expect(depths).toEqual([]);
}

async function auditOf(targetGlobalId: string) {
  return db.prisma.auditEntry.findMany({ where: { targetId: raw(targetGlobalId) }, orderBy: { id: 'asc' } });
}

describe('createWorkspace', () => {
  it('creates roots and children with their depth, closure rows and an audit entry', async () => {
    const root = await newRoot('Platform');
    const child = await create({ name: '  Data  ', parentId: root });
    expect(child).toMatchObject({ userErrors: [], workspace: { name: 'Data', depth: 1, parent: { id: root }, archivedAt: null } });
    await expectConsistentTree(db.prisma, realm.realm.id);
    const [entry] = await auditOf(child.workspace.id);
    expect(entry).toMatchObject({
      action: 'workspace.create',
      realmId: realm.realm.id,
      actorType: 'API_KEY',
      actorId: realm.admin.record.id,
      actorPrefix: realm.admin.record.prefix,
      targetType: 'Workspace',
      requestId: expect.any(String),
      changes: { before: null, after: { name: 'Data', parentId: root, depth: 1, archivedAt: null } },
    });
  });

  it.each([
    ['an empty name', { name: '   ' }, ['input', 'name'], 'BLANK'],
    ['a name too long', { name: 'x'.repeat(201) }, ['input', 'name'], 'TOO_LONG'],
    ['a control character in the name', { name: 'a\u0007b' }, ['input', 'name'], 'INVALID_STRING'],
    ['a malformed parent id', { name: 'x', parentId: 'nonsense' }, ['input', 'parentId'], 'NOT_FOUND'],
    ['an unknown parent', { name: 'x', parentId: wid('00000000-0000-7000-8000-000000000000') }, ['input', 'parentId'], 'NOT_FOUND'],
    ['an empty idempotency key', { name: 'x', idempotencyKey: '' }, ['input', 'idempotencyKey'], 'INVALID_IDEMPOTENCY_KEY'],
  ])('%s is a user error, and nothing is written', async (_what, input, field, code) => {
    const before = await db.prisma.workspace.count();
    const audits = await db.prisma.auditEntry.count();
    const payload = await create(input);
    expect(payload).toMatchObject({ workspace: null, userErrors: [{ field, code }] });
    expect(await db.prisma.workspace.count()).toBe(before);
    expect(await db.prisma.auditEntry.count()).toBe(audits);
  });

  it('a NUL anywhere in the input is refused before the mutation runs (BAD_USER_INPUT, INVALID_STRING)', async () => {
    const response = await graphql(app, CREATE, { key: realm.admin.key, variables: { input: { name: 'a\u0000b' } } });
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_STRING' });
  });

  it("another realm's parent, and an id of another type, are NOT_FOUND", async () => {
    for (const parentId of [wid(other.tree.root.id), encodeId('Datastream', realm.streams[0]!.id)]) {
      expect(codes(await create({ name: unique(), parentId }))).toEqual(['NOT_FOUND']);
    }
  });

  it('names are unique among live siblings, case-insensitively; archived siblings free their name', async () => {
    const root = await newRoot();
    const first = await newChild(root, 'Team A');
    expect(await create({ name: 'team a', parentId: root })).toMatchObject({ workspace: null, userErrors: [{ field: ['input', 'name'], code: 'DUPLICATE_NAME' }] });
    // the same name under another parent, or with a wildcard-looking name, is fine
    await newChild(await newRoot(), 'Team A');
    await newChild(root, 'Team_');
    expect(codes(await create({ name: 'Team%', parentId: root }))).toEqual([]);
    expect((await archive(first)).userErrors).toEqual([]);
    const again = await newChild(root, 'Team A');
    expect(codes(await unarchive(first))).toEqual(['DUPLICATE_NAME']);
    expect(codes(await update({ id: again, name: 'Team B' }))).toEqual([]);
    expect(codes(await unarchive(first))).toEqual([]);
  });

  it(`refuses a level beyond ${MAX_WORKSPACE_DEPTH} (TOO_DEEP)`, async () => {
    let parent = await newRoot();
    for (let level = 1; level < MAX_WORKSPACE_DEPTH; level++) parent = await newChild(parent, `level ${level}`);
    const deepest = await db.prisma.workspace.findUniqueOrThrow({ where: { id: raw(parent) } });
    expect(deepest.depth).toBe(MAX_WORKSPACE_DEPTH - 1);
    expect(await create({ name: 'too deep', parentId: parent })).toMatchObject({ workspace: null, userErrors: [{ field: ['input', 'parentId'], code: 'TOO_DEEP' }] });
  }, 60_000);

  it('replays an idempotency key with the same input, and refuses it with another (IDEMPOTENCY_MISMATCH)', async () => {
    const root = await newRoot();
    const input = { name: unique(), parentId: root, idempotencyKey: `key-${named}` };
    const first = await create(input);
    const again = await create(input);
    expect(again.workspace.id).toBe(first.workspace.id);
    expect(await db.prisma.workspace.count({ where: { name: input.name } })).toBe(1);
    expect((await auditOf(first.workspace.id)).length).toBe(1);
    expect(await create({ ...input, name: 'another' })).toMatchObject({ workspace: null, userErrors: [{ field: ['input', 'idempotencyKey'], code: 'IDEMPOTENCY_MISMATCH' }] });
  });
});

describe('updateWorkspace', () => {
  it('renames, audited with the name before and after; bad names and unknown ids are user errors', async () => {
    const root = await newRoot();
    const id = await newChild(root, 'Old name');
    await newChild(root, 'Taken');
    expect(await update({ id, name: 'New name' })).toMatchObject({ userErrors: [], workspace: { name: 'New name' } });
    const entries = await auditOf(id);
    expect(entries.at(-1)).toMatchObject({ action: 'workspace.update', changes: { before: { name: 'Old name' }, after: { name: 'New name' } } });
    expect(codes(await update({ id, name: 'TAKEN' }))).toEqual(['DUPLICATE_NAME']);
    expect(codes(await update({ id, name: '' }))).toEqual(['BLANK']);
    expect(codes(await update({ id: wid(other.tree.leaf.id), name: 'mine' }))).toEqual(['NOT_FOUND']);
    expect(codes(await update({ id: 'garbage', name: 'mine' }))).toEqual(['NOT_FOUND']);
  });
});

describe('moveWorkspace', () => {
  it('moves a subtree: parent, depths and closure rows of every node rewritten; audited before and after', async () => {
    const a = await newRoot();
    const b = await newRoot();
    const a1 = await newChild(a);
    const a11 = await newChild(a1);
    await newChild(a11);
    const payload = await move({ id: a1, newParentId: b });
    expect(payload).toMatchObject({ userErrors: [], workspace: { id: a1, depth: 1, parent: { id: b } } });
    await expectConsistentTree(db.prisma, realm.realm.id);
    expect((await auditOf(a1)).at(-1)).toMatchObject({
      action: 'workspace.move',
      changes: { before: { parentId: a }, after: { parentId: b } },
    });
    // back to a root: depth 0, and depths below follow
    expect(await move({ id: a11, newParentId: null })).toMatchObject({ userErrors: [], workspace: { depth: 0, parent: null } });
    await expectConsistentTree(db.prisma, realm.realm.id);
    expect((await auditOf(a11)).at(-1)).toMatchObject({ changes: { before: { parentId: a1, depth: 2 }, after: { parentId: null, depth: 0 } } });
  });

  it('refuses a move below itself or its descendants (WOULD_CREATE_CYCLE), and leaves the tree as it was', async () => {
    const a = await newRoot();
    const child = await newChild(a);
    const grandchild = await newChild(child);
    for (const newParentId of [a, child, grandchild]) {
      expect(await move({ id: a, newParentId })).toMatchObject({ workspace: null, userErrors: [{ field: ['input', 'newParentId'], code: 'WOULD_CREATE_CYCLE' }] });
    }
    await expectConsistentTree(db.prisma, realm.realm.id);
  });

  it('counts the moved subtree\'s height against the maximum depth (TOO_DEEP)', async () => {
    const chain = await createWorkspaceChain(db.prisma, realm.realm.id, 20, unique('chain'));
    const other = await createWorkspaceChain(db.prisma, realm.realm.id, 13, unique('tall'));
    // 13 levels below level 19 would reach level 32 (depth 32): one too many
    expect(codes(await move({ id: wid(other[0]!.id), newParentId: wid(chain[19]!.id) }))).toEqual(['TOO_DEEP']);
    expect(codes(await move({ id: wid(other[0]!.id), newParentId: wid(chain[18]!.id) }))).toEqual([]);
    await expectConsistentTree(db.prisma, realm.realm.id);
  });

  it('refuses a name taken under the new parent, an archived new parent, an archived workspace; newParentId omitted makes a root', async () => {
    const a = await newRoot();
    const b = await newRoot();
    const x = await newChild(a, 'Same');
    await newChild(b, 'same');
    expect(await move({ id: x, newParentId: b })).toMatchObject({ userErrors: [{ field: ['input', 'newParentId'], code: 'DUPLICATE_NAME' }] });
    const closed = await newChild(b);
    expect(codes(await archive(closed))).toEqual([]);
    expect(codes(await move({ id: x, newParentId: closed }))).toEqual(['ARCHIVED']);
    expect(codes(await move({ id: closed, newParentId: a }))).toEqual(['ARCHIVED']);
    // newParentId omitted is null: a root
    expect(await move({ id: x })).toMatchObject({ userErrors: [], workspace: { parent: null, depth: 0 } });
    expect(codes(await move({ id: x, newParentId: wid(other.tree.root.id) }))).toEqual(['NOT_FOUND']);
    expect(codes(await move({ id: wid(other.tree.left.id), newParentId: a }))).toEqual(['NOT_FOUND']);
  });

  it("reports of a moved workspace's new ancestors include its history (subtree = today's tree)", async () => {
    const from = await newRoot();
    const to = await newRoot();
    const team = await newChild(from);
    const INGEST = `mutation ($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted rejected { code } } }`;
    const ingested = await graphql(app, INGEST, {
      key: realm.admin.key,
      variables: { events: [{ idempotencyKey: unique('history'), feature: 'tx', timestamp: '2026-06-15T10:00:00Z', quantity: '7', workspaceId: team }] },
    });
    expect(ingested.body.data.ingestUsage).toEqual({ accepted: 1, rejected: [] });
    const subtreeTotal = async (id: string) => {
      const { body } = await graphql(app, `query ($id: ID!) { node(id: $id) { ... on Workspace { usage(timeframe: ALL_TIME) { totals { quantity } } } } }`, {
        key: realm.admin.key,
        variables: { id },
      });
      return body.data.node.usage.totals[0]?.quantity ?? '0';
    };
    expect([await subtreeTotal(from), await subtreeTotal(to)]).toEqual(['7', '0']);
    expect(codes(await move({ id: team, newParentId: to }))).toEqual([]);
    expect([await subtreeTotal(from), await subtreeTotal(to), await subtreeTotal(team)]).toEqual(['0', '7', '7']);
  });
});

describe('archiveWorkspace', () => {
  it('hides it from lists (includeArchived shows it), node(id) still answers, only without live children', async () => {
    const parent = await newRoot();
    const child = await newChild(parent);
    expect(await archive(parent)).toMatchObject({ workspace: null, userErrors: [{ field: ['id'], code: 'HAS_LIVE_CHILDREN' }] });
    const archived = await archive(child);
    expect(archived).toMatchObject({ userErrors: [], workspace: { id: child, archivedAt: NOW.toISOString() } });
    expect((await auditOf(child)).at(-1)).toMatchObject({ action: 'workspace.archive', changes: { before: { archivedAt: null }, after: { archivedAt: NOW.toISOString() } } });
    const lists = async (includeArchived: boolean) => {
      const { body } = await graphql(
        app,
        `query ($id: ID!, $all: Boolean) { node(id: $id) { ... on Workspace { children(includeArchived: $all) { totalCount edges { node { id } } } descendants(includeArchived: $all) { totalCount } } }
           realm { workspaces(last: 3, includeArchived: $all) { edges { node { id } } } } }`,
        { key: realm.admin.key, variables: { id: parent, all: includeArchived } },
      );
      return {
        children: body.data.node.children.edges.map((e: { node: { id: string } }) => e.node.id),
        childCount: body.data.node.children.totalCount,
        descendants: body.data.node.descendants.totalCount,
        inRealm: body.data.realm.workspaces.edges.some((e: { node: { id: string } }) => e.node.id === child),
      };
    };
    expect(await lists(false)).toEqual({ children: [], childCount: 0, descendants: 0, inRealm: false });
    expect(await lists(true)).toEqual({ children: [child], childCount: 1, descendants: 1, inRealm: true });
    const node = await graphql(app, `query ($id: ID!) { node(id: $id) { ... on Workspace { name archivedAt } } }`, { key: realm.admin.key, variables: { id: child } });
    expect(node.body.data.node.archivedAt).toBe(NOW.toISOString());
    expect(codes(await archive(child))).toEqual(['ALREADY_ARCHIVED']);
    expect(codes(await update({ id: child, name: 'renamed' }))).toEqual(['ARCHIVED']);
    expect(codes(await create({ name: 'below', parentId: child }))).toEqual(['ARCHIVED']);
    // the parent can go now; the child cannot come back below an archived parent
    expect(codes(await archive(parent))).toEqual([]);
    expect(await unarchive(child)).toMatchObject({ userErrors: [{ code: 'ARCHIVED' }] });
    expect(codes(await unarchive(parent))).toEqual([]);
    expect(await unarchive(child)).toMatchObject({ userErrors: [], workspace: { archivedAt: null } });
    // unarchiving a live workspace changes (and audits) nothing
    expect(await unarchive(child)).toMatchObject({ userErrors: [], workspace: { id: child, archivedAt: null } });
    expect((await auditOf(child)).map((e) => e.action)).toEqual(['workspace.create', 'workspace.archive', 'workspace.unarchive']);
  });

  it('counts live datastreams and apps as children', async () => {
    expect(await archive(wid(realm.tree.right.id))).toMatchObject({ userErrors: [{ code: 'HAS_LIVE_CHILDREN', message: expect.stringContaining('1 datastream(s) and 1 app(s)') }] });
  });
});

describe('a workspace-scoped admin key', () => {
  const left = () => wid(realm.tree.left.id);

  it('creates, renames and moves inside its subtree', async () => {
    const team = await create({ name: unique('scoped'), parentId: left() }, scopedAdmin);
    expect(team.userErrors).toEqual([]);
    const sub = await create({ name: unique('scoped'), parentId: team.workspace.id }, scopedAdmin);
    expect(codes(await update({ id: sub.workspace.id, name: unique('renamed') }, scopedAdmin))).toEqual([]);
    expect(codes(await move({ id: sub.workspace.id, newParentId: left() }, scopedAdmin))).toEqual([]);
    expect(codes(await move({ id: wid(realm.tree.leaf.id), newParentId: team.workspace.id }, scopedAdmin))).toEqual([]);
    expect(codes(await move({ id: wid(realm.tree.leaf.id), newParentId: left() }, scopedAdmin))).toEqual([]);
    expect(codes(await update({ id: left(), name: 'left' }, scopedAdmin))).toEqual([]);
    const entry = (await auditOf(team.workspace.id))[0]!;
    expect(entry.actorPrefix).toBe(scopedAdmin.split('_').slice(0, 2).join('_'));
  });

  it('never creates a root, never moves, archives or unarchives its own root (FORBIDDEN_TARGET)', async () => {
    expect(await create({ name: unique() }, scopedAdmin)).toMatchObject({ userErrors: [{ field: ['input', 'parentId'], code: 'FORBIDDEN_TARGET' }] });
    expect(await move({ id: left(), newParentId: wid(realm.tree.right.id) }, scopedAdmin)).toMatchObject({ userErrors: [{ field: ['input', 'id'], code: 'FORBIDDEN_TARGET' }] });
    expect(await archive(left(), scopedAdmin)).toMatchObject({ userErrors: [{ field: ['id'], code: 'FORBIDDEN_TARGET' }] });
    expect(await unarchive(left(), scopedAdmin)).toMatchObject({ userErrors: [{ field: ['id'], code: 'FORBIDDEN_TARGET' }] });
    const inside = await create({ name: unique() }, realm.admin.key);
    expect(await move({ id: wid(realm.tree.leaf.id), newParentId: null }, scopedAdmin)).toMatchObject({ userErrors: [{ field: ['input', 'newParentId'], code: 'FORBIDDEN_TARGET' }] });
    expect(inside.userErrors).toEqual([]);
  });

  it('finds nothing outside its subtree (NOT_FOUND): not as a parent, not as a target, not as a destination', async () => {
    const right = wid(realm.tree.right.id);
    expect(await create({ name: unique(), parentId: right }, scopedAdmin)).toMatchObject({ userErrors: [{ field: ['input', 'parentId'], code: 'NOT_FOUND' }] });
    expect(await create({ name: unique(), parentId: wid(realm.tree.root.id) }, scopedAdmin)).toMatchObject({ userErrors: [{ code: 'NOT_FOUND' }] });
    expect(await move({ id: wid(realm.tree.leaf.id), newParentId: right }, scopedAdmin)).toMatchObject({ userErrors: [{ field: ['input', 'newParentId'], code: 'NOT_FOUND' }] });
    expect(await move({ id: right, newParentId: left() }, scopedAdmin)).toMatchObject({ userErrors: [{ field: ['input', 'id'], code: 'NOT_FOUND' }] });
    expect(codes(await update({ id: right, name: 'mine' }, scopedAdmin))).toEqual(['NOT_FOUND']);
    expect(codes(await archive(right, scopedAdmin))).toEqual(['NOT_FOUND']);
  });
});

describe('authorization', () => {
  it('a key without admin:write is FORBIDDEN, and nothing is written', async () => {
    const before = await db.prisma.workspace.count();
    for (const [query, variables] of [
      [CREATE, { input: { name: 'x' } }],
      [UPDATE, { input: { id: wid(realm.tree.leaf.id), name: 'x' } }],
      [MOVE, { input: { id: wid(realm.tree.leaf.id), newParentId: null } }],
      [ARCHIVE, { id: wid(realm.tree.leaf.id) }],
      [UNARCHIVE, { id: wid(realm.tree.leaf.id) }],
    ] as const) {
      const response = await graphql(app, query, { key: readOnly, variables });
      expect(response.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      expect(response.body.errors?.[0]?.message).toContain('admin:write');
    }
    expect(await db.prisma.workspace.count()).toBe(before);
  });
});

describe('statement counts', () => {
  it('are the same for every mutation whatever the size of the tree and of the moved subtree', async () => {
    /** A root with `size` workspaces below it (a few levels), inserted directly. */
    async function tree(size: number) {
      const root = await db.prisma.$transaction((tx) => insertWorkspace(tx, { realmId: realm.realm.id, name: unique('stats') }));
      let parents = [root.id];
      let made = 0;
      while (made < size) {
        const next: string[] = [];
        await db.prisma.$transaction(async (tx) => {
          for (const parentId of parents) {
            for (let i = 0; i < 4 && made < size; i++, made++) next.push((await insertWorkspace(tx, { realmId: realm.realm.id, parentId, name: `n${made}` })).id);
          }
        });
        parents = next;
      }
      return wid(root.id);
    }
    const small = await tree(2);
    const big = await tree(120);
    const target = await newRoot();
    const counts = async (root: string) => {
      const created = await call(CREATE, { input: { name: unique(), parentId: root, idempotencyKey: unique('stats-key') } });
      const renamed = await call(UPDATE, { input: { id: root, name: unique('renamed') } });
      const moved = await call(MOVE, { input: { id: root, newParentId: target } });
      const movedBack = await call(MOVE, { input: { id: root, newParentId: null } });
      const leaf = created.payload.workspace.id;
      const archived = await call(ARCHIVE, { id: leaf });
      const unarchived = await call(UNARCHIVE, { id: leaf });
      for (const step of [created, renamed, moved, movedBack, archived, unarchived]) expect(step.payload.userErrors).toEqual([]);
      return [created, renamed, moved, movedBack, archived, unarchived].map((step) => step.statements);
    };
    const smallCounts = await counts(small);
    const bigCounts = await counts(big);
    expect(bigCounts).toEqual(smallCounts);
    expect(Math.max(...smallCounts)).toBeLessThan(20);
    await expectConsistentTree(db.prisma, realm.realm.id);
  }, 60_000);
});

describe.runIf(testDatabaseKind() === 'postgres')('concurrent moves (PostgreSQL, two gateways)', () => {
  let second: Database;
  let secondApp: App;
  beforeAll(async () => {
    second = await openDatabase(db.target, { migrate: false });
    secondApp = createApp({ prisma: second.prisma, now: () => NOW });
  });
  afterAll(() => second?.close());

  it('of two moves that together would form a cycle, exactly one succeeds, every time', async () => {
    for (let round = 0; round < 15; round++) {
      const parent = await newRoot();
      const a = await newChild(parent);
      const b = await newChild(parent);
      const [first, other] = await Promise.all([
        call(MOVE, { input: { id: a, newParentId: b } }, realm.admin.key, app),
        call(MOVE, { input: { id: b, newParentId: a } }, realm.admin.key, secondApp),
      ]);
      const outcomes = [codes(first.payload), codes(other.payload)].map((c) => c.join(',')).sort();
      expect(outcomes).toEqual(['', 'WOULD_CREATE_CYCLE']);
    }
    await expectConsistentTree(db.prisma, realm.realm.id);
  }, 120_000);
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../src/global-id.js';
import { useIngestEndpoint } from '../src/ingest/http.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
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
  app = createApp({ prisma: db.prisma, now: () => NOW, exposeQueryStats: true, plugins: [useIngestEndpoint({ prisma: db.prisma, now: () => NOW })] });
  realm = await createUsageRealm(db.prisma, 'UTC');
  other = await createUsageRealm(db.prisma, 'UTC');
  scopedAdmin = (await createKey(db.prisma, realm.realm.id, { workspaceId: realm.tree.left.id, scopes: ['admin:write', 'usage:read', 'usage:write'] })).key;
  readOnly = (await createKey(db.prisma, realm.realm.id, { scopes: ['usage:read'] })).key;
}, 60_000);
afterAll(() => db?.destroy());

const wid = (id: string) => encodeId('Workspace', id);
const raw = (globalId: string) => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;
const ERRORS = 'userErrors { field code message }';
const DS = `datastream { id name archivedAt workspace { id } } ${ERRORS}`;
const PROJECT = `project { id name archivedAt } ${ERRORS}`;
const APP = `app { id name archivedAt project { id } workspace { id } } ${ERRORS}`;

const M = {
  createDatastream: `mutation ($input: CreateDatastreamInput!) { createDatastream(input: $input) { ${DS} } }`,
  updateDatastream: `mutation ($input: UpdateDatastreamInput!) { updateDatastream(input: $input) { ${DS} } }`,
  moveDatastream: `mutation ($input: MoveDatastreamInput!) { moveDatastream(input: $input) { ${DS} } }`,
  archiveDatastream: `mutation ($id: ID!) { archiveDatastream(id: $id) { ${DS} } }`,
  unarchiveDatastream: `mutation ($id: ID!) { unarchiveDatastream(id: $id) { ${DS} } }`,
  createProject: `mutation ($input: CreateProjectInput!) { createProject(input: $input) { ${PROJECT} } }`,
  updateProject: `mutation ($input: UpdateProjectInput!) { updateProject(input: $input) { ${PROJECT} } }`,
  archiveProject: `mutation ($id: ID!) { archiveProject(id: $id) { ${PROJECT} } }`,
  unarchiveProject: `mutation ($id: ID!) { unarchiveProject(id: $id) { ${PROJECT} } }`,
  createApp: `mutation ($input: CreateAppInput!) { createApp(input: $input) { ${APP} } }`,
  updateApp: `mutation ($input: UpdateAppInput!) { updateApp(input: $input) { ${APP} } }`,
  moveApp: `mutation ($input: MoveAppInput!) { moveApp(input: $input) { ${APP} } }`,
  archiveApp: `mutation ($id: ID!) { archiveApp(id: $id) { ${APP} } }`,
  unarchiveApp: `mutation ($id: ID!) { unarchiveApp(id: $id) { ${APP} } }`,
} as const;

async function run(name: keyof typeof M, variables: Record<string, unknown>, key = realm.admin.key) {
  const response = await graphql(app, M[name], { key, variables });
  expect(response.body.errors).toBeUndefined();
  return response.body.data![name];
}
const codes = (payload: { userErrors: { code: string }[] }) => payload.userErrors.map((e) => e.code);
let counter = 0;
const unique = (prefix = 'name') => `${prefix} ${++counter}`;
const lastAudit = async (globalId: string) => (await db.prisma.auditEntry.findMany({ where: { targetId: raw(globalId) }, orderBy: { id: 'desc' }, take: 1 }))[0];

async function newWorkspace(parent = realm.tree.root.id) {
  const ws = await db.prisma.$transaction(async (tx) => (await import('../src/db/workspace-tree.js')).insertWorkspace(tx, { realmId: realm.realm.id, parentId: parent, name: unique('ws') }));
  return wid(ws.id);
}

describe('datastreams', () => {
  it('create, rename, move and archive, each audited with before and after', async () => {
    const from = await newWorkspace();
    const to = await newWorkspace();
    const created = await run('createDatastream', { input: { workspaceId: from, name: ' Orders ' } });
    expect(created).toMatchObject({ userErrors: [], datastream: { name: 'Orders', archivedAt: null, workspace: { id: from } } });
    const id = created.datastream.id;
    expect(await lastAudit(id)).toMatchObject({ action: 'datastream.create', targetType: 'Datastream', changes: { before: null, after: { name: 'Orders', workspaceId: from } } });
    expect(await run('updateDatastream', { input: { id, name: 'Invoices' } })).toMatchObject({ userErrors: [], datastream: { name: 'Invoices' } });
    expect(await lastAudit(id)).toMatchObject({ action: 'datastream.update', changes: { before: { name: 'Orders' }, after: { name: 'Invoices' } } });
    expect(await run('moveDatastream', { input: { id, workspaceId: to } })).toMatchObject({ userErrors: [], datastream: { workspace: { id: to } } });
    expect(await lastAudit(id)).toMatchObject({ action: 'datastream.move', changes: { before: { workspaceId: from }, after: { workspaceId: to } } });
    expect(await run('archiveDatastream', { id })).toMatchObject({ userErrors: [], datastream: { archivedAt: NOW.toISOString() } });
    expect(await lastAudit(id)).toMatchObject({ action: 'datastream.archive' });
    const lists = async (all: boolean) => {
      const { body } = await graphql(
        app,
        `query ($ws: ID!, $all: Boolean) { node(id: $ws) { ... on Workspace { datastreams(includeArchived: $all) { totalCount } } } realm { datastreams(last: 2, includeArchived: $all) { edges { node { id } } } } }`,
        { key: realm.admin.key, variables: { ws: to, all } },
      );
      return [body.data.node.datastreams.totalCount, body.data.realm.datastreams.edges.some((e: { node: { id: string } }) => e.node.id === id)];
    };
    expect(await lists(false)).toEqual([0, false]);
    expect(await lists(true)).toEqual([1, true]);
    expect(codes(await run('archiveDatastream', { id }))).toEqual(['ALREADY_ARCHIVED']);
    expect(codes(await run('updateDatastream', { input: { id, name: 'x' } }))).toEqual(['ARCHIVED']);
    expect(codes(await run('moveDatastream', { input: { id, workspaceId: from } }))).toEqual(['ARCHIVED']);
    expect(codes(await run('unarchiveDatastream', { id }))).toEqual([]);
    expect(codes(await run('unarchiveDatastream', { id }))).toEqual([]);
    expect((await db.prisma.auditEntry.findMany({ where: { targetId: raw(id) }, orderBy: { id: 'asc' } })).map((e) => e.action)).toEqual([
      'datastream.create',
      'datastream.update',
      'datastream.move',
      'datastream.archive',
      'datastream.unarchive',
    ]);
  });

  it.each([
    ['an empty name', () => ({ name: '' }), ['input', 'name'], 'BLANK'],
    ['a name too long', () => ({ name: 'd'.repeat(201) }), ['input', 'name'], 'TOO_LONG'],
    ['a control character', () => ({ name: 'a\u001bb' }), ['input', 'name'], 'INVALID_STRING'],
    ["another realm's workspace", () => ({ workspaceId: wid(other.tree.left.id) }), ['input', 'workspaceId'], 'NOT_FOUND'],
    ['a Project id as workspace', () => ({ workspaceId: encodeId('Project', realm.project.id) }), ['input', 'workspaceId'], 'NOT_FOUND'],
    ['a malformed workspace id', () => ({ workspaceId: '!!' }), ['input', 'workspaceId'], 'NOT_FOUND'],
    ['a bad idempotency key', () => ({ idempotencyKey: 'x'.repeat(256) }), ['input', 'idempotencyKey'], 'INVALID_IDEMPOTENCY_KEY'],
  ])('createDatastream: %s is a user error, nothing written', async (_what, make, field, code) => {
    const count = await db.prisma.datastream.count();
    const payload = await run('createDatastream', { input: { workspaceId: wid(realm.tree.left.id), name: unique('ds'), ...make() } });
    expect(payload).toMatchObject({ datastream: null, userErrors: [{ field, code }] });
    expect(await db.prisma.datastream.count()).toBe(count);
  });

  it('names are unique per workspace among live datastreams; a workspace archived takes none', async () => {
    const ws = await newWorkspace();
    const first = (await run('createDatastream', { input: { workspaceId: ws, name: 'Clicks' } })).datastream.id;
    expect(codes(await run('createDatastream', { input: { workspaceId: ws, name: 'CLICKS' } }))).toEqual(['DUPLICATE_NAME']);
    const second = (await run('createDatastream', { input: { workspaceId: ws, name: 'Views' } })).datastream.id;
    expect(codes(await run('updateDatastream', { input: { id: second, name: 'clicks' } }))).toEqual(['DUPLICATE_NAME']);
    const elsewhere = await newWorkspace();
    const third = (await run('createDatastream', { input: { workspaceId: elsewhere, name: 'Clicks' } })).datastream.id;
    expect(codes(await run('moveDatastream', { input: { id: third, workspaceId: ws } }))).toEqual(['DUPLICATE_NAME']);
    await run('archiveDatastream', { id: first });
    await run('archiveDatastream', { id: second });
    await run('archiveDatastream', { id: third });
    await db.prisma.workspace.update({ where: { id: raw(ws) }, data: { archivedAt: NOW } });
    expect(codes(await run('createDatastream', { input: { workspaceId: ws, name: unique() } }))).toEqual(['ARCHIVED']);
    expect(codes(await run('unarchiveDatastream', { id: first }))).toEqual(['ARCHIVED']);
  });

  it('replays an idempotency key, and refuses it with another input', async () => {
    const input = { workspaceId: wid(realm.tree.right.id), name: unique('idem'), idempotencyKey: unique('key') };
    const first = await run('createDatastream', { input });
    const again = await run('createDatastream', { input });
    expect(again.datastream.id).toBe(first.datastream.id);
    expect(await db.prisma.auditEntry.count({ where: { targetId: raw(first.datastream.id) } })).toBe(1);
    expect(await run('createDatastream', { input: { ...input, name: 'other' } })).toMatchObject({ userErrors: [{ code: 'IDEMPOTENCY_MISMATCH' }] });
  });

  it('a workspace-scoped key acts inside its subtree; outside it finds nothing (NOT_FOUND)', async () => {
    const mine = await run('createDatastream', { input: { workspaceId: wid(realm.tree.leaf.id), name: unique() } }, scopedAdmin);
    expect(mine.userErrors).toEqual([]);
    expect(codes(await run('moveDatastream', { input: { id: mine.datastream.id, workspaceId: wid(realm.tree.left.id) } }, scopedAdmin))).toEqual([]);
    expect(await run('moveDatastream', { input: { id: mine.datastream.id, workspaceId: wid(realm.tree.right.id) } }, scopedAdmin)).toMatchObject({
      userErrors: [{ field: ['input', 'workspaceId'], code: 'NOT_FOUND' }],
    });
    const rightStream = encodeId('Datastream', realm.streams[2]!.id);
    expect(codes(await run('createDatastream', { input: { workspaceId: wid(realm.tree.right.id), name: unique() } }, scopedAdmin))).toEqual(['NOT_FOUND']);
    expect(codes(await run('updateDatastream', { input: { id: rightStream, name: 'mine' } }, scopedAdmin))).toEqual(['NOT_FOUND']);
    expect(codes(await run('archiveDatastream', { id: rightStream }, scopedAdmin))).toEqual(['NOT_FOUND']);
    expect(codes(await run('archiveDatastream', { id: encodeId('Datastream', other.streams[0]!.id) }))).toEqual(['NOT_FOUND']);
  });
});

describe('projects', () => {
  it('create, rename, archive (only without live apps), unarchive; audited', async () => {
    const created = await run('createProject', { input: { name: 'Mobile' } });
    expect(created).toMatchObject({ userErrors: [], project: { name: 'Mobile', archivedAt: null } });
    const id = created.project.id;
    expect(await lastAudit(id)).toMatchObject({ action: 'project.create', changes: { before: null, after: { name: 'Mobile' } } });
    expect(codes(await run('createProject', { input: { name: 'mobile' } }))).toEqual(['DUPLICATE_NAME']);
    expect(await run('updateProject', { input: { id, name: 'Mobile apps' } })).toMatchObject({ userErrors: [], project: { name: 'Mobile apps' } });
    const appId = (await run('createApp', { input: { projectId: id, name: 'iOS' } })).app.id;
    expect(await run('archiveProject', { id })).toMatchObject({ userErrors: [{ field: ['id'], code: 'HAS_LIVE_CHILDREN' }] });
    expect(codes(await run('archiveApp', { id: appId }))).toEqual([]);
    expect(await run('archiveProject', { id })).toMatchObject({ userErrors: [], project: { archivedAt: NOW.toISOString() } });
    expect(codes(await run('createApp', { input: { projectId: id, name: 'Android' } }))).toEqual(['ARCHIVED']);
    expect(codes(await run('unarchiveApp', { id: appId }))).toEqual(['ARCHIVED']);
    expect(codes(await run('updateProject', { input: { id, name: 'x' } }))).toEqual(['ARCHIVED']);
    expect(codes(await run('archiveProject', { id }))).toEqual(['ALREADY_ARCHIVED']);
    const { body } = await graphql(app, '{ realm { live: projects { totalCount } all: projects(includeArchived: true) { totalCount } } }', { key: realm.admin.key });
    expect(body.data.realm.all.totalCount - body.data.realm.live.totalCount).toBe(1);
    expect(codes(await run('unarchiveProject', { id }))).toEqual([]);
    expect((await db.prisma.auditEntry.findMany({ where: { targetId: raw(id) }, orderBy: { id: 'asc' } })).map((e) => e.action)).toEqual([
      'project.create',
      'project.update',
      'project.archive',
      'project.unarchive',
    ]);
  });

  it('are the realm\'s shared catalog: a workspace-scoped key gets FORBIDDEN; ids of another realm are NOT_FOUND', async () => {
    for (const [name, variables] of [
      ['createProject', { input: { name: 'x' } }],
      ['updateProject', { input: { id: encodeId('Project', realm.project.id), name: 'x' } }],
      ['archiveProject', { id: encodeId('Project', realm.project.id) }],
      ['unarchiveProject', { id: encodeId('Project', realm.project.id) }],
    ] as const) {
      const response = await graphql(app, M[name], { key: scopedAdmin, variables });
      expect(response.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }
    expect(codes(await run('updateProject', { input: { id: encodeId('Project', other.project.id), name: 'x' } }))).toEqual(['NOT_FOUND']);
    expect(codes(await run('archiveProject', { id: encodeId('App', realm.apps[0]!.id) }))).toEqual(['NOT_FOUND']);
  });
});

describe('apps', () => {
  it('create (with or without a workspace), rename, move, archive; audited', async () => {
    const projectId = encodeId('Project', realm.project.id);
    const created = await run('createApp', { input: { projectId, workspaceId: wid(realm.tree.left.id), name: 'Web' } });
    expect(created).toMatchObject({ userErrors: [], app: { name: 'Web', project: { id: projectId }, workspace: { id: wid(realm.tree.left.id) } } });
    const id = created.app.id;
    expect(await lastAudit(id)).toMatchObject({ action: 'app.create', changes: { after: { name: 'Web', projectId, workspaceId: wid(realm.tree.left.id) } } });
    expect(codes(await run('createApp', { input: { projectId, name: 'WEB' } }))).toEqual(['DUPLICATE_NAME']);
    expect(codes(await run('updateApp', { input: { id, name: 'Web app' } }))).toEqual([]);
    expect(await run('moveApp', { input: { id, workspaceId: null } })).toMatchObject({ userErrors: [], app: { workspace: null } });
    expect(await lastAudit(id)).toMatchObject({ action: 'app.move', changes: { before: { workspaceId: wid(realm.tree.left.id) }, after: { workspaceId: null } } });
    expect(codes(await run('moveApp', { input: { id, workspaceId: wid(realm.tree.right.id) } }))).toEqual([]);
    // workspaceId omitted is null: the realm as a whole
    expect(await run('moveApp', { input: { id } })).toMatchObject({ userErrors: [], app: { workspace: null } });
    expect(codes(await run('moveApp', { input: { id, workspaceId: wid(realm.tree.right.id) } }))).toEqual([]);
    expect(codes(await run('archiveApp', { id }))).toEqual([]);
    expect(codes(await run('moveApp', { input: { id, workspaceId: null } }))).toEqual(['ARCHIVED']);
    expect(codes(await run('unarchiveApp', { id }))).toEqual([]);
    expect(codes(await run('createApp', { input: { projectId: encodeId('Project', other.project.id), name: unique() } }))).toEqual(['NOT_FOUND']);
    expect(codes(await run('createApp', { input: { projectId, workspaceId: wid(other.tree.root.id), name: unique() } }))).toEqual(['NOT_FOUND']);
    expect(codes(await run('createApp', { input: { projectId, name: '' } }))).toEqual(['BLANK']);
  });

  it('a workspace-scoped key: apps inside its subtree only, never realm-wide ones (FORBIDDEN_TARGET)', async () => {
    const projectId = encodeId('Project', realm.project.id);
    expect(await run('createApp', { input: { projectId, name: unique() } }, scopedAdmin)).toMatchObject({ userErrors: [{ field: ['input', 'workspaceId'], code: 'FORBIDDEN_TARGET' }] });
    const mine = await run('createApp', { input: { projectId, workspaceId: wid(realm.tree.leaf.id), name: unique() } }, scopedAdmin);
    expect(mine.userErrors).toEqual([]);
    expect(codes(await run('moveApp', { input: { id: mine.app.id, workspaceId: null } }, scopedAdmin))).toEqual(['FORBIDDEN_TARGET']);
    expect(codes(await run('moveApp', { input: { id: mine.app.id, workspaceId: wid(realm.tree.right.id) } }, scopedAdmin))).toEqual(['NOT_FOUND']);
    expect(codes(await run('archiveApp', { id: encodeId('App', realm.apps[1]!.id) }, scopedAdmin))).toEqual(['NOT_FOUND']);
  });
});

describe('statement counts', () => {
  it('are the same whatever the depth of the workspace (a scoped key, whose visibility goes through the closure table)', async () => {
    let deepest = realm.tree.left.id;
    for (let level = 0; level < 15; level++) deepest = raw(await newWorkspace(deepest));
    const projectId = encodeId('Project', realm.project.id);
    const statements = async (name: keyof typeof M, variables: Record<string, unknown>) => {
      const response = await graphql(app, M[name], { key: scopedAdmin, variables });
      expect((Object.values(response.body.data!)[0] as any).userErrors).toEqual([]);
      return { payload: Object.values(response.body.data!)[0] as any, count: response.body.extensions!.queryStats.sqlStatements as number };
    };
    const counts = async (workspaceId: string) => {
      const created = await statements('createDatastream', { input: { workspaceId, name: unique(), idempotencyKey: unique('count') } });
      const id = created.payload.datastream.id;
      const renamed = await statements('updateDatastream', { input: { id, name: unique() } });
      const moved = await statements('moveDatastream', { input: { id, workspaceId: wid(realm.tree.leaf.id) } });
      const archived = await statements('archiveDatastream', { id });
      const app = await statements('createApp', { input: { projectId, workspaceId, name: unique() } });
      const appMoved = await statements('moveApp', { input: { id: app.payload.app.id, workspaceId: wid(realm.tree.leaf.id) } });
      return [created, renamed, moved, archived, app, appMoved].map((step) => step.count);
    };
    const shallow = await counts(wid(realm.tree.left.id));
    expect(await counts(wid(deepest))).toEqual(shallow);
  });
});

describe('authorization', () => {
  it('a key without admin:write gets FORBIDDEN from every catalog mutation', async () => {
    const inputs: Partial<Record<keyof typeof M, Record<string, unknown>>> = {
      createDatastream: { workspaceId: wid(realm.tree.left.id), name: 'x' },
      updateDatastream: { id: encodeId('Datastream', realm.streams[0]!.id), name: 'x' },
      moveDatastream: { id: encodeId('Datastream', realm.streams[0]!.id), workspaceId: wid(realm.tree.left.id) },
      createProject: { name: 'x' },
      updateProject: { id: encodeId('Project', realm.project.id), name: 'x' },
      createApp: { projectId: encodeId('Project', realm.project.id), name: 'x' },
      updateApp: { id: encodeId('App', realm.apps[0]!.id), name: 'x' },
      moveApp: { id: encodeId('App', realm.apps[0]!.id), workspaceId: null },
    };
    const audits = await db.prisma.auditEntry.count();
    for (const name of Object.keys(M) as (keyof typeof M)[]) {
      const variables = inputs[name] ? { input: inputs[name] } : { id: encodeId('App', realm.apps[0]!.id) };
      const response = await graphql(app, M[name], { key: readOnly, variables });
      expect(response.body.errors?.[0]?.extensions?.code, name).toBe('FORBIDDEN');
    }
    expect(await db.prisma.auditEntry.count()).toBe(audits);
  });
});

describe('archived dimensions in ingestion', () => {
  const INGEST = `mutation ($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted rejected { index code message } } }`;
  let archived: Record<'workspaceId' | 'datastreamId' | 'projectId' | 'appId', string>;
  let live: Record<'workspaceId' | 'datastreamId' | 'projectId' | 'appId', string>;

  beforeAll(async () => {
    const ws = await newWorkspace();
    const project = (await run('createProject', { input: { name: unique('closed project') } })).project.id;
    const ds = (await run('createDatastream', { input: { workspaceId: ws, name: 'closed' } })).datastream.id;
    const appId = (await run('createApp', { input: { projectId: project, workspaceId: ws, name: 'closed' } })).app.id;
    archived = { workspaceId: ws, datastreamId: ds, projectId: project, appId };
    live = {
      workspaceId: wid(realm.tree.right.id),
      datastreamId: encodeId('Datastream', realm.streams[2]!.id),
      projectId: encodeId('Project', realm.project.id),
      appId: encodeId('App', realm.apps[1]!.id),
    };
    // every archived one is still usable for reports: give it some usage first
    const before = await graphql(app, INGEST, { key: realm.admin.key, variables: { events: [{ idempotencyKey: unique('before'), feature: 'tx', timestamp: '2026-06-15T09:00:00Z', quantity: '4', ...archived }] } });
    expect(before.body.data.ingestUsage).toEqual({ accepted: 1, rejected: [] });
    for (const [name, id] of [['archiveApp', appId], ['archiveDatastream', ds], ['archiveWorkspace', ws], ['archiveProject', project]] as const) {
      const query = name === 'archiveWorkspace' ? `mutation ($id: ID!) { archiveWorkspace(id: $id) { ${ERRORS} } }` : M[name];
      const response = await graphql(app, query, { key: realm.admin.key, variables: { id } });
      expect((Object.values(response.body.data!)[0] as any).userErrors).toEqual([]);
    }
    await db.prisma.feature.update({ where: { id: realm.features.req.id }, data: { archivedAt: NOW } });
  });

  /** One good event, then one naming each archived dimension (and one of an archived feature). */
  function batch(prefix: string) {
    const event = (extra: Record<string, unknown>) => ({ idempotencyKey: unique(prefix), feature: 'tx', timestamp: '2026-06-15T10:00:00Z', quantity: '1', ...extra });
    return [
      event(live),
      ...(['workspaceId', 'datastreamId', 'projectId', 'appId'] as const).map((field) => event({ ...live, [field]: archived[field] })),
      event({ ...live, feature: 'req' }),
      event(live),
    ];
  }
  const EXPECTED = [1, 2, 3, 4, 5].map((index) => ({ index, code: 'ARCHIVED_DIMENSION' }));

  it('GraphQL ingestUsage refuses each event naming an archived workspace, datastream, project, app or feature; stores the others', async () => {
    const { body } = await graphql(app, INGEST, { key: realm.admin.key, variables: { events: batch('gql') } });
    expect(body.data.ingestUsage.accepted).toBe(2);
    expect(body.data.ingestUsage.rejected.map(({ index, code }: { index: number; code: string }) => ({ index, code }))).toEqual(EXPECTED);
    expect(body.data.ingestUsage.rejected[0].message).toContain('archived');
  });

  it('POST /ingest (NDJSON) refuses them line by line too', async () => {
    const text = batch('http').map((e) => JSON.stringify(e)).join('\n') + '\n';
    const response = await app.fetch('http://gateway.test/ingest', {
      method: 'POST',
      headers: { authorization: `Bearer ${realm.admin.key}`, 'content-type': 'application/x-ndjson' },
      body: text,
    });
    const answer = (await response.json()) as { accepted: number; errors: { line: number; code: string }[] };
    expect(answer.accepted).toBe(2);
    expect(answer.errors.map(({ line, code }) => ({ line, code }))).toEqual(EXPECTED.map(({ index, code }) => ({ line: index + 1, code })));
  });

  it('their usage stays reportable', async () => {
    const { body } = await graphql(app, `query ($id: ID!) { node(id: $id) { ... on Workspace { archivedAt usage(timeframe: ALL_TIME) { totals { quantity } } } } }`, {
      key: realm.admin.key,
      variables: { id: archived.workspaceId },
    });
    expect(body.data.node).toEqual({ archivedAt: NOW.toISOString(), usage: { totals: [{ quantity: '4' }] } });
  });
});

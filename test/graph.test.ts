import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../src/global-id.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey, createRealm, createWorkspaceChain } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';

let db: TestDatabase;
let app: App;
let acme: { realmId: string; key: string; chain: { id: string; name: string }[] };
let other: { realmId: string; key: string; workspaceId: string };
let scopedKey: string;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma });
  const realm = await createRealm(db.prisma, 'Acme');
  const chain = await createWorkspaceChain(db.prisma, realm.id, 4, 'acme');
  await createWorkspaceChain(db.prisma, realm.id, 1, 'sibling');
  for (const workspace of chain) {
    await db.prisma.datastream.create({ data: { realmId: realm.id, workspaceId: workspace.id, name: `${workspace.name} stream` } });
  }
  acme = { realmId: realm.id, key: (await createKey(db.prisma, realm.id)).key, chain };
  scopedKey = (await createKey(db.prisma, realm.id, { workspaceId: chain[1]!.id, scopes: ['usage:read'] })).key;
  const globex = await createRealm(db.prisma, 'Globex');
  const [globexWorkspace] = await createWorkspaceChain(db.prisma, globex.id, 1, 'globex');
  other = { realmId: globex.id, key: (await createKey(db.prisma, globex.id)).key, workspaceId: globexWorkspace!.id };
});

afterAll(() => db?.destroy());

describe('Relay nodes', () => {
  it('refetches every node type by its opaque global id', async () => {
    const { body } = await graphql(app, `{ viewer { apiKey { id } realm { id workspaces(first: 1) { edges { node { id datastreams(first: 1) { edges { node { id } } } } } } } } }`, { key: acme.key });
    const realm = body.data.viewer.realm;
    const ids = [body.data.viewer.apiKey.id, realm.id, realm.workspaces.edges[0].node.id, realm.workspaces.edges[0].node.datastreams.edges[0].node.id];
    const refetched = await graphql(app, `query ($ids: [ID!]!) { nodes(ids: $ids) { id __typename } }`, { key: acme.key, variables: { ids } });
    expect(refetched.body.errors).toBeUndefined();
    expect(refetched.body.data.nodes.map((n: { __typename: string }) => n.__typename)).toEqual(['ApiKey', 'Realm', 'Workspace', 'Datastream']);
    expect(refetched.body.data.nodes.map((n: { id: string }) => n.id)).toEqual(ids);
    expect(ids[1]).not.toContain(acme.realmId);
  });

  it("a node of another realm does not exist for a key (null, no error)", async () => {
    const ids = [encodeId('Realm', other.realmId), encodeId('Workspace', other.workspaceId)];
    const { body } = await graphql(app, `query ($ids: [ID!]!) { nodes(ids: $ids) { id } a: node(id: "${ids[1]}") { id } }`, { key: acme.key, variables: { ids } });
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({ nodes: [null, null], a: null });
  });

  it('`realm(id:)` of another realm is null; without an id it is the key\'s realm', async () => {
    const { body } = await graphql(app, `{ mine: realm { name } theirs: realm(id: "${encodeId('Realm', other.realmId)}") { name } }`, { key: acme.key });
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({ mine: { name: 'Acme' }, theirs: null });
  });

  it('a malformed id is BAD_USER_INPUT with reason INVALID_ID', async () => {
    for (const id of ['nope', encodeId('Realm', 'not-a-uuid'), '']) {
      const { body } = await graphql(app, `query ($id: ID!) { node(id: $id) { id } }`, { key: acme.key, variables: { id } });
      expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_ID' });
    }
  });

  it('an id of a type that is not a node resolves to null', async () => {
    const { body } = await graphql(app, `{ node(id: "${encodeId('Nothing', acme.realmId)}") { id } }`, { key: acme.key });
    expect(body.data?.node ?? null).toBeNull();
  });
});

describe('connections', () => {
  it('pages forward and backward with totalCount', async () => {
    const query = `query ($first: Int, $after: String, $last: Int, $before: String) { realm { workspaces(first: $first, after: $after, last: $last, before: $before) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { node { name } } } } }`;
    const page1 = await graphql(app, query, { key: acme.key, variables: { first: 2 } });
    const w1 = page1.body.data.realm.workspaces;
    expect(w1.totalCount).toBe(5);
    expect(w1.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['acme 0', 'acme 1']);
    expect(w1.pageInfo.hasNextPage).toBe(true);
    const page2 = await graphql(app, query, { key: acme.key, variables: { first: 10, after: w1.pageInfo.endCursor } });
    expect(page2.body.data.realm.workspaces.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['acme 2', 'acme 3', 'sibling 0']);
    const back = await graphql(app, query, { key: acme.key, variables: { last: 1, before: page2.body.data.realm.workspaces.pageInfo.startCursor } });
    expect(back.body.data.realm.workspaces.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['acme 1']);
  });

  it('`first` above 100 is BAD_USER_INPUT with reason PAGE_SIZE_TOO_LARGE', async () => {
    const { body } = await graphql(app, `query ($n: Int) { realm { projects(first: $n) { totalCount } } }`, { key: acme.key, variables: { n: 101 } });
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'PAGE_SIZE_TOO_LARGE', max: 100 });
    const negative = await graphql(app, `{ realm { projects(last: -1) { totalCount } } }`, { key: acme.key });
    expect(negative.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'PAGE_SIZE_TOO_LARGE' });
  });

  it('a malformed cursor is BAD_USER_INPUT with reason INVALID_CURSOR', async () => {
    const { body } = await graphql(app, `{ realm { workspaces(first: 1, after: "garbage") { totalCount } } }`, { key: acme.key });
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_CURSOR' });
  });

  it('children are one level down, descendants every level down', async () => {
    const root = encodeId('Workspace', acme.chain[0]!.id);
    const { body } = await graphql(app, `{ node(id: "${root}") { ... on Workspace { depth children(first: 10) { totalCount edges { node { name depth parent { name } } } } descendants(first: 10) { totalCount edges { node { name depth } } } } } }`, { key: acme.key });
    expect(body.errors).toBeUndefined();
    expect(body.data.node.children).toEqual({ totalCount: 1, edges: [{ node: { name: 'acme 1', depth: 1, parent: { name: 'acme 0' } } }] });
    expect(body.data.node.descendants.totalCount).toBe(3);
    expect(body.data.node.descendants.edges.map((e: { node: { depth: number } }) => e.node.depth)).toEqual([1, 2, 3]);
  });
});

describe('a key scoped to a workspace', () => {
  it('sees that workspace and every workspace beneath it, nothing above or beside', async () => {
    const { body } = await graphql(app, `{ viewer { workspace { name } realm { workspaces(first: 10) { totalCount edges { node { name parent { name } } } } datastreams(first: 10) { totalCount } } } }`, { key: scopedKey });
    expect(body.errors).toBeUndefined();
    expect(body.data.viewer.workspace).toEqual({ name: 'acme 1' });
    const workspaces = body.data.viewer.realm.workspaces;
    expect(workspaces.totalCount).toBe(3);
    expect(workspaces.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['acme 1', 'acme 2', 'acme 3']);
    expect(workspaces.edges[0].node.parent).toBeNull();
    expect(body.data.viewer.realm.datastreams.totalCount).toBe(3);
  });

  it('cannot refetch a workspace above its scope', async () => {
    const { body } = await graphql(app, `{ node(id: "${encodeId('Workspace', acme.chain[0]!.id)}") { id } }`, { key: scopedKey });
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({ node: null });
  });
});

describe('SQL statements per request', () => {
  it('`workspaces { datastreams { totalCount } }` runs the same number of statements for 5 and for 50 workspaces', async () => {
    const counts: number[] = [];
    for (const size of [5, 50]) {
      const realm = await createRealm(db.prisma, `Wide ${size}`);
      for (let i = 0; i < size; i++) {
        const [workspace] = await createWorkspaceChain(db.prisma, realm.id, 1, `w${i}`);
        await db.prisma.datastream.createMany({
          data: Array.from({ length: 3 }, (_, j) => ({ realmId: realm.id, workspaceId: workspace!.id, name: `s${j}` })),
        });
      }
      const { key } = await createKey(db.prisma, realm.id);
      const { body, statements } = await graphql(app, `{ realm { workspaces(first: 50) { edges { node { datastreams(first: 10) { totalCount } } } } } }`, { key });
      expect(body.errors).toBeUndefined();
      expect(body.data.realm.workspaces.edges).toHaveLength(size);
      expect(body.data.realm.workspaces.edges.every((e: { node: { datastreams: { totalCount: number } } }) => e.node.datastreams.totalCount === 3)).toBe(true);
      counts.push(statements.length);
    }
    expect(counts[0]).toBe(counts[1]);
    expect(counts[0]).toBeLessThanOrEqual(3);
  });
});

describe('query statistics for operators', () => {
  it('with EXPOSE_QUERY_STATS every response carries extensions.queryStats { sqlStatements, durationMs }', async () => {
    const withStats = createApp({ prisma: db.prisma, exposeQueryStats: true });
    const { body, statements } = await graphql(withStats, '{ realm { name workspaces(first: 5) { totalCount } } }', { key: acme.key });
    expect(body.extensions?.queryStats).toEqual({ sqlStatements: statements.length, durationMs: expect.any(Number) });
    expect(statements.length).toBeGreaterThan(0);
    const withoutStats = await graphql(app, '{ realm { name } }', { key: acme.key });
    expect(withoutStats.body.extensions?.queryStats).toBeUndefined();
  });
});

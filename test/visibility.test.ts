import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useUsageExportEndpoints } from '../src/exports/http.js';
import { encodeId } from '../src/global-id.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm, insertUsage } from './helpers/usage-fixture.js';

/**
 * A realm with two sibling subtrees (left ⊃ leaf, right) under one root, a realm-wide key and a key
 * scoped to `left` holding every scope. Usage of `left` attributed (by the realm-wide key) to right's
 * app, right's datastream and the realm-wide key itself must not name any of them to the scoped key.
 */
const NOW = new Date('2026-03-10T12:30:00Z');
const HOUR = new Date('2026-03-02T10:00:00Z');

let db: TestDatabase;
let app: App;
let r: Awaited<ReturnType<typeof createUsageRealm>>;
let scoped: string;
let billing: Record<'contract' | 'license' | 'creditGrant' | 'quotaRule' | 'alert', string>;

beforeAll(async () => {
  db = await createTestDatabase();
  r = await createUsageRealm(db.prisma, 'Europe/Berlin');
  scoped = (await createKey(db.prisma, r.realm.id, { workspaceId: r.tree.left.id })).key;
  const features = Object.fromEntries(Object.entries(r.features).map(([key, f]) => [key, f.id]));
  await insertUsage(db.prisma, r.realm.id, features, [
    {
      feature: 'tx',
      hour: HOUR,
      quantity: '5',
      workspaceId: r.tree.left.id,
      appId: r.apps[1]!.id,
      datastreamId: r.streams[2]!.id,
      apiKeyId: r.admin.record.id,
      projectId: r.project.id,
    },
    { feature: 'tx', hour: HOUR, quantity: '2', workspaceId: r.tree.leaf.id, appId: r.apps[0]!.id, datastreamId: r.streams[1]!.id },
  ]);
  const contract = await db.prisma.contract.create({
    data: { realmId: r.realm.id, name: 'c', startsAt: new Date('2026-01-01T00:00:00Z'), endsAt: new Date('2027-01-01T00:00:00Z') },
  });
  const license = await db.prisma.license.create({ data: { contractId: contract.id, featureId: r.features.tx.id, quantityPerMonth: '10' } });
  const creditGrant = await db.prisma.creditGrant.create({ data: { realmId: r.realm.id, kind: 'GENERAL', credits: '5', startsAt: new Date('2026-01-01T00:00:00Z') } });
  await db.prisma.price.create({ data: { realmId: r.realm.id, featureId: r.features.tx.id, unitAmount: '0.5', currency: 'EUR', validFrom: new Date('2026-01-01T00:00:00Z') } });
  const quotaRule = await db.prisma.quotaRule.create({
    data: { realmId: r.realm.id, featureId: r.features.tx.id, period: 'DAY', thresholdQuantity: '1', webhookUrl: 'https://hooks.example.com/q' },
  });
  const alert = await db.prisma.alert.create({
    data: {
      realmId: r.realm.id,
      ruleId: quotaRule.id,
      periodStart: new Date('2026-03-02T00:00:00Z'),
      periodEnd: new Date('2026-03-03T00:00:00Z'),
      quantity: '7',
      threshold: '1',
      crossedAt: HOUR,
      message: 'realm-wide total 7',
    },
  });
  billing = {
    contract: encodeId('Contract', contract.id),
    license: encodeId('License', license.id),
    creditGrant: encodeId('CreditGrant', creditGrant.id),
    quotaRule: encodeId('QuotaRule', quotaRule.id),
    alert: encodeId('Alert', alert.id),
  };
  const now = () => NOW;
  app = createApp({ prisma: db.prisma, now, plugins: [useUsageExportEndpoints({ prisma: db.prisma, now })] });
});
afterAll(() => db?.destroy());

const id = {
  app: (i: number) => encodeId('App', r.apps[i]!.id),
  stream: (i: number) => encodeId('Datastream', r.streams[i]!.id),
  workspace: (name: 'root' | 'left' | 'right' | 'leaf') => encodeId('Workspace', r.tree[name].id),
  adminKey: () => encodeId('ApiKey', r.admin.record.id),
};

const GROUPS = `{ realm { usage(range: { from: "2026-03-01T00:00:00Z", to: "2026-03-03T00:00:00Z" }, groupBy: [WORKSPACE, APP, API_KEY, DATASTREAM, PROJECT]) {
  points { quantity group {
    workspace { id parent { id } }
    app { id name workspace { id parent { id } } project { id } realm { id } }
    apiKey { id scopes workspace { id } realm { id } }
    datastream { id workspace { id parent { id } } realm { id } }
    project { id }
  } }
} } }`;

describe('usage groups and revisions follow node(id)', () => {
  it("a workspace-scoped key's usage groups do not name another team's app, datastream or the realm-wide key", async () => {
    const { body } = await graphql(app, GROUPS, { key: scoped });
    expect(body.errors).toBeUndefined();
    const points = body.data.realm.usage.points.sort((a: { quantity: string }, b: { quantity: string }) => a.quantity.localeCompare(b.quantity));
    const realm = { id: encodeId('Realm', r.realm.id) };
    const project = { id: encodeId('Project', r.project.id) };
    expect(points).toEqual([
      {
        quantity: '2',
        group: {
          workspace: { id: id.workspace('leaf'), parent: { id: id.workspace('left') } },
          // `left`'s parent, the root, is above the key's scope
          app: { id: id.app(0), name: 'app 0', workspace: { id: id.workspace('left'), parent: null }, project, realm },
          apiKey: null,
          datastream: { id: id.stream(1), workspace: { id: id.workspace('leaf'), parent: { id: id.workspace('left') } }, realm },
          project: null,
        },
      },
      { quantity: '5', group: { workspace: { id: id.workspace('left'), parent: null }, app: null, apiKey: null, datastream: null, project } },
    ]);
    const nodes = await graphql(app, `{ a: node(id: "${id.app(1)}") { id } k: node(id: "${id.adminKey()}") { id } d: node(id: "${id.stream(2)}") { id } }`, { key: scoped });
    expect(nodes.body.data).toEqual({ a: null, k: null, d: null });
  });

  it('a realm-wide key still sees every group value', async () => {
    const { body } = await graphql(app, GROUPS, { key: r.admin.key });
    expect(body.errors).toBeUndefined();
    const five = body.data.realm.usage.points.find((p: { quantity: string }) => p.quantity === '5');
    expect(five.group).toMatchObject({ app: { id: id.app(1) }, apiKey: { id: id.adminKey() }, datastream: { id: id.stream(2) } });
  });

  it('usageRevisions relations outside the subtree are null for a workspace-scoped key', async () => {
    const query = `{ usageRevisions(since: "2000-01-01T00:00:00Z", first: 10) { edges { node { quantity workspace { id } app { id } apiKey { id } datastream { id } project { id } } } } }`;
    const { body } = await graphql(app, query, { key: scoped });
    expect(body.errors).toBeUndefined();
    const five = body.data.usageRevisions.edges.map((e: { node: unknown }) => e.node).find((n: { quantity: string }) => n.quantity === '5');
    expect(five).toEqual({ quantity: '5', workspace: { id: id.workspace('left') }, app: null, apiKey: null, datastream: null, project: { id: encodeId('Project', r.project.id) } });
    const admin = await graphql(app, query, { key: r.admin.key });
    const adminFive = admin.body.data.usageRevisions.edges.map((e: { node: unknown }) => e.node).find((n: { quantity: string }) => n.quantity === '5');
    expect(adminFive).toMatchObject({ app: { id: id.app(1) }, apiKey: { id: id.adminKey() } });
  });

  it('nested relations of visible objects never leave the subtree and never fail', async () => {
    const query = `{ viewer { workspace {
      parent { id }
      children(first: 10) { totalCount edges { node { id parent { id } } } }
      descendants(first: 10) { totalCount edges { node { id } } }
      apps(first: 10) { edges { node { id workspace { id } project { id apps(first: 10) { totalCount } } } } }
      datastreams(first: 10) { edges { node { id workspace { id } } } }
      apiKeys(first: 10) { edges { node { id workspace { id } } } }
    } } realm { workspaces(first: 10) { edges { node { id parent { id } } } } projects(first: 5) { edges { node { apps(first: 10) { edges { node { id } } } } } } } }`;
    const { body } = await graphql(app, query, { key: scoped });
    expect(body.errors).toBeUndefined();
    const ws = body.data.viewer.workspace;
    expect(ws.parent).toBeNull(); // `root` is above the key's scope
    expect(ws.children).toEqual({ totalCount: 1, edges: [{ node: { id: id.workspace('leaf'), parent: { id: id.workspace('left') } } }] });
    expect(ws.descendants.totalCount).toBe(1);
    expect(ws.apps.edges).toEqual([{ node: { id: id.app(0), workspace: { id: id.workspace('left') }, project: { id: encodeId('Project', r.project.id), apps: { totalCount: 1 } } } }]);
    expect(body.data.realm.workspaces.edges.map((e: { node: { id: string } }) => e.node.id).sort()).toEqual([id.workspace('left'), id.workspace('leaf')].sort());
    expect(body.data.realm.projects.edges[0].node.apps.edges).toEqual([{ node: { id: id.app(0) } }]);
  });
});

describe('CSV exports', () => {
  it("a workspace-scoped key's export does not name another team's app", async () => {
    const response = await app.fetch('http://gateway.test/exports/usage/monthly.csv?month=2026-03', { headers: { authorization: `Bearer ${scoped}` } });
    expect(response.status).toBe(200);
    const rows = parse(await response.text(), { columns: true }) as Record<string, string>[];
    expect(rows.map((row) => [row.team_id, row.app_id, row.app, row.quantity])).toEqual([
      [id.workspace('leaf'), id.app(0), 'app 0', '2'],
      [id.workspace('left'), '', '', '5'],
    ]);
    const admin = await app.fetch('http://gateway.test/exports/usage/monthly.csv?month=2026-03', { headers: { authorization: `Bearer ${r.admin.key}` } });
    expect(await admin.text()).toContain(id.app(1));
  });

  it('usageExport through GraphQL agrees', async () => {
    const { body } = await graphql(app, '{ realm { usageExport(kind: MONTHLY, month: "2026-03") { teamId appId app quantity } } }', { key: scoped });
    expect(body.errors).toBeUndefined();
    expect(body.data.realm.usageExport).toContainEqual({ teamId: id.workspace('left'), appId: null, app: null, quantity: '5' });
  });
});

describe('ingestion by a workspace-scoped key', () => {
  const INGEST = `mutation ($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted rejected { index code } } }`;
  let n = 0;
  const event = (dimensions: Record<string, string>) => ({
    idempotencyKey: `visibility-${++n}`,
    feature: 'req', // not `tx`: its quota rule would fire
    timestamp: '2026-03-10T10:00:00Z',
    quantity: '1',
    workspaceId: id.workspace('left'),
    ...dimensions,
  });

  it('refuses apps, API keys and datastreams outside its subtree with UNKNOWN_DIMENSION', async () => {
    const events = [
      event({ appId: id.app(1) }), // right's app
      event({ apiKeyId: id.adminKey() }), // the realm-wide key
      event({ datastreamId: id.stream(2) }), // right's datastream
      event({ appId: id.app(0), datastreamId: id.stream(0), apiKeyId: encodeId('ApiKey', r.scoped.record.id) }), // all inside
      event({ projectId: encodeId('Project', r.project.id) }), // projects are the realm's catalog
    ];
    const { body } = await graphql(app, INGEST, { key: scoped, variables: { events } });
    expect(body.errors).toBeUndefined();
    expect(body.data.ingestUsage).toEqual({
      accepted: 2,
      rejected: [
        { index: 0, code: 'UNKNOWN_DIMENSION' },
        { index: 1, code: 'UNKNOWN_DIMENSION' },
        { index: 2, code: 'UNKNOWN_DIMENSION' },
      ],
    });
  });

  it('a realm-wide key may attribute usage to any app of its realm', async () => {
    const { body } = await graphql(app, INGEST, { key: r.admin.key, variables: { events: [event({ appId: id.app(1), apiKeyId: id.adminKey() })] } });
    expect(body.data.ingestUsage).toEqual({ accepted: 1, rejected: [] });
  });
});

describe('billing needs a realm-wide key', () => {
  const FIELDS = [
    'contracts(first: 5) { totalCount }',
    'creditGrants(first: 5) { totalCount }',
    'prices(first: 5) { totalCount }',
    'quotaRules(first: 5) { edges { node { webhookUrl } } }',
    'alerts(first: 5) { edges { node { message } } }',
    'currentUsage { month }',
    'usageHistory(months: 1) { month }',
    'invoicePreview(month: "2026-03") { total }',
  ];

  it.each(FIELDS)('Realm.%s is FORBIDDEN to a workspace-scoped key with every scope', async (field) => {
    const { body } = await graphql(app, `{ realm { ${field} } }`, { key: scoped });
    expect(body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(body.errors?.[0]?.message).toMatch(/realm-wide/);
    expect(JSON.stringify(body.data)).not.toMatch(/hooks\.example|realm-wide total/);
  });

  it('node(id) of every billing node type is null for a workspace-scoped key, visible to a realm-wide one', async () => {
    const entries = Object.entries(billing);
    const query = `{ ${entries.map(([name, globalId]) => `${name}: node(id: "${globalId}") { id }`).join(' ')} }`;
    const asScoped = await graphql(app, query, { key: scoped });
    expect(asScoped.body.errors).toBeUndefined();
    expect(asScoped.body.data).toEqual(Object.fromEntries(entries.map(([name]) => [name, null])));
    const asAdmin = await graphql(app, query, { key: r.admin.key });
    expect(asAdmin.body.errors).toBeUndefined();
    expect(asAdmin.body.data).toEqual(Object.fromEntries(entries.map(([name, globalId]) => [name, { id: globalId }])));
  });

  it('a realm-wide key without billing:read is still told which scope it lacks', async () => {
    const { key } = await createKey(db.prisma, r.realm.id, { scopes: ['usage:read'] });
    const { body } = await graphql(app, '{ realm { contracts(first: 1) { totalCount } } }', { key });
    expect(body.errors?.[0]).toMatchObject({ extensions: { code: 'FORBIDDEN' }, message: expect.stringContaining('billing:read') });
  });
});

describe('realm-wide state is changed by realm-wide keys only', () => {
  const tx = () => encodeId('Feature', r.features.tx.id);
  const MUTATIONS: [string, string, () => Record<string, unknown>][] = [
    [
      'createQuotaRule',
      'mutation ($input: CreateQuotaRuleInput!) { createQuotaRule(input: $input) { quotaRule { id } userErrors { code } } }',
      () => ({ input: { featureId: tx(), period: 'DAY', quantity: '1', webhookUrl: 'https://hooks.example.com/other-team' } }),
    ],
    ['deleteQuotaRule', 'mutation ($id: ID!) { deleteQuotaRule(id: $id) { deletedQuotaRuleId userErrors { code } } }', () => ({ id: billing.quotaRule })],
    [
      'createContract',
      'mutation ($input: CreateContractInput!) { createContract(input: $input) { userErrors { code } } }',
      () => ({ input: { name: 'x', startsAt: '2030-01-01T00:00:00Z', endsAt: '2031-01-01T00:00:00Z' } }),
    ],
    [
      'createCreditGrant',
      'mutation ($input: CreateCreditGrantInput!) { createCreditGrant(input: $input) { userErrors { code } } }',
      () => ({ input: { kind: 'GENERAL', credits: '1000000', startsAt: '2026-01-01T00:00:00Z' } }),
    ],
    [
      'setPrice',
      'mutation ($input: SetPriceInput!) { setPrice(input: $input) { userErrors { code } } }',
      () => ({ input: { featureId: tx(), unitAmount: '0', currency: 'EUR', validFrom: '2026-03-01T00:00:00Z' } }),
    ],
    ['finalizeUsage', 'mutation ($f: ID!) { finalizeUsage(feature: $f, through: "2026-03-10T00:00:00Z") { id } }', () => ({ f: tx() })],
  ];

  it.each(MUTATIONS)('%s is FORBIDDEN to a workspace-scoped key with every scope, and changes nothing', async (_name, mutation, variables) => {
    const before = await snapshot();
    const { body } = await graphql(app, mutation, { key: scoped, variables: variables() });
    expect(body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(body.errors?.[0]?.message).toMatch(/realm-wide/);
    expect(await snapshot()).toEqual(before);
  });

  async function snapshot() {
    const realmId = r.realm.id;
    const [rules, contracts, grants, prices, feature] = await Promise.all([
      db.prisma.quotaRule.count({ where: { realmId } }),
      db.prisma.contract.count({ where: { realmId } }),
      db.prisma.creditGrant.count({ where: { realmId } }),
      db.prisma.price.findMany({ where: { realmId }, select: { unitAmount: true } }),
      db.prisma.feature.findUniqueOrThrow({ where: { id: r.features.tx.id }, select: { finalizedThrough: true } }),
    ]);
    return { rules, contracts, grants, prices: prices.map((p) => p.unitAmount.toFixed()), finalizedThrough: feature.finalizedThrough };
  }
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dec, sum } from '../src/billing/decimal.js';
import { encodeId } from '../src/global-id.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql, mutationPayload } from './helpers/graphql.js';
import { createUsageRealm, insertUsage, type RawUsage } from './helpers/usage-fixture.js';

const HOUR = 3_600_000;
const NOW = new Date('2026-04-20T12:00:00Z');
// Local midnights in Europe/Berlin (the realm's zone).
const RENEWAL = '2026-03-15T23:00:00Z'; // 16 March 2026: contract A ends, B starts
const MARCH_START = '2026-02-28T23:00:00Z';
const MAY_START = '2026-04-30T22:00:00Z';

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
const ids: Record<string, string> = {};
const fid = (key: keyof typeof realm.features) => encodeId('Feature', realm.features[key].id);

const hours = (from: string, count: number, every: number, make: (i: number) => Omit<RawUsage, 'hour'>): RawUsage[] =>
  Array.from({ length: count }, (_, i) => ({ hour: new Date(new Date(from).getTime() + i * every * HOUR), ...make(i) }));

const ok = (query: string, variables: Record<string, unknown>) => mutationPayload(app, query, { key: realm.admin.key, variables });

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => NOW, onUnexpectedError: (error) => console.error(error) });
  realm = await createUsageRealm(db.prisma, 'Europe/Berlin');

  const contract = `mutation($input: CreateContractInput!) { createContract(input: $input) { contract { licenses { edges { node { id feature { key } } } } } userErrors { code } } }`;
  const a = await ok(contract, { input: { name: 'A', startsAt: '2025-04-15T22:00:00Z', endsAt: RENEWAL, licenses: [{ featureId: fid('tx'), quantityPerMonth: '1000' }] } });
  const b = await ok(contract, {
    input: {
      name: 'B',
      startsAt: RENEWAL,
      endsAt: '2027-03-15T23:00:00Z',
      licenses: [{ featureId: fid('tx'), quantityPerMonth: '2000' }, { featureId: fid('req'), quantityPerMonth: '100' }, { featureId: fid('storage'), quantityPerMonth: '1' }],
    },
  });
  ids.licenseA = a.contract.licenses.edges[0].node.id;
  for (const { node } of b.contract.licenses.edges) ids[`licenseB_${node.feature.key}`] = node.id;
  const grant = `mutation($input: CreateCreditGrantInput!) { createCreditGrant(input: $input) { creditGrant { id } userErrors { code } } }`;
  ids.g1 = (await ok(grant, { input: { kind: 'GENERAL', credits: '5', startsAt: '2025-12-31T23:00:00Z' } })).creditGrant.id;
  ids.g2 = (await ok(grant, { input: { kind: 'GENERAL', credits: '0.05', startsAt: '2026-01-31T23:00:00Z' } })).creditGrant.id;
  const price = `mutation($input: SetPriceInput!) { setPrice(input: $input) { price { currency } userErrors { code } } }`;
  for (const [key, amount] of [['tx', '0.01'], ['req', '0.001'], ['storage', '0.5']] as const) {
    await ok(price, { input: { featureId: fid(key), unitAmount: amount, currency: 'EUR', validFrom: '2025-01-01T00:00:00Z' } });
  }

  const { left, right } = realm.tree;
  const usage: RawUsage[] = [
    // March: 20 × 100 tx every 6 hours from 5 March 01:00 Berlin, 4 a day, alternately left and right.
    ...hours('2026-03-05T00:00:00Z', 20, 6, (i) => ({ feature: 'tx', quantity: '100', workspaceId: i % 2 ? right.id : left.id })),
    ...hours('2026-03-20T00:00:00Z', 3, 1, () => ({ feature: 'req', quantity: '100', workspaceId: left.id })),
    { feature: 'storage', hour: new Date('2026-03-07T00:00:00Z'), quantity: '5' },
    // April to date: within the license.
    ...hours('2026-04-02T00:00:00Z', 10, 1, () => ({ feature: 'tx', quantity: '100', workspaceId: left.id })),
  ];
  await insertUsage(db.prisma, realm.realm.id, Object.fromEntries(Object.entries(realm.features).map(([key, f]) => [key, f.id])), usage);
});

afterAll(() => db?.destroy());

type Row = Record<string, any>;
const COVERAGE = `coverage { source quantity credits license { id } creditGrant { id } }`;
const report = (args: string, coverage = COVERAGE) =>
  `{ viewer { realm { usage(range: { from: "${MARCH_START}", to: "${MAY_START}" }, granularity: DAY, groupBy: [FEATURE]${args}) {
     points { start quantity feature { key } ${coverage} } } } } }`;

/** A point's coverage as [source, source id, quantity, credits]. */
const portions = (point: Row) =>
  point.coverage.map((c: Row) => [c.source, c.license?.id ?? c.creditGrant?.id ?? null, c.quantity, c.credits]);
const pointsOf = (body: Row, key: string) => body.data.viewer.realm.usage.points.filter((p: Row) => p.feature.key === key);

describe('UsagePoint.coverage', () => {
  it('attributes each day to the licenses (renewed mid-month), the credit grants in turn, then on demand', async () => {
    const { body } = await graphql(app, report(''), { key: realm.admin.key });
    expect(body.errors).toBeUndefined();
    const tx = pointsOf(body, 'tx');
    // March tx: licensed 1000 × 15/31 (A) + 2000 × 16/31 (B) = 1516.129032258, used 2000. Credits: req
    // takes 0.248387096774 of grant 1's 5 first; tx gets the 4.751612903226 left (475.161290322 tx) and 0.05 of
    // grant 2 (5 tx); 3.70967742 tx are on demand.
    expect(tx.slice(0, 5).map((p: Row) => [p.start, p.quantity, portions(p)])).toEqual([
      ['2026-03-04T23:00:00.000Z', '400', [['LICENSE', ids.licenseA, '400', null]]],
      ['2026-03-05T23:00:00.000Z', '400', [['LICENSE', ids.licenseA, '83.870967742', null], ['LICENSE', ids.licenseB_tx, '316.129032258', null]]],
      ['2026-03-06T23:00:00.000Z', '400', [['LICENSE', ids.licenseB_tx, '400', null]]],
      ['2026-03-07T23:00:00.000Z', '400', [['LICENSE', ids.licenseB_tx, '316.129032258', null], ['CREDIT_GRANT', ids.g1, '83.870967742', '0.83870967742']]],
      [
        '2026-03-08T23:00:00.000Z',
        '400',
        [['CREDIT_GRANT', ids.g1, '391.29032258', '3.9129032258'], ['CREDIT_GRANT', ids.g2, '5', '0.05'], ['ON_DEMAND', null, '3.70967742', null]],
      ],
    ]);
    // April so far: all under contract B's license.
    expect(tx[5]).toMatchObject({ start: '2026-04-01T22:00:00.000Z', quantity: '1000' });
    expect(portions(tx[5])).toEqual([['LICENSE', ids.licenseB_tx, '1000', null]]);
    const [req] = pointsOf(body, 'req');
    expect(portions(req)).toEqual([['LICENSE', ids.licenseB_req, '51.612903226', null], ['CREDIT_GRANT', ids.g1, '248.387096774', '0.248387096774']]);
    // Each point's portions add up to its quantity.
    for (const point of [...tx, req]) expect(sum(point.coverage.map((c: Row) => dec(c.quantity))).toFixed()).toBe(point.quantity);
  });

  it('adds up over a month exactly to usageHistory', async () => {
    const { body } = await graphql(
      app,
      `{ viewer { realm {
         usageHistory(months: 2) { month products { feature { key } coveredByLicense coveredByCredits creditsApplied onDemand } }
         usage(range: { from: "${MARCH_START}", to: "${MAY_START}" }, granularity: DAY, groupBy: [FEATURE]) { points { start feature { key } coverage { source quantity credits } } } } } }`,
      { key: realm.admin.key },
    );
    expect(body.errors).toBeUndefined();
    const { usageHistory, usage } = body.data.viewer.realm;
    for (const [index, month] of ['2026-03', '2026-04'].entries()) {
      const monthPoints = usage.points.filter((p: Row) => p.start >= (index ? '2026-03-31T22:00:00.000Z' : MARCH_START) && (index || p.start < '2026-03-31T22:00:00.000Z'));
      for (const product of usageHistory[index].products.filter((p: Row) => ['tx', 'req'].includes(p.feature.key))) {
        const portions = monthPoints.filter((p: Row) => p.feature.key === product.feature.key).flatMap((p: Row) => p.coverage);
        const total = (source: string, field = 'quantity') => sum(portions.filter((c: Row) => c.source === source).map((c: Row) => dec(c[field])));
        expect([month, product.feature.key, total('LICENSE').toFixed(), total('CREDIT_GRANT').toFixed(), total('CREDIT_GRANT', 'credits').toFixed(), total('ON_DEMAND').toFixed()]).toEqual([
          month,
          product.feature.key,
          product.coveredByLicense,
          product.coveredByCredits,
          product.creditsApplied,
          product.onDemand,
        ]);
      }
    }
    expect(usageHistory[0].products.find((p: Row) => p.feature.key === 'tx')).toMatchObject({ coveredByCredits: '480.161290322', onDemand: '3.70967742' });
  });

  it('gives a filtered report the portions of its own rows, attributed over the whole realm', async () => {
    const { body } = await graphql(app, report(`, filter: { workspaceIds: ["${encodeId('Workspace', realm.tree.left.id)}"] }`), { key: realm.admin.key });
    expect(body.errors).toBeUndefined();
    const tx = pointsOf(body, 'tx');
    // Left has the even rows: 0 and 2 on the first day, 4 and 6 on the second, 16 and 18 on the fifth.
    expect(tx.slice(0, 5).map((p: Row) => [p.start, p.quantity, portions(p)])).toEqual([
      ['2026-03-04T23:00:00.000Z', '200', [['LICENSE', ids.licenseA, '200', null]]],
      ['2026-03-05T23:00:00.000Z', '200', [['LICENSE', ids.licenseA, '83.870967742', null], ['LICENSE', ids.licenseB_tx, '116.129032258', null]]],
      ['2026-03-06T23:00:00.000Z', '200', [['LICENSE', ids.licenseB_tx, '200', null]]],
      ['2026-03-07T23:00:00.000Z', '200', [['LICENSE', ids.licenseB_tx, '200', null]]],
      ['2026-03-08T23:00:00.000Z', '200', [['CREDIT_GRANT', ids.g1, '200', '2']]],
    ]);
  });

  it('is null for features whose month is not a sum of hours', async () => {
    const { body } = await graphql(app, report(''), { key: realm.admin.key });
    const [storage] = pointsOf(body, 'storage');
    expect(storage).toMatchObject({ quantity: '5', coverage: null });
  });

  it('runs a fixed number of statements whatever the number of points, and none when not asked', async () => {
    const counts: Record<string, number> = {};
    for (const granularity of ['DAY', 'HOUR']) {
      for (const coverage of ['', COVERAGE]) {
        const { body, statements } = await graphql(
          app,
          `{ viewer { realm { usage(range: { from: "${MARCH_START}", to: "2026-04-20T22:00:00Z" }, granularity: ${granularity}) { points { quantity ${coverage} } } } } }`,
          { key: realm.admin.key },
        );
        expect(body.errors).toBeUndefined();
        if (granularity === 'HOUR') expect(body.data.viewer.realm.usage.points.length).toBeGreaterThan(30);
        const windows = statements.filter((s) => s.includes('ROWS UNBOUNDED PRECEDING'));
        expect(windows).toHaveLength(coverage ? 1 : 0);
        counts[`${granularity}${coverage ? '+coverage' : ''}`] = statements.length;
      }
    }
    const added = counts['DAY+coverage']! - counts.DAY!;
    expect(counts['HOUR+coverage']! - counts.HOUR!).toBe(added);
    // Billing's reads (realm, contracts, grants, monthly usage), the coverage statement, licenses, grants.
    expect(added).toBe(7);
  });

  it('answers every parent of a batch with one coverage statement', async () => {
    const { body, statements } = await graphql(
      app,
      `{ realm { workspaces(first: 10) { edges { node { name usage(range: { from: "${MARCH_START}", to: "${MAY_START}" }, granularity: MONTH) {
         points { feature { key } quantity coverage { source quantity } } } } } } } }`,
      { key: realm.admin.key },
    );
    expect(body.errors).toBeUndefined();
    expect(statements.filter((s) => s.includes('ROWS UNBOUNDED PRECEDING'))).toHaveLength(1);
    const byName = Object.fromEntries(body.data.realm.workspaces.edges.map((e: Row) => [e.node.name, e.node.usage.points]));
    // The root's subtree holds every March tx row: the whole month's coverage.
    const rootMarchTx = byName.root.find((p: Row) => p.feature.key === 'tx' && p.quantity === '2000');
    const total = (source: string) => sum(rootMarchTx.coverage.filter((c: Row) => c.source === source).map((c: Row) => dec(c.quantity))).toFixed();
    expect([total('LICENSE'), total('CREDIT_GRANT'), total('ON_DEMAND')]).toEqual(['1516.129032258', '480.161290322', '3.70967742']);
    const rightTx = byName.right.find((p: Row) => p.feature.key === 'tx');
    expect(sum(rightTx.coverage.map((c: Row) => dec(c.quantity))).toFixed()).toBe('1000');
  });

  it('lets a client refetch the credit grant as a node', async () => {
    const id = ids.g1!;
    const { body } = await graphql(app, `{ node(id: "${id}") { id ... on CreditGrant { kind credits } } }`, { key: realm.admin.key });
    expect(body.data.node).toEqual({ id, kind: 'GENERAL', credits: '5' });
  });

  it('needs billing:read, and a realm-wide key', async () => {
    const { key } = await createKey(db.prisma, realm.realm.id, { scopes: ['usage:read'] });
    const { body, statements } = await graphql(app, report(''), { key });
    expect(body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(body.errors?.[0]?.message).toMatch(/UsagePoint\.coverage.*billing:read/);
    expect(body.data.viewer.realm.usage.points[0]).toMatchObject({ feature: { key: 'req' }, quantity: '300', coverage: null });
    expect(statements.filter((s) => s.includes('ROWS UNBOUNDED PRECEDING'))).toHaveLength(0);

    const scoped = await createKey(db.prisma, realm.realm.id, { scopes: ['usage:read', 'billing:read'], workspaceId: realm.tree.left.id });
    const response = await graphql(app, report('', 'coverage { source }'), { key: scoped.key });
    expect(response.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(response.body.errors?.[0]?.message).toMatch(/realm-wide/);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../src/global-id.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql, mutationPayload } from './helpers/graphql.js';
import { createUsageRealm, insertUsage, type RawUsage } from './helpers/usage-fixture.js';

const HOUR = 3_600_000;
const NOW = new Date('2026-04-20T12:00:00Z');
// Local midnights in Europe/Berlin (the realm's zone).
const A_START = '2025-04-15T22:00:00Z'; // 16 April 2025
const RENEWAL = '2026-03-15T23:00:00Z'; // 16 March 2026: contract A ends, B starts
const B_END = '2027-03-15T23:00:00Z';
const APRIL_START = '2026-03-31T22:00:00Z';

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
const fid = (key: keyof typeof realm.features) => encodeId('Feature', realm.features[key].id);

const hours = (from: string, count: number, make: (hour: Date, i: number) => Omit<RawUsage, 'hour'>): RawUsage[] =>
  Array.from({ length: count }, (_, i) => {
    const hour = new Date(new Date(from).getTime() + i * HOUR);
    return { hour, ...make(hour, i) };
  });

const CREATE_CONTRACT = `mutation($input: CreateContractInput!) { createContract(input: $input) {
  contract { id name startsAt endsAt licenses { totalCount edges { node { quantityPerMonth feature { key } } } } }
  userErrors { field message code } } }`;
const CREATE_GRANT = `mutation($input: CreateCreditGrantInput!) { createCreditGrant(input: $input) { creditGrant { kind credits startsAt endsAt } userErrors { field message code } } }`;
const SET_PRICE = `mutation($input: SetPriceInput!) { setPrice(input: $input) { price { unitAmount currency validFrom feature { key } } userErrors { field message code } } }`;

const ok = (query: string, variables: Record<string, unknown>, key = realm.admin.key) => mutationPayload(app, query, { key, variables });

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => NOW, onUnexpectedError: (error) => console.error(error) });
  realm = await createUsageRealm(db.prisma, 'Europe/Berlin');

  // A contract renewed mid-March with more transactions and a private space.
  const a = await ok(CREATE_CONTRACT, {
    input: { name: 'Year one', startsAt: A_START, endsAt: RENEWAL, licenses: [{ featureId: fid('tx'), quantityPerMonth: '1000' }, { featureId: fid('rows'), quantityPerMonth: '10' }] },
  });
  expect(a.contract.licenses.totalCount).toBe(2);
  await ok(CREATE_CONTRACT, {
    input: {
      name: 'Year two',
      startsAt: RENEWAL,
      endsAt: B_END,
      licenses: [{ featureId: fid('tx'), quantityPerMonth: '2000' }, { featureId: fid('rows'), quantityPerMonth: '10' }, { featureId: fid('spaces'), quantityPerMonth: '1' }],
    },
  });
  const general = await ok(CREATE_GRANT, { input: { kind: 'GENERAL', credits: '50', startsAt: '2025-12-31T23:00:00Z' } });
  expect(general.creditGrant).toMatchObject({ kind: 'GENERAL', credits: '50', endsAt: null });
  const space = await ok(CREATE_GRANT, { input: { kind: 'PRIVATE_SPACE', spaces: '1', startsAt: APRIL_START } });
  expect(space.creditGrant.credits).toBe('1000');
  for (const [key, amount] of [['tx', '0.01'], ['req', '0.001'], ['spaces', '1000'], ['storage', '0.5'], ['rows', '2']] as const) {
    const price = await ok(SET_PRICE, { input: { featureId: fid(key), unitAmount: amount, currency: 'EUR', validFrom: '2025-01-01T00:00:00Z' } });
    expect(price.price).toMatchObject({ unitAmount: amount, currency: 'EUR', feature: { key } });
  }

  const usage: RawUsage[] = [
    // March (743 local hours).
    ...hours('2026-03-05T00:00:00Z', 10, () => ({ feature: 'tx', quantity: '200' })),
    ...hours('2026-03-05T00:00:00Z', 2, (_, i) => ({ feature: 'req', quantity: i ? '70' : '50' })),
    ...hours('2026-03-06T00:00:00Z', 3, (_, i) => ({ feature: 'rows', keys: Array.from({ length: 7 }, (_, k) => `r${(i * 4 + k) % 15}`) })),
    ...hours('2026-03-02T00:00:00Z', 100, () => ({ feature: 'spaces', quantity: '2' })),
    { feature: 'storage', hour: new Date('2026-03-07T00:00:00Z'), quantity: '5' },
    { feature: 'storage', hour: new Date('2026-03-08T00:00:00Z'), quantity: '8' },
    // April, month to date.
    ...hours('2026-04-02T00:00:00Z', 30, () => ({ feature: 'tx', quantity: '100' })),
    ...hours('2026-04-02T00:00:00Z', 5, () => ({ feature: 'req', quantity: '1000' })),
    ...hours('2026-04-03T00:00:00Z', 4, (_, i) => ({ feature: 'rows', keys: Array.from({ length: 10 }, (_, k) => `a${i * 10 + k}`) })),
    ...hours('2026-04-01T00:00:00Z', 360, () => ({ feature: 'spaces', quantity: '3' })),
    { feature: 'storage', hour: new Date('2026-04-04T00:00:00Z'), quantity: '30' },
    { feature: 'storage', hour: new Date('2026-04-10T00:00:00Z'), quantity: '20' },
    // After `now`: not counted yet. February: outside a two-month history.
    { feature: 'tx', hour: new Date('2026-04-25T00:00:00Z'), quantity: '999999' },
    { feature: 'tx', hour: new Date('2026-02-10T00:00:00Z'), quantity: '5' },
  ];
  // Two dimension combinations in one hour add up before the month's aggregation.
  usage.push({ feature: 'spaces', hour: new Date('2026-03-02T00:00:00Z'), quantity: '0', workspaceId: realm.tree.left.id });
  const featureIds = Object.fromEntries(Object.entries(realm.features).map(([key, f]) => [key, f.id]));
  await insertUsage(db.prisma, realm.realm.id, featureIds, usage);
});

afterAll(() => db?.destroy());

const PRODUCT = `feature { key } category licensed used coveredByLicense unusedLicensed coveredByCredits creditsApplied onDemand exceeding
  unitPrice { amount currency } onDemandCost { amount currency }`;

type Row = Record<string, any>;
const byKey = (products: Row[]) => Object.fromEntries(products.map((p) => [p.feature.key, p]));
const pick = (p: Row, fields: string[]) => fields.map((f) => p[f]);
const COVERAGE = ['licensed', 'used', 'coveredByLicense', 'unusedLicensed', 'coveredByCredits', 'creditsApplied', 'onDemand'];

describe('currentUsage', () => {
  it('reports April to date per product: license, credits in category order, on demand', async () => {
    const response = await graphql(app, `{ viewer { realm { currentUsage { month range { from to } timeZone products { ${PRODUCT} } credits { available applied remaining } } } } }`, { key: realm.admin.key });
    expect(response.body.errors).toBeUndefined();
    const current = response.body.data.viewer.realm.currentUsage;
    expect(current).toMatchObject({ month: '2026-04', range: { from: '2026-03-31T22:00:00.000Z', to: '2026-04-20T13:00:00.000Z' }, timeZone: 'Europe/Berlin' });
    const p = byKey(current.products);
    expect(current.products.map((x: Row) => x.feature.key)).toEqual(['req', 'rows', 'spaces', 'storage', 'tx']);
    // 50 general credits: third-party add-ons first (req 5, tx 10), then data add-ons: rows takes
    // the 35 left (17.5 rows at 2), storage none. The half-extra space is paid by space credits.
    expect(pick(p.req!, COVERAGE)).toEqual(['0', '5000', '0', '0', '5000', '5', '0']);
    expect(pick(p.tx!, COVERAGE)).toEqual(['2000', '3000', '2000', '0', '1000', '10', '0']);
    expect(pick(p.rows!, COVERAGE)).toEqual(['10', '40', '10', '0', '17.5', '35', '12.5']);
    expect(pick(p.storage!, COVERAGE)).toEqual(['0', '20', '0', '0', '0', '0', '20']);
    // 3 spaces for 360 of April's 720 hours: 1.5 space-months; 0.5 beyond the license = 500 credits.
    expect(pick(p.spaces!, COVERAGE)).toEqual(['1', '1.5', '1', '0', '0.5', '500', '0']);
    expect(p.rows!.onDemandCost).toEqual({ amount: '25', currency: 'EUR' });
    expect(p.storage!.onDemandCost).toEqual({ amount: '10', currency: 'EUR' });
    expect(p.tx!.onDemandCost).toEqual({ amount: '0', currency: 'EUR' });
    expect(p.rows!.exceeding).toBe('12.5');
    expect([p.req!.category, p.rows!.category, p.spaces!.category]).toEqual(['THIRD_PARTY_ADDON', 'DATA_ADDON', 'PRIVATE_SPACE']);
    expect(current.credits).toEqual({ available: '1050', applied: '550', remaining: '500' });
  });
});

describe('contracts, credits and prices', () => {
  it('lists what the mutations created', async () => {
    const response = await graphql(
      app,
      `{ viewer { realm { contracts { totalCount edges { node { name licenses { totalCount } } } }
         creditGrants { totalCount edges { node { kind credits } } } prices { totalCount edges { node { unitAmount currency feature { key } } } } } } }`,
      { key: realm.admin.key },
    );
    expect(response.body.errors).toBeUndefined();
    const r = response.body.data.viewer.realm;
    expect(r.contracts.edges.map((e: Row) => [e.node.name, e.node.licenses.totalCount])).toEqual([['Year one', 2], ['Year two', 3]]);
    expect(r.creditGrants.edges.map((e: Row) => [e.node.kind, e.node.credits])).toEqual([['GENERAL', '50'], ['PRIVATE_SPACE', '1000']]);
    expect(r.prices.totalCount).toBe(5);
  });
});

describe('usageHistory', () => {
  it('gives the four numbers per month and product, prorating the mid-March renewal', async () => {
    const response = await graphql(app, `{ viewer { realm { usageHistory(months: 2) { month products { ${PRODUCT} } } } } }`, { key: realm.admin.key });
    expect(response.body.errors).toBeUndefined();
    const history = response.body.data.viewer.realm.usageHistory;
    expect(history.map((m: Row) => m.month)).toEqual(['2026-03', '2026-04']);
    const march = byKey(history[0].products);
    // tx licensed: 1000 × 15/31 + 2000 × 16/31 = 47000/31.
    const txLicensed = '1516.129032258';
    expect(pick(march.tx!, ['licensed', 'used', 'coveredByLicense', 'unusedLicensed', 'coveredByCredits', 'exceeding'])).toEqual([txLicensed, '2000', txLicensed, '0', '483.870967742', '0']);
    expect(march.tx!.creditsApplied).toBe('4.83870967742');
    expect(pick(march.req!, ['used', 'coveredByCredits', 'exceeding'])).toEqual(['120', '120', '0']);
    expect(pick(march.rows!, ['licensed', 'used', 'coveredByLicense', 'coveredByCredits', 'exceeding'])).toEqual(['10', '15', '10', '5', '0']);
    expect(pick(march.storage!, ['used', 'coveredByCredits', 'exceeding'])).toEqual(['8', '8', '0']); // LATEST
    // Spaces: licensed 1 × 16/31; used 2 spaces × 100 h / 743 h (March has 743 hours in Berlin).
    expect(pick(march.spaces!, ['licensed', 'used', 'coveredByLicense', 'unusedLicensed', 'exceeding'])).toEqual(['0.516129032', '0.269179004', '0.269179004', '0.246950028', '0']);
    expect(byKey(history[1].products).rows!.exceeding).toBe('12.5');
    // One statement reads every month's usage; the rest are a few fixed reads.
    expect(response.statements.filter((s) => s.includes('"UsageHourly"')).length).toBe(1);
    expect(response.statements.length).toBeLessThanOrEqual(8);
  });

  it('defaults to 12 months, oldest first, empty where nothing was used or licensed', async () => {
    const response = await graphql(app, `{ viewer { realm { usageHistory { month products { feature { key } used licensed } } } } }`, { key: realm.admin.key });
    const history = response.body.data.viewer.realm.usageHistory;
    expect(history.map((m: Row) => m.month)).toEqual(['2025-05', '2025-06', '2025-07', '2025-08', '2025-09', '2025-10', '2025-11', '2025-12', '2026-01', '2026-02', '2026-03', '2026-04']);
    expect(byKey(history[9].products).tx).toMatchObject({ used: '5', licensed: '1000' }); // February
    expect(byKey(history[0].products).tx).toMatchObject({ used: '0', licensed: '1000' });
  });

  it.each([0, 13, -1])('refuses months: %i', async (months) => {
    const response = await graphql(app, `{ viewer { realm { usageHistory(months: ${months}) { month } } } }`, { key: realm.admin.key });
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_RANGE' });
  });
});

describe('invoicePreview', () => {
  const INVOICE = `month currency isFinal warnings subtotal creditsApplied total lines { feature { key } used coveredByLicense quantity unitPrice amount creditsApplied total }`;

  it('bills April so far line by line, exactly', async () => {
    const response = await graphql(app, `{ viewer { realm { invoicePreview(month: "2026-04") { ${INVOICE} } } } }`, { key: realm.admin.key });
    expect(response.body.errors).toBeUndefined();
    const invoice = response.body.data.viewer.realm.invoicePreview;
    expect(invoice).toMatchObject({ month: '2026-04', currency: 'EUR', isFinal: false, subtotal: '585', creditsApplied: '550', total: '35' });
    expect(invoice.warnings[0]).toMatch(/not over/);
    expect(invoice.lines.map((l: Row) => [l.feature.key, l.quantity, l.unitPrice, l.amount, l.creditsApplied, l.total])).toEqual([
      ['req', '5000', '0.001', '5', '5', '0'],
      ['rows', '30', '2', '60', '35', '25'],
      ['spaces', '0.5', '1000', '500', '500', '0'],
      ['storage', '20', '0.5', '10', '0', '10'],
      ['tx', '1000', '0.01', '10', '10', '0'],
    ]);
    expect(invoice.lines[1]).toMatchObject({ used: '40', coveredByLicense: '10' });
  });

  it('bills March, all paid by credits', async () => {
    const response = await graphql(app, `{ viewer { realm { invoicePreview(month: "2026-03") { ${INVOICE} } } } }`, { key: realm.admin.key });
    const invoice = response.body.data.viewer.realm.invoicePreview;
    // 0.12 + 483.870967742 × 0.01 + 5 × 2 + 8 × 0.5
    expect(invoice).toMatchObject({ isFinal: true, warnings: [], subtotal: '18.95870967742', creditsApplied: '18.95870967742', total: '0' });
    expect(invoice.lines.map((l: Row) => l.feature.key)).toEqual(['req', 'rows', 'storage', 'tx']);
  });

  it.each(['2026-13', '26-04', 'April', '2025-04', '2026-05'])('refuses month %s', async (month) => {
    const response = await graphql(app, `{ viewer { realm { invoicePreview(month: "${month}") { total } } } }`, { key: realm.admin.key });
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_RANGE' });
  });
});

describe('bad input to the mutations', () => {
  const contract = (input: Record<string, unknown>) => ({ input: { name: 'x', startsAt: '2028-01-01T00:00:00Z', endsAt: '2029-01-01T00:00:00Z', licenses: [], ...input } });
  const errorOf = async (query: string, variables: Record<string, unknown>) => {
    const response = await graphql(app, query, { key: realm.admin.key, variables });
    expect(response.body.errors).toBeUndefined();
    const payload = Object.values(response.body.data!)[0] as { userErrors: Row[] };
    return payload.userErrors[0];
  };

  it.each([
    ['overlapping contracts', { startsAt: '2026-06-01T00:00:00Z', endsAt: '2028-01-01T00:00:00Z' }, 'OVERLAPPING_CONTRACT'],
    ['end before start', { startsAt: '2029-01-01T00:00:00Z', endsAt: '2028-01-01T00:00:00Z' }, 'INVALID_RANGE'],
    ['end at start', { endsAt: '2028-01-01T00:00:00Z' }, 'INVALID_RANGE'],
    ['a blank name', { name: '  ' }, 'BLANK'],
  ])('createContract: %s', async (_name, input, code) => {
    expect(await errorOf(CREATE_CONTRACT, contract(input))).toMatchObject({ code });
  });

  it('createContract: negative, too precise, unknown and duplicate licenses', async () => {
    expect(await errorOf(CREATE_CONTRACT, contract({ licenses: [{ featureId: fid('tx'), quantityPerMonth: '-1' }] }))).toMatchObject({
      code: 'INVALID_QUANTITY',
      field: ['input', 'licenses', '0', 'quantityPerMonth'],
    });
    expect(await errorOf(CREATE_CONTRACT, contract({ licenses: [{ featureId: fid('tx'), quantityPerMonth: '0.0000000001' }] }))).toMatchObject({ code: 'INVALID_QUANTITY' });
    expect(await errorOf(CREATE_CONTRACT, contract({ licenses: [{ featureId: encodeId('Feature', '00000000-0000-7000-8000-000000000000'), quantityPerMonth: '1' }] }))).toMatchObject({ code: 'NOT_FOUND' });
    expect(
      await errorOf(CREATE_CONTRACT, contract({ licenses: [{ featureId: fid('tx'), quantityPerMonth: '1' }, { featureId: fid('tx'), quantityPerMonth: '2' }] })),
    ).toMatchObject({ code: 'DUPLICATE_LICENSE' });
    expect(await db.prisma.contract.count({ where: { realmId: realm.realm.id } })).toBe(2);
  });

  it('createContract: a feature of another realm does not exist', async () => {
    const other = await createUsageRealm(db.prisma, 'UTC');
    const foreign = encodeId('Feature', other.features.tx.id);
    expect(await errorOf(CREATE_CONTRACT, contract({ licenses: [{ featureId: foreign, quantityPerMonth: '1' }] }))).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('createCreditGrant: negative credits or spaces, both or neither, spaces for general credits, bad range', async () => {
    const at = { startsAt: '2026-01-01T00:00:00Z' };
    expect(await errorOf(CREATE_GRANT, { input: { kind: 'GENERAL', credits: '-5', ...at } })).toMatchObject({ code: 'INVALID_QUANTITY' });
    expect(await errorOf(CREATE_GRANT, { input: { kind: 'SHIELD_SPACE', spaces: '-1', ...at } })).toMatchObject({ code: 'INVALID_QUANTITY' });
    expect(await errorOf(CREATE_GRANT, { input: { kind: 'GENERAL', ...at } })).toMatchObject({ code: 'INVALID_QUANTITY' });
    expect(await errorOf(CREATE_GRANT, { input: { kind: 'PRIVATE_SPACE', credits: '1', spaces: '1', ...at } })).toMatchObject({ code: 'INVALID_QUANTITY' });
    expect(await errorOf(CREATE_GRANT, { input: { kind: 'GENERAL', spaces: '1', ...at } })).toMatchObject({ code: 'INVALID_QUANTITY' });
    expect(await errorOf(CREATE_GRANT, { input: { kind: 'GENERAL', credits: '1', startsAt: '2026-01-01T00:00:00Z', endsAt: '2025-01-01T00:00:00Z' } })).toMatchObject({ code: 'INVALID_RANGE' });
  });

  it('setPrice: negative, too precise, bad or second currency, unknown feature', async () => {
    const price = (input: Record<string, unknown>) => ({ input: { featureId: fid('tx'), unitAmount: '1', currency: 'EUR', validFrom: '2027-01-01T00:00:00Z', ...input } });
    expect(await errorOf(SET_PRICE, price({ unitAmount: '-0.01' }))).toMatchObject({ code: 'INVALID_PRICE', field: ['input', 'unitAmount'] });
    expect(await errorOf(SET_PRICE, price({ unitAmount: '0.0000000000001' }))).toMatchObject({ code: 'INVALID_PRICE' });
    for (const currency of ['EURO', 'eu', 'eur', '€€€', '']) expect(await errorOf(SET_PRICE, price({ currency }))).toMatchObject({ code: 'INVALID_CURRENCY' });
    expect(await errorOf(SET_PRICE, price({ currency: 'USD' }))).toMatchObject({ code: 'CURRENCY_MISMATCH' });
    expect(await errorOf(SET_PRICE, price({ featureId: encodeId('Feature', '00000000-0000-7000-8000-000000000000') }))).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses a malformed decimal as BAD_USER_INPUT', async () => {
    const response = await graphql(app, SET_PRICE, { key: realm.admin.key, variables: { input: { featureId: fid('tx'), unitAmount: '1e3', currency: 'EUR', validFrom: '2027-01-01T00:00:00Z' } } });
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_DECIMAL' });
  });
});

describe('authorization', () => {
  it('a key without billing:read gets FORBIDDEN on every billing read', async () => {
    const { key } = await createKey(db.prisma, realm.realm.id, { scopes: ['usage:read', 'keys:manage'] });
    for (const field of ['currentUsage { month }', 'usageHistory { month }', 'invoicePreview(month: "2026-04") { total }']) {
      const response = await graphql(app, `{ viewer { realm { ${field} } } }`, { key });
      expect(response.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      expect(response.body.errors?.[0]?.message).toMatch(/billing:read/);
    }
  });

  it('a workspace-scoped key with billing:read gets FORBIDDEN: billing is realm-wide', async () => {
    const { key } = await createKey(db.prisma, realm.realm.id, { scopes: ['billing:read'], workspaceId: realm.tree.left.id });
    const response = await graphql(app, '{ viewer { realm { currentUsage { month } } } }', { key });
    expect(response.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('contract, credit and price mutations need keys:manage', async () => {
    const { key } = await createKey(db.prisma, realm.realm.id, { scopes: ['billing:read'] });
    const response = await graphql(app, CREATE_CONTRACT, { key, variables: { input: { name: 'x', startsAt: '2030-01-01T00:00:00Z', endsAt: '2031-01-01T00:00:00Z' } } });
    expect(response.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const price = await graphql(app, SET_PRICE, { key, variables: { input: { featureId: fid('tx'), unitAmount: '1', currency: 'EUR', validFrom: '2030-01-01T00:00:00Z' } } });
    expect(price.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { billingMonth, monthOf } from '../src/billing/calendar.js';
import { dec, roundQuantity } from '../src/billing/decimal.js';
import { licensedForMonth, licensePeriod } from '../src/billing/proration.js';
import { encodeId } from '../src/global-id.js';
import { licensedForPeriod, periodOf } from '../src/quota/evaluate.js';
import { localDayNumber, startOfLocalDay } from '../src/usage/time.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm, insertUsage } from './helpers/usage-fixture.js';

const NOW = new Date('2026-06-15T12:00:00Z');
// Local midnights in Europe/Berlin, the realm's zone.
const YEAR_START = '2025-12-31T23:00:00Z'; // 1 January 2026
const YEAR_END = '2026-12-31T23:00:00Z'; // 1 January 2027
const MARCH_START = '2026-02-28T23:00:00Z';
const MARCH_16 = '2026-03-15T23:00:00Z';
const APRIL_START = '2026-03-31T22:00:00Z';
const APRIL_11 = '2026-04-10T22:00:00Z';
const MAY_8 = '2026-05-07T22:00:00Z';

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
let other: Awaited<ReturnType<typeof createUsageRealm>>;
const fid = (key: keyof typeof realm.features, r = realm) => encodeId('Feature', r.features[key].id);
const uuidOf = (globalId: string) => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;

const CONTRACT = 'contract { id name startsAt endsAt licenses(first: 50) { totalCount edges { node { id quantityPerMonth startsAt endsAt feature { key } } } } } userErrors { field code message }';
const CREATE = `mutation ($input: CreateContractInput!) { createContract(input: $input) { ${CONTRACT} } }`;
const AMEND = `mutation ($input: AmendContractInput!) { amendContract(input: $input) { ${CONTRACT} } }`;
const HISTORY = '{ viewer { realm { usageHistory(months: 6) { month products { feature { key } licensed } } } } }';
const AUDIT = `query ($targetId: ID) { viewer { realm { auditLog(first: 20, filter: { targetId: $targetId }) { edges { node { action actorType actorKeyPrefix targetType targetId before after } } } } } }`;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => NOW, exposeQueryStats: true, onUnexpectedError: (error) => console.error('UNEXPECTED', error) });
  realm = await createUsageRealm(db.prisma, 'Europe/Berlin');
  other = await createUsageRealm(db.prisma, 'Europe/Berlin');
}, 60_000);
afterAll(() => db?.destroy());

async function call(query: string, variables: Record<string, unknown>, key = realm.admin.key) {
  const response = await graphql(app, query, { key, variables });
  expect(response.body.errors).toBeUndefined();
  return { payload: Object.values(response.body.data!)[0] as any, statements: response.body.extensions?.queryStats?.sqlStatements as number };
}
const codes = (payload: { userErrors: { code: string }[] }) => payload.userErrors.map((e) => e.code);
const auditOf = async (targetId: string, key = realm.admin.key) => (await graphql(app, AUDIT, { key, variables: { targetId } })).body.data.viewer.realm.auditLog.edges.map((e: any) => e.node);
async function licensedByMonth(key = realm.admin.key): Promise<Record<string, Record<string, string>>> {
  const { body } = await graphql(app, HISTORY, { key });
  expect(body.errors).toBeUndefined();
  return Object.fromEntries(body.data.viewer.realm.usageHistory.map((m: any) => [m.month, Object.fromEntries(m.products.map((p: any) => [p.feature.key, p.licensed]))]));
}

describe('amending a contract (the year 2026)', () => {
  let contractId: string;
  let before: Record<string, Record<string, string>>;

  beforeAll(async () => {
    const { payload } = await call(CREATE, {
      input: {
        name: 'Year 2026',
        startsAt: YEAR_START,
        endsAt: YEAR_END,
        licenses: [
          { featureId: fid('tx'), quantityPerMonth: '3100' },
          { featureId: fid('storage'), quantityPerMonth: '10' },
        ],
        idempotencyKey: 'contract-2026',
      },
    });
    expect(payload.userErrors).toEqual([]);
    contractId = payload.contract.id;
    await insertUsage(db.prisma, realm.realm.id, { tx: realm.features.tx.id }, [
      { feature: 'tx', hour: new Date('2026-03-10T10:00:00Z'), quantity: '2000' },
      { feature: 'tx', hour: new Date('2026-03-20T10:00:00Z'), quantity: '3000' },
    ]);
    before = await licensedByMonth();
  });

  it('creates it with one license row per product covering the contract, audited as contract.create', async () => {
    const contract = (await graphql(app, `{ node(id: "${contractId}") { ... on Contract { licenses(first: 10) { edges { node { startsAt endsAt quantityPerMonth feature { key } } } } } } }`, { key: realm.admin.key })).body.data.node;
    expect(contract.licenses.edges.map((e: any) => e.node)).toEqual([
      { startsAt: new Date(YEAR_START).toISOString(), endsAt: new Date(YEAR_END).toISOString(), quantityPerMonth: '3100', feature: { key: 'tx' } },
      { startsAt: new Date(YEAR_START).toISOString(), endsAt: new Date(YEAR_END).toISOString(), quantityPerMonth: '10', feature: { key: 'storage' } },
    ]);
    const [entry] = await auditOf(contractId);
    expect(entry).toMatchObject({ action: 'contract.create', targetType: 'Contract', before: null, after: { name: 'Year 2026', startsAt: new Date(YEAR_START).toISOString(), endsAt: new Date(YEAR_END).toISOString() } });
    expect(entry.after.licenses.map((l: any) => [l.featureId, l.quantityPerMonth, l.startsAt, l.endsAt]).sort()).toEqual(
      [
        [realm.features.tx.id, '3100', null, null],
        [realm.features.storage.id, '10', null, null],
      ].sort(),
    );
    expect(before['2026-03']).toEqual({ tx: '3100', storage: '10' });
  });

  it('a mid-month amendment: the month is prorated by days, the month before is unchanged, the rows keep the history', async () => {
    const { payload } = await call(AMEND, {
      input: {
        id: contractId,
        licenses: [
          { featureId: fid('tx'), quantityPerMonth: '6200', effectiveFrom: MARCH_16 },
          { featureId: fid('req'), quantityPerMonth: '300', effectiveFrom: APRIL_11 },
          { featureId: fid('storage'), quantityPerMonth: '7', effectiveFrom: MAY_8 },
        ],
      },
    });
    expect(payload.userErrors).toEqual([]);
    const rows = payload.contract.licenses.edges.map((e: any) => e.node);
    const iso = (s: string) => new Date(s).toISOString();
    expect(rows.map((r: any) => [r.feature.key, r.quantityPerMonth, r.startsAt, r.endsAt])).toEqual([
      ['tx', '3100', iso(YEAR_START), iso(MARCH_16)],
      ['storage', '10', iso(YEAR_START), iso(MAY_8)],
      ['tx', '6200', iso(MARCH_16), iso(YEAR_END)],
      ['req', '300', iso(APRIL_11), iso(YEAR_END)],
      ['storage', '7', iso(MAY_8), iso(YEAR_END)],
    ]);

    const after = await licensedByMonth();
    // February: unchanged. March: 15 days of 3,100 and 16 of 6,200 over 31 = 1,500 + 3,200.
    expect(after['2026-02']).toEqual(before['2026-02']);
    expect(after['2026-01']).toEqual(before['2026-01']);
    expect(after['2026-03']).toEqual({ tx: '4700', storage: '10' });
    // April: 6,200; requests from the 11th: 20 of 30 days of 300.
    expect(after['2026-04']).toEqual({ tx: '6200', req: '200', storage: '10' });
    // May: 7 days of 10 and 24 of 7 over 31 = 238/31, rounded once to 9 decimals.
    expect(after['2026-05']!.storage).toBe('7.677419355');
    expect(after['2026-06']).toEqual({ tx: '6200', req: '300', storage: '7' });

    const [entry] = await auditOf(contractId);
    expect(entry.action).toBe('contract.amend');
    expect(entry.before.licenses).toHaveLength(2);
    expect(entry.after.licenses).toHaveLength(5);
    expect(entry.after.licenses.filter((l: any) => l.featureId === realm.features.tx.id).map((l: any) => [l.quantityPerMonth, l.startsAt, l.endsAt])).toEqual([
      ['3100', null, iso(MARCH_16)],
      ['6200', iso(MARCH_16), null],
    ]);
  });

  it('each license row reports the usage of its own period, and the month\'s coverage names both rows', async () => {
    const rows = await db.prisma.license.findMany({ where: { contract: { realmId: realm.realm.id }, featureId: realm.features.tx.id }, orderBy: { id: 'asc' } });
    const [old, current] = rows.map((r) => encodeId('License', r.id));
    const range = `range: { from: "${MARCH_START}", to: "${APRIL_START}" }, granularity: MONTH`;
    const { body } = await graphql(
      app,
      `{ old: node(id: "${old}") { ... on License { usage(${range}) { points { quantity } } } }
         current: node(id: "${current}") { ... on License { usage(${range}) { points { quantity } } } }
         viewer { realm { usage(${range}, filter: { featureIds: ["${fid('tx')}"] }) { points { quantity coverage { source license { id } quantity } } } } } }`,
      { key: realm.admin.key },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data.old.usage.points).toEqual([{ quantity: '2000' }]);
    expect(body.data.current.usage.points).toEqual([{ quantity: '3000' }]);
    expect(body.data.viewer.realm.usage.points).toEqual([
      {
        quantity: '5000',
        coverage: [
          { source: 'LICENSE', license: { id: old }, quantity: '1500' },
          { source: 'LICENSE', license: { id: current }, quantity: '3200' },
          { source: 'ON_DEMAND', license: null, quantity: '300' },
        ],
      },
    ]);
  });

  it('the same amendment again changes nothing; one at the latest change\'s instant corrects the quantity in place', async () => {
    const count = await db.prisma.license.count({ where: { contract: { realmId: realm.realm.id } } });
    const auditCount = (await auditOf(contractId)).length;
    const { payload } = await call(AMEND, { input: { id: contractId, licenses: [{ featureId: fid('tx'), quantityPerMonth: '6200', effectiveFrom: MARCH_16 }] } });
    expect(payload.userErrors).toEqual([]);
    expect(await auditOf(contractId)).toHaveLength(auditCount);
    const corrected = await call(AMEND, { input: { id: contractId, licenses: [{ featureId: fid('tx'), quantityPerMonth: '6510', effectiveFrom: MARCH_16 }] } });
    expect(corrected.payload.userErrors).toEqual([]);
    expect(await db.prisma.license.count({ where: { contract: { realmId: realm.realm.id } } })).toBe(count);
    // March: 1,500 + 16 × 6,510 / 31 = 1,500 + 3,360.
    expect((await licensedByMonth())['2026-03']!.tx).toBe('4860');
    await call(AMEND, { input: { id: contractId, licenses: [{ featureId: fid('tx'), quantityPerMonth: '6200', effectiveFrom: MARCH_16 }] } });
  });

  it('a new end date: shortened, extended up to the next contract, never overlapping it nor before the start', async () => {
    const next = await call(CREATE, { input: { name: 'Year 2027', startsAt: '2027-01-31T23:00:00Z', endsAt: '2028-01-31T23:00:00Z' } });
    expect(next.payload.userErrors).toEqual([]);
    const extended = await call(AMEND, { input: { id: contractId, endsAt: '2027-01-31T23:00:00Z' } });
    expect(extended.payload).toMatchObject({ userErrors: [], contract: { endsAt: '2027-01-31T23:00:00.000Z' } });
    // The rows without an end follow the contract's.
    expect(extended.payload.contract.licenses.edges.filter((e: any) => e.node.feature.key === 'req').map((e: any) => e.node.endsAt)).toEqual(['2027-01-31T23:00:00.000Z']);
    const [entry] = await auditOf(contractId);
    expect(entry).toMatchObject({ action: 'contract.amend', before: { endsAt: new Date(YEAR_END).toISOString() }, after: { endsAt: '2027-01-31T23:00:00.000Z' } });
    expect(entry.before.licenses).toBeUndefined(); // unchanged fields are left out

    const overlapping = await call(AMEND, { input: { id: contractId, endsAt: '2027-02-01T00:00:00Z' } });
    expect(overlapping.payload.userErrors).toMatchObject([{ field: ['input', 'endsAt'], code: 'OVERLAPPING_CONTRACT' }]);
    expect(codes((await call(AMEND, { input: { id: contractId, endsAt: YEAR_START } })).payload)).toEqual(['INVALID_RANGE']);
    // Before a license row's start (requests from 11 April): refused, the history would be cut.
    expect((await call(AMEND, { input: { id: contractId, endsAt: '2026-04-01T00:00:00Z' } })).payload.userErrors).toMatchObject([{ field: ['input', 'endsAt'], code: 'INVALID_RANGE' }]);
    const back = await call(AMEND, { input: { id: contractId, endsAt: YEAR_END } });
    expect(back.payload.userErrors).toEqual([]);
    expect(await db.prisma.contract.findUniqueOrThrow({ where: { id: uuidOf(contractId) } })).toMatchObject({ endsAt: new Date(YEAR_END) });
  });

  it.each([
    ['effectiveFrom before the contract', { featureId: 'tx', quantityPerMonth: '1', effectiveFrom: '2025-06-01T00:00:00Z' }, 'INVALID_RANGE', 'effectiveFrom'],
    ['effectiveFrom at its end', { featureId: 'tx', quantityPerMonth: '1', effectiveFrom: YEAR_END }, 'INVALID_RANGE', 'effectiveFrom'],
    ['effectiveFrom before the product\'s latest change', { featureId: 'tx', quantityPerMonth: '1', effectiveFrom: MARCH_START }, 'INVALID_RANGE', 'effectiveFrom'],
    ['a negative quantity', { featureId: 'tx', quantityPerMonth: '-1', effectiveFrom: APRIL_START }, 'INVALID_QUANTITY', 'quantityPerMonth'],
    ['ten decimals', { featureId: 'tx', quantityPerMonth: '0.0000000001', effectiveFrom: APRIL_START }, 'INVALID_QUANTITY', 'quantityPerMonth'],
    ['another realm\'s feature', { featureId: 'foreign', quantityPerMonth: '1', effectiveFrom: APRIL_START }, 'NOT_FOUND', 'featureId'],
    ['another type\'s id', { featureId: 'workspace', quantityPerMonth: '1', effectiveFrom: APRIL_START }, 'NOT_FOUND', 'featureId'],
  ])('amendContract refuses %s', async (_name, license, code, field) => {
    const featureId = license.featureId === 'foreign' ? fid('tx', other) : license.featureId === 'workspace' ? encodeId('Workspace', realm.tree.root.id) : fid(license.featureId as 'tx');
    const rows = await db.prisma.license.count();
    const { payload } = await call(AMEND, { input: { id: contractId, licenses: [{ ...license, featureId }] } });
    expect(payload).toMatchObject({ contract: null, userErrors: [{ field: ['input', 'licenses', '0', field], code }] });
    expect(await db.prisma.license.count()).toBe(rows);
  });

  it('amendContract refuses a product twice, an archived feature added, and contracts that are not the realm\'s', async () => {
    const twice = await call(AMEND, {
      input: { id: contractId, licenses: [{ featureId: fid('tx'), quantityPerMonth: '1', effectiveFrom: APRIL_START }, { featureId: fid('tx'), quantityPerMonth: '2', effectiveFrom: APRIL_START }] },
    });
    expect(twice.payload.userErrors).toMatchObject([{ field: ['input', 'licenses', '1', 'featureId'], code: 'DUPLICATE_LICENSE' }]);
    const archived = await db.prisma.feature.create({ data: { realmId: realm.realm.id, key: 'old.meter', name: 'old', service: 'x', unit: 'ROW', aggregation: 'SUM', archivedAt: NOW } });
    const added = await call(AMEND, { input: { id: contractId, licenses: [{ featureId: encodeId('Feature', archived.id), quantityPerMonth: '1', effectiveFrom: APRIL_START }] } });
    expect(added.payload.userErrors).toMatchObject([{ field: ['input', 'licenses', '0', 'featureId'], code: 'ARCHIVED' }]);
    const foreign = (await call(CREATE, { input: { name: 'Theirs', startsAt: YEAR_START, endsAt: YEAR_END } }, other.admin.key)).payload.contract.id;
    for (const id of [foreign, encodeId('Contract', '00000000-0000-7000-8000-000000000000'), encodeId('Feature', realm.features.tx.id), 'garbage']) {
      expect((await call(AMEND, { input: { id, endsAt: '2027-06-01T00:00:00Z' } })).payload.userErrors).toEqual([{ field: ['input', 'id'], code: 'NOT_FOUND', message: 'No such contract.' }]);
    }
    expect(await db.prisma.contract.findUniqueOrThrow({ where: { id: uuidOf(foreign) } })).toMatchObject({ endsAt: new Date(YEAR_END) });
  });
});

describe('createContract', () => {
  const contract = (input: Record<string, unknown> = {}) => ({ input: { name: 'C', startsAt: '2030-01-01T00:00:00Z', endsAt: '2031-01-01T00:00:00Z', licenses: [], ...input } });

  it.each([
    ['a blank name', { name: ' ' }, 'BLANK', ['input', 'name']],
    ['a name of 201 characters', { name: 'n'.repeat(201) }, 'TOO_LONG', ['input', 'name']],
    ['a control character in the name', { name: 'a\u0001' }, 'INVALID_STRING', ['input', 'name']],
    ['an end at the start', { endsAt: '2030-01-01T00:00:00Z' }, 'INVALID_RANGE', ['input', 'endsAt']],
    ['an overlap with another contract', { startsAt: '2026-12-01T00:00:00Z' }, 'OVERLAPPING_CONTRACT', ['input', 'startsAt']],
    ['a negative quantity', { licenses: [{ featureId: 'tx', quantityPerMonth: '-0.5' }] }, 'INVALID_QUANTITY', ['input', 'licenses', '0', 'quantityPerMonth']],
    ['22 digits', { licenses: [{ featureId: 'tx', quantityPerMonth: '1000000000000000000000' }] }, 'INVALID_QUANTITY', ['input', 'licenses', '0', 'quantityPerMonth']],
    ['a product twice', { licenses: [{ featureId: 'tx', quantityPerMonth: '1' }, { featureId: 'tx', quantityPerMonth: '2' }] }, 'DUPLICATE_LICENSE', ['input', 'licenses', '1', 'featureId']],
    ['another realm\'s feature', { licenses: [{ featureId: 'foreign', quantityPerMonth: '1' }] }, 'NOT_FOUND', ['input', 'licenses', '0', 'featureId']],
    ['an archived feature', { licenses: [{ featureId: 'archived', quantityPerMonth: '1' }] }, 'ARCHIVED', ['input', 'licenses', '0', 'featureId']],
    ['an empty idempotency key', { idempotencyKey: '' }, 'INVALID_IDEMPOTENCY_KEY', ['input', 'idempotencyKey']],
  ])('refuses %s', async (_name, input, code, field) => {
    const archived = await db.prisma.feature.upsert({
      where: { realmId_key: { realmId: realm.realm.id, key: 'archived.meter' } },
      create: { realmId: realm.realm.id, key: 'archived.meter', name: 'a', service: 'x', unit: 'ROW', aggregation: 'SUM', archivedAt: NOW },
      update: {},
    });
    const ids: Record<string, string> = { tx: fid('tx'), foreign: fid('tx', other), archived: encodeId('Feature', archived.id) };
    const licenses = (input as { licenses?: { featureId: string }[] }).licenses?.map((l) => ({ ...l, featureId: ids[l.featureId] }));
    const before = await db.prisma.contract.count();
    const { payload } = await call(CREATE, contract({ ...input, ...(licenses ? { licenses } : {}) }));
    expect(payload).toMatchObject({ contract: null, userErrors: [{ field, code }] });
    expect(await db.prisma.contract.count()).toBe(before);
  });

  it('an idempotency key replays the contract; another input with it is IDEMPOTENCY_MISMATCH', async () => {
    const request = contract({ name: 'Idempotent', startsAt: '2032-01-01T00:00:00Z', endsAt: '2033-01-01T00:00:00Z', licenses: [{ featureId: fid('tx'), quantityPerMonth: '5' }], idempotencyKey: 'c-2032' });
    const first = (await call(CREATE, request)).payload;
    expect(first.userErrors).toEqual([]);
    expect((await call(CREATE, request)).payload).toEqual(first);
    expect(await auditOf(first.contract.id)).toHaveLength(1);
    const mismatch = (await call(CREATE, { input: { ...request.input, name: 'Other' } })).payload;
    expect(mismatch).toMatchObject({ contract: null, userErrors: [{ code: 'IDEMPOTENCY_MISMATCH' }] });
  });

  it('two concurrent overlapping contracts: one is created, the other is OVERLAPPING_CONTRACT', async () => {
    const results = await Promise.all(
      ['Racer A', 'Racer B'].map((name) => call(CREATE, { input: { name, startsAt: '2035-01-01T00:00:00Z', endsAt: '2036-01-01T00:00:00Z' } })),
    );
    expect(results.map((r) => codes(r.payload)).sort()).toEqual([[], ['OVERLAPPING_CONTRACT']]);
  });
});

describe('billing mutations: scopes, audit, idempotency', () => {
  const GRANT = `mutation ($input: CreateCreditGrantInput!) { createCreditGrant(input: $input) { creditGrant { id credits } userErrors { field code } } }`;
  const PRICE = `mutation ($input: SetPriceInput!) { setPrice(input: $input) { price { unitAmount } userErrors { field code } } }`;
  const RULE = `mutation ($input: CreateQuotaRuleInput!) { createQuotaRule(input: $input) { quotaRule { id } webhookSecret userErrors { field code } } }`;
  const DELETE_RULE = `mutation ($id: ID!) { deleteQuotaRule(id: $id) { deletedQuotaRuleId userErrors { field code } } }`;

  it('need billing:write on a realm-wide key: keys:manage, admin:write, a scoped billing:write key or an operator-less read key are FORBIDDEN', async () => {
    const contractId = (await call(CREATE, { input: { name: 'Scopes', startsAt: '2040-01-01T00:00:00Z', endsAt: '2041-01-01T00:00:00Z' } })).payload.contract.id;
    const keys = [
      (await createKey(db.prisma, realm.realm.id, { scopes: ['keys:manage', 'admin:write', 'billing:read', 'usage:read', 'usage:write'] })).key,
      (await createKey(db.prisma, realm.realm.id, { scopes: ['billing:write', 'billing:read'], workspaceId: realm.tree.left.id })).key,
      (await createKey(db.prisma, realm.realm.id, { scopes: ['billing:read'] })).key,
    ];
    const calls: [string, Record<string, unknown>][] = [
      [CREATE, { input: { name: 'x', startsAt: '2050-01-01T00:00:00Z', endsAt: '2051-01-01T00:00:00Z' } }],
      [AMEND, { input: { id: contractId, endsAt: '2042-01-01T00:00:00Z' } }],
      [GRANT, { input: { kind: 'GENERAL', credits: '1', startsAt: '2050-01-01T00:00:00Z' } }],
      [PRICE, { input: { featureId: fid('tx'), unitAmount: '1', currency: 'EUR', validFrom: '2050-01-01T00:00:00Z' } }],
      [RULE, { input: { featureId: fid('tx'), period: 'DAY', quantity: '1' } }],
      [DELETE_RULE, { id: encodeId('QuotaRule', '00000000-0000-7000-8000-000000000000') }],
    ];
    for (const key of keys) {
      for (const [query, variables] of calls) {
        const response = await graphql(app, query, { key, variables });
        expect(response.body.errors?.[0]?.extensions?.code, query).toBe('FORBIDDEN');
      }
    }
    const billingWriter = (await createKey(db.prisma, realm.realm.id, { scopes: ['billing:write', 'billing:read'] })).key;
    expect((await call(AMEND, { input: { id: contractId, endsAt: '2042-01-01T00:00:00Z' } }, billingWriter)).payload.userErrors).toEqual([]);
  });

  it('createCreditGrant: audited, replayed by its idempotency key, mismatched by another input', async () => {
    const input = { kind: 'SHIELD_SPACE', spaces: '2', startsAt: '2026-01-01T00:00:00Z', idempotencyKey: 'grant-1' };
    const first = (await call(GRANT, { input })).payload;
    expect(first).toMatchObject({ userErrors: [], creditGrant: { credits: '6000' } });
    expect((await call(GRANT, { input })).payload).toEqual(first);
    expect((await call(GRANT, { input: { ...input, spaces: '3' } })).payload.userErrors).toEqual([{ field: ['input', 'idempotencyKey'], code: 'IDEMPOTENCY_MISMATCH' }]);
    // The key names a creation of another kind: a mismatch too.
    expect((await call(RULE, { input: { featureId: fid('tx'), period: 'DAY', quantity: '1', idempotencyKey: 'grant-1' } })).payload.userErrors).toEqual([
      { field: ['input', 'idempotencyKey'], code: 'IDEMPOTENCY_MISMATCH' },
    ]);
    const entries = await auditOf(first.creditGrant.id);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ action: 'creditGrant.create', targetType: 'CreditGrant', before: null, after: { kind: 'SHIELD_SPACE', credits: '6000', startsAt: '2026-01-01T00:00:00.000Z', endsAt: null } });
  });

  it('setPrice: audited with the price before and after', async () => {
    const input = { featureId: fid('req'), unitAmount: '0.5', currency: 'EUR', validFrom: '2026-02-01T00:00:00Z' };
    expect((await call(PRICE, { input })).payload.userErrors).toEqual([]);
    expect((await call(PRICE, { input: { ...input, unitAmount: '0.75' } })).payload.userErrors).toEqual([]);
    const price = await db.prisma.price.findFirstOrThrow({ where: { featureId: realm.features.req.id } });
    const { body } = await graphql(app, '{ viewer { realm { auditLog(first: 5, filter: { actions: ["price.set"] }) { edges { node { action targetType before after } } } } } }', { key: realm.admin.key });
    const [second, first] = body.data.viewer.realm.auditLog.edges.map((e: any) => e.node);
    expect(await db.prisma.auditEntry.count({ where: { action: 'price.set', targetId: price.id } })).toBe(2);
    expect(first).toMatchObject({ action: 'price.set', targetType: 'Price', before: null, after: { unitAmount: '0.5', currency: 'EUR' } });
    expect(second).toMatchObject({ action: 'price.set', before: { unitAmount: '0.5' }, after: { unitAmount: '0.75' } });
  });

  it('createQuotaRule and deleteQuotaRule: audited; a replay answers the same rule and its webhook secret', async () => {
    const input = { featureId: fid('tx'), period: 'MONTH', percentOfLicense: '80', webhookUrl: 'https://hooks.example.com/quota', idempotencyKey: 'rule-1' };
    const first = (await call(RULE, { input })).payload;
    expect(first.userErrors).toEqual([]);
    expect(first.webhookSecret).toEqual(expect.any(String));
    expect((await call(RULE, { input })).payload).toEqual(first);
    expect(await db.prisma.quotaRule.count({ where: { realmId: realm.realm.id } })).toBe(1);
    const deleted = (await call(DELETE_RULE, { id: first.quotaRule.id })).payload;
    expect(deleted).toEqual({ deletedQuotaRuleId: first.quotaRule.id, userErrors: [] });
    const [removal, creation] = await auditOf(first.quotaRule.id);
    expect(creation).toMatchObject({ action: 'quotaRule.create', before: null, after: { period: 'MONTH', thresholdPercent: '80', webhookUrl: 'https://hooks.example.com/quota' } });
    expect(JSON.stringify(creation)).not.toContain(first.webhookSecret);
    expect(removal).toMatchObject({ action: 'quotaRule.delete', before: { period: 'MONTH', thresholdPercent: '80' }, after: null });
    expect((await call(DELETE_RULE, { id: first.quotaRule.id })).payload.userErrors).toEqual([{ field: ['id'], code: 'NOT_FOUND' }]);
  });
});

describe('statement counts', () => {
  it('createContract and amendContract run as many statements in a realm with forty contracts as in a fresh one', async () => {
    const busy = await createUsageRealm(db.prisma, 'UTC');
    for (let year = 2000; year < 2040; year++) {
      await db.prisma.contract.create({
        data: {
          realmId: busy.realm.id,
          name: `Y${year}`,
          startsAt: new Date(Date.UTC(year, 0, 1)),
          endsAt: new Date(Date.UTC(year + 1, 0, 1)),
          licenses: { create: Object.values(busy.features).map((f) => ({ featureId: f.id, quantityPerMonth: '10' })) },
        },
      });
    }
    const fresh = await createUsageRealm(db.prisma, 'UTC');
    const counts = async (target: typeof busy) => {
      const f = (key: keyof typeof target.features) => encodeId('Feature', target.features[key].id);
      const created = await call(
        CREATE,
        { input: { name: 'Measured', startsAt: '2045-01-01T00:00:00Z', endsAt: '2046-01-01T00:00:00Z', licenses: [{ featureId: f('tx'), quantityPerMonth: '1' }, { featureId: f('req'), quantityPerMonth: '2' }], idempotencyKey: 'measured' } },
        target.admin.key,
      );
      expect(created.payload.userErrors).toEqual([]);
      const amended = await call(
        AMEND,
        {
          input: {
            id: created.payload.contract.id,
            endsAt: '2046-06-01T00:00:00Z',
            licenses: [
              { featureId: f('tx'), quantityPerMonth: '3', effectiveFrom: '2045-03-01T00:00:00Z' },
              { featureId: f('rows'), quantityPerMonth: '4', effectiveFrom: '2045-04-01T00:00:00Z' },
            ],
          },
        },
        target.admin.key,
      );
      expect(amended.payload.userErrors).toEqual([]);
      return [created.statements, amended.statements];
    };
    expect(await counts(busy)).toEqual(await counts(fresh));
  });
});

describe('proration of amended licenses (model)', () => {
  const ZONES = ['UTC', 'Europe/Berlin', 'America/Havana', 'Australia/Lord_Howe', 'Asia/Kolkata'];
  const quantity = fc.integer({ min: 0, max: 10 ** 12 }).map((n) => dec(n).div(1000).toFixed());

  it('a change on day d of a month: (d−1) days of the old quantity and the rest of the new, over the month; the month before is the old quantity', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), fc.integer({ min: 2000, max: 2040 }), fc.integer({ min: 1, max: 12 }), fc.nat(30), quantity, quantity, (zone, year, monthNumber, dayIndex, q1, q2) => {
        const name = `${year}-${String(monthNumber).padStart(2, '0')}`;
        const month = billingMonth(name, zone);
        const d = (dayIndex % month.days) + 1;
        const first = localDayNumber(month.range.from, zone);
        const effectiveFrom = startOfLocalDay(first + d - 1, zone);
        const contract = { startsAt: startOfLocalDay(first - 400, zone), endsAt: startOfLocalDay(first + 400, zone) };
        const contracts = [
          {
            ...contract,
            licenses: [
              { featureId: 'f', quantityPerMonth: q1, startsAt: null, endsAt: effectiveFrom },
              { featureId: 'f', quantityPerMonth: q2, startsAt: effectiveFrom, endsAt: null },
            ],
          },
        ];
        const expected = roundQuantity(dec(q1).mul(d - 1).div(month.days).plus(dec(q2).mul(month.days - d + 1).div(month.days)));
        expect(licensedForMonth(month, zone, contracts).get('f')!.toFixed()).toBe(expected.toFixed());
        const previous = billingMonth(monthOf(new Date(month.range.from.getTime() - 1), zone), zone);
        expect(licensedForMonth(previous, zone, contracts).get('f')!.toFixed()).toBe(dec(q1).toFixed());
      }),
      { numRuns: 300 },
    );
  });

  it('licensePeriod clips a row to its contract; quota thresholds follow the row in force on the day', () => {
    const contract = { startsAt: new Date('2026-01-01T00:00:00Z'), endsAt: new Date('2027-01-01T00:00:00Z') };
    expect(licensePeriod(contract, { startsAt: null, endsAt: null })).toEqual(contract);
    expect(licensePeriod(contract, { startsAt: new Date('2025-01-01T00:00:00Z'), endsAt: new Date('2028-01-01T00:00:00Z') })).toEqual(contract);
    expect(licensePeriod(contract, { startsAt: new Date('2026-03-16T00:00:00Z') })).toEqual({ startsAt: new Date('2026-03-16T00:00:00Z'), endsAt: contract.endsAt });
    const contracts = [
      {
        ...contract,
        licenses: [
          { featureId: 'f', quantityPerMonth: dec(3100), startsAt: null, endsAt: new Date('2026-03-16T00:00:00Z') },
          { featureId: 'f', quantityPerMonth: dec(6200), startsAt: new Date('2026-03-16T00:00:00Z'), endsAt: null },
        ],
      },
    ];
    const day = (iso: string) => licensedForPeriod('f', 'DAY', periodOf(new Date(iso), 'DAY', 'UTC'), 'UTC', contracts)!.toFixed();
    expect(day('2026-03-15T12:00:00Z')).toBe('100');
    expect(day('2026-03-16T12:00:00Z')).toBe('200');
    expect(licensedForPeriod('f', 'MONTH', periodOf(new Date('2026-03-10T00:00:00Z'), 'MONTH', 'UTC'), 'UTC', contracts)!.toFixed()).toBe('4700');
    expect(licensedForPeriod('f', 'MONTH', periodOf(new Date('2026-02-10T00:00:00Z'), 'MONTH', 'UTC'), 'UTC', contracts)!.toFixed()).toBe('3100');
  });
});

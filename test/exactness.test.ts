import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dec, sum } from '../src/billing/decimal.js';
import { encodeId } from '../src/global-id.js';
import { buildUsageSql } from '../src/usage/usage-sql.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm, insertUsage, type RawUsage } from './helpers/usage-fixture.js';
import { modelBuckets, type CalendarUnit } from './local-calendar-model.js';

// Issue 12: discrepancies an independent check found, each a test on both databases.
const HOUR = 3_600_000;
const NOW = new Date('2026-12-02T21:03:00Z');

let db: TestDatabase;
let app: App;
/** America/Havana: finality, bucket edges, empty filters. */
let havana: Awaited<ReturnType<typeof createUsageRealm>>;
/** America/New_York: the credit leftover of the demo repro. */
let credits: Awaited<ReturnType<typeof createUsageRealm>>;
/** America/New_York: Globex's prices starting mid-July. */
let globex: Awaited<ReturnType<typeof createUsageRealm>>;
let rowsTotalId: string;
/** Hours with one transaction each in the Havana realm. */
const txHours: number[] = [];

const hourly = (from: string, to: string) => {
  const hours: number[] = [];
  for (let t = Date.parse(from); t < Date.parse(to); t += HOUR) hours.push(t);
  return hours;
};
const ids = (realm: typeof havana) => Object.fromEntries(Object.entries(realm.features).map(([key, f]) => [key, f.id]));

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => NOW, onUnexpectedError: (error) => console.error(error) });
  const { prisma } = db;

  havana = await createUsageRealm(prisma, 'America/Havana');
  txHours.push(...hourly('2026-09-03T00:00:00Z', '2026-09-10T00:00:00Z'), ...hourly('2026-10-24T00:00:00Z', '2026-11-11T00:00:00Z'), ...hourly('2026-11-27T00:00:00Z', '2026-12-02T21:00:00Z'));
  await insertUsage(prisma, havana.realm.id, ids(havana), [
    ...txHours.map((t): RawUsage => ({ feature: 'tx', hour: new Date(t), quantity: '1' })),
    { feature: 'spaces', hour: new Date('2026-11-20T00:00:00Z'), quantity: '1' },
  ]);
  await prisma.contract.create({
    data: {
      realmId: havana.realm.id,
      name: 'Havana 2026',
      startsAt: new Date('2026-01-01T05:00:00Z'),
      endsAt: new Date('2027-01-01T05:00:00Z'),
      licenses: { create: [{ featureId: havana.features.tx.id, quantityPerMonth: '100' }] },
    },
  });

  credits = await createUsageRealm(prisma, 'America/New_York');
  const rowsTotal = await prisma.feature.create({
    data: { realmId: credits.realm.id, key: 'rows.total', name: 'rows.total', service: 'data', unit: 'ROW', aggregation: 'SUM', arrivalDelaySeconds: 7200 },
  });
  rowsTotalId = rowsTotal.id;
  for (const [featureId, unitAmount] of [[credits.features.req.id, '4.0992882'], [credits.features.tx.id, '0.00068'], [rowsTotal.id, '0.0001']] as const) {
    await prisma.price.create({ data: { realmId: credits.realm.id, featureId, unitAmount, currency: 'USD', validFrom: new Date('2026-01-01T05:00:00Z') } });
  }
  await prisma.creditGrant.create({ data: { realmId: credits.realm.id, kind: 'GENERAL', credits: '5000', startsAt: new Date('2026-01-01T05:00:00Z') } });
  await insertUsage(prisma, credits.realm.id, { ...ids(credits), 'rows.total': rowsTotal.id }, [
    { feature: 'req', hour: new Date('2026-11-15T11:00:00Z'), quantity: '1' },
    { feature: 'tx', hour: new Date('2026-11-15T12:00:00Z'), quantity: '9000000' },
    { feature: 'rows.total', hour: new Date('2026-11-15T13:00:00Z'), quantity: '32363' },
  ]);

  globex = await createUsageRealm(prisma, 'America/New_York');
  const start = new Date('2026-07-16T04:00:00Z');
  await prisma.price.create({ data: { realmId: globex.realm.id, featureId: globex.features.tx.id, unitAmount: '0.00083', currency: 'USD', validFrom: start } });
  await prisma.contract.create({
    data: {
      realmId: globex.realm.id,
      name: 'Globex',
      startsAt: start,
      endsAt: new Date('2027-07-16T04:00:00Z'),
      licenses: { create: [{ featureId: globex.features.tx.id, quantityPerMonth: '1000' }] },
    },
  });
  await prisma.creditGrant.create({ data: { realmId: globex.realm.id, kind: 'GENERAL', credits: '100', startsAt: start } });
  await insertUsage(prisma, globex.realm.id, ids(globex), [
    { feature: 'tx', hour: new Date('2026-07-20T12:00:00Z'), quantity: '5000' },
    { feature: 'tx', hour: new Date('2026-08-05T12:00:00Z'), quantity: '5000' },
  ]);
});

afterAll(() => db?.destroy());

type Row = Record<string, any>;

async function ask(query: string, key: string) {
  const response = await graphql(app, query, { key });
  expect(response.body.errors).toBeUndefined();
  return response.body.data!;
}

const REPORT = 'finalizedThrough warnings range { from to } points { start end quantity isFinal feature { key } } totals { quantity }';
const feature = (realm: typeof havana, key: keyof typeof havana.features) => encodeId('Feature', realm.features[key].id);

describe('1. finality of a Feature’s or License’s usage is its own feature’s', () => {
  it('Feature.usage and License.usage: finalizedThrough and finalizedOnly follow the feature, as the filtered realm report does', async () => {
    const args = 'range: { from: "2026-11-27T05:00:00Z", to: "2026-12-03T05:00:00Z" }, granularity: DAY, finalizedOnly: true';
    const data = await ask(
      `{ node(id: "${feature(havana, 'tx')}") { ... on Feature { usage(${args}) { ${REPORT} } } }
         realm { usage(${args}, filter: { featureIds: ["${feature(havana, 'tx')}"] }) { ${REPORT} }
           contracts(first: 1) { edges { node { licenses(first: 1) { edges { node { usage(${args}) { ${REPORT} } } } } } } } } }`,
      havana.admin.key,
    );
    const own = data.node.usage;
    const filtered = data.realm.usage;
    const license = data.realm.contracts.edges[0].node.licenses.edges[0].node.usage;
    // tx's delay is 2 hours: final through 19:00Z; the realm's 48-hour features do not hold it back.
    expect(own.finalizedThrough).toBe('2026-12-02T19:00:00.000Z');
    expect(filtered.finalizedThrough).toBe('2026-12-02T19:00:00.000Z');
    expect(license.finalizedThrough).toBe('2026-12-02T19:00:00.000Z');
    // Five whole days are final (the realm's 48-hour delay would give three).
    expect(own.points).toHaveLength(5);
    expect(own.points).toEqual(filtered.points);
    expect(license.points).toEqual(filtered.points);
    expect(own.range).toEqual({ from: '2026-11-27T05:00:00.000Z', to: '2026-12-02T05:00:00.000Z' });
  });

  it('features with different delays batched in one request each get their own finality', async () => {
    const args = 'range: { from: "2026-11-27T05:00:00Z", to: "2026-12-03T05:00:00Z" }, granularity: DAY, finalizedOnly: true';
    const data = await ask(
      `{ nodes(ids: ["${feature(havana, 'tx')}", "${feature(havana, 'spaces')}"]) { ... on Feature { key usage(${args}) { finalizedThrough range { to } } } } }`,
      havana.admin.key,
    );
    expect(data.nodes.map((n: Row) => [n.key, n.usage.finalizedThrough, n.usage.range.to])).toEqual([
      ['tx', '2026-12-02T19:00:00.000Z', '2026-12-02T05:00:00.000Z'],
      ['spaces', '2026-11-30T21:00:00.000Z', '2026-11-30T05:00:00.000Z'],
    ]);
  });
});

describe('2. day and month buckets where DST changes at local midnight (SQL and TypeScript agree)', () => {
  const pointsOf = async (range: string, granularity: string, timeZone?: string) =>
    (
      await ask(
        `{ node(id: "${feature(havana, 'tx')}") { ... on Feature { usage(range: ${range}, granularity: ${granularity}${timeZone ? `, timeZone: "${timeZone}"` : ''}) { points { start end quantity } } } } }`,
        havana.admin.key,
      )
    ).node.usage.points.map((p: Row) => [p.start, p.end, p.quantity]);

  it('America/Havana: 1 November starts at 04:00Z, the first of its two midnights, and has 25 hours', async () => {
    const days = await pointsOf('{ from: "2026-10-30T04:00:00Z", to: "2026-11-03T05:00:00Z" }', 'DAY');
    expect(days).toEqual([
      ['2026-10-30T04:00:00.000Z', '2026-10-31T04:00:00.000Z', '24'],
      ['2026-10-31T04:00:00.000Z', '2026-11-01T04:00:00.000Z', '24'],
      ['2026-11-01T04:00:00.000Z', '2026-11-02T05:00:00.000Z', '25'],
      ['2026-11-02T05:00:00.000Z', '2026-11-03T05:00:00.000Z', '24'],
    ]);
    const months = await pointsOf('{ from: "2026-10-24T04:00:00Z", to: "2026-11-11T05:00:00Z" }', 'MONTH');
    expect(months).toEqual([
      ['2026-10-24T04:00:00.000Z', '2026-11-01T04:00:00.000Z', String(8 * 24)],
      // The data ends at 2026-11-11T00:00Z: 10 days and the repeated hour, less the last 5 hours.
      ['2026-11-01T04:00:00.000Z', '2026-11-11T05:00:00.000Z', String(10 * 24 + 1 - 5)],
    ]);
  });

  it('America/Santiago: 6 September is 23 hours, from 04:00Z to 03:00Z', async () => {
    const days = await pointsOf('{ from: "2026-09-05T04:00:00Z", to: "2026-09-08T03:00:00Z" }', 'DAY', 'America/Santiago');
    expect(days).toEqual([
      ['2026-09-05T04:00:00.000Z', '2026-09-06T04:00:00.000Z', '24'],
      ['2026-09-06T04:00:00.000Z', '2026-09-07T03:00:00.000Z', '23'],
      ['2026-09-07T03:00:00.000Z', '2026-09-08T03:00:00.000Z', '24'],
    ]);
  });

  it('any zone, any range: points are the model’s buckets with the hours that start in them (property)', async () => {
    const zones = Intl.supportedValuesOf('timeZone');
    const windowFrom = Date.parse('2026-10-24T00:00:00Z') / HOUR;
    const windowTo = Date.parse('2026-11-11T00:00:00Z') / HOUR;
    const question = fc.record({
      zone: fc.constantFrom(...zones),
      unit: fc.constantFrom<CalendarUnit>('DAY', 'WEEK', 'MONTH'),
      from: fc.integer({ min: windowFrom, max: windowTo - 1 }),
      hours: fc.integer({ min: 1, max: 8 * 24 }),
    });
    await fc.assert(
      fc.asyncProperty(question, async ({ zone, unit, from, hours }) => {
        const start = from * HOUR;
        const end = Math.min(windowTo, from + hours) * HOUR;
        const range = `{ from: "${new Date(start).toISOString()}", to: "${new Date(end).toISOString()}" }`;
        const expected = modelBuckets(start, end, zone, [unit])[unit]
          .map((b) => [new Date(b.from).toISOString(), new Date(b.to).toISOString(), String(txHours.filter((t) => t >= b.from && t < b.to).length)])
          .filter(([, , quantity]) => quantity !== '0');
        expect(await pointsOf(range, unit, zone)).toEqual(expected);
      }),
      { numRuns: 12 },
    );
  });
});

const PRODUCT = 'feature { key } used licensed coveredByLicense coveredByCredits creditsApplied onDemand unitPrice { amount } onDemandCost { amount }';
const INVOICE = 'month isFinal warnings subtotal creditsApplied total lines { feature { key } quantity amount creditsApplied total }';

describe('3. fractions of credits stay in their pool', () => {
  it('the ~1.6e-13 credits location transactions leave pay nothing of the data add-on after them, everywhere', async () => {
    const data = await ask(
      `{ realm { usageHistory(months: 2) { month products { ${PRODUCT} } credits { available applied remaining } }
           invoicePreview(month: "2026-11") { ${INVOICE} }
           usage(range: { from: "2026-11-01T04:00:00Z", to: "2026-12-01T05:00:00Z" }, granularity: DAY) {
             points { quantity feature { key } coverage { source quantity credits } } } } }`,
      credits.admin.key,
    );
    const november = data.realm.usageHistory.find((m: Row) => m.month === '2026-11');
    const product = (key: string) => november.products.find((p: Row) => p.feature.key === key);
    expect([product('tx').coveredByCredits, product('tx').creditsApplied]).toEqual(['7346912.811470588', '4995.90071179999984']);
    expect([product('rows.total').coveredByCredits, product('rows.total').creditsApplied, product('rows.total').onDemandCost.amount]).toEqual(['0', '0', '3.2363']);
    expect(november.credits).toEqual({ available: '5000', applied: '4999.99999999999984', remaining: '0.00000000000016' });
    const rowsLine = data.realm.invoicePreview.lines.find((l: Row) => l.feature.key === 'rows.total');
    expect(rowsLine).toMatchObject({ amount: '3.2363', creditsApplied: '0', total: '3.2363' });
    // Per point: rows.total has no credit portion; each point's portions add up to it, and to the month's.
    const points = data.realm.usage.points;
    const rowsPoint = points.find((p: Row) => p.feature.key === 'rows.total');
    expect(rowsPoint.coverage).toEqual([{ source: 'ON_DEMAND', quantity: '32363', credits: null }]);
    for (const point of points) expect(sum(point.coverage.map((c: Row) => dec(c.quantity))).toFixed()).toBe(point.quantity);
    const creditsOnPoints = sum(points.flatMap((p: Row) => p.coverage).filter((c: Row) => c.source === 'CREDIT_GRANT').map((c: Row) => dec(c.credits)));
    expect(creditsOnPoints.toFixed()).toBe('4999.99999999999984');
  });

  it('invoicePreview.isFinal stays false while late usage of the month can still arrive', async () => {
    const data = await ask(`{ realm { november: invoicePreview(month: "2026-11") { isFinal warnings } october: invoicePreview(month: "2026-10") { isFinal warnings } } }`, credits.admin.key);
    // November (New York) ended 2026-12-01T05:00Z; the 48-hour features are final through 2026-11-30T21:00Z.
    expect(data.realm.november.isFinal).toBe(false);
    expect(data.realm.november.warnings[0]).toMatch(/can still arrive/);
    expect(data.realm.october).toEqual({ isFinal: true, warnings: [] });
  });
});

describe('4. a month is billed at the price in force when it starts', () => {
  it('Globex July (prices from 2026-07-16T04:00Z) is unpriced; August is billed at 0.00083', async () => {
    const data = await ask(
      `{ realm { usageHistory(months: 6) { month products { ${PRODUCT} } } july: invoicePreview(month: "2026-07") { ${INVOICE} } august: invoicePreview(month: "2026-08") { ${INVOICE} } } }`,
      globex.admin.key,
    );
    const tx = (month: string) => data.realm.usageHistory.find((m: Row) => m.month === month).products.find((p: Row) => p.feature.key === 'tx');
    // July: 16 of 31 days licensed; no price in force on 1 July, so no credits and no on-demand cost.
    expect(tx('2026-07')).toMatchObject({ licensed: '516.129032258', used: '5000', coveredByCredits: '0', creditsApplied: '0', onDemand: '4483.870967742', unitPrice: null, onDemandCost: null });
    expect(data.realm.july).toMatchObject({ subtotal: '0', creditsApplied: '0', total: '0', lines: [] });
    expect(data.realm.july.warnings.join(' ')).toMatch(/tx: 4483.870967742 beyond the license has no price/);
    expect(tx('2026-08')).toMatchObject({ licensed: '1000', coveredByCredits: '4000', creditsApplied: '3.32', onDemand: '0', unitPrice: { amount: '0.00083' } });
    expect(data.realm.august).toMatchObject({ subtotal: '3.32', creditsApplied: '3.32', total: '0' });
  });
});

describe('6. filter lists that match nothing', () => {
  const lists = ['featureIds', 'workspaceIds', 'datastreamIds', 'projectIds', 'appIds', 'apiKeyIds', 'billingTags', 'resources'] as const;
  const ask6 = (filter: string) =>
    graphql(
      app,
      `{ realm { usage(range: { from: "2026-10-24T04:00:00Z", to: "2026-11-11T05:00:00Z" }, granularity: DAY, groupBy: [WORKSPACE], filter: ${filter}) {
         warnings points { quantity } totals { quantity } } } }`,
      { key: havana.admin.key },
    );

  it('an empty list gives an empty report with a warning, for every list', async () => {
    for (const list of lists) {
      const { body } = await ask6(`{ ${list}: [] }`);
      expect(body.errors, list).toBeUndefined();
      expect(body.data!.realm.usage.points, list).toEqual([]);
      expect(body.data!.realm.usage.totals, list).toEqual([]);
      expect(body.data!.realm.usage.warnings.join(' '), list).toContain(`\`filter.${list}\` matches nothing`);
    }
  });

  it('a list of only another realm’s ids gives an empty report naming them, for every id list', async () => {
    const foreign = {
      featureIds: encodeId('Feature', credits.features.tx.id),
      workspaceIds: encodeId('Workspace', credits.tree.root.id),
      datastreamIds: encodeId('Datastream', credits.streams[0]!.id),
      projectIds: encodeId('Project', credits.project.id),
      appIds: encodeId('App', credits.apps[0]!.id),
      apiKeyIds: encodeId('ApiKey', credits.admin.record.id),
    };
    for (const [list, id] of Object.entries(foreign)) {
      const { body } = await ask6(`{ ${list}: ["${id}"] }`);
      expect(body.errors, list).toBeUndefined();
      expect(body.data!.realm.usage.points, list).toEqual([]);
      const warnings = body.data!.realm.usage.warnings.join(' ');
      expect(warnings, list).toContain(`Ignored filter id ${id}`);
      expect(warnings, list).toContain(`\`filter.${list}\` matches nothing`);
    }
  });

  it('the same filters still answer when another list matches', async () => {
    const { body } = await ask6(`{ featureIds: ["${feature(havana, 'tx')}"], billingTags: [] }`);
    expect(body.errors).toBeUndefined();
    expect(body.data!.realm.usage.points).toEqual([]);
    const { body: some } = await ask6(`{ featureIds: ["${feature(havana, 'tx')}", "${encodeId('Feature', credits.features.tx.id)}"] }`);
    expect(some.data!.realm.usage.points.length).toBeGreaterThan(0);
  });

  it('a usage statement with no feature to read runs and answers no rows (as an export of a realm without features asks)', async () => {
    const { sql, params } = buildUsageSql({
      parentKind: 'REALM',
      parentIds: [havana.realm.id],
      realmId: havana.realm.id,
      scopeWorkspaceId: null,
      range: { from: new Date('2026-11-01T04:00:00Z'), to: new Date('2026-11-02T05:00:00Z') },
      granularity: 'DAY',
      timeZone: 'America/Havana',
      filter: {},
      groupBy: ['WORKSPACE'],
      features: [],
    });
    expect(await db.prisma.$queryRawUnsafe(sql, ...params)).toEqual([]);
  });

  it('LATEST with several rows in an hour: the last hour with usage, its rows added up (as the README states)', async () => {
    const { left, right, root } = havana.tree;
    await insertUsage(db.prisma, havana.realm.id, ids(havana), [
      { feature: 'storage', hour: new Date('2026-08-10T10:00:00Z'), quantity: '5', workspaceId: left.id },
      { feature: 'storage', hour: new Date('2026-08-10T11:00:00Z'), quantity: '3', workspaceId: root.id },
      { feature: 'storage', hour: new Date('2026-08-10T11:00:00Z'), quantity: '4', workspaceId: right.id },
    ]);
    const data = await ask(
      `{ node(id: "${feature(havana, 'storage')}") { ... on Feature {
          all: usage(range: { from: "2026-08-10T00:00:00Z", to: "2026-08-11T00:00:00Z" }) { totals { quantity } }
          byWorkspace: usage(range: { from: "2026-08-10T00:00:00Z", to: "2026-08-11T00:00:00Z" }, groupBy: [WORKSPACE]) { totals { quantity group { workspace { name } } } } } } }`,
      havana.admin.key,
    );
    expect(data.node.all.totals).toEqual([{ quantity: '7' }]);
    expect(data.node.byWorkspace.totals.map((t: Row) => [t.group.workspace.name, t.quantity]).sort()).toEqual([['left', '5'], ['right', '4'], ['root', '3']]);
  });

  it('SUMMARIZED in a half-hour zone is exact over whole UTC hours; a calendar timeframe there is approximate', async () => {
    const data = await ask(
      `{ realm {
          whole: usage(range: { from: "2026-10-24T00:00:00Z", to: "2026-10-25T00:00:00Z" }, timeZone: "Asia/Kolkata", filter: { featureIds: ["${feature(havana, 'tx')}"] }) { approximate warnings totals { quantity } }
          month: usage(timeframe: MONTH_TO_DATE, timeZone: "Asia/Kolkata") { approximate range { from } } } }`,
      havana.admin.key,
    );
    expect(data.realm.whole).toEqual({ approximate: false, warnings: [], totals: [{ quantity: '24' }] });
    expect(data.realm.month).toEqual({ approximate: true, range: { from: '2026-11-30T18:30:00.000Z' } });
  });
});

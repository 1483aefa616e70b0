/**
 * Calendar edges where DST changes at local midnight, on both databases: quota periods, API-traffic
 * buckets and CSV exports start a day at the first instant of its local date (see `startOfLocalDay`).
 *   America/Havana, 1 November 2026: 01:00 CDT goes back to 00:00 CST, so midnight happens at 04:00Z
 *   and again at 05:00Z; the day starts at 04:00Z and lasts 25 h (ends 2 November 05:00Z).
 *   America/Santiago, 6 September 2026: 00:00 -04 jumps to 01:00 -03; the day starts at 04:00Z and
 *   lasts 23 h: 7 September starts at 03:00Z.
 */
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useUsageExportEndpoints } from '../src/exports/http.js';
import { encodeId } from '../src/global-id.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey, createRealm } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm, insertUsage } from './helpers/usage-fixture.js';

type UsageRealm = Awaited<ReturnType<typeof createUsageRealm>>;

let db: TestDatabase;
let app: App;
let now = new Date('2026-11-20T12:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  const clock = () => now;
  app = createApp({ prisma: db.prisma, now: clock, plugins: [useUsageExportEndpoints({ prisma: db.prisma, now: clock })], onUnexpectedError: (error) => console.error(error) });
});
afterAll(async () => {
  await db?.destroy();
});

const h = (iso: string) => new Date(iso);
const featureIds = (u: UsageRealm) => Object.fromEntries(Object.entries(u.features).map(([key, f]) => [key, f.id]));

describe('quota periods', () => {
  const CREATE = `mutation($input: CreateQuotaRuleInput!) { createQuotaRule(input: $input) { quotaRule { id } userErrors { code } } }`;
  const INGEST = `mutation ($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted rejected { index code } } }`;
  const ALERTS = `{ realm { alerts(first: 20) { edges { node { rule { id } periodStart periodEnd quantity message } } } } }`;
  let counter = 0;

  async function rule(u: UsageRealm, feature: 'tx' | 'req', period: 'DAY' | 'MONTH', quantity: string) {
    const { body } = await graphql(app, CREATE, { key: u.admin.key, variables: { input: { featureId: encodeId('Feature', u.features[feature].id), period, quantity } } });
    expect(body.data.createQuotaRule.userErrors).toEqual([]);
    return body.data.createQuotaRule.quotaRule.id as string;
  }
  /** One batch, ingested at `at` (quotas are evaluated as each batch commits). */
  async function ingest(u: UsageRealm, at: string, events: Record<string, unknown>[]) {
    now = h(at);
    const { body } = await graphql(app, INGEST, { key: u.admin.key, variables: { events: events.map((e) => ({ idempotencyKey: `dst-${++counter}`, ...e })) } });
    expect(body.errors).toBeUndefined();
    expect(body.data.ingestUsage).toEqual({ accepted: events.length, rejected: [] });
  }
  async function alerts(u: UsageRealm) {
    const { body } = await graphql(app, ALERTS, { key: u.admin.key });
    expect(body.errors).toBeUndefined();
    return body.data.realm.alerts.edges.map((e: { node: unknown }) => e.node);
  }

  it('counts both local midnights of America/Havana 1 November in one day and one month, from 04:00Z', async () => {
    const u = await createUsageRealm(db.prisma, 'America/Havana');
    const dayRule = await rule(u, 'tx', 'DAY', '10');
    const monthRule = await rule(u, 'req', 'MONTH', '10');
    // 00:30 CDT, then 00:30 CST: the same local date, in two batches.
    await ingest(u, '2026-11-01T05:00:00Z', [
      { feature: 'tx', timestamp: '2026-11-01T04:30:00Z', quantity: '6' },
      { feature: 'req', timestamp: '2026-11-01T04:30:00Z', quantity: '6' },
    ]);
    expect(await alerts(u)).toEqual([]);
    await ingest(u, '2026-11-01T06:00:00Z', [
      { feature: 'tx', timestamp: '2026-11-01T05:30:00Z', quantity: '6' },
      { feature: 'req', timestamp: '2026-11-01T05:30:00Z', quantity: '6' },
    ]);
    const found = await alerts(u);
    expect(found).toHaveLength(2);
    expect(found).toContainEqual(
      expect.objectContaining({ rule: { id: dayRule }, periodStart: '2026-11-01T04:00:00.000Z', periodEnd: '2026-11-02T05:00:00.000Z', quantity: '12', message: expect.stringContaining('for 2026-11-01') }),
    );
    expect(found).toContainEqual(
      expect.objectContaining({ rule: { id: monthRule }, periodStart: '2026-11-01T04:00:00.000Z', periodEnd: '2026-12-01T05:00:00.000Z', quantity: '12', message: expect.stringContaining('for 2026-11') }),
    );
  });

  it('ends America/Santiago 6 September at 03:00Z, where 7 September starts', async () => {
    const u = await createUsageRealm(db.prisma, 'America/Santiago');
    const dayRule = await rule(u, 'tx', 'DAY', '10');
    // 00:30 on 7 September, then noon on the 6th: 6 + 6 on two different days, no alert.
    await ingest(u, '2026-09-07T04:00:00Z', [{ feature: 'tx', timestamp: '2026-09-07T03:30:00Z', quantity: '6' }]);
    await ingest(u, '2026-09-07T05:00:00Z', [{ feature: 'tx', timestamp: '2026-09-06T12:00:00Z', quantity: '6' }]);
    expect(await alerts(u)).toEqual([]);
    await ingest(u, '2026-09-07T13:00:00Z', [{ feature: 'tx', timestamp: '2026-09-07T12:00:00Z', quantity: '4' }]);
    expect(await alerts(u)).toEqual([
      expect.objectContaining({ rule: { id: dayRule }, periodStart: '2026-09-07T03:00:00.000Z', periodEnd: '2026-09-08T03:00:00.000Z', quantity: '10', message: expect.stringContaining('for 2026-09-07') }),
    ]);
  });
});

describe('API traffic buckets', () => {
  async function keyWithTraffic(timeZone: string, minutes: string[]) {
    const realm = await createRealm(db.prisma);
    await db.prisma.realm.update({ where: { id: realm.id }, data: { timeZone } });
    const key = await createKey(db.prisma, realm.id);
    await db.prisma.apiTrafficMinute.createMany({
      data: minutes.map((minute) => ({
        apiKeyId: key.record.id,
        minute: h(minute),
        endpoint: 'Query',
        status: 'OK' as const,
        requests: 1,
        errors: 0,
        latencySumMs: 10,
        latencyMaxMs: 10,
        latencyHistogram: {},
      })),
    });
    return { key: key.key, gid: encodeId('ApiKey', key.record.id) };
  }
  async function series(key: { key: string; gid: string }, args: string) {
    now = h('2026-12-15T12:00:00Z');
    const { body } = await graphql(app, `{ node(id: "${key.gid}") { ... on ApiKey { traffic(${args}, includeLatency: false, sortBy: TIMESTAMP, order: ASC) { series { start end requests } } } } }`, {
      key: key.key,
    });
    expect(body.errors).toBeUndefined();
    return body.data.node.traffic.series;
  }

  it('starts America/Havana 1 November (day and month) at 04:00Z, with both local midnights in it', async () => {
    const key = await keyWithTraffic('America/Havana', ['2026-10-31T12:00:00Z', '2026-11-01T04:30:00Z', '2026-11-01T05:30:00Z', '2026-11-02T05:30:00Z']);
    expect(await series(key, 'range: { from: "2026-10-31T04:00:00Z", to: "2026-11-03T05:00:00Z" }, granularity: DAY')).toEqual([
      { start: '2026-10-31T04:00:00.000Z', end: '2026-11-01T04:00:00.000Z', requests: 1 },
      { start: '2026-11-01T04:00:00.000Z', end: '2026-11-02T05:00:00.000Z', requests: 2 },
      { start: '2026-11-02T05:00:00.000Z', end: '2026-11-03T05:00:00.000Z', requests: 1 },
    ]);
    expect(await series(key, 'range: { from: "2026-10-01T04:00:00Z", to: "2026-12-01T05:00:00Z" }, granularity: MONTH')).toEqual([
      { start: '2026-10-01T04:00:00.000Z', end: '2026-11-01T04:00:00.000Z', requests: 1 },
      { start: '2026-11-01T04:00:00.000Z', end: '2026-12-01T05:00:00.000Z', requests: 3 },
    ]);
  });

  it('ends America/Santiago 6 September at 03:00Z, where 7 September starts', async () => {
    const key = await keyWithTraffic('America/Santiago', ['2026-09-06T04:30:00Z', '2026-09-07T02:30:00Z', '2026-09-07T03:30:00Z']);
    expect(await series(key, 'range: { from: "2026-09-06T04:00:00Z", to: "2026-09-08T03:00:00Z" }, granularity: DAY')).toEqual([
      { start: '2026-09-06T04:00:00.000Z', end: '2026-09-07T03:00:00.000Z', requests: 2 },
      { start: '2026-09-07T03:00:00.000Z', end: '2026-09-08T03:00:00.000Z', requests: 1 },
    ]);
  });
});

describe('CSV exports', () => {
  const rowsOf = (text: string) => (parse(text, { columns: true }) as Record<string, string>[]).map((r) => [r.date ?? r.month, r.product, r.quantity]);
  async function csv(u: UsageRealm, path: string) {
    now = h('2026-11-20T12:00:00Z');
    const response = await app.fetch(`http://gateway.test${path}`, { headers: { authorization: `Bearer ${u.admin.key}` } });
    expect(response.status).toBe(200);
    return rowsOf(await response.text());
  }

  it('exports America/Havana 1 November from 04:00Z, by day and by month', async () => {
    const u = await createUsageRealm(db.prisma, 'America/Havana');
    await insertUsage(db.prisma, u.realm.id, featureIds(u), [
      { feature: 'tx', hour: h('2026-11-01T03:00:00Z'), quantity: '100' },
      { feature: 'tx', hour: h('2026-11-01T04:00:00Z'), quantity: '1.5' },
      { feature: 'tx', hour: h('2026-11-01T05:00:00Z'), quantity: '2' },
      { feature: 'tx', hour: h('2026-11-02T05:00:00Z'), quantity: '30' },
    ]);
    expect(await csv(u, '/exports/usage/daily.csv?start=2026-11-01&end=2026-11-01')).toEqual([['2026-11-01', 'tx', '3.5']]);
    expect(await csv(u, '/exports/usage/monthly.csv?month=2026-11')).toEqual([['2026-11', 'tx', '33.5']]);
    expect(await csv(u, '/exports/usage/monthly.csv?month=2026-10')).toEqual([['2026-10', 'tx', '100']]);
  });

  it('ends America/Santiago 6 September at 03:00Z: a daily export of the 6th has no row of the 7th', async () => {
    const u = await createUsageRealm(db.prisma, 'America/Santiago');
    await insertUsage(db.prisma, u.realm.id, featureIds(u), [
      { feature: 'tx', hour: h('2026-09-06T04:00:00Z'), quantity: '1' },
      { feature: 'tx', hour: h('2026-09-07T02:00:00Z'), quantity: '2' },
      { feature: 'tx', hour: h('2026-09-07T03:00:00Z'), quantity: '40' },
    ]);
    expect(await csv(u, '/exports/usage/daily.csv?start=2026-09-06&end=2026-09-06')).toEqual([['2026-09-06', 'tx', '3']]);
    expect(await csv(u, '/exports/usage/daily.csv?start=2026-09-06&end=2026-09-07')).toEqual([
      ['2026-09-06', 'tx', '3'],
      ['2026-09-07', 'tx', '40'],
    ]);
  });
});

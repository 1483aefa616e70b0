import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../src/global-id.js';
import { configureQuotaDelivery, settleQuotaDeliveries, startQuotaDeliveries, type QuotaDeliverer } from '../src/quota/delivery.js';
import { periodOf } from '../src/quota/evaluate.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

const NOW = new Date('2026-06-15T12:00:00Z');

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
let server: Server;
let webhookUrl: string;
const received: { headers: IncomingHttpHeaders; body: string }[] = [];
let failNext = 1;
let deliverer: QuotaDeliverer;

const fid = (key: keyof typeof realm.features) => encodeId('Feature', realm.features[key].id);

beforeAll(async () => {
  configureQuotaDelivery({ retryDelaysMs: [20, 50], timeoutMs: 5000, allowPrivateDestinations: true });
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => NOW, onUnexpectedError: (error) => console.error(error) });
  realm = await createUsageRealm(db.prisma, 'UTC');
  deliverer = startQuotaDeliveries(db.prisma);
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      if (failNext > 0) {
        failNext--;
        res.writeHead(503).end('try later');
      } else res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/quota`;
});
afterAll(async () => {
  await deliverer?.stop();
  configureQuotaDelivery();
  await new Promise((resolve) => server?.close(resolve));
  await db?.destroy();
});

const CREATE = `mutation($input: CreateQuotaRuleInput!) { createQuotaRule(input: $input) {
  quotaRule { id period thresholdQuantity thresholdPercent webhookUrl feature { key } } webhookSecret userErrors { field code message } } }`;
const DELETE = `mutation($id: ID!) { deleteQuotaRule(id: $id) { deletedQuotaRuleId userErrors { field code } } }`;
const INGEST = `mutation ($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted duplicates rejected { index code message } } }`;
const ALERTS = `{ realm { alerts(first: 20) { totalCount edges { node { rule { id } periodStart quantity threshold late message deliveredAt deliveryAttempts lastDeliveryError nextDeliveryAt } } } } }`;

async function create(input: Record<string, unknown>, key = realm.admin.key) {
  const { body } = await graphql(app, CREATE, { key, variables: { input } });
  return body;
}
let counter = 0;
async function ingest(events: Record<string, unknown>[]) {
  const { body } = await graphql(app, INGEST, { key: realm.admin.key, variables: { events: events.map((e) => ({ idempotencyKey: `q-${++counter}`, ...e })) } });
  expect(body.errors).toBeUndefined();
  expect(body.data.ingestUsage.rejected).toEqual([]);
  return body.data.ingestUsage;
}
async function alerts() {
  const { body } = await graphql(app, ALERTS, { key: realm.admin.key });
  expect(body.errors).toBeUndefined();
  return body.data.realm.alerts;
}

describe('createQuotaRule', () => {
  it('rejects bad input with user errors', async () => {
    const code = async (input: Record<string, unknown>) => (await create(input)).data.createQuotaRule.userErrors.map((e: { code: string }) => e.code);
    expect(await code({ featureId: fid('tx'), period: 'DAY', quantity: '0' })).toEqual(['INVALID_THRESHOLD']);
    expect(await code({ featureId: fid('tx'), period: 'DAY', quantity: '-5' })).toEqual(['INVALID_THRESHOLD']);
    expect(await code({ featureId: fid('tx'), period: 'DAY', percentOfLicense: '-1' })).toEqual(['INVALID_THRESHOLD']);
    expect(await code({ featureId: fid('tx'), period: 'DAY' })).toEqual(['INVALID_THRESHOLD']);
    expect(await code({ featureId: fid('tx'), period: 'MONTH', percentOfLicense: '80' })).toEqual(['NO_LICENSE']);
    expect(await code({ featureId: encodeId('Feature', '00000000-0000-7000-8000-000000000000'), period: 'DAY', quantity: '1' })).toEqual(['NOT_FOUND']);
    expect(await code({ featureId: 'garbage', period: 'DAY', quantity: '1' })).toEqual(['NOT_FOUND']);
    expect(await code({ featureId: fid('tx'), period: 'DAY', quantity: '1', webhookUrl: 'not a url' })).toEqual(['INVALID_URL']);
    expect(await code({ featureId: fid('tx'), period: 'DAY', quantity: '1', webhookUrl: 'ftp://example.com/x' })).toEqual(['INVALID_URL']);
  });

  it('needs keys:manage', async () => {
    const reader = await createKey(db.prisma, realm.realm.id, { scopes: ['usage:read', 'billing:read'] });
    const body = await create({ featureId: fid('tx'), period: 'DAY', quantity: '1' }, reader.key);
    expect(body.errors?.[0]?.message).toBeTruthy();
    expect(await db.prisma.quotaRule.count()).toBe(0);
  });
});

describe('alerts as usage arrives', () => {
  let dayRule: { id: string };
  let secret: string;

  it('alerts once per period when an absolute daily threshold is crossed, and delivers a signed webhook with retries', async () => {
    const body = await create({ featureId: fid('tx'), period: 'DAY', quantity: '10', webhookUrl });
    const payload = body.data.createQuotaRule;
    expect(payload.userErrors).toEqual([]);
    expect(payload.quotaRule).toMatchObject({ period: 'DAY', thresholdQuantity: '10', thresholdPercent: null, webhookUrl, feature: { key: 'tx' } });
    expect(payload.webhookSecret).toMatch(/^whsec_[0-9a-f]{48}$/);
    dayRule = payload.quotaRule;
    secret = payload.webhookSecret;

    await ingest([{ feature: 'tx', timestamp: '2026-06-15T09:10:00Z', quantity: '6' }]);
    expect((await alerts()).totalCount).toBe(0);
    await ingest([{ feature: 'tx', timestamp: '2026-06-15T10:10:00Z', quantity: '5' }]);
    await ingest([{ feature: 'tx', timestamp: '2026-06-15T11:10:00Z', quantity: '50' }]);
    await settleQuotaDeliveries();

    const list = await alerts();
    expect(list.totalCount).toBe(1);
    const alert = list.edges[0].node;
    expect(alert).toMatchObject({ rule: { id: dayRule.id }, periodStart: '2026-06-15T00:00:00.000Z', quantity: '11', threshold: '10', late: false, deliveryAttempts: 2, lastDeliveryError: null, nextDeliveryAt: null });
    expect(alert.deliveredAt).toBeTruthy();
    expect(alert.message).toMatch(/^Usage crossed the daily quota of "tx" for 2026-06-15/);

    // The first attempt failed (503), the second was accepted; both signed.
    expect(received).toHaveLength(2);
    for (const request of received) {
      const expected = `sha256=${createHmac('sha256', secret).update(request.body).digest('hex')}`;
      expect(request.headers['x-usage-gateway-signature']).toBe(expected);
      expect(request.headers['content-type']).toBe('application/json');
    }
    // The payload carries the alert's id: delivery is at least once, receivers dedupe by it.
    expect(JSON.parse(received[0]!.body)).toEqual(JSON.parse(received[1]!.body));
    expect(JSON.parse(received[1]!.body)).toMatchObject({ alertId: expect.any(String), ruleId: expect.any(String), realmId: realm.realm.id, type: 'quota.crossed', feature: 'tx', period: 'DAY', quantity: '11', threshold: '10', late: false });
  });

  it('gives up after the last attempt and records the error', async () => {
    failNext = 10;
    received.length = 0;
    await ingest([{ feature: 'tx', timestamp: '2026-06-14T23:30:00Z', quantity: '12' }]); // yesterday: beyond the 2 h arrival delay, so late
    await settleQuotaDeliveries();
    failNext = 0;
    const alert = (await alerts()).edges[0].node;
    expect(alert).toMatchObject({ periodStart: '2026-06-14T00:00:00.000Z', deliveredAt: null, deliveryAttempts: 3, lastDeliveryError: 'HTTP 503', late: true, nextDeliveryAt: null });
    expect(received).toHaveLength(3);
  });

  it('alerts on a percentage of the license for the month', async () => {
    await db.prisma.contract.create({
      data: { realmId: realm.realm.id, name: 'C', startsAt: new Date('2026-01-01T00:00:00Z'), endsAt: new Date('2027-01-01T00:00:00Z'), licenses: { create: [{ featureId: realm.features.req.id, quantityPerMonth: '100' }] } },
    });
    const body = await create({ featureId: fid('req'), period: 'MONTH', percentOfLicense: '80' });
    expect(body.data.createQuotaRule.userErrors).toEqual([]);
    expect(body.data.createQuotaRule.webhookSecret).toBeNull();
    await ingest([{ feature: 'req', timestamp: '2026-06-02T10:00:00Z', quantity: '79' }]);
    expect((await alerts()).totalCount).toBe(2);
    await ingest([{ feature: 'req', timestamp: '2026-06-15T10:00:00Z', quantity: '1' }]);
    const alert = (await alerts()).edges[0].node;
    expect(alert).toMatchObject({ periodStart: '2026-06-01T00:00:00.000Z', quantity: '80', threshold: '80', late: false, deliveredAt: null, deliveryAttempts: 0, nextDeliveryAt: null });
    expect(alert.message).toContain('80 % of the license');
  });

  it('flags late usage (distinct keys), and ignores periods over 48 h past', async () => {
    await create({ featureId: fid('rows'), period: 'DAY', quantity: '3' });
    // 2026-06-14 05:00: the hour ended 31 h ago, beyond the 2 h arrival delay of "rows".
    await ingest([1, 2, 2, 3].map((k) => ({ feature: 'rows', timestamp: '2026-06-14T05:10:00Z', uniqueKey: `k${k}` })));
    // 2026-06-10: more than 48 h after the day ended, no alert.
    await ingest([1, 2, 3, 4].map((k) => ({ feature: 'rows', timestamp: '2026-06-10T05:10:00Z', uniqueKey: `k${k}` })));
    const list = await alerts();
    expect(list.totalCount).toBe(4);
    const alert = list.edges[0].node;
    expect(alert).toMatchObject({ periodStart: '2026-06-14T00:00:00.000Z', quantity: '3', late: true });
    expect(alert.message.toLowerCase()).toContain('late usage crossed');
  });

  it('deletes a rule with its alerts', async () => {
    const { body } = await graphql(app, DELETE, { key: realm.admin.key, variables: { id: dayRule.id } });
    expect(body.data.deleteQuotaRule).toEqual({ deletedQuotaRuleId: dayRule.id, userErrors: [] });
    const again = await graphql(app, DELETE, { key: realm.admin.key, variables: { id: dayRule.id } });
    expect(again.body.data.deleteQuotaRule.userErrors).toEqual([{ field: ['id'], code: 'NOT_FOUND' }]);
    expect((await alerts()).totalCount).toBe(2);
    const rules = await graphql(app, `{ realm { quotaRules(first: 10) { totalCount edges { node { feature { key } } } } } }`, { key: realm.admin.key });
    expect(rules.body.data.realm.quotaRules.totalCount).toBe(2);
  });
});

describe('periodOf where DST changes at local midnight', () => {
  const h = (iso: string) => new Date(iso);
  it('gives every hour of a local date the same period, from the date\'s first instant (America/Havana, 1 November 2026)', () => {
    const day = { from: h('2026-11-01T04:00:00Z'), to: h('2026-11-02T05:00:00Z') };
    expect(periodOf(h('2026-11-01T04:00:00Z'), 'DAY', 'America/Havana')).toEqual(day);
    expect(periodOf(h('2026-11-01T05:00:00Z'), 'DAY', 'America/Havana')).toEqual(day);
    expect(periodOf(h('2026-11-01T05:00:00Z'), 'MONTH', 'America/Havana')).toEqual({ from: h('2026-11-01T04:00:00Z'), to: h('2026-12-01T05:00:00Z') });
  });

  it('ends a 23 h day where the next starts (America/Santiago, 6 September 2026)', () => {
    expect(periodOf(h('2026-09-06T12:00:00Z'), 'DAY', 'America/Santiago')).toEqual({ from: h('2026-09-06T04:00:00Z'), to: h('2026-09-07T03:00:00Z') });
    expect(periodOf(h('2026-09-07T03:00:00Z'), 'DAY', 'America/Santiago')).toEqual({ from: h('2026-09-07T03:00:00Z'), to: h('2026-09-08T03:00:00Z') });
  });
});

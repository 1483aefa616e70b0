import { createHmac } from 'node:crypto';
import { createServer, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { openDatabase, type Database } from '../src/db/database.js';
import type { PrismaClient } from '../src/generated/prisma/client.js';
import { configureQuotaDelivery, newWebhookSecret, QuotaDeliverer, settleQuotaDeliveries, startQuotaDeliveries, type QuotaDelivererOptions } from '../src/quota/delivery.js';
import { createApp } from '../src/yoga.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from './helpers/database.js';
import { createQueuedAlert } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

// The webhook queue is the Alert table: these tests drive deliverers against the real database and
// a real HTTP receiver, and play "restart", "crash" and "two gateway processes" with several
// deliverers on one database.

let db: TestDatabase;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
let receiver: Server;
let webhookUrl: string;

interface Hit {
  alertId: string;
  body: string;
  signature: string;
}
const hits: Hit[] = [];
/** What the receiver answers: a status, or 'hang' (never answers). `n` counts this alert's hits. */
let behave: (alertId: string, n: number) => number | 'hang' | Promise<number | 'hang'> = () => 204;
const hanging: ServerResponse[] = [];
const deliverers: QuotaDeliverer[] = [];

function deliverer(options: QuotaDelivererOptions = {}): QuotaDeliverer {
  const d = new QuotaDeliverer(db.prisma, { onError: (error) => console.error(error), ...options });
  deliverers.push(d);
  return d;
}
function started(options: QuotaDelivererOptions = {}, prisma: PrismaClient = db.prisma): QuotaDeliverer {
  const d = startQuotaDeliveries(prisma, { onError: (error) => console.error(error), ...options });
  deliverers.push(d);
  return d;
}

beforeAll(async () => {
  db = await createTestDatabase();
  realm = await createUsageRealm(db.prisma, 'UTC');
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', async () => {
      const alertId = String(JSON.parse(body).alertId);
      hits.push({ alertId, body, signature: String(req.headers['x-usage-gateway-signature']) });
      const answer = await behave(alertId, hits.filter((h) => h.alertId === alertId).length);
      if (answer === 'hang') hanging.push(res);
      else res.writeHead(answer).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/quota`;
});
beforeEach(async () => {
  // The receiver listens on 127.0.0.1: a private destination, allowed as WEBHOOK_ALLOW_PRIVATE=true allows it.
  configureQuotaDelivery({ retryDelaysMs: [30, 60], timeoutMs: 2000, allowPrivateDestinations: true });
  hits.length = 0;
  behave = () => 204;
  await db.prisma.alert.deleteMany();
  await db.prisma.quotaRule.deleteMany();
});
afterEach(async () => {
  await Promise.all(deliverers.splice(0).map((d) => d.stop(500)));
  for (const res of hanging.splice(0)) res.destroy();
});
afterAll(async () => {
  configureQuotaDelivery();
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
  await db?.destroy();
});

async function rule(withWebhook = true) {
  const secret = newWebhookSecret();
  const created = await db.prisma.quotaRule.create({
    data: {
      realmId: realm.realm.id,
      featureId: realm.features.tx.id,
      period: 'DAY',
      thresholdQuantity: '1',
      webhookUrl: withWebhook ? webhookUrl : null,
      webhookSecret: withWebhook ? secret : null,
    },
  });
  return { id: created.id, secret };
}

/** An alert as evaluateQuotas queues it (day `i` after 2026-06-01), due at `nextDeliveryAt`. */
async function alert(ruleId: string, i: number, nextDeliveryAt: Date | null = new Date()) {
  return createQueuedAlert(db.prisma, realm.realm.id, ruleId, new Date(Date.UTC(2026, 5, 1 + i)), nextDeliveryAt, `alert ${i}`);
}

const row = (id: string) => db.prisma.alert.findUniqueOrThrow({ where: { id } });
const sign = (secret: string, body: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('durable quota webhook delivery', () => {
  it('delivers an alert left pending by a stopped gateway, between retries, when a new deliverer starts', async () => {
    const { id: ruleId, secret } = await rule();
    // No deliverer runs: ingestion creates the alert and queues it in the same insert.
    const app = createApp({ prisma: db.prisma, onUnexpectedError: (error) => console.error(error) });
    const before = Date.now();
    const { body } = await graphql(app, `mutation ($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted } }`, {
      key: realm.admin.key,
      variables: { events: [{ idempotencyKey: 'restart-1', feature: 'tx', timestamp: new Date().toISOString(), quantity: '5' }] },
    });
    expect(body.data.ingestUsage.accepted).toBe(1);
    const [queued] = await db.prisma.alert.findMany({ where: { ruleId } });
    expect(queued!.nextDeliveryAt!.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(queued!.nextDeliveryAt!.getTime()).toBeLessThanOrEqual(Date.now());
    await sleep(100);
    expect(hits).toHaveLength(0);

    // The first gateway starts, its first attempt fails, and it stops before the retry is due.
    behave = () => 503;
    const first = started({ retryDelaysMs: [400, 400] });
    await vi.waitFor(async () => expect((await row(queued!.id)).deliveryAttempts).toBe(1), { timeout: 5000, interval: 10 });
    await first.stop();
    const waiting = await row(queued!.id);
    expect(waiting).toMatchObject({ deliveredAt: null, lastDeliveryError: 'HTTP 503' });
    expect(waiting.nextDeliveryAt!.getTime()).toBeGreaterThan(Date.now() - 1000);
    await sleep(600);
    expect(hits).toHaveLength(1); // nothing delivers while no gateway runs

    // A new gateway on the same database picks it up.
    behave = () => 204;
    const second = started({ retryDelaysMs: [400, 400] });
    await second.settle();
    const delivered = await row(queued!.id);
    expect(delivered).toMatchObject({ deliveryAttempts: 2, lastDeliveryError: null, nextDeliveryAt: null });
    expect(delivered.deliveredAt).toBeInstanceOf(Date);
    expect(hits).toHaveLength(2);
    for (const hit of hits) {
      expect(hit.signature).toBe(sign(secret, hit.body));
      expect(JSON.parse(hit.body)).toMatchObject({ type: 'quota.crossed', alertId: queued!.id, ruleId, realmId: realm.realm.id, feature: 'tx', period: 'DAY', quantity: '5', threshold: '1' });
    }
  });

  it('sends the first attempt at once when an alert is created, without waiting for the poll', async () => {
    await rule();
    started({ pollIntervalMs: 60_000 });
    await sleep(50); // the start-up pass found nothing
    const app = createApp({ prisma: db.prisma });
    await graphql(app, `mutation ($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted } }`, {
      key: realm.admin.key,
      variables: { events: [{ idempotencyKey: 'nudge-1', feature: 'tx', timestamp: new Date().toISOString(), quantity: '5' }] },
    });
    await vi.waitFor(() => expect(hits).toHaveLength(1), { timeout: 2000, interval: 10 });
    await settleQuotaDeliveries();
    expect((await db.prisma.alert.findFirstOrThrow()).deliveredAt).toBeInstanceOf(Date);
  });

  it('retries an attempt whose process crashed once its lease expires, not before; a lease keeps other deliverers off', async () => {
    const { id: ruleId } = await rule();
    const t0 = new Date(Math.floor(Date.now() / 1000) * 1000);
    // What a claim leaves behind: the attempt counted, nextDeliveryAt = end of the lease.
    const crashed = await alert(ruleId, 0, new Date(t0.getTime() + 60_000));
    await db.prisma.alert.update({ where: { id: crashed.id }, data: { deliveryAttempts: 1 } });
    let clock = t0;
    const d = deliverer({ now: () => clock, leaseMs: 30_000 });
    expect(await d.runOnce()).toBe(0);
    clock = new Date(t0.getTime() + 59_999);
    expect(await d.runOnce()).toBe(0);
    expect(hits).toHaveLength(0);

    // Expired: claimed again. While the attempt is in flight the alert holds a new lease, which
    // another deliverer at the same instant respects.
    clock = new Date(t0.getTime() + 60_000);
    const other = deliverer({ now: () => clock });
    let during: { nextDeliveryAt: Date | null } | undefined;
    let otherAttempts = -1;
    behave = async () => {
      during = await row(crashed.id);
      otherAttempts = await other.runOnce();
      return 204;
    };
    expect(await d.runOnce()).toBe(1);
    expect(during!.nextDeliveryAt).toEqual(new Date(t0.getTime() + 60_000 + 30_000));
    expect(otherAttempts).toBe(0);
    expect(hits).toHaveLength(1);
    expect(await row(crashed.id)).toMatchObject({ deliveredAt: clock, deliveryAttempts: 2, nextDeliveryAt: null });
  });

  it('two deliverers racing on one database POST each alert exactly once per attempt', async () => {
    const { id: ruleId } = await rule();
    const ids = new Set<string>();
    for (let i = 0; i < 24; i++) ids.add((await alert(ruleId, i)).id);
    // The first attempt of each alert fails, the second is accepted; answers take a while.
    behave = async (_id, n) => {
      await sleep(15);
      return n === 1 ? 503 : 204;
    };
    // Two "gateway processes": on PostgreSQL each has its own connection pool; PGlite is one connection.
    let second: Database | undefined;
    if (testDatabaseKind() === 'postgres') second = await openDatabase(db.target, { migrate: false });
    try {
      const options = { batchSize: 5, retryDelaysMs: [30], pollIntervalMs: 25 };
      const a = started(options);
      const b = started(options, second?.prisma ?? db.prisma);
      await Promise.all([a.settle(), b.settle(), a.runOnce(), b.runOnce()]);
      await Promise.all([a.stop(), b.stop()]);
    } finally {
      await second?.close();
    }
    const perAlert = new Map<string, number>();
    for (const hit of hits) perAlert.set(hit.alertId, (perAlert.get(hit.alertId) ?? 0) + 1);
    expect(Object.fromEntries(perAlert)).toEqual(Object.fromEntries([...ids].map((id) => [id, 2])));
    const rows = await db.prisma.alert.findMany();
    expect(rows.every((r) => r.deliveryAttempts === 2 && r.deliveredAt && r.nextDeliveryAt === null && r.lastDeliveryError === null)).toBe(true);
  });

  it('gives up after the last attempt and records the error', async () => {
    const { id: ruleId } = await rule();
    const failing = await alert(ruleId, 0);
    behave = () => 500;
    await started({ retryDelaysMs: [10, 20] }).settle();
    expect(hits).toHaveLength(3);
    expect(await row(failing.id)).toMatchObject({ deliveredAt: null, deliveryAttempts: 3, lastDeliveryError: 'HTTP 500', nextDeliveryAt: null });
  });

  it('records a timeout as a failed attempt and retries on the schedule', async () => {
    const { id: ruleId } = await rule();
    const slow = await alert(ruleId, 0);
    behave = (_id, n) => (n === 1 ? 'hang' : 204);
    const d = deliverer({ timeoutMs: 100, retryDelaysMs: [300] });
    const t = Date.now();
    expect(await d.runOnce()).toBe(1);
    const failed = await row(slow.id);
    expect(failed).toMatchObject({ deliveryAttempts: 1, deliveredAt: null });
    expect(failed.lastDeliveryError).toMatch(/time/i);
    expect(failed.nextDeliveryAt!.getTime()).toBeGreaterThanOrEqual(t + 300);
    expect(await d.runOnce()).toBe(0); // the retry is not due yet
    await sleep(350);
    expect(await d.runOnce()).toBe(1);
    expect(await row(slow.id)).toMatchObject({ deliveryAttempts: 2, lastDeliveryError: null, nextDeliveryAt: null });
  });

  it('stop() waits for attempts in flight; past its bound it aborts them and releases the alert', async () => {
    const { id: ruleId } = await rule();
    const first = await alert(ruleId, 0);
    behave = async () => {
      await sleep(300);
      return 204;
    };
    const d = started();
    await vi.waitFor(() => expect(hits).toHaveLength(1), { timeout: 2000, interval: 5 });
    await d.stop();
    expect((await row(first.id)).deliveredAt).toBeInstanceOf(Date);

    const second = await alert(ruleId, 1);
    behave = () => 'hang';
    const e = started({ timeoutMs: 60_000 });
    await vi.waitFor(() => expect(hits).toHaveLength(2), { timeout: 2000, interval: 5 });
    const t = Date.now();
    await e.stop(200);
    expect(Date.now() - t).toBeLessThan(2000);
    const released = await row(second.id);
    // The interrupted attempt stays counted (it may have reached the receiver).
    expect(released).toMatchObject({ deliveredAt: null, deliveryAttempts: 1 });
    expect(released.nextDeliveryAt!.getTime()).toBeLessThanOrEqual(Date.now());

    // The next gateway delivers it at once (the receiver may see it twice: at least once).
    behave = () => 204;
    await started().settle();
    expect(await row(second.id)).toMatchObject({ deliveryAttempts: 2, nextDeliveryAt: null });
    expect(hits.filter((h) => h.alertId === second.id)).toHaveLength(2);
  });

  it('drops an alert from the queue when its rule has no webhook (any more)', async () => {
    const { id: ruleId } = await rule(false);
    const orphan = await alert(ruleId, 0);
    expect(await deliverer().runOnce()).toBe(1);
    expect(hits).toHaveLength(0);
    expect(await row(orphan.id)).toMatchObject({ deliveredAt: null, deliveryAttempts: 0, nextDeliveryAt: null });
  });
});

describe.runIf(testDatabaseKind() === 'pglite')('QUOTA_DELIVERY_POLL_MS', () => {
  it('sets the poll interval, within bounds', () => {
    expect(loadConfig({}).quotaDeliveryPollMs).toBeUndefined();
    expect(loadConfig({ QUOTA_DELIVERY_POLL_MS: '2000' }).quotaDeliveryPollMs).toBe(2000);
    for (const bad of ['50', 'soon', '-1', '99999999']) expect(() => loadConfig({ QUOTA_DELIVERY_POLL_MS: bad })).toThrow(ConfigError);
  });
});

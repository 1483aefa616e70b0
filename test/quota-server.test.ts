import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { openDatabase } from '../src/db/database.js';
import { newWebhookSecret } from '../src/quota/delivery.js';
import { testDatabaseKind } from './helpers/database.js';
import { createUsageRealm } from './helpers/usage-fixture.js';
import { freePort, startServer, type ServerProcess } from './server/server-process.js';

// The real server process (`npm start`) delivers a webhook queued in its database before it started.

let dir: string | undefined;
let receiver: Server | undefined;
let server: ServerProcess | undefined;

afterAll(async () => {
  await server?.stop();
  receiver?.closeAllConnections();
  await new Promise((resolve) => (receiver ? receiver.close(resolve) : resolve(undefined)));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.runIf(testDatabaseKind() === 'pglite')('the server and queued quota webhooks', () => {
  it('delivers at start-up an alert queued before it started, signed, and records it', { timeout: 120_000 }, async () => {
    const hits: { body: string; signature: string }[] = [];
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        hits.push({ body, signature: String(req.headers['x-usage-gateway-signature']) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver!.listen(0, '127.0.0.1', resolve));
    const webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

    // A database left by a gateway that stopped with an alert still to deliver.
    dir = mkdtempSync(path.join(os.tmpdir(), 'ugw-quota-server-'));
    const before = await openDatabase({ kind: 'pglite', dir });
    const realm = await createUsageRealm(before.prisma, 'UTC');
    const secret = newWebhookSecret();
    const rule = await before.prisma.quotaRule.create({
      data: { realmId: realm.realm.id, featureId: realm.features.tx.id, period: 'DAY', thresholdQuantity: '1', webhookUrl, webhookSecret: secret },
    });
    const alert = await before.prisma.alert.create({
      data: {
        realmId: realm.realm.id,
        ruleId: rule.id,
        periodStart: new Date('2026-06-15T00:00:00Z'),
        periodEnd: new Date('2026-06-16T00:00:00Z'),
        quantity: '5',
        threshold: '1',
        crossedAt: new Date('2026-06-15T12:00:00Z'),
        message: 'pending from before the restart',
        nextDeliveryAt: new Date(),
      },
    });
    await before.close();

    server = startServer({ PGLITE_DIR: dir, PORT: String(await freePort()), HOST: '127.0.0.1', SEED_DEMO: 'false', LOG_LEVEL: 'warn', WEBHOOK_ALLOW_PRIVATE: 'true' });
    await vi.waitFor(() => expect(hits).toHaveLength(1), { timeout: 60_000, interval: 50 });
    expect(hits[0]!.signature).toBe(`sha256=${createHmac('sha256', secret).update(hits[0]!.body).digest('hex')}`);
    expect(JSON.parse(hits[0]!.body)).toMatchObject({ type: 'quota.crossed', alertId: alert.id, message: 'pending from before the restart' });
    // A graceful stop waits for the attempt in flight to record its answer.
    expect(await server.stop()).toBe(0);
    server = undefined;

    const after = await openDatabase({ kind: 'pglite', dir });
    try {
      const delivered = await after.prisma.alert.findUniqueOrThrow({ where: { id: alert.id } });
      expect(delivered).toMatchObject({ deliveryAttempts: 1, nextDeliveryAt: null, lastDeliveryError: null });
      expect(delivered.deliveredAt).toBeInstanceOf(Date);
    } finally {
      await after.close();
    }
  });
});

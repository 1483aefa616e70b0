import { createHmac, randomBytes } from 'node:crypto';
import type { PrismaClient } from '../generated/prisma/client.js';

export const SIGNATURE_HEADER = 'X-Usage-Gateway-Signature';

export interface DeliveryOptions {
  /** Delay before each attempt after the first; attempts = delays + 1. */
  retryDelaysMs: number[];
  /** Per attempt. */
  timeoutMs: number;
}

/** 3 attempts: the first at once, then after 0.5 s and 2 s. */
const DEFAULTS: DeliveryOptions = { retryDelaysMs: [500, 2000], timeoutMs: 10_000 };
let options: DeliveryOptions = { ...DEFAULTS };

/** Overrides delivery timing (tests use short delays). Pass nothing to restore the defaults. */
export function configureQuotaDelivery(overrides?: Partial<DeliveryOptions>): void {
  options = { ...DEFAULTS, ...overrides };
}

export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('hex')}`;
}

/** `sha256=<hex HMAC-SHA256 of the raw body>`, keyed with the rule's webhook secret. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

const pending = new Set<Promise<void>>();

/** Resolves when every delivery started so far has finished (delivered or given up). */
export async function settleQuotaDeliveries(): Promise<void> {
  while (pending.size) await Promise.allSettled([...pending]);
}

/** Starts delivering an alert in the background; never throws, never blocks the caller. */
export function scheduleDelivery(prisma: PrismaClient, alertId: string, url: string, secret: string, payload: unknown): void {
  const run = deliver(prisma, alertId, url, secret, payload).catch((error) => {
    console.error('quota alert delivery failed', error);
  });
  pending.add(run);
  void run.finally(() => pending.delete(run));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function deliver(prisma: PrismaClient, alertId: string, url: string, secret: string, payload: unknown): Promise<void> {
  const body = JSON.stringify(payload);
  const { retryDelaysMs, timeoutMs } = options;
  const attempts = retryDelaysMs.length + 1;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) await sleep(retryDelaysMs[attempt - 2]!);
    let error: string | null = null;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signBody(secret, body), 'user-agent': 'usage-gateway-alerts' },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.arrayBuffer().catch(() => undefined);
      if (!response.ok) error = `HTTP ${response.status}`;
    } catch (e) {
      error = String((e as Error)?.message ?? e);
    }
    await prisma.alert.update({
      where: { id: alertId },
      data: error ? { deliveryAttempts: attempt, lastDeliveryError: error } : { deliveryAttempts: attempt, deliveredAt: new Date(), lastDeliveryError: null },
    });
    if (!error) return;
  }
}

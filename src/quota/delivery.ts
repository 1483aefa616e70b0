import { createHmac, randomBytes } from 'node:crypto';
import type { PrismaClient } from '../generated/prisma/client.js';
import { dec } from '../billing/decimal.js';
import { backgroundError } from '../observability.js';
import { postWebhook, type HostResolver } from './webhook-post.js';

export const SIGNATURE_HEADER = 'X-Usage-Gateway-Signature';

/*
 * Durable webhook delivery of quota alerts. The queue is the `Alert` table itself:
 * `nextDeliveryAt` is when the next attempt is due (null: nothing to deliver). A deliverer claims
 * due alerts with one UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED), which moves their
 * `nextDeliveryAt` to the end of a lease, so no other deliverer (in this or another process) sends
 * the same attempt meanwhile, and counts the attempt (`deliveryAttempts` + 1) in the same statement,
 * before anything is sent. The attempt's result is written only while the lease is still ours.
 * A process that dies mid-attempt leaves the lease behind; when it expires, whichever deliverer
 * polls next retries the alert — unless that attempt was its last: then the alert is given up. An
 * alert whose delivery kills or hangs its process is therefore tried at most `retryDelaysMs.length
 * + 1` times, whatever happens to the processes. Delivery is at least once: receivers dedupe by
 * `alertId`. What may be sent where, and how replies are read: ./webhook-post.ts.
 */

export interface DeliveryOptions {
  /** Delay before each attempt after the first; attempts = delays + 1. */
  retryDelaysMs: number[];
  /** Per attempt. */
  timeoutMs: number;
  /** How long a claimed attempt holds its alert (at least `timeoutMs` + 5 s is used). */
  leaseMs: number;
  /** How often a started deliverer looks for due alerts (sooner when a retry is due sooner). */
  pollIntervalMs: number;
  /** Alerts claimed (and POSTed concurrently) per statement. */
  batchSize: number;
  /** WEBHOOK_ALLOW_PRIVATE: webhook URLs and destinations may be private, loopback or link-local (tests, on-premise installs). */
  allowPrivateDestinations: boolean;
}

/** 3 attempts: the first at once, then after 0.5 s and 2 s; due alerts looked for every 5 s. */
const DEFAULTS: DeliveryOptions = {
  retryDelaysMs: [500, 2000],
  timeoutMs: 10_000,
  leaseMs: 60_000,
  pollIntervalMs: 5_000,
  batchSize: 20,
  allowPrivateDestinations: false,
};
let options: DeliveryOptions = { ...DEFAULTS };

/**
 * Overrides delivery settings for every deliverer of this process (tests use short delays; the
 * server sets WEBHOOK_ALLOW_PRIVATE here). Pass nothing to restore the defaults.
 */
export function configureQuotaDelivery(overrides?: Partial<DeliveryOptions>): void {
  options = { ...DEFAULTS, ...overrides };
}

/** Whether this process accepts private webhook destinations (createQuotaRule checks URLs with it). */
export function privateWebhookDestinationsAllowed(): boolean {
  return options.allowPrivateDestinations;
}

export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('hex')}`;
}

/** `sha256=<hex HMAC-SHA256 of the raw body>`, keyed with the rule's webhook secret. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export interface QuotaDelivererOptions extends Partial<DeliveryOptions> {
  /** The clock for due times and leases (tests move it); the database's hosts should agree on time. */
  now?: () => Date;
  /** Errors of the database or of the deliverer itself (not a webhook's failures, which the alert records). */
  onError?: (error: unknown) => void;
  /** Resolves webhook host names (the system resolver by default). */
  resolve?: HostResolver;
}

type ClaimedAlert = Awaited<ReturnType<typeof loadClaimed>>[number];

function loadClaimed(prisma: PrismaClient, ids: string[]) {
  return prisma.alert.findMany({
    where: { id: { in: ids } },
    include: { rule: { select: { period: true, webhookUrl: true, webhookSecret: true, feature: { select: { key: true } } } } },
  });
}

/** The JSON POSTed for an alert; `alertId` is the key receivers dedupe by. */
export function alertPayload(alert: ClaimedAlert) {
  const forecast = alert.kind === 'FORECAST';
  return {
    // A forecast alert is a prediction, not a crossing: receivers that only know `quota.crossed` must not take it for one.
    type: forecast ? 'quota.forecast' : 'quota.crossed',
    kind: alert.kind,
    alertId: alert.id,
    ruleId: alert.ruleId,
    realmId: alert.realmId,
    feature: alert.rule.feature.key,
    period: alert.rule.period,
    periodStart: alert.periodStart.toISOString(),
    periodEnd: alert.periodEnd.toISOString(),
    quantity: dec(alert.quantity).toFixed(),
    threshold: dec(alert.threshold).toFixed(),
    crossedAt: alert.crossedAt.toISOString(),
    late: alert.late,
    projectedAt: alert.projectedAt?.toISOString() ?? null,
    projectedQuantity: alert.projectedQuantity == null ? null : dec(alert.projectedQuantity).toFixed(),
    message: alert.message,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Started deliverers of this process: nudged when an alert is created, awaited by settleQuotaDeliveries(). */
const started = new Set<QuotaDeliverer>();

export class QuotaDeliverer {
  private readonly now: () => Date;
  private readonly onError: (error: unknown) => void;
  private running: Promise<number> | null = null;
  private again = false;
  private isStarted = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();

  constructor(
    readonly prisma: PrismaClient,
    private readonly overrides: QuotaDelivererOptions = {},
  ) {
    this.now = overrides.now ?? (() => new Date());
    this.onError = overrides.onError ?? ((error) => backgroundError('quota alert delivery failed', error));
  }

  private get options(): DeliveryOptions {
    const { now: _now, onError: _onError, resolve: _resolve, ...rest } = this.overrides;
    const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
    return { ...options, ...defined };
  }

  /** Delivers what is due now (alerts pending from before a restart included), then polls. */
  start(): this {
    if (this.isStarted || this.stopped) return this;
    this.isStarted = true;
    started.add(this);
    this.nudge();
    return this;
  }

  /** Looks for due alerts at once (a new alert was created). */
  nudge(): void {
    if (!this.isStarted || this.stopped) return;
    this.runOnce().catch(this.onError);
  }

  /**
   * Claims and POSTs every alert due now, batch after batch; resolves with the number of attempts
   * made. Passes of one deliverer never overlap: a call during a pass makes that pass look again.
   */
  runOnce(): Promise<number> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    clearTimeout(this.timer);
    const run = (async () => {
      let attempts = 0;
      do {
        this.again = false;
        attempts += await this.deliverDue();
      } while (this.again && !this.stopped);
      return attempts;
    })();
    this.running = run;
    void run
      .catch(() => undefined)
      .finally(() => {
        if (this.running === run) this.running = null;
        this.scheduleNext();
      });
    return run;
  }

  /**
   * Resolves when no alert of the database has a delivery pending (due, waiting for a retry, or
   * leased by an attempt in flight here or elsewhere); rejects after `timeoutMs` (real time).
   */
  async settle(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.runOnce();
      const next = await this.earliestPending();
      if (!next) return;
      if (Date.now() >= deadline) throw new Error(`quota deliveries still pending after ${timeoutMs} ms (next due ${next.toISOString()})`);
      // A retry due soon, or an attempt in flight elsewhere (its lease ends later than it will): look again shortly.
      await sleep(Math.min(Math.max(next.getTime() - this.now().getTime(), 5), 50, Math.max(deadline - Date.now(), 1)));
    }
  }

  /**
   * Stops polling and waits for the attempts in flight; after `timeoutMs` they are aborted and their
   * alerts released for the next deliverer (the receiver may have got them: at least once).
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.stopped = true;
    started.delete(this);
    clearTimeout(this.timer);
    const running = this.running;
    if (!running) return;
    const abort = setTimeout(() => this.abort.abort(new Error('the gateway is stopping')), timeoutMs);
    let giveUp: NodeJS.Timeout | undefined;
    await Promise.race([running.catch(() => undefined), new Promise((resolve) => (giveUp = setTimeout(resolve, timeoutMs + 5_000)))]);
    clearTimeout(abort);
    clearTimeout(giveUp);
  }

  private scheduleNext(): void {
    if (!this.isStarted || this.stopped) return;
    const { pollIntervalMs } = this.options;
    void this.earliestPending()
      .catch((error) => {
        this.onError(error);
        return null;
      })
      .then((next) => {
        if (!this.isStarted || this.stopped || this.running) return;
        let delay = pollIntervalMs;
        // A retry due before the next poll: wake up for it (never spin on a row another process holds).
        if (next) delay = Math.min(delay, Math.max(next.getTime() - this.now().getTime(), 20));
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.runOnce().catch(this.onError), delay);
        this.timer.unref();
      });
  }

  private async earliestPending(): Promise<Date | null> {
    const row = await this.prisma.alert.findFirst({
      where: { nextDeliveryAt: { not: null } },
      orderBy: { nextDeliveryAt: 'asc' },
      select: { nextDeliveryAt: true },
    });
    return row?.nextDeliveryAt ?? null;
  }

  private async deliverDue(): Promise<number> {
    let attempts = 0;
    for (;;) {
      const { batchSize, leaseMs, timeoutMs, retryDelaysMs } = this.options;
      const maxAttempts = retryDelaysMs.length + 1;
      const now = this.now();
      const leaseUntil = new Date(now.getTime() + Math.max(leaseMs, timeoutMs + 5_000));
      // Due again with every attempt used: the last one's process died (or hung) before recording an outcome.
      await this.prisma.$executeRawUnsafe(
        `UPDATE "Alert" SET "nextDeliveryAt" = NULL,
           "lastDeliveryError" = 'given up: no outcome was recorded for attempt ' || "deliveryAttempts" || ' (its gateway stopped during it)'
         WHERE "nextDeliveryAt" <= $1::timestamptz AND "deliveryAttempts" >= $2`,
        now.toISOString(),
        maxAttempts,
      );
      const claimed = await this.prisma.$queryRawUnsafe<{ id: string }[]>(
        `UPDATE "Alert" SET "nextDeliveryAt" = $2::timestamptz, "deliveryAttempts" = "deliveryAttempts" + 1
         WHERE "id" IN (
           SELECT "id" FROM "Alert" WHERE "nextDeliveryAt" <= $1::timestamptz AND "deliveryAttempts" < $4
           ORDER BY "nextDeliveryAt" LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING "id"::text AS id`,
        now.toISOString(),
        leaseUntil.toISOString(),
        batchSize,
        maxAttempts,
      );
      if (!claimed.length) break;
      const alerts = await loadClaimed(this.prisma, claimed.map((c) => c.id));
      await Promise.all(alerts.map((alert) => this.attempt(alert, leaseUntil).catch(this.onError)));
      attempts += alerts.length;
      if (claimed.length < batchSize || this.stopped) break;
    }
    return attempts;
  }

  /** One attempt on a claimed alert (already counted); the result is written only if the lease is still ours. */
  private async attempt(alert: ClaimedAlert, leaseUntil: Date): Promise<void> {
    const ours = { id: alert.id, nextDeliveryAt: leaseUntil };
    const { url, secret } = { url: alert.rule.webhookUrl, secret: alert.rule.webhookSecret };
    if (!url || !secret) {
      await this.prisma.alert.updateMany({ where: ours, data: { nextDeliveryAt: null, deliveryAttempts: { decrement: 1 } } });
      return;
    }
    const { retryDelaysMs, timeoutMs, allowPrivateDestinations } = this.options;
    const attempt = alert.deliveryAttempts;
    const body = JSON.stringify(alertPayload(alert));
    const { error } = await postWebhook(
      url,
      body,
      { 'content-type': 'application/json', [SIGNATURE_HEADER]: signBody(secret, body), 'user-agent': 'usage-gateway-alerts' },
      { timeoutMs, allowPrivate: allowPrivateDestinations, signal: this.abort.signal, resolve: this.overrides.resolve },
    );
    if (error && this.abort.signal.aborted) {
      // Stopping: the next deliverer (here after a restart, or another process) takes the alert at
      // once instead of waiting for the lease to expire. The attempt stays counted: it may have been sent.
      await this.prisma.alert.updateMany({ where: ours, data: { lastDeliveryError: error, nextDeliveryAt: this.now() } });
      return;
    }
    const now = this.now();
    const last = attempt >= retryDelaysMs.length + 1;
    await this.prisma.alert.updateMany({
      where: ours,
      data: error
        ? { lastDeliveryError: error, nextDeliveryAt: last ? null : new Date(now.getTime() + retryDelaysMs[attempt - 1]!) }
        : { deliveredAt: now, lastDeliveryError: null, nextDeliveryAt: null },
    });
  }
}

/** Starts a deliverer on this database: delivers what is due, then polls until stop(). */
export function startQuotaDeliveries(prisma: PrismaClient, deliveryOptions: QuotaDelivererOptions = {}): QuotaDeliverer {
  return new QuotaDeliverer(prisma, deliveryOptions).start();
}

/** An alert was created: the started deliverers on this client send its first attempt at once. */
export function nudgeQuotaDeliveries(prisma: PrismaClient): void {
  for (const deliverer of started) if (deliverer.prisma === prisma) deliverer.nudge();
}

/**
 * Resolves when, for every started deliverer of this process, no delivery is pending in its
 * database and none is in flight (delivered or given up). Nothing started: resolves at once.
 */
export async function settleQuotaDeliveries(timeoutMs?: number): Promise<void> {
  await Promise.all([...started].map((deliverer) => deliverer.settle(timeoutMs)));
}

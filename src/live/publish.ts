import type { PrismaClient } from '../generated/prisma/client.js';
import { outsideRecording } from '../db/statement-recorder.js';
import { backgroundError } from '../observability.js';
import { dimensionKey, type UsageDimensions } from '../usage/dimension-key.js';
import { hubsOf, type LiveEvent } from './hub.js';

/** What the ingestion knows of an event it stored: enough to name its bucket. */
export interface StoredEvent extends UsageDimensions {
  featureId: string;
  hour: Date;
}

/**
 * Sends an event through the hubs of this database client: once through a PostgreSQL hub (every
 * process LISTENing hears it, this one included), directly to in-memory hubs. Never throws and
 * never delays the caller: the work runs after it returns, outside the request's statement count.
 */
/** Whether anyone may hear an event: another process (a LISTEN hub) or a subscriber here. */
function hasAudience(prisma: PrismaClient): boolean {
  return hubsOf(prisma).some((hub) => hub.transport === 'postgres' || hub.listenerCount > 0);
}

function send(prisma: PrismaClient, build: () => Promise<LiveEvent | null>): void {
  const hubs = hubsOf(prisma);
  if (!hasAudience(prisma)) return;
  outsideRecording(() =>
    setImmediate(() => {
      void (async () => {
        const event = await build();
        if (!event) return;
        const notifier = hubs.find((hub) => hub.transport === 'postgres');
        if (notifier) await notifier.publish(event);
        for (const hub of hubs) if (hub.transport === 'memory') await hub.publish(event);
      })().catch((error) => backgroundError('publishing a live event failed', error));
    }),
  );
}

/**
 * The ingestion hook (after a batch committed): the buckets the batch wrote to, by id. `events` are
 * the batch's events (duplicates may be among them); only the feature-hours `touched` by new events
 * count, so a batch of duplicates publishes nothing.
 */
export function publishUsageChanged(prisma: PrismaClient, realmId: string, events: readonly StoredEvent[], touched: readonly { featureId: string; hour: Date }[]): void {
  if (!touched.length || !hasAudience(prisma)) return;
  try {
    collectAndSend(prisma, realmId, events, touched);
  } catch (error) {
    // Called after the ingestion's commit: nothing here may fail (or retry) the ingestion.
    backgroundError('publishing a live event failed', error);
  }
}

function collectAndSend(prisma: PrismaClient, realmId: string, events: readonly StoredEvent[], touched: readonly { featureId: string; hour: Date }[]): void {
  const touchedHours = new Set(touched.map((t) => `${t.featureId}|${t.hour.getTime()}`));
  const buckets = new Map<string, { featureId: string; hour: Date; key: string }>();
  for (const event of events) {
    if (!touchedHours.has(`${event.featureId}|${event.hour.getTime()}`)) continue;
    const key = dimensionKey(event);
    buckets.set(`${event.featureId}|${event.hour.getTime()}|${key}`, { featureId: event.featureId, hour: event.hour, key });
  }
  const list = [...buckets.values()];
  send(prisma, async () => {
    const rows = await prisma.$queryRawUnsafe<{ id: string }[]>(
      `SELECT h."id"::text AS id FROM "UsageHourly" h
       JOIN unnest($2::uuid[], $3::timestamptz[], $4::text[]) AS b("featureId", "hour", "dimensionKey")
         ON h."featureId" = b."featureId" AND h."hour" = b."hour" AND h."dimensionKey" = b."dimensionKey"
       WHERE h."realmId" = $1::uuid`,
      realmId,
      list.map((b) => b.featureId),
      list.map((b) => b.hour.toISOString()),
      list.map((b) => b.key),
    );
    return rows.length ? { type: 'usage', realmId, bucketIds: rows.map((r) => r.id) } : null;
  });
}

/** A new alert (quota/evaluate.ts). */
export function publishAlertRaised(prisma: PrismaClient, realmId: string, alertId: string): void {
  send(prisma, async () => ({ type: 'alert', realmId, alertId }));
}

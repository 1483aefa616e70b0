/**
 * Corrections of stored usage: amend or void one event, backfill (replace or add) a feature's range.
 * Every correction rewrites the stored events, then recomputes the buckets they touch from the live
 * (not voided) events, the way `reconcile` checks them: sums, counts and distinct keys stay exact
 * whatever the order of corrections. A bucket that already was final changes only with `reopen`.
 */
import type { PrismaClient } from '../generated/prisma/client.js';
import { Prisma } from '../generated/prisma/client.js';
import { recordAudit, type Actor } from '../admin/audit.js';
import { publishUsageChanged } from '../live/publish.js';
import { usageWritten } from '../usage/report-cache.js';
import { afterBatchCommitted } from '../quota/evaluate.js';
import { visibleWorkspaces } from '../schema/visibility.js';
import { DIMENSION_NAMES, dimensionKey } from '../usage/dimension-key.js';
import { featureWatermark } from '../usage/usage-loader.js';
import { refreshRollups } from '../usage/rollups.js';
import { floorToHour } from '../usage/time.js';
import type { NormalizedEvent } from './event.js';
import {
  byCodeUnits,
  DEFAULT_LATENESS_WINDOW_MS,
  DIMENSION_CASTS,
  DIMENSION_COLUMNS,
  dimensionArrays,
  eventParameters,
  insertEvents,
  isRetryable,
  MAX_ATTEMPTS,
  parseBatch,
  withDimensionParams,
  type IngestRejection,
  type IngestTarget,
} from './pipeline.js';

const HOUR_MS = 3_600_000;

export type CorrectionErrorCode = 'EVENT_NOT_FOUND' | 'EVENT_VOIDED' | 'BUCKET_FINAL' | 'BACKFILL_REJECTED' | 'INVALID_RANGE' | 'RANGE_TOO_LARGE' | IngestRejection['code'];

/** A correction that was refused as a whole: nothing was written. */
export class CorrectionRefused extends Error {
  constructor(
    readonly code: CorrectionErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface CorrectionTarget extends IngestTarget {
  actor: Actor;
}

export interface CorrectionOptions {
  now?: Date;
  /** Allows changing buckets that are already final (audited; the revision records it). */
  reopen?: boolean;
  latenessWindowMs?: number;
}

export interface CorrectionResult {
  /** The `UsageHourly` rows whose value, event count or distinct keys changed (their revision moved). */
  bucketIds: bigint[];
  /** How many of them were final and were reopened. */
  reopened: number;
  /** Events stored new, rewritten, and voided by the correction. */
  added: number;
  amended: number;
  voided: number;
  /** Events sent that were already stored with the same content. */
  unchanged: number;
}

type Tx = Prisma.TransactionClient;

/** One bucket to recompute; the dimension values are used only when the bucket row is new. */
interface BucketSpec {
  featureId: string;
  hour: Date;
  dimensionKey: string;
  dimensions: Record<(typeof DIMENSION_NAMES)[number], string | null>;
}

type StoredEvent = {
  id: bigint;
  idempotencyKey: string;
  featureId: string;
  occurredAt: Date;
  quantity: Prisma.Decimal;
  uniqueKey: string | null;
  dimensionKey: string;
  contentHash: string;
  voidedAt: Date | null;
  /** The UTC day of receipt (YYYY-MM-DD): with `id`, the row's key in the partitioned table. */
  receivedOn: string;
} & BucketSpec['dimensions'];

const EVENT_COLUMNS = `id, "receivedOn"::text AS "receivedOn", "idempotencyKey", "featureId", "occurredAt", quantity, "uniqueKey", "dimensionKey", "contentHash", "voidedAt", ${DIMENSION_COLUMNS}`;

function bucketOf(event: Pick<StoredEvent, 'featureId' | 'occurredAt' | 'dimensionKey'> & BucketSpec['dimensions']): BucketSpec {
  return {
    featureId: event.featureId,
    hour: floorToHour(event.occurredAt),
    dimensionKey: event.dimensionKey,
    dimensions: Object.fromEntries(DIMENSION_NAMES.map((name) => [name, event[name]])) as BucketSpec['dimensions'],
  };
}

function bucketOfNormalized(event: NormalizedEvent): BucketSpec {
  return bucketOf({ ...event, dimensionKey: dimensionKey(event) });
}

/** The distinct buckets, in the order every writer locks them (feature, hour, dimension key). */
function distinctBuckets(specs: BucketSpec[]): BucketSpec[] {
  const byId = new Map(specs.map((b) => [`${b.featureId}|${b.hour.toISOString()}|${b.dimensionKey}`, b]));
  return [...byId.values()].sort(
    (a, b) => byCodeUnits(a.featureId, b.featureId) || a.hour.getTime() - b.hour.getTime() || byCodeUnits(a.dimensionKey, b.dimensionKey),
  );
}

const SPECS = `unnest($2::uuid[], $3::timestamptz[], $4::text[]) AS b("featureId", hour, "dimensionKey")`;
const LIVE_EVENT_OF_BUCKET = `e."realmId" = $1::uuid AND e."featureId" = b."featureId" AND e."dimensionKey" = b."dimensionKey"
  AND e."occurredAt" >= b.hour AND e."occurredAt" < b.hour + interval '1 hour' AND e."voidedAt" IS NULL`;

/** A bucket row a correction changed, with its dimensions (to name it to live subscribers). */
type ChangedBucket = { id: bigint; featureId: string; hour: Date } & BucketSpec['dimensions'];

/**
 * Recomputes the buckets from the live events (after the events were rewritten in `tx`). Returns
 * the buckets that changed. Locks every bucket row first, so a concurrent ingestion's increment
 * lands either before the recount (and is counted by it) or after it (on top of it).
 */
async function recomputeBuckets(tx: Tx, realmId: string, specs: BucketSpec[]) {
  const buckets = distinctBuckets(specs);
  if (!buckets.length) return [];
  const params = [realmId, buckets.map((b) => b.featureId), buckets.map((b) => b.hour.toISOString()), buckets.map((b) => b.dimensionKey)] as const;
  await tx.$executeRawUnsafe(
    withDimensionParams(
      `INSERT INTO "UsageHourly" ("realmId", "featureId", hour, "dimensionKey", quantity, "eventCount", revision, ${DIMENSION_COLUMNS}, "updatedAt")
       SELECT $1::uuid, b."featureId", b.hour, b."dimensionKey", 0, 0, 0, ${DIMENSION_COLUMNS}, now()
       FROM unnest($2::uuid[], $3::timestamptz[], $4::text[], ${DIMENSION_CASTS})
         AS b("featureId", hour, "dimensionKey", ${DIMENSION_COLUMNS})
       ON CONFLICT ("realmId", "featureId", hour, "dimensionKey") DO UPDATE SET revision = "UsageHourly".revision`,
      5,
    ),
    ...params,
    ...dimensionArrays(buckets.map((b) => b.dimensions as unknown as NormalizedEvent)),
  );
  const removedKeys = await tx.$queryRawUnsafe<{ featureId: string; hour: Date; dimensionKey: string }[]>(
    `DELETE FROM "UsageUniqueKey" k USING ${SPECS}
     WHERE k."realmId" = $1::uuid AND k."featureId" = b."featureId" AND k.hour = b.hour AND k."dimensionKey" = b."dimensionKey"
       AND NOT EXISTS (SELECT 1 FROM "UsageEvent" e WHERE ${LIVE_EVENT_OF_BUCKET} AND e."uniqueKey" = k.key)
     RETURNING k."featureId"::text AS "featureId", k.hour, k."dimensionKey"`,
    ...params,
  );
  const addedKeys = await tx.$queryRawUnsafe<{ featureId: string; hour: Date; dimensionKey: string }[]>(
    `INSERT INTO "UsageUniqueKey" ("realmId", "featureId", hour, "dimensionKey", key, ${DIMENSION_COLUMNS})
     SELECT DISTINCT ON (b."featureId", b.hour, b."dimensionKey", e."uniqueKey")
       $1::uuid, b."featureId", b.hour, b."dimensionKey", e."uniqueKey", ${DIMENSION_NAMES.map((name) => `e."${name}"`).join(', ')}
     FROM ${SPECS} JOIN "UsageEvent" e ON ${LIVE_EVENT_OF_BUCKET}
     WHERE e."uniqueKey" IS NOT NULL
     ORDER BY b."featureId", b.hour, b."dimensionKey", e."uniqueKey"
     ON CONFLICT DO NOTHING
     RETURNING "featureId"::text AS "featureId", hour, "dimensionKey"`,
    ...params,
  );
  const keysMoved = distinctBuckets([...removedKeys, ...addedKeys].map((k) => ({ ...k, hour: new Date(k.hour), dimensions: {} as BucketSpec['dimensions'] })));
  return tx.$queryRawUnsafe<ChangedBucket[]>(
    `WITH x AS (
       SELECT b."featureId", b.hour, b."dimensionKey",
         CASE f.aggregation
           WHEN 'MAX' THEN MAX(e.quantity)
           WHEN 'LATEST' THEN (array_agg(e.quantity ORDER BY e."occurredAt" DESC, e.id DESC))[1]
           WHEN 'UNIQUE_COUNT' THEN COUNT(DISTINCT e."uniqueKey")
           ELSE SUM(e.quantity) END AS quantity,
         COUNT(e.id) AS events,
         CASE WHEN f.aggregation = 'UNIQUE_COUNT' THEN NULL ELSE MAX(e."occurredAt") END AS "latestAt"
       FROM ${SPECS} JOIN "Feature" f ON f.id = b."featureId"
         LEFT JOIN "UsageEvent" e ON ${LIVE_EVENT_OF_BUCKET}
       GROUP BY b."featureId", b.hour, b."dimensionKey", f.aggregation
     ), moved AS (
       SELECT * FROM unnest($5::uuid[], $6::timestamptz[], $7::text[]) AS m("featureId", hour, "dimensionKey")
     )
     UPDATE "UsageHourly" h SET quantity = coalesce(x.quantity, 0), "eventCount" = x.events, "latestAt" = x."latestAt",
       revision = h.revision + 1, "updatedAt" = now()
     FROM x
     WHERE h."realmId" = $1::uuid AND h."featureId" = x."featureId" AND h.hour = x.hour AND h."dimensionKey" = x."dimensionKey"
       AND (h.quantity <> coalesce(x.quantity, 0) OR h."eventCount" <> x.events
            OR EXISTS (SELECT 1 FROM moved m WHERE m."featureId" = x."featureId" AND m.hour = x.hour AND m."dimensionKey" = x."dimensionKey"))
     RETURNING h.id, h."featureId"::text AS "featureId", h.hour, ${DIMENSION_NAMES.map((name) => `h."${name}"::text AS "${name}"`).join(', ')}`,
    ...params,
    keysMoved.map((b) => b.featureId),
    keysMoved.map((b) => b.hour.toISOString()),
    keysMoved.map((b) => b.dimensionKey),
  );
}

/**
 * Refuses the correction (rolling back `tx`) when a changed bucket was final and `reopen` is not
 * set; with `reopen`, stamps those buckets' revisions as reopened. Returns the reopened hours.
 */
async function guardFinalBuckets(tx: Tx, realmId: string, changed: { id: bigint; featureId: string; hour: Date }[], reopen: boolean, now: Date) {
  if (!changed.length) return [];
  const features = await tx.feature.findMany({ where: { realmId, id: { in: [...new Set(changed.map((c) => c.featureId))] } } });
  const watermarks = new Map(features.map((f) => [f.id, { key: f.key, watermark: featureWatermark(f, now) }]));
  const final = changed.filter((c) => new Date(c.hour).getTime() + HOUR_MS <= watermarks.get(c.featureId)!.watermark.getTime());
  if (!final.length) return [];
  const hours = [...new Set(final.map((c) => `${watermarks.get(c.featureId)!.key} ${new Date(c.hour).toISOString()}`))].sort();
  if (!reopen) {
    throw new CorrectionRefused(
      'BUCKET_FINAL',
      `The correction changes ${final.length} final bucket${final.length > 1 ? 's' : ''} (${hours.slice(0, 5).join(', ')}${hours.length > 5 ? ', …' : ''}): reports and invoices may already use them. Pass \`reopen: true\` to change them anyway (the change is audited); nothing was written.`,
      { finalBuckets: hours },
    );
  }
  await tx.$executeRawUnsafe(`UPDATE "UsageHourly" SET "reopenedAt" = now() WHERE id = ANY($1::bigint[])`, final.map((c) => String(c.id)));
  return hours;
}

/** A stored event as it was before the correction, for the audit entry. */
function auditedEvent(event: StoredEvent) {
  return {
    featureId: event.featureId,
    occurredAt: event.occurredAt,
    quantity: event.quantity,
    uniqueKey: event.uniqueKey,
    ...Object.fromEntries(DIMENSION_NAMES.map((name) => [name, event[name]])),
    voided: Boolean(event.voidedAt),
  };
}

function auditedNormalized(event: NormalizedEvent) {
  return {
    featureId: event.featureId,
    occurredAt: event.occurredAt,
    quantity: event.quantity,
    uniqueKey: event.uniqueKey,
    ...Object.fromEntries(DIMENSION_NAMES.map((name) => [name, event[name]])),
    voided: false,
  };
}

/** Rewrites stored events (by idempotency key) with new content; a voided one counts again. */
async function overwriteEvents(tx: Tx, realmId: string, events: NormalizedEvent[]) {
  if (!events.length) return;
  const columns = `"featureId", "occurredAt", quantity, "uniqueKey", "dimensionKey", "contentHash", ${DIMENSION_COLUMNS}`;
  await tx.$executeRawUnsafe(
    withDimensionParams(
      `UPDATE "UsageEvent" e SET ${`${columns}`
        .split(', ')
        .map((column) => `${column} = n.${column}`)
        .join(', ')}, "voidedAt" = NULL
       FROM unnest($2::text[], $3::uuid[], $4::timestamptz[], $5::numeric[], $6::text[], $7::text[], $8::text[], ${DIMENSION_CASTS})
         AS n("idempotencyKey", ${columns})
       WHERE e."realmId" = $1::uuid AND e."idempotencyKey" = n."idempotencyKey"`,
      9,
    ),
    realmId,
    ...eventParameters(events),
  );
}

/** The workspace ids a subtree key may correct usage of (null: the whole realm). */
async function subtreeWorkspaces(tx: Tx, target: IngestTarget): Promise<Set<string> | null> {
  if (!target.workspaceId) return null;
  const rows = await tx.workspace.findMany({ where: visibleWorkspaces({ viewer: target }), select: { id: true } });
  return new Set(rows.map((row) => row.id));
}

/** The stored events with these keys, locked; a subtree key does not see those attributed outside its subtree. */
async function lockedEvents(tx: Tx, target: IngestTarget, keys: string[]): Promise<Map<string, StoredEvent>> {
  if (!keys.length) return new Map();
  const rows = await tx.$queryRawUnsafe<StoredEvent[]>(
    `SELECT ${EVENT_COLUMNS} FROM "UsageEvent" WHERE "realmId" = $1::uuid AND "idempotencyKey" = ANY($2::text[]) ORDER BY "idempotencyKey" FOR UPDATE`,
    target.realmId,
    [...keys].sort(byCodeUnits),
  );
  const subtree = await subtreeWorkspaces(tx, target);
  return new Map(rows.filter((row) => !subtree || (row.workspaceId && subtree.has(row.workspaceId))).map((row) => [row.idempotencyKey, row]));
}

interface Written {
  result: CorrectionResult;
  changed: ChangedBucket[];
}

/** Runs a correction's transaction (retrying deadlocks), then the quota evaluation on what changed. */
async function runCorrection(prisma: PrismaClient, target: IngestTarget, now: Date, write: (tx: Tx) => Promise<Written>): Promise<CorrectionResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      const { result, changed } = await prisma.$transaction(write, { timeout: 120_000, maxWait: 60_000 });
      usageWritten(target.realmId);
      // After the commit, as after an ingestion batch: quota rules and alerts, then live subscribers.
      const touched = changed.map((bucket) => ({ featureId: bucket.featureId, hour: new Date(bucket.hour) }));
      if (touched.length) await afterBatchCommitted(prisma, target.realmId, touched, now);
      publishUsageChanged(prisma, target.realmId, changed.map((bucket) => ({ ...bucket, hour: new Date(bucket.hour) })), touched);
      return result;
    } catch (error) {
      if (attempt >= MAX_ATTEMPTS || !isRetryable(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, attempt * 20 + Math.random() * 50));
    }
  }
}

function notFound(idempotencyKey: string, target: IngestTarget) {
  return new CorrectionRefused(
    'EVENT_NOT_FOUND',
    `No event with idempotency key "${idempotencyKey}" in this realm${target.workspaceId ? " (or it is attributed outside the key's workspace)" : ''}.`,
  );
}

/** After the buckets were recomputed: the final-bucket guard, the audit entry, the result. */
async function finish(
  tx: Tx,
  target: CorrectionTarget,
  options: CorrectionOptions,
  now: Date,
  changed: ChangedBucket[],
  counts: Omit<CorrectionResult, 'bucketIds' | 'reopened'>,
  audit: { action: string; featureId: string; details: Record<string, unknown> },
): Promise<Written> {
  const reopened = await guardFinalBuckets(tx, target.realmId, changed, options.reopen ?? false, now);
  // Rolled-up days and months holding a changed hour are recomputed in this transaction.
  await refreshRollups(tx, target.realmId, changed);
  if (counts.added + counts.amended + counts.voided === 0 && !changed.length) {
    return { result: { bucketIds: [], reopened: 0, ...counts }, changed: [] };
  }
  // The correction is the audited object (an event has no uuid of its own): `before` stays null and
  // `after` holds the event before and after, so the log keeps both whole.
  await recordAudit(tx, target.actor, {
    action: audit.action,
    realmId: target.realmId,
    targetType: 'Feature',
    targetId: audit.featureId,
    before: null,
    after: { ...audit.details, bucketsChanged: changed.length, reopenedBuckets: reopened },
  });
  return {
    result: { bucketIds: changed.map((c) => c.id), reopened: reopened.length, ...counts },
    changed,
  };
}

/** Parses one event for a correction; a rejection refuses the correction with the event's code. */
async function parseOne(prisma: PrismaClient, target: IngestTarget, raw: unknown, now: Date, options: CorrectionOptions): Promise<NormalizedEvent> {
  const { events, rejected } = await parseBatch(prisma, target, [raw], now, options.latenessWindowMs ?? DEFAULT_LATENESS_WINDOW_MS);
  if (rejected.length) throw new CorrectionRefused(rejected[0]!.code, rejected[0]!.message);
  return events[0]!.event;
}

/** Replaces the content of one stored event (same idempotency key); its old and new buckets are recomputed. */
export async function amendUsageEvent(
  prisma: PrismaClient,
  target: CorrectionTarget,
  idempotencyKey: string,
  raw: Record<string, unknown>,
  options: CorrectionOptions = {},
): Promise<CorrectionResult> {
  const now = options.now ?? new Date();
  const event = await parseOne(prisma, target, { ...raw, idempotencyKey }, now, options);
  return runCorrection(prisma, target, now, async (tx) => {
    const stored = (await lockedEvents(tx, target, [idempotencyKey])).get(idempotencyKey);
    if (!stored) throw notFound(idempotencyKey, target);
    if (stored.voidedAt) throw new CorrectionRefused('EVENT_VOIDED', `The event "${idempotencyKey}" was voided: it cannot be amended. Send the usage as a new event (a new idempotency key).`);
    const same = stored.contentHash === event.contentHash;
    if (!same) await overwriteEvents(tx, target.realmId, [event]);
    const changed = same ? [] : await recomputeBuckets(tx, target.realmId, [bucketOf(stored), bucketOfNormalized(event)]);
    return finish(tx, target, options, now, changed, { added: 0, amended: same ? 0 : 1, voided: 0, unchanged: same ? 1 : 0 }, {
      action: 'usage.amend',
      featureId: stored.featureId,
      details: { idempotencyKey, before: auditedEvent(stored), after: auditedNormalized(event) },
    });
  });
}

/** Makes one stored event count for nothing; its key stays taken (a re-send is a duplicate, not counted). */
export async function voidUsageEvent(prisma: PrismaClient, target: CorrectionTarget, idempotencyKey: string, options: CorrectionOptions = {}): Promise<CorrectionResult> {
  const now = options.now ?? new Date();
  return runCorrection(prisma, target, now, async (tx) => {
    const stored = (await lockedEvents(tx, target, [idempotencyKey])).get(idempotencyKey);
    if (!stored) throw notFound(idempotencyKey, target);
    if (stored.voidedAt) return { result: { bucketIds: [], reopened: 0, added: 0, amended: 0, voided: 0, unchanged: 1 }, changed: [] };
    await tx.$executeRawUnsafe(`UPDATE "UsageEvent" SET "voidedAt" = $2::timestamptz WHERE id = $1::bigint AND "receivedOn" = $3::date`, String(stored.id), now.toISOString(), stored.receivedOn);
    const changed = await recomputeBuckets(tx, target.realmId, [bucketOf(stored)]);
    return finish(tx, target, options, now, changed, { added: 0, amended: 0, voided: 1, unchanged: 0 }, {
      action: 'usage.void',
      featureId: stored.featureId,
      details: { idempotencyKey, before: auditedEvent(stored), after: { ...auditedEvent(stored), voided: true } },
    });
  });
}

export type BackfillMode = 'REPLACE' | 'ADD';

export interface BackfillRequest {
  featureId: string;
  from: Date;
  to: Date;
  mode: BackfillMode;
  events: unknown[];
}

/** The longest backfill range: the lateness window, beyond which no event is accepted anyway. */
export const MAX_BACKFILL_RANGE_MS = DEFAULT_LATENESS_WINDOW_MS;

export function checkBackfillRange(from: Date, to: Date): void {
  if (!(from < to)) throw new CorrectionRefused('INVALID_RANGE', '`range.from` must be before `range.to`.');
  if (to.getTime() - from.getTime() > MAX_BACKFILL_RANGE_MS) {
    throw new CorrectionRefused('RANGE_TOO_LARGE', `A backfill covers at most ${MAX_BACKFILL_RANGE_MS / 86_400_000} days (the lateness window); split it into several.`);
  }
  if (from.getTime() % HOUR_MS || to.getTime() % HOUR_MS) {
    throw new CorrectionRefused('INVALID_RANGE', '`range` must start and end on whole UTC hours (buckets are hourly), e.g. from "2026-11-20T00:00:00Z" to "2026-11-21T00:00:00Z".');
  }
}

/**
 * Replaces (REPLACE: the range's events in the key's scope are voided, unless re-sent) or adds to
 * (ADD) one feature's usage in `[from, to)`. All or nothing: one rejected event refuses the whole
 * backfill, with every rejection listed.
 */
export async function backfillUsage(prisma: PrismaClient, target: CorrectionTarget, request: BackfillRequest, options: CorrectionOptions = {}): Promise<CorrectionResult> {
  const now = options.now ?? new Date();
  checkBackfillRange(request.from, request.to);
  const { events, rejected } = await parseBatch(prisma, target, request.events, now, options.latenessWindowMs ?? DEFAULT_LATENESS_WINDOW_MS);
  const range = `[${request.from.toISOString()}, ${request.to.toISOString()})`;
  const firstByKey = new Map<string, NormalizedEvent>();
  let repeated = 0;
  for (const { index, event } of events) {
    if (event.featureId !== request.featureId) {
      rejected.push({ index, code: 'OUTSIDE_BACKFILL', message: 'The event is for another feature than the backfill’s.' });
    } else if (event.occurredAt < request.from || event.occurredAt >= request.to) {
      rejected.push({ index, code: 'OUTSIDE_BACKFILL', message: `\`timestamp\` ${event.occurredAt.toISOString()} is outside the backfill's range ${range}.` });
    } else if (firstByKey.has(event.idempotencyKey)) {
      if (firstByKey.get(event.idempotencyKey)!.contentHash === event.contentHash) repeated++;
      else rejected.push({ index, code: 'DUPLICATE_MISMATCH', message: `Idempotency key "${event.idempotencyKey}" appears twice in the backfill with different content.` });
    } else firstByKey.set(event.idempotencyKey, event);
  }
  const refuse = (list: IngestRejection[]) =>
    new CorrectionRefused('BACKFILL_REJECTED', `${list.length} event${list.length > 1 ? 's were' : ' was'} rejected: the backfill was not applied (fix them and send it again).`, {
      rejected: list.sort((a, b) => a.index - b.index),
    });
  if (rejected.length) throw refuse(rejected);
  const indexOf = new Map(events.map(({ index, event }) => [event.idempotencyKey, index]));
  const batch = [...firstByKey.values()].sort((a, b) => byCodeUnits(a.idempotencyKey, b.idempotencyKey));

  return runCorrection(prisma, target, now, async (tx) => {
    const subtree = await subtreeWorkspaces(tx, target);
    const inScope = (row: StoredEvent) => !subtree || (row.workspaceId !== null && subtree.has(row.workspaceId));
    // REPLACE: the range's events in scope, locked; any of them not re-sent is voided.
    const replaced =
      request.mode === 'REPLACE'
        ? (
            await tx.$queryRawUnsafe<StoredEvent[]>(
              `SELECT ${EVENT_COLUMNS} FROM "UsageEvent"
               WHERE "realmId" = $1::uuid AND "featureId" = $2::uuid AND "occurredAt" >= $3::timestamptz AND "occurredAt" < $4::timestamptz
               ORDER BY "idempotencyKey" FOR UPDATE`,
              target.realmId,
              request.featureId,
              request.from.toISOString(),
              request.to.toISOString(),
            )
          ).filter(inScope)
        : [];
    const replacedByKey = new Map(replaced.map((row) => [row.idempotencyKey, row]));
    const inserted = batch.length ? await insertEvents(tx, target.realmId, batch) : new Set<string>();
    const existing = batch.filter((e) => !inserted.has(e.idempotencyKey));
    const stored = new Map(
      existing.length
        ? (
            await tx.$queryRawUnsafe<StoredEvent[]>(
              `SELECT ${EVENT_COLUMNS} FROM "UsageEvent" WHERE "realmId" = $1::uuid AND "idempotencyKey" = ANY($2::text[]) ORDER BY "idempotencyKey" FOR UPDATE`,
              target.realmId,
              existing.map((e) => e.idempotencyKey),
            )
          ).map((row) => [row.idempotencyKey, row])
        : [],
    );
    const conflicts: IngestRejection[] = [];
    const overwrite: NormalizedEvent[] = [];
    let unchanged = repeated;
    for (const event of existing) {
      const row = stored.get(event.idempotencyKey)!;
      if (replacedByKey.has(event.idempotencyKey)) {
        if (row.contentHash === event.contentHash && !row.voidedAt) unchanged++;
        else overwrite.push(event);
      } else if (request.mode === 'ADD' && row.contentHash === event.contentHash && !row.voidedAt && inScope(row)) unchanged++;
      else {
        conflicts.push({
          index: indexOf.get(event.idempotencyKey)!,
          code: 'DUPLICATE_MISMATCH',
          message: `Idempotency key "${event.idempotencyKey}" is already used by ${request.mode === 'REPLACE' ? "an event outside the backfill's feature, range or scope" : row.voidedAt ? 'a voided event' : 'an event with other content'}.`,
        });
      }
    }
    if (conflicts.length) throw refuse(conflicts);
    await overwriteEvents(tx, target.realmId, overwrite);
    const resent = new Set(batch.map((e) => e.idempotencyKey));
    const toVoid = replaced.filter((row) => !row.voidedAt && !resent.has(row.idempotencyKey));
    if (toVoid.length) {
      await tx.$executeRawUnsafe(`UPDATE "UsageEvent" e SET "voidedAt" = $2::timestamptz FROM unnest($1::bigint[], $3::date[]) AS v(id, "receivedOn")
         WHERE e.id = v.id AND e."receivedOn" = v."receivedOn"`,
        toVoid.map((row) => String(row.id)),
        now.toISOString(),
        toVoid.map((row) => row.receivedOn),
      );
    }
    // REPLACE also resets buckets of the range that no event explains (imported aggregates).
    const rangeBuckets =
      request.mode === 'REPLACE'
        ? (
            await tx.usageHourly.findMany({
              where: {
                realmId: target.realmId,
                featureId: request.featureId,
                hour: { gte: request.from, lt: request.to },
                ...(subtree ? { workspaceId: { in: [...subtree] } } : {}),
              },
            })
          ).map((row) => bucketOf({ ...row, occurredAt: row.hour }))
        : [];
    const changed = await recomputeBuckets(tx, target.realmId, [
      ...rangeBuckets,
      ...replaced.map(bucketOf),
      ...batch.filter((e) => inserted.has(e.idempotencyKey)).map(bucketOfNormalized),
      ...overwrite.map(bucketOfNormalized),
    ]);
    return finish(
      tx,
      target,
      options,
      now,
      changed,
      { added: inserted.size, amended: overwrite.length, voided: toVoid.length, unchanged },
      {
        action: 'usage.backfill',
        featureId: request.featureId,
        details: { mode: request.mode, from: request.from, to: request.to, added: inserted.size, amended: overwrite.length, voided: toVoid.length, unchanged },
      },
    );
  });
}

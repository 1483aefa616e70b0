import type { Transaction } from '@prisma/driver-adapter-utils';
import type { PrismaClient } from '../generated/prisma/client.js';
import { Prisma } from '../generated/prisma/client.js';
import { decodeId } from '../global-id.js';
import { floorToHour, HOUR_MS } from '../usage/time.js';
import { DIMENSION_NAMES, dimensionKey } from '../usage/dimension-key.js';
import { afterBatchCommitted } from '../quota/evaluate.js';
import { publishUsageChanged } from '../live/publish.js';
import { withDriverTransaction } from '../db/adapters.js';
import { DEFAULT_LATENESS_WINDOW_MS } from './lateness.js';
import { usageWritten } from '../usage/report-cache.js';
import { visibleApiKeys, visibleApps, visibleDatastreams, visibleProjects, visibleWorkspaces } from '../schema/visibility.js';
import {
  canonicalQuantity,
  contentHashOf,
  decimalOfNanos,
  DIMENSION_FIELDS,
  DIMENSION_TYPENAME,
  EventRejection,
  isoMillisOf,
  nanosOf,
  nanosOfText,
  parseQuantity,
  parseTimestamp,
  readEventFields,
  type DimensionField,
  type FieldsOfEvent,
  type IngestErrorCode,
  type NormalizedEvent,
} from './event.js';

export type { IngestErrorCode, IngestEventInput } from './event.js';

export interface IngestRejection {
  index: number;
  code: IngestErrorCode;
  message: string;
}

export interface IngestResult {
  accepted: number;
  duplicates: number;
  rejected: IngestRejection[];
}

/** Events per call of `ingestBatch` (and per transaction). */
export const MAX_BATCH = 5000;
export { DEFAULT_LATENESS_WINDOW_MS } from './lateness.js';

export interface IngestTarget {
  realmId: string;
  /** A workspace-scoped key may only attribute usage to its own subtree. */
  workspaceId: string | null;
}

export interface IngestOptions {
  now?: Date;
  latenessWindowMs?: number;
}

type Db = PrismaClient | Prisma.TransactionClient;

/**
 * The dimension ids of a batch the key may see (`node(id)` would answer them): in its realm, and its
 * subtree when scoped; each with whether it is archived (closed to new usage).
 */
async function knownDimensions(db: Db, target: IngestTarget, wanted: Record<DimensionField, Set<string>>) {
  const ids = (field: DimensionField) => ({ in: [...wanted[field]] });
  const caller = { viewer: target };
  const select = { id: true, archivedAt: true } as const;
  const [workspaces, datastreams, projects, apps, apiKeys] = await Promise.all([
    wanted.workspaceId.size ? db.workspace.findMany({ where: { id: ids('workspaceId'), AND: [visibleWorkspaces(caller)] }, select }) : [],
    wanted.datastreamId.size ? db.datastream.findMany({ where: { id: ids('datastreamId'), AND: [visibleDatastreams(caller)] }, select }) : [],
    wanted.projectId.size ? db.project.findMany({ where: { id: ids('projectId'), AND: [visibleProjects(caller)] }, select }) : [],
    wanted.appId.size ? db.app.findMany({ where: { id: ids('appId'), AND: [visibleApps(caller)] }, select }) : [],
    wanted.apiKeyId.size ? db.apiKey.findMany({ where: { id: ids('apiKeyId'), AND: [visibleApiKeys(caller)] }, select: { id: true } }) : [],
  ]);
  /** id → archived. */
  const known = (rows: { id: string; archivedAt?: Date | null }[]) => new Map(rows.map((row) => [row.id, Boolean(row.archivedAt)]));
  return {
    workspaceId: known(workspaces),
    datastreamId: known(datastreams),
    projectId: known(projects),
    appId: known(apps),
    apiKeyId: known(apiKeys),
  } satisfies Record<DimensionField, Map<string, boolean>>;
}

export interface ParsedBatch {
  events: { index: number; event: NormalizedEvent }[];
  rejected: IngestRejection[];
}

export async function parseBatch(db: Db, target: IngestTarget, raw: unknown[], now: Date, latenessWindowMs: number): Promise<ParsedBatch> {
  const features = new Map((await db.feature.findMany({ where: { realmId: target.realmId } })).map((f) => [f.key, f]));
  const rejected: IngestRejection[] = [];
  const reject = (index: number, error: unknown) => {
    if (error instanceof EventRejection) rejected.push({ index, code: error.code, message: error.message });
    else rejected.push({ index, code: 'INVALID_EVENT', message: String((error as Error)?.message ?? error) });
  };

  const wanted = Object.fromEntries(DIMENSION_FIELDS.map((f) => [f, new Set<string>()])) as Record<DimensionField, Set<string>>;
  // A batch names few distinct dimensions many times: each global id is decoded (and checked) once.
  const decodedIds = new Map<string, { typename: string; id: string } | null>();
  const rawIdOf = (field: DimensionField, globalId: string | null): string | null => {
    if (!globalId) return null;
    let decoded = decodedIds.get(globalId);
    if (decoded === undefined) {
      try {
        decoded = decodeId(globalId);
      } catch {
        decoded = null;
      }
      decodedIds.set(globalId, decoded);
    }
    if (!decoded) throw new EventRejection('UNKNOWN_DIMENSION', `\`${field}\` "${globalId}" is not a valid ID.`);
    if (decoded.typename !== DIMENSION_TYPENAME[field]) {
      throw new EventRejection('UNKNOWN_DIMENSION', `\`${field}\` takes a ${DIMENSION_TYPENAME[field]} id; "${globalId}" is a ${decoded.typename}.`);
    }
    wanted[field].add(decoded.id);
    return decoded.id;
  };
  const firstPass: { index: number; fields: FieldsOfEvent; dimensionIds: Record<DimensionField, string | null> }[] = [];
  for (let index = 0; index < raw.length; index++) {
    try {
      const fields = readEventFields(raw[index]);
      const dimensions = fields.dimensions;
      // In DIMENSION_FIELDS order: the first bad id is the one reported.
      const dimensionIds: Record<DimensionField, string | null> = {
        workspaceId: rawIdOf('workspaceId', dimensions.workspaceId),
        datastreamId: rawIdOf('datastreamId', dimensions.datastreamId),
        projectId: rawIdOf('projectId', dimensions.projectId),
        appId: rawIdOf('appId', dimensions.appId),
        apiKeyId: rawIdOf('apiKeyId', dimensions.apiKeyId),
      };
      firstPass.push({ index, fields, dimensionIds });
    } catch (error) {
      reject(index, error);
    }
  }

  const known = await knownDimensions(db, target, wanted);
  const events: ParsedBatch['events'] = [];
  // Hours repeat within a batch: one Date per hour.
  const hours = new Map<number, Date>();
  for (const { index, fields, dimensionIds } of firstPass) {
    try {
      const feature = features.get(fields.feature);
      if (!feature) throw new EventRejection('UNKNOWN_FEATURE', `No feature with key "${fields.feature}" in this realm.`);
      if (feature.archivedAt) throw new EventRejection('ARCHIVED_DIMENSION', `Feature "${feature.key}" is archived: it takes no new usage.`);
      const occurredAt = parseTimestamp(fields.timestamp, now, latenessWindowMs);
      const unique = feature.aggregation === 'UNIQUE_COUNT';
      if (unique && !fields.uniqueKey) throw new EventRejection('MISSING_UNIQUE_KEY', `Feature "${feature.key}" counts unique keys: \`uniqueKey\` is required.`);
      const defaultOne = unique && (fields.quantity === undefined || fields.quantity === null);
      const quantityText = defaultOne ? '1' : canonicalQuantity(fields.quantity);
      // parseQuantity throws the precise rejection for what canonicalQuantity does not take.
      const quantity = quantityText === null ? parseQuantity(fields.quantity) : new Prisma.Decimal(quantityText);
      for (const field of DIMENSION_FIELDS) {
        const id = dimensionIds[field];
        if (!id) continue;
        const archived = known[field].get(id);
        if (archived === undefined) {
          throw new EventRejection('UNKNOWN_DIMENSION', `\`${field}\` "${fields.dimensions[field]}" does not exist in this realm${target.workspaceId ? " or outside the key's workspace" : ''}.`);
        }
        if (archived) {
          throw new EventRejection('ARCHIVED_DIMENSION', `\`${field}\` "${fields.dimensions[field]}" is archived: it takes no new usage (its past usage stays reportable).`);
        }
      }
      if (target.workspaceId && !dimensionIds.workspaceId) {
        throw new EventRejection('UNKNOWN_DIMENSION', 'A key scoped to a workspace must attribute usage to a workspace of its subtree (`workspaceId`).');
      }
      let hour = hours.get(Math.floor(occurredAt.getTime() / HOUR_MS));
      if (!hour) hours.set(Math.floor(occurredAt.getTime() / HOUR_MS), (hour = floorToHour(occurredAt)));
      // One literal with every field (no spread): a spread-built object of this size ends up in V8's
      // slow dictionary mode, and every later read of it (parameters, buckets) pays for that.
      const event: NormalizedEvent = {
        idempotencyKey: fields.idempotencyKey,
        featureId: feature.id,
        aggregation: feature.aggregation,
        occurredAt,
        hour,
        quantity,
        workspaceId: dimensionIds.workspaceId,
        datastreamId: dimensionIds.datastreamId,
        projectId: dimensionIds.projectId,
        appId: dimensionIds.appId,
        apiKeyId: dimensionIds.apiKeyId,
        billingTag: fields.billingTag,
        resource: fields.resource,
        uniqueKey: unique ? fields.uniqueKey : null,
        contentHash: '',
        dimensionKey: '',
        quantityText: quantityText ?? quantity.toFixed(),
        // The text as sent when it is the toISOString() form (isoMillisOf read it), else printed once.
        occurredAtText: typeof fields.timestamp === 'string' && isoMillisOf(fields.timestamp) !== null ? fields.timestamp : occurredAt.toISOString(),
      };
      event.contentHash = contentHashOf(event, event.quantityText);
      event.dimensionKey = dimensionKey(event);
      events.push({ index, event });
    } catch (error) {
      reject(index, error);
    }
  }
  return { events, rejected };
}

interface Bucket {
  featureId: string;
  aggregation: NormalizedEvent['aggregation'];
  hour: Date;
  dimensionKey: string;
  sample: NormalizedEvent;
  /** In billionths (the stored scale): sums of any number of events stay exact. */
  quantityNanos: bigint;
  latestAt: Date | null;
  eventCount: number;
  uniqueKeys: Set<string>;
}

/** Folds a batch's new events into per-bucket changes, by the feature's aggregation. */
export function bucketsOf(events: NormalizedEvent[]): Bucket[] {
  const buckets = new Map<string, Bucket>();
  for (const event of events) {
    const key = event.dimensionKey ?? dimensionKey(event);
    const id = `${event.featureId}|${event.hour.getTime()}|${key}`;
    let bucket = buckets.get(id);
    if (!bucket) {
      bucket = {
        featureId: event.featureId,
        aggregation: event.aggregation,
        hour: event.hour,
        dimensionKey: key,
        sample: event,
        quantityNanos: quantityNanosOf(event),
        latestAt: event.occurredAt,
        eventCount: 1,
        uniqueKeys: new Set(event.uniqueKey ? [event.uniqueKey] : []),
      };
      buckets.set(id, bucket);
      continue;
    }
    bucket.eventCount += 1;
    if (event.uniqueKey) bucket.uniqueKeys.add(event.uniqueKey);
    const nanos = quantityNanosOf(event);
    if (bucket.aggregation === 'MAX') {
      if (nanos > bucket.quantityNanos) bucket.quantityNanos = nanos;
    } else if (bucket.aggregation === 'LATEST') {
      // Ties go to the event received last, as they do across batches.
      if (event.occurredAt >= bucket.latestAt!) bucket.quantityNanos = nanos;
    } else bucket.quantityNanos += nanos;
    if (event.occurredAt > bucket.latestAt!) bucket.latestAt = event.occurredAt;
  }
  // A fixed order, so concurrent batches lock bucket rows in the same order and cannot deadlock.
  return [...buckets.values()].sort(
    (a, b) => byCodeUnits(a.featureId, b.featureId) || a.hour.getTime() - b.hour.getTime() || byCodeUnits(a.dimensionKey, b.dimensionKey),
  );
}

function quantityNanosOf(event: NormalizedEvent): bigint {
  return event.quantityText === undefined ? nanosOf(event.quantity) : nanosOfText(event.quantityText);
}

export const DIMENSION_COLUMNS = DIMENSION_NAMES.map((name) => `"${name}"`).join(', ');

/**
 * A PostgreSQL array literal (`{"a","b",NULL}`) of text values, for a `$n::type[]` parameter: the
 * driver then sends one string instead of checking and escaping every element of a JS array (for a
 * batch, 15 arrays of 5,000 values: the largest cost of the Prisma call).
 */
export function arrayLiteral(values: readonly (string | null | undefined)[]): string {
  let literal = '{';
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i > 0) literal += ',';
    if (value === null || value === undefined) literal += 'NULL';
    else literal += `"${value.includes('"') || value.includes('\\') ? value.replace(/["\\]/g, '\\$&') : value}"`;
  }
  return `${literal}}`;
}

/** The events as the parameters $2…$9 (and the dimension arrays after them) of the unnest() statements that write them (array literals). */
export function eventParameters(events: NormalizedEvent[]): string[] {
  return [
    arrayLiteral(events.map((e) => e.idempotencyKey)),
    arrayLiteral(events.map((e) => e.featureId)),
    arrayLiteral(events.map((e) => e.occurredAtText ?? e.occurredAt.toISOString())),
    arrayLiteral(events.map((e) => e.quantityText ?? e.quantity.toFixed())),
    arrayLiteral(events.map((e) => e.uniqueKey)),
    arrayLiteral(events.map((e) => e.dimensionKey ?? dimensionKey(e))),
    arrayLiteral(events.map((e) => e.contentHash)),
    ...dimensionArrays(events),
  ];
}

/** One array literal per dimension, in DIMENSION_NAMES order (the `$D1…$D7` parameters). */
export function dimensionArrays(rows: NormalizedEvent[]): string[] {
  return DIMENSION_NAMES.map((name) => arrayLiteral(rows.map((e) => e[name])));
}
export const DIMENSION_CASTS = '$D1::uuid[], $D2::uuid[], $D3::uuid[], $D4::uuid[], $D5::text[], $D6::text[], $D7::uuid[]';
export function withDimensionParams(sql: string, first: number) {
  return sql.replace(/\$D(\d)/g, (_m, n: string) => `$${first + Number(n) - 1}`);
}

/**
 * The statements of a batch's transaction. Sent to the driver adapter's Transaction directly when
 * the client exposes it (src/db/adapters.ts `exposeTransactions`): the same connection and
 * transaction as Prisma's `tx`, without Prisma's JSON round trip of raw parameters and results
 * (every parameter here is one text value: an array literal, a uuid). Rows come back as arrays in
 * column order.
 */
export interface TxSql {
  rows(sql: string, params: string[]): Promise<unknown[][]>;
  execute(sql: string, params: string[]): Promise<number>;
}

const TEXT_ARG = { scalarType: 'string', arity: 'scalar' } as const;

export function driverSql(transaction: Transaction): TxSql {
  const query = (sql: string, args: string[]) => ({ sql, args, argTypes: args.map(() => TEXT_ARG) });
  return {
    rows: async (sql, params) => (await transaction.queryRaw(query(sql, params))).rows,
    execute: (sql, params) => transaction.executeRaw(query(sql, params)),
  };
}

export function prismaSql(tx: Prisma.TransactionClient): TxSql {
  return {
    rows: async (sql, params) => (await tx.$queryRawUnsafe<Record<string, unknown>[]>(sql, ...params)).map((row) => Object.values(row)),
    execute: (sql, params) => tx.$executeRawUnsafe(sql, ...params),
  };
}

/** A fixed order for the rows a transaction locks, shared by every batch, so concurrent batches cannot deadlock. */
export const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * `events` must be in `idempotencyKey` order (see `ingestBatch`): the rows are inserted, and their keys locked, in that order.
 *
 * UsageEvent is partitioned by `receivedOn` (the UTC day of the transaction's start), and a unique
 * index of a partitioned table must contain the partition key: (realmId, idempotencyKey, receivedOn).
 * So that a key is still stored at most once across days:
 * - same day: concurrent inserts of one key collide in that unique index (ON CONFLICT DO NOTHING);
 * - earlier days: a key already stored on a retained earlier day is not inserted (NOT EXISTS);
 * - midnight: the transaction holds its day's UsageEventDay row FOR SHARE; the first transaction of
 *   a later day closes every open earlier day (UPDATE, which waits for those days' transactions to
 *   finish), so their keys are committed and visible to its NOT EXISTS; a transaction of a day closed
 *   meanwhile (it began before midnight) fails with 40001 and `ingestBatch` retries it on the new day.
 * Keys on days dropped by retention are not checked: EVENT_RETENTION_DAYS exceeds the lateness window,
 * so an event that old is TOO_LATE before it gets here.
 */
export async function insertEvents(db: TxSql | Prisma.TransactionClient, realmId: string, events: NormalizedEvent[]): Promise<Set<string>> {
  const sql = 'rows' in db ? db : prismaSql(db);
  const today = `(now() AT TIME ZONE 'UTC')::date`;
  for (;;) {
    const [row] = await sql.rows(
      `WITH mine AS (SELECT closed FROM "UsageEventDay" WHERE day = ${today} FOR SHARE)
       SELECT (SELECT closed FROM mine) AS closed,
              EXISTS (SELECT 1 FROM "UsageEventDay" WHERE day < ${today} AND NOT closed) AS "openBefore"`,
      [],
    );
    const day = { closed: row![0] as boolean | null, openBefore: row![1] as boolean };
    if (day.closed === null) {
      await sql.execute(`INSERT INTO "UsageEventDay" (day) VALUES (${today}) ON CONFLICT DO NOTHING`, []);
      continue;
    }
    if (day.closed) {
      throw Object.assign(new Error('could not serialize: the ingestion began on a day of receipt closed since (midnight UTC); retry'), { code: '40001' });
    }
    if (day.openBefore) {
      await sql.execute(
        `UPDATE "UsageEventDay" SET closed = true
         WHERE day IN (SELECT day FROM "UsageEventDay" WHERE day < ${today} AND NOT closed ORDER BY day FOR UPDATE)`,
        [],
      );
    }
    break;
  }
  const columns = `"idempotencyKey", "featureId", "occurredAt", "quantity", "uniqueKey", "dimensionKey", "contentHash", ${DIMENSION_COLUMNS}`;
  const insert = withDimensionParams(
    `INSERT INTO "UsageEvent" ("realmId", "receivedOn", ${columns})
     SELECT $1::uuid, ${today}, ${columns}
     FROM unnest($2::text[], $3::uuid[], $4::timestamptz[], $5::numeric[], $6::text[], $7::text[], $8::text[], ${DIMENSION_CASTS})
       WITH ORDINALITY AS e(${columns}, "position")
     WHERE NOT EXISTS (
       SELECT 1 FROM "UsageEvent" earlier
       WHERE earlier."realmId" = $1::uuid AND earlier."idempotencyKey" = e."idempotencyKey" AND earlier."receivedOn" < ${today})
     ORDER BY "position"
     ON CONFLICT ("realmId", "idempotencyKey", "receivedOn") DO NOTHING
     RETURNING "idempotencyKey"`,
    9,
  );
  const inserted = await sql.rows(insert, [realmId, ...eventParameters(events)]);
  const keys = new Set<string>();
  for (const row of inserted) keys.add(row[0] as string);
  return keys;
}

async function upsertBuckets(sql: TxSql, realmId: string, buckets: Bucket[]) {
  const plain = buckets.filter((b) => b.aggregation !== 'UNIQUE_COUNT');
  const unique = buckets.filter((b) => b.aggregation === 'UNIQUE_COUNT');
  const samples = (list: Bucket[]) => list.map((b) => b.sample);
  if (plain.length) {
    await sql.execute(
      withDimensionParams(
        `INSERT INTO "UsageHourly" ("realmId", "featureId", "hour", "dimensionKey", "quantity", "latestAt", "eventCount", ${DIMENSION_COLUMNS}, "updatedAt")
         SELECT $1::uuid, b.*, now() FROM unnest($2::uuid[], $3::timestamptz[], $4::text[], $5::numeric[], $6::timestamptz[], $7::bigint[], ${DIMENSION_CASTS}) AS b
         ON CONFLICT ("realmId", "featureId", "hour", "dimensionKey") DO UPDATE SET
           "quantity" = CASE (SELECT f."aggregation" FROM "Feature" f WHERE f.id = EXCLUDED."featureId")
             WHEN 'MAX' THEN GREATEST("UsageHourly"."quantity", EXCLUDED."quantity")
             WHEN 'LATEST' THEN CASE WHEN "UsageHourly"."latestAt" IS NULL OR EXCLUDED."latestAt" >= "UsageHourly"."latestAt"
                                     THEN EXCLUDED."quantity" ELSE "UsageHourly"."quantity" END
             ELSE "UsageHourly"."quantity" + EXCLUDED."quantity" END,
           "latestAt" = GREATEST("UsageHourly"."latestAt", EXCLUDED."latestAt"),
           "eventCount" = "UsageHourly"."eventCount" + EXCLUDED."eventCount",
           "revision" = "UsageHourly"."revision" + 1,
           "updatedAt" = now()`,
        8,
      ),
      [
        realmId,
        arrayLiteral(plain.map((b) => b.featureId)),
        arrayLiteral(plain.map((b) => b.hour.toISOString())),
        arrayLiteral(plain.map((b) => b.dimensionKey)),
        arrayLiteral(plain.map((b) => decimalOfNanos(b.quantityNanos))),
        arrayLiteral(plain.map((b) => b.latestAt?.toISOString() ?? null)),
        arrayLiteral(plain.map((b) => String(b.eventCount))),
        ...dimensionArrays(samples(plain)),
      ],
    );
  }
  if (unique.length) {
    // Lock (or create) the bucket rows first: concurrent batches for one bucket then count keys one
    // after the other, each seeing the other's committed keys.
    await sql.execute(
      withDimensionParams(
        `INSERT INTO "UsageHourly" ("realmId", "featureId", "hour", "dimensionKey", "quantity", "eventCount", ${DIMENSION_COLUMNS}, "updatedAt")
         SELECT $1::uuid, b."featureId", b."hour", b."dimensionKey", 0, b."eventCount", b."workspaceId", b."datastreamId", b."projectId", b."appId", b."billingTag", b."resource", b."apiKeyId", now()
         FROM unnest($2::uuid[], $3::timestamptz[], $4::text[], $5::bigint[], ${DIMENSION_CASTS})
           AS b("featureId", "hour", "dimensionKey", "eventCount", "workspaceId", "datastreamId", "projectId", "appId", "billingTag", "resource", "apiKeyId")
         ON CONFLICT ("realmId", "featureId", "hour", "dimensionKey") DO UPDATE SET
           "eventCount" = "UsageHourly"."eventCount" + EXCLUDED."eventCount",
           "revision" = "UsageHourly"."revision" + 1,
           "updatedAt" = now()`,
        6,
      ),
      [
        realmId,
        arrayLiteral(unique.map((b) => b.featureId)),
        arrayLiteral(unique.map((b) => b.hour.toISOString())),
        arrayLiteral(unique.map((b) => b.dimensionKey)),
        arrayLiteral(unique.map((b) => String(b.eventCount))),
        ...dimensionArrays(samples(unique)),
      ],
    );
    const keys = unique.flatMap((b) => [...b.uniqueKeys].sort(byCodeUnits).map((key) => ({ bucket: b, key })));
    await sql.execute(
      withDimensionParams(
        `INSERT INTO "UsageUniqueKey" ("realmId", "featureId", "hour", "dimensionKey", "key", ${DIMENSION_COLUMNS})
         SELECT $1::uuid, k.* FROM unnest($2::uuid[], $3::timestamptz[], $4::text[], $5::text[], ${DIMENSION_CASTS}) AS k
         ON CONFLICT DO NOTHING`,
        6,
      ),
      [
        realmId,
        arrayLiteral(keys.map((k) => k.bucket.featureId)),
        arrayLiteral(keys.map((k) => k.bucket.hour.toISOString())),
        arrayLiteral(keys.map((k) => k.bucket.dimensionKey)),
        arrayLiteral(keys.map((k) => k.key)),
        ...dimensionArrays(keys.map((k) => k.bucket.sample)),
      ],
    );
    await sql.execute(
      `UPDATE "UsageHourly" h SET "quantity" = (
         SELECT count(*) FROM "UsageUniqueKey" k
         WHERE k."realmId" = h."realmId" AND k."featureId" = h."featureId" AND k."hour" = h."hour" AND k."dimensionKey" = h."dimensionKey")
       FROM unnest($2::uuid[], $3::timestamptz[], $4::text[]) AS b("featureId", "hour", "dimensionKey")
       WHERE h."realmId" = $1::uuid AND h."featureId" = b."featureId" AND h."hour" = b."hour" AND h."dimensionKey" = b."dimensionKey"`,
      [
        realmId,
        arrayLiteral(unique.map((b) => b.featureId)),
        arrayLiteral(unique.map((b) => b.hour.toISOString())),
        arrayLiteral(unique.map((b) => b.dimensionKey)),
      ],
    );
  }
}

/** The distinct feature-hours new events went to (what quota evaluation and live updates look at). */
function touchedHoursOf(fresh: { event: NormalizedEvent }[]): { featureId: string; hour: Date }[] {
  const touched = new Map<string, { featureId: string; hour: Date }>();
  for (const { event } of fresh) {
    const id = `${event.featureId}|${event.hour.getTime()}`;
    if (!touched.has(id)) touched.set(id, { featureId: event.featureId, hour: event.hour });
  }
  return [...touched.values()];
}

/** Attempts of a batch's transaction when PostgreSQL reports a deadlock or a serialization failure. */
export const MAX_ATTEMPTS = 5;
const RETRYABLE_CODES = new Set(['40P01', '40001']);
const RETRYABLE_MESSAGE = /40P01|40001|deadlock detected|could not serialize/;

/** A deadlock or serialization failure, however deep in the driver adapter's error chain it is. */
export function isRetryable(error: unknown): boolean {
  for (let cause = error, depth = 0; cause && depth < 5; depth++) {
    // A driver adapter's error (statements sent to its transaction directly) carries the SQLSTATE as `originalCode`.
    const { code, message, meta, originalCode } = cause as { code?: unknown; message?: unknown; meta?: { code?: unknown }; originalCode?: unknown };
    if (
      RETRYABLE_CODES.has(String(code)) ||
      RETRYABLE_CODES.has(String(meta?.code)) ||
      RETRYABLE_CODES.has(String(originalCode)) ||
      RETRYABLE_MESSAGE.test(String(message))
    ) {
      return true;
    }
    cause = (cause as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Ingests up to MAX_BATCH events into the target realm. Invalid events are rejected one by one
 * (with their index and a code); the valid ones are written in one transaction, so a failure
 * leaves no trace. An idempotency key's content is decided by the stored event, or, for a key new
 * to the realm, by its first valid occurrence in the batch: every other occurrence with the same
 * content is a duplicate, with other content a DUPLICATE_MISMATCH.
 */
export async function ingestBatch(prisma: PrismaClient, target: IngestTarget, raw: unknown[], options: IngestOptions = {}): Promise<IngestResult> {
  if (raw.length > MAX_BATCH) throw new RangeError(`at most ${MAX_BATCH} events per batch`);
  const now = options.now ?? new Date();
  const { events, rejected } = await parseBatch(prisma, target, raw, now, options.latenessWindowMs ?? DEFAULT_LATENESS_WINDOW_MS);

  const firstByKey = new Map<string, { index: number; event: NormalizedEvent }>();
  const repeats: { index: number; event: NormalizedEvent }[] = [];
  for (const item of events) {
    if (firstByKey.has(item.event.idempotencyKey)) repeats.push(item);
    else firstByKey.set(item.event.idempotencyKey, item);
  }
  // Key order: every batch locks the keys it inserts in the same order (no deadlocks).
  const candidates = [...firstByKey.values()].sort((a, b) => byCodeUnits(a.event.idempotencyKey, b.event.idempotencyKey));

  for (let attempt = 1; ; attempt++) {
    try {
      const result = await withDriverTransaction((slot) =>
        prisma.$transaction(
          async (tx) => {
            // The driver's transaction when the client exposes it (the same connection); else Prisma's.
            const sql = slot.transaction ? driverSql(slot.transaction) : prismaSql(tx);
            const inserted = candidates.length ? await insertEvents(sql, target.realmId, candidates.map((c) => c.event)) : new Set<string>();
            const fresh = candidates.filter((c) => inserted.has(c.event.idempotencyKey));
            const conflicting = candidates.filter((c) => !inserted.has(c.event.idempotencyKey));
            const storedKeys = [...new Set([...conflicting, ...repeats].map((c) => c.event.idempotencyKey))].filter((key) => !inserted.has(key));
            // One array parameter (a Prisma `in` list would send one parameter per key).
            const stored = new Map<string, string>();
            if (storedKeys.length) {
              // Only the partitions of today and earlier days (pruned as the statement starts): a key is
              // stored on the UTC day of its transaction, never a later one, and a re-sent upload would
              // otherwise probe the index of every partition made ahead.
              const rows = await sql.rows(
                `SELECT "idempotencyKey", "contentHash" FROM "UsageEvent"
                 WHERE "realmId" = $1::uuid AND "idempotencyKey" = ANY($2::text[]) AND "receivedOn" <= (now() AT TIME ZONE 'UTC')::date`,
                [target.realmId, arrayLiteral(storedKeys)],
              );
              for (const row of rows) stored.set(row[0] as string, row[1] as string);
            }
            if (fresh.length) await upsertBuckets(sql, target.realmId, bucketsOf(fresh.map((c) => c.event)));
            let duplicates = 0;
            const mismatches: IngestRejection[] = [];
            const compare = (item: { index: number; event: NormalizedEvent }, storedHash: string | undefined) => {
              if (storedHash === item.event.contentHash) duplicates += 1;
              else {
                mismatches.push({
                  index: item.index,
                  code: 'DUPLICATE_MISMATCH',
                  message: `Idempotency key "${item.event.idempotencyKey}" was already used for an event with other content; the first event stays.`,
                });
              }
            };
            const decidingHash = (key: string) => (inserted.has(key) ? firstByKey.get(key)!.event.contentHash : stored.get(key));
            for (const item of [...conflicting, ...repeats]) compare(item, decidingHash(item.event.idempotencyKey));
            return { accepted: fresh.length, duplicates, mismatches, touched: touchedHoursOf(fresh) };
          },
          { timeout: 120_000, maxWait: 60_000 },
        ),
      );
      usageWritten(target.realmId);
      // After the commit, outside the transaction: quota rules and alerts (never fails the ingestion).
      if (result.touched.length) await afterBatchCommitted(prisma, target.realmId, result.touched, now);
      publishUsageChanged(prisma, target.realmId, candidates.map((c) => c.event), result.touched);
      return {
        accepted: result.accepted,
        duplicates: result.duplicates,
        rejected: [...rejected, ...result.mismatches].sort((a, b) => a.index - b.index),
      };
    } catch (error) {
      if (attempt >= MAX_ATTEMPTS || !isRetryable(error)) throw error;
      // Lock ordering rules deadlocks out between batches; this covers what is left (other writers).
      await new Promise((resolve) => setTimeout(resolve, attempt * 20 + Math.random() * 50));
    }
  }
}

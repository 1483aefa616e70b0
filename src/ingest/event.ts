import { createHash } from 'node:crypto';
import { Prisma } from '../generated/prisma/client.js';
import type { Aggregation } from '../generated/prisma/enums.js';

/** Pure validation and normalisation of one raw usage event; nothing here touches the database. */

export type IngestErrorCode =
  | 'INVALID_EVENT'
  | 'UNKNOWN_FEATURE'
  | 'UNKNOWN_DIMENSION'
  | 'INVALID_QUANTITY'
  | 'INVALID_TIMESTAMP'
  | 'TIMESTAMP_IN_FUTURE'
  | 'TOO_LATE'
  | 'MISSING_UNIQUE_KEY'
  | 'DUPLICATE_MISMATCH';

export interface IngestEventInput {
  idempotencyKey: string;
  feature: string;
  timestamp: string;
  quantity?: string | null;
  workspaceId?: string | null;
  datastreamId?: string | null;
  projectId?: string | null;
  appId?: string | null;
  apiKeyId?: string | null;
  billingTag?: string | null;
  resource?: string | null;
  uniqueKey?: string | null;
}

export const DIMENSION_FIELDS = ['workspaceId', 'datastreamId', 'projectId', 'appId', 'apiKeyId'] as const;
export type DimensionField = (typeof DIMENSION_FIELDS)[number];
export const DIMENSION_TYPENAME: Record<DimensionField, string> = {
  workspaceId: 'Workspace',
  datastreamId: 'Datastream',
  projectId: 'Project',
  appId: 'App',
  apiKeyId: 'ApiKey',
};

export const MAX_FUTURE_MS = 5 * 60_000;
export const MAX_TEXT_LENGTH = 200;

export class EventRejection extends Error {
  constructor(
    readonly code: IngestErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** An event after validation: raw ids, a Decimal quantity, its hour. */
export interface NormalizedEvent {
  idempotencyKey: string;
  featureId: string;
  aggregation: Aggregation;
  occurredAt: Date;
  hour: Date;
  quantity: Prisma.Decimal;
  workspaceId: string | null;
  datastreamId: string | null;
  projectId: string | null;
  appId: string | null;
  apiKeyId: string | null;
  billingTag: string | null;
  resource: string | null;
  uniqueKey: string | null;
  contentHash: string;
}

// Up to 20 integer digits: the buckets hold numeric(38, 9), which sums of many events must fit.
const DECIMAL = /^\d{1,20}(\.\d{1,9})?$/;

function optionalText(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new EventRejection('INVALID_EVENT', `\`${field}\` must be a string.`);
  const trimmed = value.trim();
  if (trimmed.length > MAX_TEXT_LENGTH) throw new EventRejection('INVALID_EVENT', `\`${field}\` is longer than ${MAX_TEXT_LENGTH} characters.`);
  return trimmed === '' ? null : trimmed;
}

export function parseQuantity(value: unknown): Prisma.Decimal {
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof text !== 'string' || !DECIMAL.test(text.trim())) {
    throw new EventRejection('INVALID_QUANTITY', `\`quantity\` must be a non-negative decimal string with at most 20 digits and 9 decimals, e.g. "12.5" (got ${JSON.stringify(value)}).`);
  }
  return new Prisma.Decimal(text.trim());
}

export function parseTimestamp(value: unknown, now: Date, latenessWindowMs: number): Date {
  const parsed = typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value) ? new Date(value) : null;
  if (!parsed || Number.isNaN(parsed.getTime())) {
    throw new EventRejection('INVALID_TIMESTAMP', `\`timestamp\` must be an ISO 8601 date-time, e.g. "2026-11-22T10:15:00Z" (got ${JSON.stringify(value)}).`);
  }
  if (parsed.getTime() > now.getTime() + MAX_FUTURE_MS) {
    throw new EventRejection('TIMESTAMP_IN_FUTURE', `\`timestamp\` ${parsed.toISOString()} is more than 5 minutes in the future.`);
  }
  if (parsed.getTime() < now.getTime() - latenessWindowMs) {
    throw new EventRejection('TOO_LATE', `\`timestamp\` ${parsed.toISOString()} is older than the accepted lateness window (${Math.round(latenessWindowMs / 86_400_000)} days).`);
  }
  return parsed;
}

export interface FieldsOfEvent {
  idempotencyKey: string;
  feature: string;
  timestamp: unknown;
  quantity: unknown;
  dimensions: Record<DimensionField, string | null>;
  billingTag: string | null;
  resource: string | null;
  uniqueKey: string | null;
}

/** The shape checks every event gets before anything is looked up. */
export function readEventFields(raw: unknown): FieldsOfEvent {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new EventRejection('INVALID_EVENT', 'An event is a JSON object.');
  const event = raw as Record<string, unknown>;
  const idempotencyKey = optionalText(event.idempotencyKey, 'idempotencyKey');
  if (!idempotencyKey) throw new EventRejection('INVALID_EVENT', '`idempotencyKey` is required.');
  const feature = optionalText(event.feature, 'feature');
  if (!feature) throw new EventRejection('INVALID_EVENT', '`feature` (the feature key) is required.');
  const dimensions = Object.fromEntries(DIMENSION_FIELDS.map((field) => [field, optionalText(event[field], field)])) as Record<DimensionField, string | null>;
  return {
    idempotencyKey,
    feature,
    timestamp: event.timestamp,
    quantity: event.quantity,
    dimensions,
    billingTag: optionalText(event.billingTag, 'billingTag'),
    resource: optionalText(event.resource, 'resource'),
    uniqueKey: optionalText(event.uniqueKey, 'uniqueKey'),
  };
}

/** What makes two sends of one idempotency key "the same event". */
export function contentHashOf(event: Omit<NormalizedEvent, 'contentHash' | 'hour' | 'aggregation' | 'idempotencyKey'>): string {
  return createHash('sha256')
    .update(
      JSON.stringify([
        event.featureId,
        event.occurredAt.toISOString(),
        event.quantity.toFixed(),
        event.workspaceId,
        event.datastreamId,
        event.projectId,
        event.appId,
        event.apiKeyId,
        event.billingTag,
        event.resource,
        event.uniqueKey,
      ]),
    )
    .digest('hex');
}

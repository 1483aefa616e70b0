import { hash } from 'node:crypto';
import { DateTimeResolver } from 'graphql-scalars';
import { echoJson } from '../errors.js';
import { Prisma } from '../generated/prisma/client.js';
import type { Aggregation } from '../generated/prisma/enums.js';

/** Pure validation and normalisation of one raw usage event; nothing here touches the database. */

export type IngestErrorCode =
  | 'INVALID_EVENT'
  | 'UNKNOWN_FEATURE'
  | 'UNKNOWN_DIMENSION'
  | 'ARCHIVED_DIMENSION'
  | 'INVALID_QUANTITY'
  | 'INVALID_TIMESTAMP'
  | 'TIMESTAMP_IN_FUTURE'
  | 'TOO_LATE'
  | 'MISSING_UNIQUE_KEY'
  | 'DUPLICATE_MISMATCH'
  | 'UNKNOWN_FIELD'
  | 'OUTSIDE_BACKFILL';

export interface IngestEventInput {
  idempotencyKey: string;
  feature: string;
  timestamp: string | number;
  quantity?: string | number | null;
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
/** The most characters of any text field of an event (keys, feature, ids, tag, resource). */
export const MAX_TEXT_LENGTH = 256;
/** RFC 3339 with 9 decimals and an offset is 35 characters; anything much longer is not a timestamp. */
const MAX_TIMESTAMP_LENGTH = 64;

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
  /** `dimensionKey(event)`, when already computed (parseBatch): it is needed three times per event. */
  dimensionKey?: string;
  /** `quantity.toFixed()`, when already computed (parseBatch). */
  quantityText?: string;
  /** `occurredAt.toISOString()`, when already known (parseBatch: most timestamps arrive in that form). */
  occurredAtText?: string;
}

// Up to 20 integer digits: the buckets hold numeric(38, 9), which sums of many events must fit.
const DECIMAL = /^\d{1,20}(\.\d{1,9})?$/;

// C0 and C1 controls and DEL (PostgreSQL cannot store NUL in text; the others are never meant in a
// key, a tag or a resource), and UTF-16 halves without their other half (not encodable as UTF-8).
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function characterCount(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

// Any control character or any UTF-16 half: only then is the precise (slower) UNPRINTABLE run.
const MAYBE_UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\ud800-\udfff]/;

function optionalText(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new EventRejection('INVALID_EVENT', `\`${field}\` must be a string (got ${echoJson(value)}).`);
  const trimmed = value.trim();
  if (trimmed.length > MAX_TEXT_LENGTH && characterCount(trimmed) > MAX_TEXT_LENGTH) {
    throw new EventRejection('INVALID_EVENT', `\`${field}\` is longer than ${MAX_TEXT_LENGTH} characters.`);
  }
  if (!MAYBE_UNPRINTABLE.test(trimmed)) return trimmed === '' ? null : trimmed;
  const unprintable = UNPRINTABLE.exec(trimmed);
  if (unprintable) {
    const code = unprintable[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    throw new EventRejection(
      'INVALID_EVENT',
      `\`${field}\` contains U+${code} (a control character or half of a surrogate pair) at position ${unprintable.index + 1}: text fields take printable characters only.`,
    );
  }
  return trimmed === '' ? null : trimmed;
}

export function parseQuantity(value: unknown): Prisma.Decimal {
  if (typeof value === 'number') {
    // A JSON number is exact only as a whole number up to 2^53 − 1; anything else may already have been rounded.
    if (Number.isSafeInteger(value) && value >= 0) return new Prisma.Decimal(value);
    const why = !Number.isInteger(value)
      ? `a JSON fraction (${echoJson(value)}) is read as a binary float and may not be exact`
      : value < 0
        ? 'a quantity cannot be negative'
        : `a JSON integer above 2^53 − 1 (${Number.MAX_SAFE_INTEGER}) cannot be read exactly`;
    throw new EventRejection('INVALID_QUANTITY', `\`quantity\`: ${why}; send it as a string, e.g. "12.5" (non-negative, at most 20 digits and 9 decimals).`);
  }
  if (typeof value !== 'string' || !DECIMAL.test(value.trim())) {
    throw new EventRejection('INVALID_QUANTITY', `\`quantity\` must be a non-negative decimal string with at most 20 digits and 9 decimals, e.g. "12.5", or a JSON integer up to 2^53 − 1 (got ${echoJson(value)}).`);
  }
  return new Prisma.Decimal(value.trim());
}

/**
 * `parseQuantity(value).toFixed()` without a Decimal, for the values `parseQuantity` accepts
 * (a safe non-negative integer, or a string of at most 20 digits and 9 decimals): leading zeros of
 * the whole part and trailing zeros of the fraction dropped. null for anything else.
 */
export function canonicalQuantity(value: unknown): string | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? String(value) : null;
  if (typeof value !== 'string') return null;
  const text = value.trim();
  if (!DECIMAL.test(text)) return null;
  const dot = text.indexOf('.');
  let whole = dot < 0 ? text : text.slice(0, dot);
  let fraction = dot < 0 ? '' : text.slice(dot + 1);
  let start = 0;
  while (start < whole.length - 1 && whole.charCodeAt(start) === 0x30) start++;
  whole = whole.slice(start);
  let end = fraction.length;
  while (end > 0 && fraction.charCodeAt(end - 1) === 0x30) end--;
  fraction = fraction.slice(0, end);
  return fraction ? `${whole}.${fraction}` : whole;
}

/** The billionths of a canonical quantity string (see `canonicalQuantity`). */
export function nanosOfText(text: string): bigint {
  const dot = text.indexOf('.');
  if (dot < 0) return BigInt(text) * NANOS_PER_UNIT;
  return BigInt(text.slice(0, dot)) * NANOS_PER_UNIT + BigInt(text.slice(dot + 1).padEnd(9, '0'));
}

const NANOS_PER_UNIT = 1_000_000_000n;

/** A quantity (at most 9 decimals) in billionths, for exact sums: Prisma.Decimal arithmetic keeps only 20 digits. */
export function nanosOf(quantity: Prisma.Decimal): bigint {
  const [whole, fraction = ''] = quantity.toFixed().split('.');
  if (fraction.length > 9) throw new RangeError(`${quantity.toFixed()} has more than 9 decimals`);
  return BigInt(whole!) * NANOS_PER_UNIT + BigInt(fraction.padEnd(9, '0'));
}

/** The exact decimal string of a number of billionths (non-negative), e.g. 1500000000n -> "1.5". */
export function decimalOfNanos(nanos: bigint): string {
  const whole = nanos / NANOS_PER_UNIT;
  const fraction = (nanos % NANOS_PER_UNIT).toString().padStart(9, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : String(whole);
}

/** `2026-11-22T10:15:00.250Z`, the form `Date#toISOString` writes and most clients send. */
const ISO_UTC_MILLIS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const DIGIT_0 = 0x30;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The number of the `length` ASCII digits at `at`, or -1 when one is not a digit. */
function digitsAt(text: string, at: number, length: number): number {
  let n = 0;
  for (let i = at; i < at + length; i++) {
    const d = text.charCodeAt(i) - DIGIT_0;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * The instant of `text` when it is exactly what `Date#toISOString` prints for it
 * (`YYYY-MM-DDTHH:MM:SS.mmmZ`, a real calendar date-time, years 0100–9999), read from its digits
 * without a Date; null for anything else (the general path decides those).
 */
export function isoMillisOf(text: string): number | null {
  if (text.length !== 24 || text.charCodeAt(4) !== 0x2d || text.charCodeAt(7) !== 0x2d || text.charCodeAt(10) !== 0x54) return null;
  if (text.charCodeAt(13) !== 0x3a || text.charCodeAt(16) !== 0x3a || text.charCodeAt(19) !== 0x2e || text.charCodeAt(23) !== 0x5a) return null;
  const year = digitsAt(text, 0, 4);
  const month = digitsAt(text, 5, 2);
  const day = digitsAt(text, 8, 2);
  const hour = digitsAt(text, 11, 2);
  const minute = digitsAt(text, 14, 2);
  const second = digitsAt(text, 17, 2);
  const millis = digitsAt(text, 20, 3);
  // Date.UTC reads years 0–99 as 1900–1999: those take the general path.
  if (year < 100 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 || millis < 0) return null;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!)) return null;
  return Date.UTC(year, month - 1, day, hour, minute, second, millis);
}

/** RFC 3339 with an offset (`Z` or `±hh:mm`), as the GraphQL `DateTime` scalar reads it. */
function parseDateTime(value: unknown): Date | null {
  if (typeof value !== 'string' || value.length > MAX_TIMESTAMP_LENGTH) return null;
  if (value.length === 24) {
    const millis = isoMillisOf(value);
    if (millis !== null) return new Date(millis);
  }
  if (value.length === 24 && ISO_UTC_MILLIS.test(value)) {
    // The common form, read without the scalar's general parser: a date that prints back as the very
    // same text is a real calendar date-time (no 30 February, no hour 24), which the scalar accepts too.
    const date = new Date(value);
    if (!Number.isNaN(date.getTime()) && date.toISOString() === value) return date;
  }
  try {
    const parsed: unknown = DateTimeResolver.parseValue(value);
    return parsed instanceof Date && !Number.isNaN(parsed.getTime()) ? parsed : null;
  } catch {
    return null;
  }
}

/** Unix seconds below this are before 5138; a larger number is almost surely milliseconds. */
const MAX_UNIX_SECONDS = 100_000_000_000;

/** A JSON number is Unix time in whole seconds (as Stripe sends it); anything else a string must say. */
function parseUnixSeconds(value: number): Date {
  if (!Number.isInteger(value) || value < 0) {
    throw new EventRejection('INVALID_TIMESTAMP', `\`timestamp\` as a number is Unix time in whole seconds (got ${echoJson(value)}); send whole seconds, or an RFC 3339 string such as "2026-11-22T10:15:00.250Z" for fractions of a second.`);
  }
  if (value >= MAX_UNIX_SECONDS) {
    throw new EventRejection('INVALID_TIMESTAMP', `\`timestamp\` ${value} looks like milliseconds; send Unix time in seconds (${Math.floor(value / 1000)}) or an RFC 3339 string.`);
  }
  return new Date(value * 1000);
}

export function parseTimestamp(value: unknown, now: Date, latenessWindowMs: number): Date {
  const parsed = typeof value === 'number' ? parseUnixSeconds(value) : parseDateTime(value);
  if (!parsed) {
    throw new EventRejection('INVALID_TIMESTAMP', `\`timestamp\` must be an RFC 3339 date-time with an offset, e.g. "2026-11-22T10:15:00Z", or Unix time in whole seconds as a JSON number (got ${echoJson(value)}).`);
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

export const EVENT_FIELDS: readonly string[] = ['idempotencyKey', 'feature', 'timestamp', 'quantity', 'uniqueKey', ...DIMENSION_FIELDS, 'billingTag', 'resource'];

/** A misspelled field would otherwise be dropped silently (`projectID`: usage attributed to nothing). */
export function rejectUnknownFields(event: Record<string, unknown>, known: readonly string[]): void {
  let allKnown = true;
  for (const field in event) {
    if (!known.includes(field)) {
      allKnown = false;
      break;
    }
  }
  if (allKnown) return;
  const unknown = Object.keys(event).filter((field) => !known.includes(field));
  if (!unknown.length) return;
  const field = unknown[0]!;
  const meant = known.find((name) => name.toLowerCase() === field.toLowerCase().replace(/[_-]/g, ''));
  throw new EventRejection(
    'UNKNOWN_FIELD',
    `Unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((name) => `\`${name}\``).join(', ')}${meant ? ` (did you mean \`${meant}\`?)` : ''}: an event takes ${known.map((name) => `\`${name}\``).join(', ')}.`,
  );
}

/** The shape checks every event gets before anything is looked up. */
export function readEventFields(raw: unknown): FieldsOfEvent {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new EventRejection('INVALID_EVENT', 'An event is a JSON object.');
  const event = raw as Record<string, unknown>;
  rejectUnknownFields(event, EVENT_FIELDS);
  const idempotencyKey = optionalText(event.idempotencyKey, 'idempotencyKey');
  if (!idempotencyKey) throw new EventRejection('INVALID_EVENT', '`idempotencyKey` is required.');
  const feature = optionalText(event.feature, 'feature');
  if (!feature) throw new EventRejection('INVALID_EVENT', '`feature` (the feature key) is required.');
  // Spelled out in DIMENSION_FIELDS order (the first bad one is the one reported): it runs once per event.
  const dimensions: Record<DimensionField, string | null> = {
    workspaceId: optionalText(event.workspaceId, 'workspaceId'),
    datastreamId: optionalText(event.datastreamId, 'datastreamId'),
    projectId: optionalText(event.projectId, 'projectId'),
    appId: optionalText(event.appId, 'appId'),
    apiKeyId: optionalText(event.apiKeyId, 'apiKeyId'),
  };
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

/**
 * What makes two sends of one idempotency key "the same event". `quantityText` (the quantity's
 * `toFixed()`, when the caller has it) saves formatting the Decimal again.
 */
export function contentHashOf(event: Omit<NormalizedEvent, 'contentHash' | 'hour' | 'aggregation' | 'idempotencyKey'>, quantityText?: string): string {
  // One-shot `hash`: a Hash object per event costs several times the digest itself. The text is
  // `JSON.stringify([...])` of the eleven values, written without the array (see jsonText).
  return hash(
    'sha256',
    `[${jsonText(event.featureId)},${jsonText(event.occurredAtText ?? event.occurredAt.toISOString())},${jsonText(quantityText ?? event.quantity.toFixed())},${jsonText(event.workspaceId)},${jsonText(event.datastreamId)},${jsonText(event.projectId)},${jsonText(event.appId)},${jsonText(event.apiKeyId)},${jsonText(event.billingTag)},${jsonText(event.resource)},${jsonText(event.uniqueKey)}]`,
    'hex',
  );
}

/** What JSON.stringify escapes in a string: `"`, `\`, controls, and (well-formed JSON.stringify) lone UTF-16 halves. */
const NEEDS_JSON_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** `JSON.stringify(value)` of a string or null (or undefined, which an array writes as null). */
function jsonText(value: string | null | undefined): string {
  if (value === null || value === undefined) return 'null';
  return NEEDS_JSON_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
}

import { DatabaseConfigError, parseDatabaseTarget, type DatabaseTarget } from './db/adapters.js';
import { parseIngestMaxBytes, parseIngestMaxSeconds } from './ingest/ndjson.js';
import { DEFAULT_EVENT_RETENTION_DAYS, MAX_EVENT_RETENTION_DAYS, MIN_EVENT_RETENTION_DAYS } from './db/retention-window.js';
import { ingestLogSettings, type IngestLogSettings } from './ingest/log.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  port: number;
  host: string;
  databaseTarget: DatabaseTarget;
  /** DATABASE_READ_URL: a streaming replica of DATABASE_URL that report reads go to (src/db/read-replica.ts). */
  databaseReadTarget?: Extract<DatabaseTarget, { kind: 'postgres' }> | undefined;
  /** Adds `extensions.queryStats` to every response. */
  exposeQueryStats: boolean;
  logLevel: LogLevel;
  development: boolean;
  /**
   * SEED_DEMO: seed the demo realm on a start with an empty database, and keep the demo key (whose
   * secret is public) working. Default: true in development, false in production.
   */
  seedDemo: boolean;
  /** GRAPHIQL: serve GraphiQL on GET /graphql. Default: true in development, false in production. */
  graphiql: boolean;
  /** GRAPHQL_INTROSPECTION: answer `__schema` / `__type`. Default: true in development, false in production. */
  introspection: boolean;
  /** METRICS_TOKEN: when set, GET /metrics needs `Authorization: Bearer <token>`. */
  metricsToken?: string | undefined;
  /** GRAPHQL_MAX_BODY_BYTES: the largest /graphql request body (default 1 MiB). */
  graphqlMaxBodyBytes: number;
  /** Shared rate-limit counters (in memory when unset). */
  redisUrl: string | undefined;
  /** The largest `POST /ingest` body accepted. */
  ingestMaxBytes: number;
  /** INGEST_MAX_SECONDS: the longest one POST /ingest may take. */
  ingestMaxSeconds: number;
  /** How often quota alert webhooks due for delivery are looked for; undefined: the default (5 s). */
  quotaDeliveryPollMs?: number | undefined;
  /** AUTH_CACHE_TTL_MS; unset: DEFAULT_AUTH_CACHE_TTL_MS. */
  authCacheTtlMs?: number | undefined;
  /** V8_HEAP_GROWING_PERCENT: how far V8's heap may grow past what the last full GC kept (0: V8's own heuristics); unset: DEFAULT_V8_HEAP_GROWING_PERCENT. */
  heapGrowingPercent?: number | undefined;
  /** WEBHOOK_ALLOW_PRIVATE: quota webhooks may target private, loopback and link-local addresses. */
  webhookAllowPrivate?: boolean;
  /** REPORT_CACHE_MAX_BYTES / REPORT_CACHE_TTL_MS: the in-process cache of finalized usage reports. */
  reportCache?: ReportCacheSettings;
  /** NATS_URL and the INGEST_STREAM… settings: the durable ingestion log (src/ingest/log.ts); unset: ingestion writes the database directly. */
  ingestLog?: IngestLogSettings | undefined;
  /** EVENT_RETENTION_DAYS: how long raw events (and their idempotency keys) are kept; see src/db/partitions.ts. */
  eventRetentionDays?: number;
}

/** A setting that cannot work; the message is one line saying what is wrong and how to fix it. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function value(env: Env, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw ? raw : undefined;
}

function parsePort(raw: string | undefined): number {
  if (raw === undefined) return 4000;
  const port = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new ConfigError(`PORT must be a whole number from 0 to 65535 (got "${raw}"); set PORT=4000 or unset it`);
  }
  return port;
}

function parseBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = value(env, name);
  if (raw === undefined) return fallback;
  const normalized = raw.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(normalized)) return true;
  if (['false', '0', 'no', 'off'].includes(normalized)) return false;
  throw new ConfigError(`${name} must be true or false (got "${raw}"); set ${name}=${fallback} or unset it`);
}

function parseLogLevel(raw: string | undefined): LogLevel {
  if (raw === undefined) return 'info';
  const level = raw.toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(level)) return level as LogLevel;
  throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${raw}"); set LOG_LEVEL=info or unset it`);
}

function parseRedisUrl(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let protocol: string;
  try {
    protocol = new URL(raw).protocol;
  } catch {
    protocol = '';
  }
  if (protocol !== 'redis:' && protocol !== 'rediss:') {
    throw new ConfigError('REDIS_URL must look like redis://host:6379 (or rediss:// for TLS); fix it or unset it');
  }
  return raw;
}

/** A whole number of milliseconds in [min, max] from variable `name`; undefined when unset. */
function parseMilliseconds(name: string, raw: string | undefined, min: number, max: number, suggested: number): number | undefined {
  if (raw === undefined) return undefined;
  const ms = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
  if (!(ms >= min && ms <= max)) {
    throw new ConfigError(`${name} must be a whole number of milliseconds from ${min} to ${max} (got "${raw}"); set ${name}=${suggested} or unset it`);
  }
  return ms;
}

/** The largest `/graphql` body unless GRAPHQL_MAX_BODY_BYTES says otherwise: 1 MiB. */
export const DEFAULT_GRAPHQL_MAX_BODY_BYTES = 1024 * 1024;
const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, kib: 1024, mib: 1024 ** 2 };

/** GRAPHQL_MAX_BODY_BYTES: bytes, or with KiB / MiB; from 1 KiB to 64 MiB. */
function parseGraphqlMaxBodyBytes(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_GRAPHQL_MAX_BODY_BYTES;
  const match = /^(\d{1,9})\s*([a-z]*)$/i.exec(raw);
  const bytes = match && BYTE_UNITS[match[2]!.toLowerCase()] ? Number(match[1]) * BYTE_UNITS[match[2]!.toLowerCase()]! : NaN;
  if (!(bytes >= 1024 && bytes <= 64 * 1024 ** 2)) {
    throw new ConfigError(`GRAPHQL_MAX_BODY_BYTES must be from 1KiB to 64MiB, in bytes or with KiB or MiB (got "${raw}"); set GRAPHQL_MAX_BODY_BYTES=1MiB or unset it`);
  }
  return bytes;
}

/** METRICS_TOKEN: a shared secret of at least 16 characters. */
function parseMetricsToken(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (raw.length < 16 || /\s/.test(raw)) {
    throw new ConfigError('METRICS_TOKEN must be at least 16 characters without spaces (e.g. the output of `openssl rand -hex 24`); fix it or unset it');
  }
  return raw;
}

/**
 * V8 lets its heap grow to up to 4× what survived the last full GC before collecting again (on a
 * machine with 2 GiB or more for it): under 10 concurrent dashboard reports the gateway's heap
 * reached ≈ 480 MB for ≈ 110 MB live. 1.5× keeps the peak near 200 MB for some more GC time.
 */
export const DEFAULT_V8_HEAP_GROWING_PERCENT = 50;

/** How long a gateway reuses an API key's row without reading it again, unless AUTH_CACHE_TTL_MS says otherwise. */
export const DEFAULT_AUTH_CACHE_TTL_MS = 5000;

/** The finalized-report cache: 64 MiB per process, entries kept at most 60 s (other processes' writes are not seen). */
export const DEFAULT_REPORT_CACHE_MAX_BYTES = 64 * 1024 ** 2;
export const DEFAULT_REPORT_CACHE_TTL_MS = 60_000;

export interface ReportCacheSettings {
  /** 0 disables the cache. */
  maxBytes: number;
  ttlMs: number;
}

/** REPORT_CACHE_MAX_BYTES (0 disables; bytes, or with KiB / MiB; at most 4 GiB) and REPORT_CACHE_TTL_MS (1 ms to 1 h). */
export function reportCacheSettings(env: Env): ReportCacheSettings {
  const raw = value(env, 'REPORT_CACHE_MAX_BYTES');
  let maxBytes = DEFAULT_REPORT_CACHE_MAX_BYTES;
  if (raw !== undefined) {
    const match = /^(\d{1,10})\s*([a-z]*)$/i.exec(raw);
    maxBytes = match && BYTE_UNITS[match[2]!.toLowerCase()] ? Number(match[1]) * BYTE_UNITS[match[2]!.toLowerCase()]! : NaN;
    if (!(maxBytes >= 0 && maxBytes <= 4 * 1024 ** 3)) {
      throw new ConfigError(`REPORT_CACHE_MAX_BYTES must be from 0 (no cache) to 4096MiB, in bytes or with KiB or MiB (got "${raw}"); set REPORT_CACHE_MAX_BYTES=64MiB or unset it`);
    }
  }
  const ttlMs = parseMilliseconds('REPORT_CACHE_TTL_MS', value(env, 'REPORT_CACHE_TTL_MS'), 1, 3_600_000, DEFAULT_REPORT_CACHE_TTL_MS) ?? DEFAULT_REPORT_CACHE_TTL_MS;
  return { maxBytes, ttlMs };
}

/** V8_HEAP_GROWING_PERCENT: a whole number from 0 (V8 decides) to 300. */
function parseHeapGrowingPercent(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const percent = /^\d{1,3}$/.test(raw) ? Number(raw) : NaN;
  if (!(percent >= 0 && percent <= 300)) {
    throw new ConfigError(`V8_HEAP_GROWING_PERCENT must be a whole number from 0 (V8's own heuristics) to 300 (got "${raw}"); set V8_HEAP_GROWING_PERCENT=${DEFAULT_V8_HEAP_GROWING_PERCENT} or unset it`);
  }
  return percent;
}

/** EVENT_RETENTION_DAYS: whole days, never shorter than the lateness window plus the future-skew allowance. */
export function parseEventRetentionDays(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_EVENT_RETENTION_DAYS;
  const days = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(days >= MIN_EVENT_RETENTION_DAYS && days <= MAX_EVENT_RETENTION_DAYS)) {
    throw new ConfigError(
      `EVENT_RETENTION_DAYS must be a whole number of days from ${MIN_EVENT_RETENTION_DAYS} (the 35-day lateness window plus the 5-minute future-skew allowance, so a resent event is refused as TOO_LATE, never counted twice) to ${MAX_EVENT_RETENTION_DAYS} (got "${raw}"); set EVENT_RETENTION_DAYS=${DEFAULT_EVENT_RETENTION_DAYS} or unset it`,
    );
  }
  return days;
}

function parseTarget(env: Env): DatabaseTarget {
  try {
    return parseDatabaseTarget(value(env, 'DATABASE_URL'), value(env, 'PGLITE_DIR'));
  } catch (error) {
    if (error instanceof DatabaseConfigError) throw new ConfigError(error.message);
    throw error;
  }
}

/** DATABASE_READ_URL: a PostgreSQL URL, only beside a PostgreSQL DATABASE_URL (PGlite has no replicas). */
function parseReadTarget(env: Env, primary: DatabaseTarget): Extract<DatabaseTarget, { kind: 'postgres' }> | undefined {
  const raw = value(env, 'DATABASE_READ_URL');
  if (raw === undefined) return undefined;
  let target: DatabaseTarget;
  try {
    target = parseDatabaseTarget(raw, undefined);
  } catch (error) {
    if (error instanceof DatabaseConfigError) throw new ConfigError(error.message.replaceAll('DATABASE_URL', 'DATABASE_READ_URL').replace(/ \(or unset it to use the embedded database\)|; unset it to use the embedded database/, '; or unset it to read everything from DATABASE_URL'));
    throw error;
  }
  if (target.kind !== 'postgres') {
    throw new ConfigError('DATABASE_READ_URL must be a postgresql:// URL of a streaming replica; unset it to read everything from DATABASE_URL');
  }
  if (primary.kind !== 'postgres') {
    throw new ConfigError('DATABASE_READ_URL needs DATABASE_URL to be a PostgreSQL URL too (the embedded database has no replicas); unset DATABASE_READ_URL');
  }
  return target;
}

export function loadConfig(env: Env = process.env): Config {
  const development = env.NODE_ENV !== 'production';
  const databaseTarget = parseTarget(env);
  return {
    port: parsePort(value(env, 'PORT')),
    // Development listens on loopback only: the demo key's secret is public.
    host: value(env, 'HOST') ?? (development ? '127.0.0.1' : '0.0.0.0'),
    databaseTarget,
    databaseReadTarget: parseReadTarget(env, databaseTarget),
    exposeQueryStats: parseBoolean(env, 'EXPOSE_QUERY_STATS', false),
    logLevel: parseLogLevel(value(env, 'LOG_LEVEL')),
    development,
    seedDemo: parseBoolean(env, 'SEED_DEMO', development),
    graphiql: parseBoolean(env, 'GRAPHIQL', development),
    introspection: parseBoolean(env, 'GRAPHQL_INTROSPECTION', development),
    metricsToken: parseMetricsToken(value(env, 'METRICS_TOKEN')),
    graphqlMaxBodyBytes: parseGraphqlMaxBodyBytes(value(env, 'GRAPHQL_MAX_BODY_BYTES')),
    redisUrl: parseRedisUrl(value(env, 'REDIS_URL')),
    ingestMaxBytes: parseIngestMaxBytes(value(env, 'INGEST_MAX_BYTES'), (message) => new ConfigError(message)),
    ingestMaxSeconds: parseIngestMaxSeconds(value(env, 'INGEST_MAX_SECONDS'), (message) => new ConfigError(message)),
    quotaDeliveryPollMs: parseMilliseconds('QUOTA_DELIVERY_POLL_MS', value(env, 'QUOTA_DELIVERY_POLL_MS'), 100, 3_600_000, 5000),
    authCacheTtlMs: parseMilliseconds('AUTH_CACHE_TTL_MS', value(env, 'AUTH_CACHE_TTL_MS'), 0, 300_000, DEFAULT_AUTH_CACHE_TTL_MS),
    heapGrowingPercent: parseHeapGrowingPercent(value(env, 'V8_HEAP_GROWING_PERCENT')),
    webhookAllowPrivate: parseBoolean(env, 'WEBHOOK_ALLOW_PRIVATE', false),
    reportCache: reportCacheSettings(env),
    ingestLog: ingestLogSettings(env, (message) => new ConfigError(message)),
    eventRetentionDays: parseEventRetentionDays(value(env, 'EVENT_RETENTION_DAYS')),
  };
}

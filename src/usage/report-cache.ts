import { LRUCache } from 'lru-cache';
import { reportCacheSettings, type ReportCacheSettings } from '../config.js';

/*
 * Usage reports made only of final buckets, kept in this process. An entry is valid while its realm's
 * generation is the one read before its statement ran: every writer of UsageHourly (ingestion,
 * corrections) bumps the generation after its commit, so an answer read before or during a write is
 * never served after it. Other processes' writes are not seen here: the TTL bounds how long a
 * process can serve an answer another process's correction changed.
 */

interface Entry {
  generation: number;
  value: unknown;
}

const generations = new Map<string, number>();
/** When this process last wrote each realm's usage (after the commit), for reads on a replica. */
const writtenAt = new Map<string, number>();
let settings: ReportCacheSettings | undefined;
let cache: LRUCache<string, Entry> | null | undefined;

function theCache(): LRUCache<string, Entry> | null {
  if (cache !== undefined) return cache;
  settings ??= reportCacheSettings(process.env);
  cache = settings.maxBytes > 0 ? new LRUCache<string, Entry>({ maxSize: settings.maxBytes, ttl: settings.ttlMs || undefined, ttlAutopurge: false }) : null;
  return cache;
}

/** Replaces the settings (REPORT_CACHE_MAX_BYTES, REPORT_CACHE_TTL_MS) and empties the cache. */
export function configureReportCache(next: ReportCacheSettings): void {
  settings = next;
  cache = undefined;
}

/** Called by every writer of UsageHourly after its commit: the realm's cached reports are stale. */
export function usageWritten(realmId: string): void {
  generations.set(realmId, (generations.get(realmId) ?? 0) + 1);
  writtenAt.set(realmId, Date.now());
}

/** Read before a report's statement runs; an answer is stored under the generation it was read in. */
export function realmGeneration(realmId: string): number {
  return generations.get(realmId) ?? 0;
}

export function cachedReport<T>(realmId: string, key: string): T | undefined {
  const entry = theCache()?.get(`${realmId}:${key}`);
  if (!entry) return undefined;
  return entry.generation === realmGeneration(realmId) ? (entry.value as T) : undefined;
}

/**
 * `bytes`: the answer's approximate size in memory (the cache is bounded by the sum). `replicaAsOf`:
 * the answer was read on a replica complete up to then; it is kept only if that is after this
 * process's last write of the realm (a replica still replaying it would give the old number).
 */
export function storeReport(realmId: string, key: string, generation: number, value: unknown, bytes: number, replicaAsOf?: Date): void {
  const store = theCache();
  if (!store || generation !== realmGeneration(realmId) || bytes > store.maxSize) return;
  if (replicaAsOf && replicaAsOf.getTime() <= (writtenAt.get(realmId) ?? -Infinity)) return;
  store.set(`${realmId}:${key}`, { generation, value }, { size: Math.max(1, Math.ceil(bytes)) });
}

/** Entries and bytes held (for tests and metrics). */
export function reportCacheStats(): { entries: number; bytes: number } {
  const store = theCache();
  return { entries: store?.size ?? 0, bytes: store?.calculatedSize ?? 0 };
}

/**
 * EVENT_RETENTION_DAYS bounds, without loading the ingestion modules (config is read before them).
 * test/partitions.test.ts checks these against DEFAULT_LATENESS_WINDOW_MS and MAX_FUTURE_MS.
 */
const LATENESS_WINDOW_DAYS = 35;
const FUTURE_SKEW_MS = 5 * 60_000;

/**
 * The shortest event retention that can never count an event twice: a resent event whose stored
 * copy was dropped must be refused as TOO_LATE. An event received on day R happened no later than
 * R + 1 day + the future-skew allowance; its day is dropped once R + 1 + retention ≤ today, so it is
 * TOO_LATE when retention ≥ lateness window + future-skew allowance, rounded up to whole days (the
 * rest of that day absorbs clock differences between the gateway and the database).
 */
export const MIN_EVENT_RETENTION_DAYS = Math.ceil(LATENESS_WINDOW_DAYS + FUTURE_SKEW_MS / 86_400_000);
/** EVENT_RETENTION_DAYS unless set: the minimum, 36 days (35 days of lateness plus the margin). */
export const DEFAULT_EVENT_RETENTION_DAYS = MIN_EVENT_RETENTION_DAYS;
export const MAX_EVENT_RETENTION_DAYS = 3650;

let configuredRetentionDays = DEFAULT_EVENT_RETENTION_DAYS;

/** The retention this process applies (EVENT_RETENTION_DAYS, set by `startPartitionMaintenance`), as `Realm.limits` states it. */
export function eventRetentionDays(): number {
  return configuredRetentionDays;
}

export function configureEventRetention(days: number): void {
  if (!(Number.isInteger(days) && days >= MIN_EVENT_RETENTION_DAYS && days <= MAX_EVENT_RETENTION_DAYS)) {
    throw new RangeError(`event retention must be a whole number of days from ${MIN_EVENT_RETENTION_DAYS} to ${MAX_EVENT_RETENTION_DAYS}`);
  }
  configuredRetentionDays = days;
}

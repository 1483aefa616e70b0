import { badUserInput } from '../errors.js';
import {
  bucketsOf,
  countBuckets,
  floorToHour,
  hasFractionalHourOffset,
  HOUR_MS,
  isTimeZone,
  isWholeHour,
  timeframeRange,
  type Granularity,
  type TimeRange,
  type Timeframe,
} from './time.js';
import { DIMENSIONS, type Dimension, type UsageFilterIds } from './usage-sql.js';

export const MAX_HOURLY_RANGE_DAYS = 95;
export const MAX_BUCKETS = 10_000;

export interface UsageArgs {
  range?: TimeRange | null;
  timeframe?: Timeframe | null;
  granularity?: Granularity | null;
  timeZone?: string | null;
  groupBy?: readonly (Dimension | 'FEATURE')[] | null;
  finalizedOnly?: boolean | null;
}

/** A `usage` question after defaults and validation: what the SQL and the report are built from. */
export interface UsageRequest {
  range: TimeRange;
  granularity: Exclude<Granularity, 'MINUTE'>;
  timeZone: string;
  groupBy: Dimension[];
  finalizedOnly: boolean;
  approximate: boolean;
  warnings: string[];
}

export interface UsageContextFacts {
  now: Date;
  realmTimeZone: string;
  /** First hour with usage in the realm, for ALL_TIME. */
  earliestUsage?: Date;
}

/** Validates and normalises the arguments every `usage` field shares (pure: time comes in `facts`). */
export function resolveUsageRequest(args: UsageArgs, facts: UsageContextFacts): UsageRequest {
  const granularity = args.granularity ?? 'SUMMARIZED';
  if (granularity === 'MINUTE') {
    throw badUserInput('MINUTE granularity is only available for API traffic (`ApiKey.traffic`); use HOUR or coarser.', 'INVALID_GRANULARITY');
  }
  const timeZone = args.timeZone ?? facts.realmTimeZone;
  if (!isTimeZone(timeZone)) throw badUserInput(`"${timeZone}" is not a known IANA time zone.`, 'INVALID_TIME_ZONE');
  if (args.range && args.timeframe) {
    throw badUserInput('Give either `range` or `timeframe`, not both.', 'INVALID_TIMEFRAME');
  }
  if (!args.range && !args.timeframe) {
    throw badUserInput('Give a `range` ({ from, to }) or a `timeframe` (e.g. LAST_30_DAYS).', 'INVALID_TIMEFRAME');
  }
  const range = args.range ?? timeframeRange(args.timeframe!, facts.now, timeZone, facts.earliestUsage);
  if (range.from.getTime() >= range.to.getTime()) {
    throw badUserInput('`range.from` must be before `range.to` (the range is [from, to)).', 'INVALID_RANGE');
  }
  const days = (range.to.getTime() - range.from.getTime()) / (24 * HOUR_MS);
  if (granularity === 'HOUR' && days > MAX_HOURLY_RANGE_DAYS) {
    throw badUserInput(`Hourly detail covers at most ${MAX_HOURLY_RANGE_DAYS} days (asked: ${Math.ceil(days)}); use DAY or coarser, or a shorter range.`, 'RANGE_TOO_LARGE', {
      maxDays: MAX_HOURLY_RANGE_DAYS,
    });
  }
  const buckets = countBuckets(range, granularity, timeZone, MAX_BUCKETS);
  if (buckets > MAX_BUCKETS) {
    throw badUserInput(`A report has at most ${MAX_BUCKETS} buckets per group; this range at ${granularity} has more. Use a coarser granularity or a shorter range.`, 'RANGE_TOO_LARGE', {
      maxBuckets: MAX_BUCKETS,
    });
  }

  const warnings: string[] = [];
  let approximate = false;
  if (!isWholeHour(range.from) || !isWholeHour(range.to)) {
    approximate = true;
    warnings.push('The range does not start and end on whole UTC hours; usage is stored hourly, so each hour counts where it starts.');
  }
  if (granularity !== 'SUMMARIZED' && hasFractionalHourOffset(timeZone, range)) {
    approximate = true;
    warnings.push(`${timeZone} is not a whole number of hours from UTC; usage is stored per UTC hour, so each hour is counted in the local bucket where it starts.`);
  }
  const groupBy = DIMENSIONS.filter((d) => args.groupBy?.includes(d));
  return { range, granularity, timeZone, groupBy, finalizedOnly: args.finalizedOnly ?? false, approximate, warnings };
}

/**
 * `finalizedOnly` ends the range at the last bucket boundary at or before the watermark, so no
 * bucket still receiving late usage (the current, unfinished day among them) is reported.
 */
export function capAtWatermark(request: UsageRequest, watermark: Date): UsageRequest {
  if (!request.finalizedOnly || request.range.to <= watermark) return request;
  let to = floorToHour(watermark);
  if (request.granularity !== 'HOUR' && request.granularity !== 'SUMMARIZED') {
    const complete = bucketsOf(request.range, request.granularity, request.timeZone).filter((b) => b.to <= watermark);
    to = complete.length ? complete[complete.length - 1]!.to : request.range.from;
  }
  const warnings = [...request.warnings, `finalizedOnly: the range ends at ${to.toISOString()}, the end of the last finalized bucket.`];
  return { ...request, range: { from: request.range.from, to: to < request.range.from ? request.range.from : to }, warnings };
}

export type { UsageFilterIds };

import { badUserInput } from '../errors.js';
import { countBuckets, HOUR_MS, isTimeZone, timeframeRange, type Granularity, type TimeRange, type Timeframe } from '../usage/time.js';
import { MAX_BUCKETS, MAX_HOURLY_RANGE_DAYS } from '../usage/usage-request.js';

export const TRAFFIC_SORTS = ['REQUESTS', 'ERRORS', 'LATENCY', 'TIMESTAMP'] as const;
export type TrafficSort = (typeof TRAFFIC_SORTS)[number];
export const SORT_ORDERS = ['ASC', 'DESC'] as const;
export type SortOrder = (typeof SORT_ORDERS)[number];

export type TrafficGranularity = Exclude<Granularity, 'SUMMARIZED'>;

export const DEFAULT_TRAFFIC_TIMEFRAME: Timeframe = 'LAST_24_HOURS';
export const MAX_MINUTE_RANGE_DAYS = 7;
export const MAX_TRAFFIC_LIMIT = 1000;
export const DEFAULT_TRAFFIC_LIMIT = 100;
const MINUTE_MS = 60_000;
const DAY_MS = 24 * HOUR_MS;

export interface TrafficArgs {
  timeframe?: Timeframe | null;
  range?: TimeRange | null;
  granularity?: Granularity | null;
  timeZone?: string | null;
  sortBy?: TrafficSort | null;
  order?: SortOrder | null;
  limit?: number | null;
  offset?: number | null;
  includeEndpoints?: boolean | null;
  includeErrors?: boolean | null;
  includeLatency?: boolean | null;
}

/** What the SQL is built from: the same for every key that asks the same question. */
export interface TrafficQuery {
  range: TimeRange;
  granularity: TrafficGranularity;
  timeZone: string;
  includeEndpoints: boolean;
  includeErrors: boolean;
  includeLatency: boolean;
}

/** A `traffic` question after defaults and validation. */
export interface TrafficRequest extends TrafficQuery {
  sortBy: TrafficSort;
  order: SortOrder;
  limit: number;
  offset: number;
  approximate: boolean;
  warnings: string[];
}

export interface TrafficContextFacts {
  now: Date;
  realmTimeZone: string;
  /** The first minute with traffic (for ALL_TIME). */
  earliestTraffic?: Date;
}

/** Validates and normalises `ApiKey.traffic` arguments (pure: time comes in `facts`). */
export function resolveTrafficRequest(args: TrafficArgs, facts: TrafficContextFacts): TrafficRequest {
  const granularity = args.granularity ?? 'HOUR';
  if (granularity === 'SUMMARIZED') {
    throw badUserInput('Traffic comes in MINUTE, HOUR, DAY, WEEK or MONTH buckets; `summary` already holds the whole range.', 'INVALID_GRANULARITY');
  }
  const limit = args.limit ?? DEFAULT_TRAFFIC_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_TRAFFIC_LIMIT) {
    throw badUserInput(`\`limit\` must be between 1 and ${MAX_TRAFFIC_LIMIT} (got ${limit}).`, 'INVALID_PAGINATION', { maxLimit: MAX_TRAFFIC_LIMIT });
  }
  const offset = args.offset ?? 0;
  if (!Number.isInteger(offset) || offset < 0) {
    throw badUserInput(`\`offset\` must be 0 or more (got ${offset}).`, 'INVALID_PAGINATION');
  }
  const timeZone = args.timeZone ?? facts.realmTimeZone;
  if (!isTimeZone(timeZone)) throw badUserInput(`"${timeZone}" is not a known IANA time zone.`, 'INVALID_TIME_ZONE');
  if (args.range && args.timeframe) throw badUserInput('Give either `range` or `timeframe`, not both.', 'INVALID_TIMEFRAME');
  const range = args.range ?? timeframeRange(args.timeframe ?? DEFAULT_TRAFFIC_TIMEFRAME, facts.now, timeZone, facts.earliestTraffic);
  if (range.from.getTime() >= range.to.getTime()) {
    throw badUserInput('`range.from` must be before `range.to` (the range is [from, to)).', 'INVALID_RANGE');
  }
  const days = (range.to.getTime() - range.from.getTime()) / DAY_MS;
  if (granularity === 'MINUTE' && days > MAX_MINUTE_RANGE_DAYS) {
    throw badUserInput(`Minute detail covers at most ${MAX_MINUTE_RANGE_DAYS} days (asked: ${Math.ceil(days)}); use HOUR or coarser, or a shorter range.`, 'RANGE_TOO_LARGE', {
      maxDays: MAX_MINUTE_RANGE_DAYS,
    });
  }
  if (granularity === 'HOUR' && days > MAX_HOURLY_RANGE_DAYS) {
    throw badUserInput(`Hourly detail covers at most ${MAX_HOURLY_RANGE_DAYS} days (asked: ${Math.ceil(days)}); use DAY or coarser, or a shorter range.`, 'RANGE_TOO_LARGE', {
      maxDays: MAX_HOURLY_RANGE_DAYS,
    });
  }
  if (granularity !== 'MINUTE' && granularity !== 'HOUR' && countBuckets(range, granularity, timeZone, MAX_BUCKETS) > MAX_BUCKETS) {
    throw badUserInput(`A report has at most ${MAX_BUCKETS} buckets; this range at ${granularity} has more.`, 'RANGE_TOO_LARGE', { maxBuckets: MAX_BUCKETS });
  }
  const warnings: string[] = [];
  const approximate = range.from.getTime() % MINUTE_MS !== 0 || range.to.getTime() % MINUTE_MS !== 0;
  if (approximate) warnings.push('The range does not start and end on whole minutes; traffic is stored per minute, so each minute counts where it starts.');
  return {
    range,
    granularity,
    timeZone,
    sortBy: args.sortBy ?? 'TIMESTAMP',
    order: args.order ?? 'DESC',
    limit,
    offset,
    includeEndpoints: args.includeEndpoints ?? true,
    includeErrors: args.includeErrors ?? true,
    includeLatency: args.includeLatency ?? true,
    approximate,
    warnings,
  };
}

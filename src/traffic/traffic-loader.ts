import DataLoader from 'dataloader';
import { memoize, type Context } from '../context.js';
import type { Tier } from '../generated/prisma/enums.js';
import { effectiveTier, requestLimit, type RatePlan } from '../rate-limit/limits.js';
import { nextBucketStart, type TimeRange } from '../usage/time.js';
import { histogramFromJson, percentiles, type Histogram } from './histogram.js';
import { trafficAlerts, trafficRecommendations, UNUSED_AFTER_DAYS, type TrafficAlert, type TrafficRecommendation } from './insights.js';
import { TRAFFIC_STATUSES, type TrafficStatus } from './status.js';
import type { TrafficQuery, TrafficRequest } from './traffic-request.js';
import { buildTrafficSql, type TrafficRow } from './traffic-sql.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

export interface LatencyStats {
  avg: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

interface Aggregate {
  requests: number;
  errors: number;
  latencySumMs: number;
  latencyMaxMs: number;
  histogram: Histogram | null;
}

/** One key's traffic for one question, before sorting and paging. */
export interface KeyTraffic {
  summary: Aggregate;
  series: (Aggregate & { start: Date; end: Date })[];
  endpoints: (Aggregate & { endpoint: string })[];
  statuses: Map<TrafficStatus, number>;
  plan: RatePlan | null;
  peak: { minute: Date; requests: number } | null;
  lastRequestAt: Date | null;
}

export interface TrafficPoint {
  start: Date;
  end: Date;
  requests: number;
  errors: number;
  errorRate: number;
  latency: LatencyStats | null;
}

export interface ApiKeyTraffic {
  range: TimeRange;
  granularity: TrafficRequest['granularity'];
  timeZone: string;
  approximate: boolean;
  warnings: string[];
  summary: { requests: number; errors: number; errorRate: number; latency: LatencyStats | null };
  series: TrafficPoint[];
  endpoints: { endpoint: string; requests: number; errors: number; errorRate: number; latency: LatencyStats | null }[];
  errors: { status: TrafficStatus; count: number }[];
  rateLimit: { tier: Tier; limit: number; peakMinute: Date | null; peakRequests: number; peakUtilization: number };
  pageInfo: { total: number; limit: number; offset: number; hasMore: boolean };
  alerts: TrafficAlert[];
  recommendations: TrafficRecommendation[];
}

const emptyAggregate = (): Aggregate => ({ requests: 0, errors: 0, latencySumMs: 0, latencyMaxMs: 0, histogram: null });

function aggregateOf(row: TrafficRow): Aggregate {
  return {
    requests: row.requests ?? 0,
    errors: row.errors ?? 0,
    latencySumMs: row.latencySumMs ?? 0,
    latencyMaxMs: row.latencyMaxMs ?? 0,
    histogram: row.histogram ? histogramFromJson(row.histogram) : null,
  };
}

/** Latency statistics in milliseconds, rounded to the microsecond; null without latency data. */
export function latencyStats(aggregate: Aggregate): LatencyStats | null {
  if (!aggregate.histogram || aggregate.requests === 0) return null;
  const [p50, p95, p99] = percentiles(aggregate.histogram, [0.5, 0.95, 0.99], aggregate.latencyMaxMs);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return { avg: round(aggregate.latencySumMs / aggregate.requests), p50: round(p50!), p95: round(p95!), p99: round(p99!), max: round(aggregate.latencyMaxMs) };
}

/** The first minute with traffic of any key of the caller's realm (for ALL_TIME). */
export function earliestTraffic(ctx: Context): Promise<Date | undefined> {
  return memoize(ctx, 'earliest-traffic', async () => {
    const first = await (ctx.readPrisma ?? ctx.prisma).apiTrafficMinute.aggregate({ where: { apiKey: { realmId: ctx.viewer.realmId } }, _min: { minute: true } });
    return first._min.minute ?? undefined;
  });
}

/**
 * Every `traffic` field of a request that asks the same question (range, granularity, zone, what
 * to include) shares one loader: all keys are answered by one statement. Sorting and paging happen
 * per field afterwards, so they do not split the batch.
 */
export function trafficLoader(ctx: Context, query: TrafficQuery): DataLoader<string, KeyTraffic> {
  const normalized: TrafficQuery = {
    range: query.range,
    granularity: query.granularity,
    timeZone: query.timeZone,
    includeEndpoints: query.includeEndpoints,
    includeErrors: query.includeErrors,
    includeLatency: query.includeLatency,
  };
  return memoize(ctx, `traffic:${JSON.stringify(normalized)}`, () => new DataLoader<string, KeyTraffic>((ids) => loadTraffic(ctx, normalized, ids)));
}

async function loadTraffic(ctx: Context, query: TrafficQuery, apiKeyIds: readonly string[]): Promise<KeyTraffic[]> {
  const { sql, params } = buildTrafficSql({
    ...query,
    apiKeyIds: [...apiKeyIds],
    recentSince: new Date(ctx.now.getTime() - UNUSED_AFTER_DAYS * 24 * HOUR_MS),
  });
  const rows = await (ctx.readPrisma ?? ctx.prisma).$queryRawUnsafe<TrafficRow[]>(sql, ...params);
  const byKey = new Map<string, KeyTraffic>(
    apiKeyIds.map((id) => [id, { summary: emptyAggregate(), series: [], endpoints: [], statuses: new Map(), plan: null, peak: null, lastRequestAt: null }]),
  );
  const endOf = bucketEnd(query);
  for (const row of rows) {
    const traffic = byKey.get(row.key);
    if (!traffic) continue;
    switch (row.kind) {
      case 'summary':
        traffic.summary = aggregateOf(row);
        break;
      case 'series': {
        const bucketStart = new Date(row.bucket!);
        const start = bucketStart < query.range.from ? query.range.from : bucketStart;
        traffic.series.push({ ...aggregateOf(row), start, end: endOf(bucketStart) });
        break;
      }
      case 'endpoint':
        traffic.endpoints.push({ ...aggregateOf(row), endpoint: row.endpoint! });
        break;
      case 'status':
        traffic.statuses.set(row.status as TrafficStatus, row.requests ?? 0);
        break;
      case 'key':
        traffic.plan = {
          key: { tier: row.keyTier as Tier | null, customRateLimit: row.keyCustomRateLimit },
          realm: { tier: row.realmTier as Tier, customRateLimit: row.realmCustomRateLimit },
        };
        traffic.peak = row.bucket && row.requests ? { minute: new Date(row.bucket), requests: row.requests } : null;
        traffic.lastRequestAt = row.lastRequestAt ? new Date(row.lastRequestAt) : null;
        break;
    }
  }
  return apiKeyIds.map((id) => byKey.get(id)!);
}

function bucketEnd(query: TrafficQuery): (start: Date) => Date {
  return (start) => {
    const next =
      query.granularity === 'MINUTE'
        ? new Date(start.getTime() + MINUTE_MS)
        : query.granularity === 'HOUR'
          ? new Date(start.getTime() + HOUR_MS)
          : nextBucketStart(start, query.granularity, query.timeZone);
    return next > query.range.to ? query.range.to : next;
  };
}

const rate = (errors: number, requests: number) => (requests > 0 ? errors / requests : 0);

type SortablePoint = TrafficPoint;

function sortValue(point: SortablePoint, sortBy: TrafficRequest['sortBy']): number {
  switch (sortBy) {
    case 'REQUESTS':
      return point.requests;
    case 'ERRORS':
      return point.errors;
    case 'LATENCY':
      return point.latency?.p95 ?? -1;
    case 'TIMESTAMP':
      return point.start.getTime();
  }
}

/** The answer of one `traffic` field: the key's traffic sorted, paged and judged (alerts, recommendations). */
export function trafficReport(traffic: KeyTraffic, request: TrafficRequest): ApiKeyTraffic {
  const points: TrafficPoint[] = traffic.series.map((s) => ({
    start: s.start,
    end: s.end,
    requests: s.requests,
    errors: s.errors,
    errorRate: rate(s.errors, s.requests),
    latency: latencyStats(s),
  }));
  const direction = request.order === 'ASC' ? 1 : -1;
  // Ties keep time order (oldest first), so pages never overlap.
  points.sort((a, b) => direction * (sortValue(a, request.sortBy) - sortValue(b, request.sortBy)) || a.start.getTime() - b.start.getTime());
  const page = points.slice(request.offset, request.offset + request.limit);

  const endpoints = traffic.endpoints
    .map((e) => ({ endpoint: e.endpoint, requests: e.requests, errors: e.errors, errorRate: rate(e.errors, e.requests), latency: latencyStats(e) }))
    .sort((a, b) => b.requests - a.requests || b.errors - a.errors || a.endpoint.localeCompare(b.endpoint));
  const errors = TRAFFIC_STATUSES.filter((s) => s !== 'OK' && traffic.statuses.has(s)).map((status) => ({ status, count: traffic.statuses.get(status)! }));

  const plan: RatePlan = traffic.plan ?? { key: { tier: null, customRateLimit: null }, realm: { tier: 'FREE', customRateLimit: null } };
  const tier = effectiveTier(plan);
  const limit = requestLimit(plan);
  const facts = {
    requests: traffic.summary.requests,
    errors: traffic.summary.errors,
    rateLimited: traffic.statuses.get('RATE_LIMITED') ?? 0,
    tier,
    limit,
    peak: traffic.peak,
    lastRequestAt: traffic.lastRequestAt,
    endpoints: traffic.endpoints,
  };
  return {
    range: request.range,
    granularity: request.granularity,
    timeZone: request.timeZone,
    approximate: request.approximate,
    warnings: request.warnings,
    summary: {
      requests: traffic.summary.requests,
      errors: traffic.summary.errors,
      errorRate: rate(traffic.summary.errors, traffic.summary.requests),
      latency: request.includeLatency ? latencyStats(traffic.summary) : null,
    },
    series: page,
    endpoints: request.includeEndpoints ? endpoints : [],
    errors: request.includeErrors ? errors : [],
    rateLimit: {
      tier,
      limit,
      peakMinute: traffic.peak?.minute ?? null,
      peakRequests: traffic.peak?.requests ?? 0,
      peakUtilization: traffic.peak ? traffic.peak.requests / limit : 0,
    },
    pageInfo: { total: points.length, limit: request.limit, offset: request.offset, hasMore: request.offset + page.length < points.length },
    alerts: trafficAlerts(facts),
    recommendations: trafficRecommendations(facts),
  };
}

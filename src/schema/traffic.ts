import { builder } from '../builder.js';
import type { Context } from '../context.js';
import { TrafficStatus } from '../generated/prisma/enums.js';
import type { AlertSeverity, TrafficAlert, TrafficAlertCode, TrafficRecommendation, TrafficRecommendationCode } from '../traffic/insights.js';
import { earliestTraffic, trafficLoader, trafficReport, type ApiKeyTraffic, type LatencyStats, type TrafficPoint } from '../traffic/traffic-loader.js';
import { DEFAULT_TRAFFIC_LIMIT, resolveTrafficRequest, SORT_ORDERS, TRAFFIC_SORTS, type TrafficArgs } from '../traffic/traffic-request.js';
import { realmFacts } from '../usage/usage-loader.js';
import { TierEnum } from './enums.js';
import { GranularityEnum, TimeframeEnum, TimeRangeInput, TimeRangeRef } from './usage.js';

const TrafficStatusEnum = builder.enumType(TrafficStatus, {
  name: 'TrafficStatus',
  description: 'How a request ended: OK, CLIENT_ERROR (bad input, forbidden, invalid query, …), SERVER_ERROR (unexpected), RATE_LIMITED.',
});
const TrafficSortEnum = builder.enumType('TrafficSort', {
  values: TRAFFIC_SORTS,
  description: 'What traffic points are sorted by: requests, errors, p95 latency, or bucket start.',
});
const SortOrderEnum = builder.enumType('SortOrder', { values: SORT_ORDERS });
const AlertSeverityEnum = builder.enumType('AlertSeverity', { values: ['INFO', 'WARNING', 'CRITICAL'] as const satisfies readonly AlertSeverity[] });
const TrafficAlertCodeEnum = builder.enumType('TrafficAlertCode', {
  values: {
    ERROR_RATE_HIGH: { description: 'More than 5 % of the requests in the range failed.' },
    RATE_LIMIT_NEAR: { description: "A minute of the range used more than 80 % of the key's rate limit." },
    UNUSED: { description: 'No request in the last 30 days.' },
  } satisfies Record<TrafficAlertCode, unknown>,
});
const TrafficRecommendationCodeEnum = builder.enumType('TrafficRecommendationCode', {
  values: ['UPGRADE_TIER', 'DOWNGRADE_TIER', 'FIX_FAILING_ENDPOINTS', 'REVOKE_UNUSED_KEY'] as const satisfies readonly TrafficRecommendationCode[],
});

const TrafficLatencyRef = builder.objectRef<LatencyStats>('TrafficLatency').implement({
  description: 'Latency in milliseconds. Percentiles are nearest-rank, read from log-bucket histograms: within 0.5 % of the exact value.',
  fields: (t) => ({
    avg: t.exposeFloat('avg'),
    p50: t.exposeFloat('p50'),
    p95: t.exposeFloat('p95'),
    p99: t.exposeFloat('p99'),
    max: t.exposeFloat('max'),
  }),
});

const TrafficSummaryRef = builder.objectRef<ApiKeyTraffic['summary']>('TrafficSummary').implement({
  fields: (t) => ({
    requests: t.exposeInt('requests'),
    errors: t.exposeInt('errors', { description: 'Requests that did not end OK.' }),
    errorRate: t.exposeFloat('errorRate', { description: 'errors / requests (0 without requests).' }),
    latency: t.expose('latency', { type: TrafficLatencyRef, nullable: true, description: 'Null without requests, or with includeLatency: false.' }),
  }),
});

const TrafficPointRef = builder.objectRef<TrafficPoint>('TrafficPoint').implement({
  description: 'One bucket with traffic (buckets without requests are omitted).',
  fields: (t) => ({
    start: t.expose('start', { type: 'DateTime' }),
    end: t.expose('end', { type: 'DateTime' }),
    requests: t.exposeInt('requests'),
    errors: t.exposeInt('errors'),
    errorRate: t.exposeFloat('errorRate'),
    latency: t.expose('latency', { type: TrafficLatencyRef, nullable: true }),
  }),
});

const TrafficEndpointRef = builder.objectRef<ApiKeyTraffic['endpoints'][number]>('TrafficEndpoint').implement({
  description: 'Traffic of one endpoint: a GraphQL operation name, or "anonymous".',
  fields: (t) => ({
    endpoint: t.exposeString('endpoint'),
    requests: t.exposeInt('requests'),
    errors: t.exposeInt('errors'),
    errorRate: t.exposeFloat('errorRate'),
    latency: t.expose('latency', { type: TrafficLatencyRef, nullable: true }),
  }),
});

const TrafficErrorCountRef = builder.objectRef<ApiKeyTraffic['errors'][number]>('TrafficErrorCount').implement({
  fields: (t) => ({
    status: t.field({ type: TrafficStatusEnum, resolve: (e) => e.status }),
    count: t.exposeInt('count'),
  }),
});

const TrafficRateLimitRef = builder.objectRef<ApiKeyTraffic['rateLimit']>('TrafficRateLimit').implement({
  description: "The key's rate limit and how much of it the busiest minute of the range used.",
  fields: (t) => ({
    tier: t.field({ type: TierEnum, resolve: (r) => r.tier }),
    limit: t.exposeInt('limit', { description: 'Requests per minute.' }),
    peakMinute: t.expose('peakMinute', { type: 'DateTime', nullable: true }),
    peakRequests: t.exposeInt('peakRequests'),
    peakUtilization: t.exposeFloat('peakUtilization', { description: 'peakRequests / limit.' }),
  }),
});

const TrafficPageInfoRef = builder.objectRef<ApiKeyTraffic['pageInfo']>('TrafficPageInfo').implement({
  fields: (t) => ({
    total: t.exposeInt('total', { description: 'Points in the whole series.' }),
    limit: t.exposeInt('limit'),
    offset: t.exposeInt('offset'),
    hasMore: t.exposeBoolean('hasMore'),
  }),
});

const TrafficAlertRef = builder.objectRef<TrafficAlert>('TrafficAlert').implement({
  fields: (t) => ({
    code: t.field({ type: TrafficAlertCodeEnum, resolve: (a) => a.code }),
    severity: t.field({ type: AlertSeverityEnum, resolve: (a) => a.severity }),
    message: t.exposeString('message'),
  }),
});

const TrafficRecommendationRef = builder.objectRef<TrafficRecommendation>('TrafficRecommendation').implement({
  fields: (t) => ({
    code: t.field({ type: TrafficRecommendationCodeEnum, resolve: (r) => r.code }),
    message: t.exposeString('message'),
    tier: t.field({ type: TierEnum, nullable: true, description: 'UPGRADE_TIER / DOWNGRADE_TIER: the tier that fits.', resolve: (r) => r.tier }),
    endpoints: t.exposeStringList('endpoints', { description: 'FIX_FAILING_ENDPOINTS: the endpoints that fail most.' }),
  }),
});

const ApiKeyTrafficRef = builder.objectRef<ApiKeyTraffic>('ApiKeyTraffic').implement({
  fields: (t) => ({
    range: t.expose('range', { type: TimeRangeRef }),
    granularity: t.field({ type: GranularityEnum, resolve: (r) => r.granularity }),
    timeZone: t.expose('timeZone', { type: 'TimeZone' }),
    approximate: t.exposeBoolean('approximate', { description: 'True when the range does not start and end on whole minutes (see `warnings`).' }),
    warnings: t.exposeStringList('warnings'),
    summary: t.expose('summary', { type: TrafficSummaryRef }),
    series: t.expose('series', { type: [TrafficPointRef], description: 'Buckets with traffic, sorted by `sortBy`/`order`, the page `offset`…`offset + limit`.' }),
    endpoints: t.expose('endpoints', { type: [TrafficEndpointRef], description: 'Per endpoint, most requests first (empty with includeEndpoints: false).' }),
    errors: t.expose('errors', { type: [TrafficErrorCountRef], description: 'Failed requests by status (empty with includeErrors: false).' }),
    rateLimit: t.expose('rateLimit', { type: TrafficRateLimitRef }),
    pageInfo: t.expose('pageInfo', { type: TrafficPageInfoRef }),
    alerts: t.expose('alerts', { type: [TrafficAlertRef] }),
    recommendations: t.expose('recommendations', { type: [TrafficRecommendationRef] }),
  }),
});

async function loadTrafficReport(ctx: Context, apiKeyId: string, args: TrafficArgs) {
  const facts = await realmFacts(ctx);
  const request = resolveTrafficRequest(args, {
    now: ctx.now,
    realmTimeZone: facts.timeZone,
    earliestTraffic: args.timeframe === 'ALL_TIME' && !args.range ? await earliestTraffic(ctx) : undefined,
  });
  return trafficReport(await trafficLoader(ctx, request).load(apiKeyId), request);
}

builder.prismaObjectField('ApiKey', 'traffic', (t) =>
  t.field({
    type: ApiKeyTrafficRef,
    authScopes: { usageRead: true },
    description:
      "The key's API traffic over a range (`range`, or `timeframe`, LAST_24_HOURS when neither is given) in buckets of `granularity` (MINUTE covers at most 7 days), aligned to `timeZone` (default: the realm's).",
    args: {
      timeframe: t.arg({ type: TimeframeEnum, description: 'Default LAST_24_HOURS (when `range` is not given either).' }),
      range: t.arg({ type: TimeRangeInput }),
      granularity: t.arg({ type: GranularityEnum, defaultValue: 'HOUR' }),
      timeZone: t.arg({ type: 'TimeZone' }),
      sortBy: t.arg({ type: TrafficSortEnum, defaultValue: 'TIMESTAMP' }),
      order: t.arg({ type: SortOrderEnum, defaultValue: 'DESC' }),
      limit: t.arg.int({ defaultValue: DEFAULT_TRAFFIC_LIMIT, description: 'Points per page, 1…1000.' }),
      offset: t.arg.int({ defaultValue: 0 }),
      includeEndpoints: t.arg.boolean({ defaultValue: true }),
      includeErrors: t.arg.boolean({ defaultValue: true }),
      includeLatency: t.arg.boolean({ defaultValue: true }),
    },
    resolve: (key, args, ctx) => loadTrafficReport(ctx, key.id, args as TrafficArgs),
  }),
);

import type { Context } from '../context.js';
import { visibleApiKeys } from '../schema/visibility.js';
import { earliestTraffic, trafficLoader, trafficReport, type ApiKeyTraffic, type LatencyStats } from '../traffic/traffic-loader.js';
import { DEFAULT_TRAFFIC_LIMIT, MAX_TRAFFIC_LIMIT, resolveTrafficRequest, type SortOrder, type TrafficSort } from '../traffic/traffic-request.js';
import type { Granularity, Timeframe } from '../usage/time.js';
import { realmFacts } from '../usage/usage-loader.js';
import { decodeParameterId, globalIdOf } from './ids.js';
import { query, type ParameterDoc, type QueryParams } from './params.js';
import { exactPath, type RestAnswer, type RestRoute } from './route.js';

/**
 * `GET /api/v1/keys/usage` (the calling key) and `GET /api/v1/keys/{id}/usage`: a key's API
 * traffic in the developer-platform seed API's shape — the same numbers as `ApiKey.traffic`.
 */

export const OWN_KEY_USAGE_PATH = '/api/v1/keys/usage';
export const KEY_USAGE_PATH_TEMPLATE = '/api/v1/keys/{id}/usage';
const KEY_USAGE_PATH = /^\/api\/v1\/keys\/([^/]+)\/usage$/;

export const TIMEFRAMES: Record<string, Timeframe> = {
  '1h': 'LAST_HOUR',
  '24h': 'LAST_24_HOURS',
  '7d': 'LAST_7_DAYS',
  '30d': 'LAST_30_DAYS',
  '90d': 'LAST_90_DAYS',
  '1y': 'LAST_YEAR',
  all: 'ALL_TIME',
};
const GRANULARITIES = ['minute', 'hour', 'day', 'week', 'month'] as const;
const SORTS = ['requests', 'errors', 'latency', 'timestamp'] as const;
const ORDERS = ['asc', 'desc'] as const;

const PARAMETERS: ParameterDoc[] = [
  query({ name: 'timeframe', description: 'The range, ending with the current hour (`all`: from the realm\'s first traffic).', schema: { type: 'string', enum: Object.keys(TIMEFRAMES), default: '24h' } }),
  query({
    name: 'granularity',
    description: "Bucket size of `series` (minute: at most 7 days; hour: at most 95 days). Day, week (ISO, Monday) and month start at local midnight in the realm's time zone.",
    schema: { type: 'string', enum: [...GRANULARITIES], default: 'hour' },
  }),
  query({ name: 'include_endpoints', description: 'Include the per-endpoint breakdown.', schema: { type: 'boolean', default: true } }),
  query({ name: 'include_errors', description: 'Include failed requests by status class.', schema: { type: 'boolean', default: true } }),
  query({ name: 'include_latency', description: 'Include latency statistics (avg, p50, p95, p99, max; milliseconds).', schema: { type: 'boolean', default: true } }),
  query({ name: 'sort', description: 'What `series` is sorted by (latency: p95).', schema: { type: 'string', enum: [...SORTS], default: 'timestamp' } }),
  query({ name: 'order', description: 'Sort order.', schema: { type: 'string', enum: [...ORDERS], default: 'desc' } }),
  query({ name: 'limit', description: `Series points per page, 1 to ${MAX_TRAFFIC_LIMIT}.`, schema: { type: 'integer', minimum: 1, maximum: MAX_TRAFFIC_LIMIT, default: DEFAULT_TRAFFIC_LIMIT } }),
  query({ name: 'offset', description: 'Series points to skip.', schema: { type: 'integer', minimum: 0, default: 0 } }),
];

const latencySchema = {
  type: ['object', 'null'],
  required: ['avg', 'p50', 'p95', 'p99', 'max'],
  properties: { avg: { type: 'number' }, p50: { type: 'number' }, p95: { type: 'number' }, p99: { type: 'number' }, max: { type: 'number' } },
  description: 'Milliseconds; null without requests or with include_latency=false.',
};
const countsSchema = {
  requests: { type: 'integer' },
  errors: { type: 'integer' },
  error_rate: { type: 'number' },
  latency: latencySchema,
};

const RESPONSE_SCHEMA = {
  type: 'object',
  required: ['key_id', 'timeframe', 'granularity', 'range', 'time_zone', 'summary', 'series', 'endpoints', 'errors', 'rate_limit', 'alerts', 'recommendations', 'pagination', 'warnings'],
  properties: {
    key_id: { type: 'string', description: 'Global id of the key.' },
    timeframe: { type: 'string' },
    granularity: { type: 'string' },
    range: { type: 'object', properties: { from: { type: 'string', format: 'date-time' }, to: { type: 'string', format: 'date-time' } } },
    time_zone: { type: 'string' },
    summary: { type: 'object', properties: countsSchema },
    series: {
      type: 'array',
      items: { type: 'object', properties: { start: { type: 'string', format: 'date-time' }, end: { type: 'string', format: 'date-time' }, ...countsSchema } },
    },
    endpoints: { type: 'array', items: { type: 'object', properties: { endpoint: { type: 'string' }, ...countsSchema } } },
    errors: { type: 'array', items: { type: 'object', properties: { status: { type: 'string', enum: ['CLIENT_ERROR', 'SERVER_ERROR', 'RATE_LIMITED'] }, count: { type: 'integer' } } } },
    rate_limit: {
      type: 'object',
      properties: {
        tier: { type: 'string' },
        limit: { type: 'integer', description: 'Requests per minute.' },
        peak_minute: { type: ['string', 'null'], format: 'date-time' },
        peak_requests: { type: 'integer' },
        peak_utilization: { type: 'number' },
      },
    },
    alerts: { type: 'array', items: { type: 'object', properties: { code: { type: 'string' }, severity: { type: 'string' }, message: { type: 'string' } } } },
    recommendations: {
      type: 'array',
      items: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, tier: { type: ['string', 'null'] }, endpoints: { type: 'array', items: { type: 'string' } } } },
    },
    pagination: { type: 'object', properties: { total: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' }, has_more: { type: 'boolean' } } },
    warnings: { type: 'array', items: { type: 'string' } },
  },
};

const latency = (stats: LatencyStats | null) => stats && { ...stats };
const counts = (c: { requests: number; errors: number; errorRate: number; latency: LatencyStats | null }) => ({
  requests: c.requests,
  errors: c.errors,
  error_rate: c.errorRate,
  latency: latency(c.latency),
});

function keyUsageBody(apiKeyId: string, timeframe: string, granularity: string, t: ApiKeyTraffic) {
  return {
    key_id: globalIdOf('ApiKey', apiKeyId),
    timeframe,
    granularity,
    range: { from: t.range.from.toISOString(), to: t.range.to.toISOString() },
    time_zone: t.timeZone,
    summary: counts(t.summary),
    series: t.series.map((p) => ({ start: p.start.toISOString(), end: p.end.toISOString(), ...counts(p) })),
    endpoints: t.endpoints.map((e) => ({ endpoint: e.endpoint, ...counts(e) })),
    errors: t.errors.map((e) => ({ status: e.status, count: e.count })),
    rate_limit: {
      tier: t.rateLimit.tier,
      limit: t.rateLimit.limit,
      peak_minute: t.rateLimit.peakMinute?.toISOString() ?? null,
      peak_requests: t.rateLimit.peakRequests,
      peak_utilization: t.rateLimit.peakUtilization,
    },
    alerts: t.alerts.map((a) => ({ code: a.code, severity: a.severity, message: a.message })),
    recommendations: t.recommendations.map((r) => ({ code: r.code, message: r.message, tier: r.tier ?? null, endpoints: r.endpoints })),
    pagination: { total: t.pageInfo.total, limit: t.pageInfo.limit, offset: t.pageInfo.offset, has_more: t.pageInfo.hasMore },
    warnings: t.warnings,
  };
}

/** The parameters as `ApiKey.traffic` arguments; every bad one is a 400 before anything is read. */
function trafficArgsOf(params: QueryParams) {
  const timeframe = params.oneOf('timeframe', Object.keys(TIMEFRAMES), '24h', { reason: 'INVALID_TIMEFRAME', label: 'timeframe' });
  const granularity = params.oneOf('granularity', GRANULARITIES, 'hour', { reason: 'INVALID_GRANULARITY', label: 'granularity' });
  const includeEndpoints = params.boolean('include_endpoints', true);
  const includeErrors = params.boolean('include_errors', true);
  const includeLatency = params.boolean('include_latency', true);
  const sort = params.oneOf('sort', SORTS, 'timestamp', { label: 'sort' });
  const order = params.oneOf('order', ORDERS, 'desc', { label: 'order' });
  const limit = params.integer('limit', DEFAULT_TRAFFIC_LIMIT, { min: 1, max: MAX_TRAFFIC_LIMIT }, 'INVALID_PAGINATION');
  const offset = params.integer('offset', 0, { min: 0 }, 'INVALID_PAGINATION');
  return {
    timeframe,
    granularity,
    args: {
      timeframe: TIMEFRAMES[timeframe]!,
      granularity: granularity.toUpperCase() as Granularity,
      sortBy: sort.toUpperCase() as TrafficSort,
      order: order.toUpperCase() as SortOrder,
      limit,
      offset,
      includeEndpoints,
      includeErrors,
      includeLatency,
    },
  };
}

async function answerKeyUsage(ctx: Context, { timeframe, granularity, args }: ReturnType<typeof trafficArgsOf>, apiKeyId: string): Promise<RestAnswer> {
  const facts = await realmFacts(ctx);
  const request = resolveTrafficRequest(args, {
    now: ctx.now,
    realmTimeZone: facts.timeZone,
    earliestTraffic: args.timeframe === 'ALL_TIME' ? await earliestTraffic(ctx) : undefined,
  });
  const traffic = trafficReport(await trafficLoader(ctx, request).load(apiKeyId), request);
  return { body: keyUsageBody(apiKeyId, timeframe, granularity, traffic) };
}

const description =
  "The key's API traffic: requests, errors and latency over `timeframe`, a paginated `series` at `granularity`, per-endpoint and per-status breakdowns, the peak minute against the key's rate limit, alerts and recommendations. " +
  'The same numbers as GraphQL `ApiKey.traffic`. Troubleshooting: "Invalid timeframe" (400, reason INVALID_TIMEFRAME) and "Invalid granularity" (400, reason INVALID_GRANULARITY) name the values allowed; ' +
  'minute detail covers at most 7 days, hourly at most 95 (RANGE_TOO_LARGE).';

export const ownKeyUsageRoute: RestRoute = {
  operationId: 'getOwnKeyUsage',
  path: OWN_KEY_USAGE_PATH,
  match: exactPath(OWN_KEY_USAGE_PATH),
  scope: 'usage:read',
  summary: 'API traffic of the calling key',
  description: `${description} A portal session is not an API key: it gets 404 here.`,
  parameters: PARAMETERS,
  responseSchema: RESPONSE_SCHEMA,
  async handle(ctx, params) {
    const traffic = trafficArgsOf(params);
    // As `viewer { apiKey }` answers null for it: a portal session is not an API key (its apiKeyId is its creator's).
    if (ctx.viewer.kind !== 'apiKey') return { status: 404, message: 'The caller is not an API key: name a key with /api/v1/keys/{id}/usage.' };
    return answerKeyUsage(ctx, traffic, ctx.viewer.apiKeyId);
  },
};

export const keyUsageRoute: RestRoute = {
  operationId: 'getKeyUsage',
  path: KEY_USAGE_PATH_TEMPLATE,
  match: (pathname) => {
    // Global ids are base64url: an id that needs percent-escapes is not one (decodeId says so).
    const m = KEY_USAGE_PATH.exec(pathname);
    return m ? { id: m[1]! } : undefined;
  },
  scope: 'usage:read',
  summary: 'API traffic of a key',
  description: `${description} The key is any the calling key sees: one of its realm, within its workspace subtree for a scoped key (others answer 404).`,
  parameters: [
    { name: 'id', in: 'path', required: true, description: 'The key\'s global id (`ApiKey.id` in GraphQL).', schema: { type: 'string' } },
    ...PARAMETERS,
  ],
  responseSchema: RESPONSE_SCHEMA,
  async handle(ctx, params, path) {
    const id = decodeParameterId('id', 'ApiKey', path.id!);
    // The parameters first: a bad one is a 400 whichever key the path names.
    const traffic = trafficArgsOf(params);
    const key = await ctx.prisma.apiKey.findFirst({ where: { AND: [{ id }, visibleApiKeys(ctx)] }, select: { id: true } });
    if (!key) return { status: 404, message: 'No API key with this id is visible to this key.' };
    return answerKeyUsage(ctx, traffic, id);
  },
};

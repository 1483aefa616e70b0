import { eventRetentionDays } from '../db/retention-window.js';
import { builder } from '../builder.js';
import type { Context } from '../context.js';
import { badUserInput } from '../errors.js';
import { DEFAULT_LATENESS_WINDOW_MS, MAX_BATCH } from '../ingest/pipeline.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../pagination.js';
import { MAX_QUERY_BREADTH, MAX_QUERY_COST, MAX_QUERY_DEPTH } from '../plugins/query-cost.js';
import { DEFAULT_WINDOW_SECONDS } from '../rate-limit/limiter.js';
import { requestLimit } from '../rate-limit/limits.js';
import { FORECAST_HISTORY_WEEKS, FORECAST_MAX_PERIOD_DAYS, FORECAST_MIN_ELAPSED_DAYS } from '../usage/forecast.js';
import { dimensionValuesPage, type DimensionValue, type ValuesDimension } from '../usage/dimension-values.js';
import { defaultArrivalDelaySeconds } from '../usage/feature-defaults.js';
import { MAX_BUCKETS, MAX_HOURLY_RANGE_DAYS } from '../usage/usage-request.js';
import { RealmNode } from './realm.js';
import { TimeframeEnum, TimeRangeInput, UsageDimensionEnum, UsageGroupRef, UsageTotalRef } from './usage.js';
import './forecast.js';

// ─── Realm.limits ─────────────────────────────────────────────────────────────────────────────

interface RealmLimits {
  ctx: Context;
}

const RateLimitPlanRef = builder.objectRef<RealmLimits>('RateLimitPlan').implement({
  description: "The calling key's rate limit (by its tier and custom limit, else its realm's).",
  fields: (t) => ({
    requestsPerWindow: t.int({ description: 'Requests (GraphQL operations, ingest calls, exports) allowed per window.', resolve: ({ ctx }) => requestLimit(ctx.viewer.ratePlan) }),
    windowSeconds: t.int({ description: 'The length of a fixed window.', resolve: () => DEFAULT_WINDOW_SECONDS }),
    enforced: t.boolean({ description: 'False when this gateway runs without rate limits.', resolve: ({ ctx }) => ctx.rateLimit !== null }),
  }),
});

const RealmLimitsRef = builder.objectRef<RealmLimits>('RealmLimits').implement({
  description: 'The limits this gateway applies to the calling key, read from the constants that enforce them, so that clients need not hard-code them.',
  fields: (t) => ({
    maxHourlyRangeDays: t.int({ description: 'The longest range (days) a usage report with HOUR granularity, or `dimensionValues`, may cover.', resolve: () => MAX_HOURLY_RANGE_DAYS }),
    maxBuckets: t.int({ description: 'The most buckets per group a usage report may have.', resolve: () => MAX_BUCKETS }),
    maxPageSize: t.int({ description: 'The largest `first`/`last` of a connection (more is a PAGE_SIZE_TOO_LARGE error).', resolve: () => MAX_PAGE_SIZE }),
    defaultPageSize: t.int({ description: 'A connection\'s page size without `first`/`last`.', resolve: () => DEFAULT_PAGE_SIZE }),
    latenessWindowSeconds: t.int({
      description: 'How old an ingested event may be: older ones are rejected (TOO_LATE). Beyond every feature\'s arrival delay.',
      resolve: () => DEFAULT_LATENESS_WINDOW_MS / 1000,
    }),
    defaultArrivalDelaySeconds: t.int({
      description: "A new feature's arrival delay (how late its usage normally arrives; a bucket is final once it ended this long ago). Each feature has its own: `Feature.arrivalDelaySeconds`.",
      resolve: ({ ctx }) => defaultArrivalDelaySeconds(ctx.prisma),
    }),
    idempotencyWindowSeconds: t.int({
      nullable: true,
      description:
        'How long the idempotency key of an ingested event is remembered at least, from its receipt (EVENT_RETENTION_DAYS; whole UTC days of events are dropped after it): a re-send within it is a duplicate. It exceeds `latenessWindowSeconds`, so a later re-send is refused as TOO_LATE: an event is never counted twice.',
      resolve: () => eventRetentionDays() * 86_400,
    }),
    maxIngestBatch: t.int({ description: 'Events per ingestion call.', resolve: () => MAX_BATCH }),
    rateLimit: t.field({ type: RateLimitPlanRef, resolve: (limits) => limits }),
    maxQueryCost: t.int({ description: 'The most a query may cost (see `extensions.cost`); more is refused with QUERY_TOO_COMPLEX.', resolve: () => MAX_QUERY_COST }),
    maxQueryDepth: t.int({ resolve: () => MAX_QUERY_DEPTH }),
    maxQueryBreadth: t.int({ description: 'The most selections (aliases included) in one query.', resolve: () => MAX_QUERY_BREADTH }),
    forecastHistoryWeeks: t.int({ description: 'Weeks of history a forecast\'s day-of-week profile is taken from.', resolve: () => FORECAST_HISTORY_WEEKS }),
    forecastMinElapsedDays: t.int({ description: 'Days of a period that must pass before it is forecast.', resolve: () => FORECAST_MIN_ELAPSED_DAYS }),
    forecastMaxPeriodDays: t.int({ description: 'The longest period forecast.', resolve: () => FORECAST_MAX_PERIOD_DAYS }),
  }),
});

builder.objectField(RealmNode, 'limits', (t) =>
  t.field({
    type: RealmLimitsRef,
    description: 'Limits that apply to the calling key in this realm: ranges, buckets, page size, lateness, idempotency, rate and cost.',
    resolve: (_realm, _args, ctx) => ({ ctx }),
  }),
);

// ─── Realm.dimensionValues ────────────────────────────────────────────────────────────────────

const DimensionValueRef = builder.objectRef<DimensionValue>('DimensionValue').implement({
  description: 'A value of a dimension in use in the range, with its usage there (for filter pickers).',
  fields: (t) => ({
    value: t.string({
      description: 'What to put in the matching `UsageFilter` list: the billing tag or resource, or the global id of the workspace, datastream, project, app, API key or feature.',
      resolve: (v) => v.value,
    }),
    name: t.string({ nullable: true, description: "The object's name (a feature: its key); null for billing tags and resources.", resolve: (v) => v.name }),
    group: t.field({ type: UsageGroupRef, description: 'The value as a usage group (its object resolves as in usage reports).', resolve: (v) => v.group }),
    usage: t.field({
      type: [UsageTotalRef],
      description: 'Usage attributed to this value in the range, per feature (by its aggregation; a workspace: its own usage, not its subtree\'s).',
      resolve: (v) => v.usage(),
    }),
  }),
});

builder.objectField(RealmNode, 'dimensionValues', (t) =>
  t.connection({
    type: DimensionValueRef,
    authScopes: { usageRead: true },
    description:
      `The values of a dimension with usage in the range (default: LAST_30_DAYS, at most ${MAX_HOURLY_RANGE_DAYS} days) that the key may see: ` +
      "a workspace-scoped key sees values of its subtree's usage only, and objects (apps, keys, …) it can read. " +
      'Ordered by value (objects: by id); `search` matches names (billing tags, resources: the value) case-insensitively. Forward pagination only.',
    args: {
      dimension: t.arg({ type: UsageDimensionEnum, required: true }),
      search: t.arg.string(),
      range: t.arg({ type: TimeRangeInput }),
      timeframe: t.arg({ type: TimeframeEnum }),
    },
    resolve: async (_realm, args, ctx) => {
      if (args.last != null || args.before != null) throw badUserInput('`dimensionValues` pages forward only: use `first` and `after`.', 'INVALID_PAGINATION');
      return dimensionValuesPage(ctx, {
        dimension: args.dimension as ValuesDimension,
        search: args.search ?? null,
        range: args.range ?? null,
        timeframe: args.timeframe ?? null,
        first: args.first ?? DEFAULT_PAGE_SIZE,
        after: args.after ?? null,
      });
    },
  }),
);

import { Kind, type GraphQLResolveInfo, type SelectionNode } from 'graphql';
import DataLoader from 'dataloader';
import { builder } from '../builder.js';
import { memoize, type Context } from '../context.js';
import { badUserInput } from '../errors.js';
import { decodeId } from '../global-id.js';
import { GRANULARITIES, TIMEFRAMES } from '../usage/time.js';
import {
  earliestUsage,
  realmFacts,
  usageLoader,
  type UsageGroup,
  type UsageParent,
  seriesOf,
  type UsagePoint,
  type UsageReport,
  type UsageSeries,
  type UsageTotal,
} from '../usage/usage-loader.js';
import { resolveUsageRequest, type UsageArgs } from '../usage/usage-request.js';
import { reportPeriod, withForecastBasis } from '../usage/forecast-loader.js';
import { DIMENSIONS, type UsageFilterIds, type UsageParentKind } from '../usage/usage-sql.js';
import { AppNode, ProjectNode } from './project.js';
import { ApiKeyNode } from './api-key.js';
import { DatastreamNode } from './datastream.js';
import { FeatureUnitEnum } from './enums.js';
import { FeatureNode } from './feature.js';
import { visibleApiKeys, visibleApps, visibleDatastreams, visibleFeatures, visibleProjects, visibleWorkspaces } from './visibility.js';
import { WorkspaceNode } from './workspace.js';

export const GranularityEnum = builder.enumType('Granularity', {
  values: GRANULARITIES,
  description: 'Bucket size. DAY, WEEK (ISO, Monday) and MONTH start at local midnight in the report\'s time zone. SUMMARIZED: one bucket for the whole range. MINUTE: API traffic only.',
});
export const TimeframeEnum = builder.enumType('Timeframe', {
  values: TIMEFRAMES,
  description: 'A range ending with the current hour (rolling), or a calendar month in the report\'s time zone.',
});
export const UsageDimensionEnum = builder.enumType('UsageDimension', {
  values: ['FEATURE', ...DIMENSIONS] as const,
  description: 'What points are grouped by. Points are always per feature (units differ), so FEATURE is implied.',
});
const WorkspaceUsageScopeEnum = builder.enumType('WorkspaceUsageScope', {
  values: ['SELF', 'SUBTREE'] as const,
});

export const TimeRangeInput = builder.inputType('TimeRangeInput', {
  description: 'A half-open range [from, to).',
  fields: (t) => ({ from: t.field({ type: 'DateTime', required: true }), to: t.field({ type: 'DateTime', required: true }) }),
});

const UsageFilterInput = builder.inputType('UsageFilter', {
  description: 'Each list narrows the usage to those values. Ids outside the caller\'s realm or scope are ignored and named in `warnings`.',
  fields: (t) => ({
    featureIds: t.idList(),
    projectIds: t.idList(),
    appIds: t.idList(),
    workspaceIds: t.idList(),
    datastreamIds: t.idList(),
    apiKeyIds: t.idList(),
    billingTags: t.stringList(),
    resources: t.stringList(),
  }),
});

export const TimeRangeRef = builder.objectRef<{ from: Date; to: Date }>('TimeRange').implement({
  fields: (t) => ({
    from: t.expose('from', { type: 'DateTime' }),
    to: t.expose('to', { type: 'DateTime' }),
  }),
});

type EntityModel = 'workspace' | 'datastream' | 'project' | 'app' | 'apiKey';

const VISIBLE: Record<EntityModel, (ctx: Context) => object> = {
  workspace: visibleWorkspaces,
  datastream: visibleDatastreams,
  project: visibleProjects,
  app: visibleApps,
  apiKey: visibleApiKeys,
};

/** Group values the caller may not see (usage of its subtree attributed to another team's app or key) resolve to null, as `node(id)` would. */
function entityLoader(ctx: Context, model: EntityModel) {
  return memoize(ctx, `entity:${model}`, () =>
    new DataLoader<string, unknown>(async (ids) => {
      const delegate = ctx.prisma[model] as unknown as { findMany(args: unknown): Promise<{ id: string }[]> };
      const rows = await delegate.findMany({ where: { id: { in: [...ids] }, AND: [VISIBLE[model](ctx)] } });
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
  );
}

export const UsageGroupRef = builder.objectRef<UsageGroup>('UsageGroup').implement({
  description: "The values of the `groupBy` dimensions for a point; dimensions not grouped by are null, and so are objects outside the caller's subtree (e.g. another team's app).",
  fields: (t) => ({
    workspace: t.field({ type: WorkspaceNode, nullable: true, resolve: (g, _a, ctx) => (g.workspaceId ? (entityLoader(ctx, 'workspace').load(g.workspaceId) as never) : null) }),
    datastream: t.field({ type: DatastreamNode, nullable: true, resolve: (g, _a, ctx) => (g.datastreamId ? (entityLoader(ctx, 'datastream').load(g.datastreamId) as never) : null) }),
    project: t.field({ type: ProjectNode, nullable: true, resolve: (g, _a, ctx) => (g.projectId ? (entityLoader(ctx, 'project').load(g.projectId) as never) : null) }),
    app: t.field({ type: AppNode, nullable: true, resolve: (g, _a, ctx) => (g.appId ? (entityLoader(ctx, 'app').load(g.appId) as never) : null) }),
    apiKey: t.field({ type: ApiKeyNode, nullable: true, resolve: (g, _a, ctx) => (g.apiKeyId ? (entityLoader(ctx, 'apiKey').load(g.apiKeyId) as never) : null) }),
    billingTag: t.exposeString('billingTag', { nullable: true }),
    resource: t.exposeString('resource', { nullable: true }),
  }),
});

export const UsagePointRef = builder.objectRef<UsagePoint>('UsagePoint').implement({
  fields: (t) => ({
    start: t.expose('start', { type: 'DateTime' }),
    end: t.expose('end', { type: 'DateTime' }),
    feature: t.field({ type: FeatureNode, resolve: (p) => p.feature }),
    quantity: t.expose('quantity', { type: 'Decimal' }),
    unit: t.field({ type: FeatureUnitEnum, resolve: (p) => p.feature.unit }),
    group: t.expose('group', { type: UsageGroupRef }),
    isFinal: t.exposeBoolean('isFinal', {
      description: "True once the bucket ended longer ago than the feature's arrival delay, or ingestion finalized it.",
    }),
  }),
});

export const UsageSeriesRef = builder.objectRef<UsageSeries>('UsageSeries').implement({
  description:
    "One feature's usage for one group as parallel arrays, in time order: the i-th bucket starts at `starts[i]`, ends at `ends[i]` and holds `quantities[i]`. The same buckets and numbers as `points`, in the shape charting libraries take; costs one object per series, not per point.",
  fields: (t) => ({
    feature: t.field({ type: FeatureNode, resolve: (s) => s.feature }),
    unit: t.field({ type: FeatureUnitEnum, resolve: (s) => s.feature.unit }),
    group: t.expose('group', { type: UsageGroupRef }),
    starts: t.expose('starts', { type: ['DateTime'] }),
    ends: t.expose('ends', { type: ['DateTime'] }),
    quantities: t.expose('quantities', { type: ['Decimal'], description: 'Exact decimal strings, never floats.' }),
    isFinal: t.exposeBooleanList('isFinal', { description: "Per bucket: true once it ended longer ago than the feature's arrival delay, or ingestion finalized it." }),
  }),
});

export const UsageTotalRef = builder.objectRef<UsageTotal>('UsageTotal').implement({
  description: 'A feature\'s total over the whole range per group (for MAX, LATEST and UNIQUE_COUNT not the sum of the points).',
  fields: (t) => ({
    feature: t.field({ type: FeatureNode, resolve: (p) => p.feature }),
    quantity: t.expose('quantity', { type: 'Decimal' }),
    unit: t.field({ type: FeatureUnitEnum, resolve: (p) => p.feature.unit }),
    group: t.expose('group', { type: UsageGroupRef }),
  }),
});

export const UsageReportRef = builder.objectRef<UsageReport>('UsageReport').implement({
  fields: (t) => ({
    range: t.expose('range', { type: TimeRangeRef }),
    granularity: t.field({ type: GranularityEnum, resolve: (r) => r.granularity }),
    timeZone: t.expose('timeZone', { type: 'TimeZone' }),
    approximate: t.exposeBoolean('approximate', {
      description: 'True when hourly data cannot be split exactly at the asked boundaries (a zone off whole hours from UTC, a range not on whole hours); see `warnings`.',
    }),
    points: t.expose('points', { type: [UsagePointRef], description: 'Buckets with usage, by feature, group and time; buckets without usage are omitted.' }),
    series: t.field({
      type: [UsageSeriesRef],
      description: 'The points per feature and group as parallel arrays (`starts`, `ends`, `quantities`, `isFinal`): the same buckets, read by the same statement.',
      resolve: (report) => seriesOf(report),
    }),
    totals: t.expose('totals', { type: [UsageTotalRef] }),
    finalizedThrough: t.expose('finalizedThrough', {
      type: 'DateTime',
      nullable: true,
      description: 'Usage before this instant is final for every feature in the report.',
    }),
    warnings: t.exposeStringList('warnings'),
    dataRefreshedAt: t.field({
      type: 'DateTime',
      description: 'Usage committed before this instant is in the report (like Stripe\'s `data_refreshed_at`): when reports are read from a replica (DATABASE_READ_URL), the time up to which it has replayed; otherwise the time of the request.',
      resolve: (_report, _args, ctx) => ctx.dataRefreshedAt ?? ctx.now,
    }),
  }),
});

const FILTER_TYPES: Record<Exclude<keyof UsageFilterIds, 'billingTags' | 'resources'>, string> = {
  featureIds: 'Feature',
  workspaceIds: 'Workspace',
  datastreamIds: 'Datastream',
  projectIds: 'Project',
  appIds: 'App',
  apiKeyIds: 'ApiKey',
};

type FilterArg = { [K in keyof UsageFilterIds]?: readonly string[] | null } | null | undefined;

/** Decodes filter ids (a malformed one or one of the wrong type is an error) and drops the ones the caller cannot see. */
async function resolveFilter(ctx: Context, filter: FilterArg): Promise<{ filter: UsageFilterIds; ignored: string[] }> {
  if (!filter) return { filter: {}, ignored: [] };
  return memoize(ctx, `filter:${JSON.stringify(filter)}`, async () => {
    const resolved: UsageFilterIds = {};
    const ignored: string[] = [];
    if (filter.billingTags) resolved.billingTags = [...filter.billingTags];
    if (filter.resources) resolved.resources = [...filter.resources];
    for (const [name, typename] of Object.entries(FILTER_TYPES) as [keyof typeof FILTER_TYPES, string][]) {
      const globalIds = filter[name];
      if (!globalIds) continue;
      const ids = globalIds.map((globalId) => {
        const decoded = decodeId(globalId);
        if (decoded.typename !== typename) {
          throw badUserInput(`\`filter.${name}\` takes ${typename} ids; "${globalId}" is a ${decoded.typename}.`, 'INVALID_ID', { id: globalId });
        }
        return { globalId, id: decoded.id };
      });
      const visible = new Set(await visibleIds(ctx, name, ids.map((i) => i.id)));
      resolved[name] = ids.filter((i) => visible.has(i.id)).map((i) => i.id);
      ignored.push(...ids.filter((i) => !visible.has(i.id)).map((i) => i.globalId));
    }
    return { filter: resolved, ignored };
  });
}

async function visibleIds(ctx: Context, name: keyof typeof FILTER_TYPES, ids: string[]): Promise<string[]> {
  const where = { id: { in: ids } };
  const select = { id: true } as const;
  const rows: { id: string }[] = await {
    featureIds: () => ctx.prisma.feature.findMany({ where: { ...where, ...visibleFeatures(ctx) }, select }),
    workspaceIds: () => ctx.prisma.workspace.findMany({ where: { ...where, ...visibleWorkspaces(ctx) }, select }),
    datastreamIds: () => ctx.prisma.datastream.findMany({ where: { ...where, ...visibleDatastreams(ctx) }, select }),
    projectIds: () => ctx.prisma.project.findMany({ where: { ...where, ...visibleProjects(ctx) }, select }),
    appIds: () => ctx.prisma.app.findMany({ where: { ...where, ...visibleApps(ctx) }, select }),
    apiKeyIds: () => ctx.prisma.apiKey.findMany({ where: { ...where, ...visibleApiKeys(ctx) }, select }),
  }[name]();
  return rows.map((row) => row.id);
}

interface UsageFieldArgs extends Omit<UsageArgs, 'range'> {
  range?: { from: Date; to: Date } | null;
  filter?: FilterArg;
}

/** Whether the `usage` field's selection asks for `totals` (directly or through fragments). */
function selectsTotals(info: GraphQLResolveInfo): boolean {
  const visit = (selections: readonly SelectionNode[]): boolean =>
    selections.some((selection) => {
      if (selection.kind === Kind.FIELD) return selection.name.value === 'totals';
      if (selection.kind === Kind.INLINE_FRAGMENT) return visit(selection.selectionSet.selections);
      const fragment = info.fragments[selection.name.value];
      return fragment ? visit(fragment.selectionSet.selections) : false;
    });
  return info.fieldNodes.some((node) => (node.selectionSet ? visit(node.selectionSet.selections) : false));
}

async function loadReport(ctx: Context, parentKind: UsageParentKind, parent: UsageParent, args: UsageFieldArgs, info: GraphQLResolveInfo) {
  const facts = await realmFacts(ctx);
  const request = resolveUsageRequest(args, {
    now: ctx.now,
    realmTimeZone: facts.timeZone,
    earliestUsage: args.timeframe === 'ALL_TIME' ? await earliestUsage(ctx) : undefined,
  });
  const { filter, ignored } = await resolveFilter(ctx, args.filter);
  // Totals cost a second aggregation: read only when asked for.
  const report = await usageLoader(ctx, { parentKind, request, filter, ignored, totals: selectsTotals(info) }).load(parent);
  return withForecastBasis(report, { parentKind, parent, filter, groupBy: request.groupBy, timeZone: request.timeZone, ...reportPeriod(args, request, ctx.now) });
}

const usageDescription =
  'Usage attributed to this node over a range (`range` or `timeframe`, exactly one), in buckets of `granularity`, aligned to `timeZone` (default: the realm\'s).';

const usageArgs = builder.args((t) => ({
  range: t.field({ type: TimeRangeInput }),
  timeframe: t.field({ type: TimeframeEnum }),
  granularity: t.field({ type: GranularityEnum, defaultValue: 'SUMMARIZED' }),
  timeZone: t.field({ type: 'TimeZone' }),
  filter: t.field({ type: UsageFilterInput }),
  groupBy: t.field({ type: [UsageDimensionEnum] }),
  finalizedOnly: t.boolean({ defaultValue: false }),
}));

const simpleParents = [
  ['Realm', 'REALM'],
  ['Datastream', 'DATASTREAM'],
  ['Project', 'PROJECT'],
  ['App', 'APP'],
  ['Feature', 'FEATURE'],
  ['ApiKey', 'API_KEY'],
  ['License', 'LICENSE'],
] as const;

for (const [model, kind] of simpleParents) {
  builder.prismaObjectField(model, 'usage', (t) =>
    t.field({
      type: UsageReportRef,
      description: usageDescription,
      authScopes: { usageRead: true },
      args: usageArgs,
      // A Feature's or License's report holds one feature, and is as final as that feature.
      resolve: (parent, args, ctx, info) => {
        const featureId = kind === 'FEATURE' ? parent.id : kind === 'LICENSE' ? (parent as { featureId: string }).featureId : undefined;
        return loadReport(ctx, kind, { id: parent.id, featureId }, args as UsageFieldArgs, info);
      },
    }),
  );
}

builder.prismaObjectField('Workspace', 'usage', (t) =>
  t.field({
    type: UsageReportRef,
    description: `${usageDescription} SUBTREE (the default) includes every workspace beneath this one.`,
    authScopes: { usageRead: true },
    args: { ...usageArgs, scope: t.arg({ type: WorkspaceUsageScopeEnum, defaultValue: 'SUBTREE' }) },
    resolve: (parent, args, ctx, info) =>
      loadReport(ctx, args.scope === 'SELF' ? 'WORKSPACE_SELF' : 'WORKSPACE_SUBTREE', { id: parent.id }, args as UsageFieldArgs, info),
  }),
);

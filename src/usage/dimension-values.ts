import { memoize, type Context } from '../context.js';
import { badUserInput } from '../errors.js';
import type { Prisma } from '../generated/prisma/client.js';
import { decodeId, encodeId } from '../global-id.js';
import { visibleApiKeys, visibleApps, visibleDatastreams, visibleFeatures, visibleProjects, visibleWorkspaces } from '../schema/visibility.js';
import { dimensionValuesOf, type DimensionValues } from './dimension-key.js';
import { HOUR_MS, type TimeRange, type Timeframe } from './time.js';
import { earliestUsage, realmFacts, usageLoader, type UsageTotal } from './usage-loader.js';
import { MAX_HOURLY_RANGE_DAYS, resolveUsageRequest, type UsageRequest } from './usage-request.js';
import type { Dimension, UsageFilterIds } from './usage-sql.js';

export type ValuesDimension = Dimension | 'FEATURE';

export interface DimensionValue {
  value: string;
  name: string | null;
  group: DimensionValues;
  usage: () => Promise<UsageTotal[]>;
}

export interface DimensionValuesArgs {
  dimension: ValuesDimension;
  search: string | null;
  range: TimeRange | null;
  timeframe: Timeframe | null;
  first: number;
  after: string | null;
}

type ObjectDimension = Exclude<ValuesDimension, 'BILLING_TAG' | 'RESOURCE'>;

/** Objects a dimension names: its node type, its filter list and group field, and how the key may see them. */
const OBJECTS: Record<ObjectDimension, { typename: string; filter: keyof UsageFilterIds; group: keyof DimensionValues | null }> = {
  WORKSPACE: { typename: 'Workspace', filter: 'workspaceIds', group: 'workspaceId' },
  DATASTREAM: { typename: 'Datastream', filter: 'datastreamIds', group: 'datastreamId' },
  PROJECT: { typename: 'Project', filter: 'projectIds', group: 'projectId' },
  APP: { typename: 'App', filter: 'appIds', group: 'appId' },
  API_KEY: { typename: 'ApiKey', filter: 'apiKeyIds', group: 'apiKeyId' },
  FEATURE: { typename: 'Feature', filter: 'featureIds', group: null },
};

const TEXT: Record<'BILLING_TAG' | 'RESOURCE', { column: 'billingTag' | 'resource'; filter: 'billingTags' | 'resources' }> = {
  BILLING_TAG: { column: 'billingTag', filter: 'billingTags' },
  RESOURCE: { column: 'resource', filter: 'resources' },
};

const cursorOf = (value: string) => Buffer.from(value, 'utf8').toString('base64url');
function valueOfCursor(cursor: string): string {
  const value = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!value || cursorOf(value) !== cursor) throw badUserInput(`"${cursor}" is not a cursor of \`dimensionValues\`.`, 'INVALID_CURSOR');
  return value;
}

/**
 * One page of the values of a dimension with usage in a range: one statement for the page (objects
 * the key can see that have usage rows of its subtree in the range, or the distinct tags of those
 * rows), and one for the page's usage (the usage loader, grouped by the dimension and filtered to the
 * page's values), whatever the page size.
 */
export async function dimensionValuesPage(ctx: Context, args: DimensionValuesArgs) {
  const facts = await realmFacts(ctx);
  const request = resolveUsageRequest(
    { range: args.range, timeframe: args.range ? null : (args.timeframe ?? 'LAST_30_DAYS'), granularity: 'SUMMARIZED' },
    { now: ctx.now, realmTimeZone: facts.timeZone, earliestUsage: args.timeframe === 'ALL_TIME' ? await earliestUsage(ctx) : undefined },
  );
  const days = (request.range.to.getTime() - request.range.from.getTime()) / (24 * HOUR_MS);
  if (days > MAX_HOURLY_RANGE_DAYS) {
    throw badUserInput(`\`dimensionValues\` covers at most ${MAX_HOURLY_RANGE_DAYS} days (asked: ${Math.ceil(days)}).`, 'RANGE_TOO_LARGE', { maxDays: MAX_HOURLY_RANGE_DAYS });
  }
  const after = args.after === null ? null : valueOfCursor(args.after);
  const take = Math.max(args.first, 0) + 1;
  const { realmId, workspaceId: scope } = ctx.viewer;
  // Usage rows the key may read in the range: its realm's, of its subtree when scoped.
  const rows: Prisma.UsageHourlyWhereInput = {
    realmId,
    hour: { gte: request.range.from, lt: request.range.to },
    ...(scope ? { workspace: { ancestors: { some: { ancestorId: scope } } } } : {}),
  };
  const search = args.search ? { contains: args.search, mode: 'insensitive' as const } : undefined;

  let found: { id: string | null; value: string; name: string | null }[];
  let filterName: keyof UsageFilterIds;
  let groupBy: Dimension[];
  if (args.dimension === 'BILLING_TAG' || args.dimension === 'RESOURCE') {
    const { column, filter } = TEXT[args.dimension];
    const where = { ...rows, [column]: { not: null, ...(search ?? {}), ...(after !== null ? { gt: after } : {}) } };
    const values =
      column === 'billingTag'
        ? (await ctx.prisma.usageHourly.groupBy({ by: ['billingTag'], where, orderBy: { billingTag: 'asc' }, take })).map((g) => g.billingTag)
        : (await ctx.prisma.usageHourly.groupBy({ by: ['resource'], where, orderBy: { resource: 'asc' }, take })).map((g) => g.resource);
    found = values.map((value) => ({ id: null, value: value!, name: null }));
    filterName = filter;
    groupBy = [args.dimension];
  } else {
    const object = OBJECTS[args.dimension];
    let afterId: string | undefined;
    if (after !== null) {
      const decoded = decodeId(after);
      if (decoded.typename !== object.typename) throw badUserInput(`"${args.after}" is not a cursor of \`dimensionValues(dimension: ${args.dimension})\`.`, 'INVALID_CURSOR');
      afterId = decoded.id;
    }
    found = (await findObjects(ctx, args.dimension, rows, search, afterId, take)).map((o) => ({ id: o.id, value: encodeId(object.typename, o.id), name: o.name }));
    filterName = object.filter;
    groupBy = args.dimension === 'FEATURE' ? [] : [args.dimension];
  }

  const page = found.slice(0, take - 1);
  const usageRequest: UsageRequest = { ...request, groupBy, warnings: [] };
  const filter: UsageFilterIds = { [filterName]: page.map((v) => v.id ?? v.value) };
  const usage = () =>
    memoize(ctx, `dimension-values-usage:${JSON.stringify(filter)}:${JSON.stringify(usageRequest.range)}`, () =>
      usageLoader(ctx, { parentKind: 'REALM', request: usageRequest, filter, ignored: [], totals: false }).load({ id: realmId }),
    );
  const edges = page.map((v) => {
    const own = v.id ?? v.value;
    const group = groupFor(args.dimension, own);
    const value: DimensionValue = {
      value: v.value,
      name: v.name,
      group,
      usage: async () => (await usage()).totals.filter((total) => (args.dimension === 'FEATURE' ? total.feature.id === own : matches(total.group, args.dimension, own))),
    };
    return { cursor: cursorOf(v.value), node: value };
  });
  return {
    edges,
    pageInfo: {
      hasNextPage: found.length > page.length,
      hasPreviousPage: after !== null,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges[edges.length - 1]?.cursor ?? null,
    },
  };
}

function groupFor(dimension: ValuesDimension, own: string): DimensionValues {
  if (dimension === 'BILLING_TAG') return dimensionValuesOf({ billingTag: own });
  if (dimension === 'RESOURCE') return dimensionValuesOf({ resource: own });
  const field = OBJECTS[dimension].group;
  return dimensionValuesOf(field ? { [field]: own } : {});
}

function matches(group: DimensionValues, dimension: ValuesDimension, own: string): boolean {
  if (dimension === 'BILLING_TAG') return group.billingTag === own;
  if (dimension === 'RESOURCE') return group.resource === own;
  const field = OBJECTS[dimension as ObjectDimension].group;
  return field ? group[field] === own : true;
}

/** Objects of the dimension the key may see (visibility.ts) with usage rows it may read in the range, by id. */
async function findObjects(
  ctx: Context,
  dimension: ObjectDimension,
  rows: Prisma.UsageHourlyWhereInput,
  search: { contains: string; mode: 'insensitive' } | undefined,
  afterId: string | undefined,
  take: number,
): Promise<{ id: string; name: string }[]> {
  const common = { ...(afterId ? { id: { gt: afterId } } : {}), usageHourly: { some: rows } };
  const args = { orderBy: { id: 'asc' as const }, take };
  const named = search ? { name: search } : {};
  switch (dimension) {
    case 'WORKSPACE':
      return ctx.prisma.workspace.findMany({ where: { AND: [visibleWorkspaces(ctx), common, named] }, select: { id: true, name: true }, ...args });
    case 'DATASTREAM':
      return ctx.prisma.datastream.findMany({ where: { AND: [visibleDatastreams(ctx), common, named] }, select: { id: true, name: true }, ...args });
    case 'PROJECT':
      return ctx.prisma.project.findMany({ where: { AND: [visibleProjects(ctx), common, named] }, select: { id: true, name: true }, ...args });
    case 'APP':
      return ctx.prisma.app.findMany({ where: { AND: [visibleApps(ctx), common, named] }, select: { id: true, name: true }, ...args });
    case 'API_KEY':
      return ctx.prisma.apiKey.findMany({ where: { AND: [visibleApiKeys(ctx), common, named] }, select: { id: true, name: true }, ...args });
    case 'FEATURE': {
      const features = await ctx.prisma.feature.findMany({
        where: { AND: [visibleFeatures(ctx), common, search ? { OR: [{ key: search }, { name: search }] } : {}] },
        select: { id: true, key: true },
        ...args,
      });
      return features.map((f) => ({ id: f.id, name: f.key }));
    }
  }
}

import { DateTime } from 'luxon';
import type { Context } from '../context.js';
import { echoJson } from '../errors.js';
import type { Feature } from '../generated/prisma/client.js';
import { visibleWorkspaces } from '../schema/visibility.js';
import { dayNumber, startOfLocalDay } from '../usage/time.js';
import { realmFacts, usageLoader } from '../usage/usage-loader.js';
import { resolveUsageRequest } from '../usage/usage-request.js';
import { filterIds, globalIdOf, withParameterNames } from './ids.js';
import { query, repeatable, RestInputError, type QueryParams } from './params.js';
import { exactPath, type RestRoute } from './route.js';

/**
 * `GET /api/v1/usage/`: finalized row usage per date × workspace × datastream (the Adverity-style
 * seed API): `unique_rows` is the usage of the realm's ROW feature counted UNIQUE_COUNT, `total_rows`
 * of its ROW feature counted SUM — the same numbers as `Realm.usage(granularity: DAY | MONTH,
 * groupBy: [WORKSPACE, DATASTREAM], finalizedOnly: true)` for those two features.
 */

export const ROW_USAGE_PATH = '/api/v1/usage/';
export const MAX_ROW_USAGE_PAGE_SIZE = 100;
const GRANULARITIES = ['daily', 'monthly'] as const;

export interface RowUsageItem {
  date: string;
  workspace_id: string | null;
  workspace_name: string | null;
  datastream_id: string | null;
  unique_rows: string;
  total_rows: string;
}

/** The realm's row features: its ROW feature counted UNIQUE_COUNT and the one counted SUM (the first by key of each). */
export function rowFeatures(features: Iterable<Feature>): { unique?: Feature; total?: Feature } {
  const rows = [...features].filter((f) => f.unit === 'ROW').sort((a, b) => a.key.localeCompare(b.key));
  return { unique: rows.find((f) => f.aggregation === 'UNIQUE_COUNT'), total: rows.find((f) => f.aggregation === 'SUM') };
}

function parseDate(params: QueryParams, name: string): DateTime | undefined {
  const raw = params.get(name);
  if (raw === undefined) return undefined;
  const date = /^\d{4}-\d{2}-\d{2}$/.test(raw) ? DateTime.fromISO(raw, { zone: 'utc' }) : null;
  if (!date?.isValid) throw new RestInputError(`\`${name}\` must be a date as YYYY-MM-DD (got ${echoJson(raw)}).`, 'INVALID_DATE', name);
  return date;
}

const firstInstant = (date: DateTime, timeZone: string) => startOfLocalDay(dayNumber(date.year, date.month, date.day), timeZone);

/** The query string of another page of the same question: `page` replaced, everything else kept. */
function pageLink(url: URL, page: number): string {
  const search = new URLSearchParams(url.searchParams);
  search.set('page', String(page));
  return `${url.pathname}?${search}`;
}

export const rowUsageRoute: RestRoute = {
  operationId: 'listRowUsage',
  path: ROW_USAGE_PATH,
  match: exactPath(ROW_USAGE_PATH),
  scope: 'usage:read',
  summary: 'Finalized row usage per date, workspace and datastream',
  description:
    'Unique and total rows per day or month × workspace × datastream, finalized only: days run in the realm\'s time zone, `date_to` is capped to yesterday, and a bucket still receiving late usage is left out (`warnings` says where the data ends). ' +
    '`unique_rows` is the usage of the realm\'s ROW feature counted UNIQUE_COUNT (a month\'s unique rows is not the sum of its days), `total_rows` of its ROW feature counted SUM. ' +
    'A workspace-scoped key sees its workspace and every workspace beneath it; `workspace_id` / `datastream_id` values outside that, or unknown, are ignored and named in `warnings`. Ids are the GraphQL API\'s global ids.',
  parameters: [
    query({ name: 'granularity', description: 'Rows per day or per calendar month (in the realm\'s time zone).', schema: { type: 'string', enum: [...GRANULARITIES], default: 'daily' } }),
    query({
      name: 'date_from',
      description: 'First day (YYYY-MM-DD, included). Default: the first day of `date_to`\'s month (daily), of the month 11 months before it (monthly).',
      schema: { type: 'string', format: 'date' },
    }),
    query({ name: 'date_to', description: 'Last day (YYYY-MM-DD, included); capped to yesterday, the last finalized day (default).', schema: { type: 'string', format: 'date' } }),
    repeatable({ name: 'workspace_id', description: 'Only these workspaces (their own usage, not their subtree\'s); repeat the parameter for several.', items: { type: 'string' } }),
    repeatable({ name: 'datastream_id', description: 'Only these datastreams; repeat the parameter for several.', items: { type: 'string' } }),
    query({ name: 'page', description: 'Page number, from 1.', schema: { type: 'integer', minimum: 1, default: 1 } }),
    query({ name: 'page_size', description: `Items per page, 1 to ${MAX_ROW_USAGE_PAGE_SIZE}.`, schema: { type: 'integer', minimum: 1, maximum: MAX_ROW_USAGE_PAGE_SIZE, default: MAX_ROW_USAGE_PAGE_SIZE } }),
  ],
  responseSchema: {
    type: 'object',
    required: ['count', 'next', 'previous', 'results', 'warnings'],
    properties: {
      count: { type: 'integer', description: 'Items on all pages.' },
      next: { type: ['string', 'null'], description: 'Path and query of the next page (null on the last).' },
      previous: { type: ['string', 'null'], description: 'Path and query of the previous page (null on the first).' },
      results: {
        type: 'array',
        items: {
          type: 'object',
          required: ['date', 'workspace_id', 'workspace_name', 'datastream_id', 'unique_rows', 'total_rows'],
          properties: {
            date: { type: 'string', format: 'date', description: 'The first day the item counts: the day, or the month\'s first day (`date_from` for a month the range cuts).' },
            workspace_id: { type: ['string', 'null'], description: 'Global id of the workspace (null: usage attributed to no workspace).' },
            workspace_name: { type: ['string', 'null'] },
            datastream_id: { type: ['string', 'null'], description: 'Global id of the datastream (null: usage attributed to no datastream).' },
            unique_rows: { type: 'string', pattern: '^\\d+(\\.\\d+)?$', description: 'Exact, as a decimal string.' },
            total_rows: { type: 'string', pattern: '^\\d+(\\.\\d+)?$', description: 'Exact, as a decimal string.' },
          },
        },
      },
      warnings: { type: 'array', items: { type: 'string' } },
    },
  },

  async handle(ctx, params, _path, url) {
    const granularity = params.oneOf('granularity', GRANULARITIES, 'daily', { reason: 'INVALID_GRANULARITY', label: 'granularity' });
    const page = params.integer('page', 1, { min: 1 }, 'INVALID_PAGINATION');
    const pageSize = params.integer('page_size', MAX_ROW_USAGE_PAGE_SIZE, { min: 1, max: MAX_ROW_USAGE_PAGE_SIZE }, 'INVALID_PAGINATION');
    const givenFrom = parseDate(params, 'date_from');
    const givenTo = parseDate(params, 'date_to');
    const facts = await realmFacts(ctx);
    const local = DateTime.fromJSDate(ctx.now, { zone: facts.timeZone });
    const yesterday = DateTime.utc(local.year, local.month, local.day).minus({ days: 1 });
    const warnings: string[] = [];
    let to = givenTo ?? yesterday;
    if (to > yesterday) {
      warnings.push(`date_to ${to.toISODate()} is capped to ${yesterday.toISODate()}: finalized usage ends yesterday (${facts.timeZone}).`);
      to = yesterday;
    }
    const from = givenFrom ?? (granularity === 'daily' ? to.startOf('month') : to.startOf('month').minus({ months: 11 }));
    if (from > to) {
      throw new RestInputError(
        from > yesterday
          ? `date_from ${from.toISODate()} is after yesterday (${yesterday.toISODate()}): finalized usage ends yesterday.`
          : `date_from ${from.toISODate()} is after date_to ${to.toISODate()}.`,
        'INVALID_RANGE',
        'date_from',
      );
    }
    const workspaces = await filterIds(ctx, 'workspace_id', 'Workspace', params.all('workspace_id'));
    const datastreams = await filterIds(ctx, 'datastream_id', 'Datastream', params.all('datastream_id'));
    const { unique, total } = rowFeatures(facts.features.values());
    const features = [unique, total].filter((f): f is Feature => !!f);
    if (!features.length) warnings.push('This realm has no ROW feature: there is no row usage to report.');

    const request = resolveUsageRequest(
      {
        range: { from: firstInstant(from, facts.timeZone), to: firstInstant(to.plus({ days: 1 }), facts.timeZone) },
        granularity: granularity === 'daily' ? 'DAY' : 'MONTH',
        groupBy: ['WORKSPACE', 'DATASTREAM'],
        finalizedOnly: true,
      },
      { now: ctx.now, realmTimeZone: facts.timeZone },
    );
    const filter = {
      featureIds: features.map((f) => f.id),
      ...(workspaces.ids ? { workspaceIds: workspaces.ids } : {}),
      ...(datastreams.ids ? { datastreamIds: datastreams.ids } : {}),
    };
    const report = features.length
      ? await usageLoader(ctx, { parentKind: 'REALM', request, filter, ignored: [...workspaces.ignored, ...datastreams.ignored], totals: false }).load({ id: ctx.viewer.realmId })
      : null;
    warnings.push(...withParameterNames(report?.warnings ?? [], { workspaceIds: 'workspace_id', datastreamIds: 'datastream_id' }));

    const items = new Map<string, { start: Date; workspaceId: string | null; datastreamId: string | null; unique: string; total: string }>();
    for (const point of report?.points ?? []) {
      const key = `${point.start.getTime()}|${point.group.workspaceId}|${point.group.datastreamId}`;
      let item = items.get(key);
      if (!item) items.set(key, (item = { start: point.start, workspaceId: point.group.workspaceId, datastreamId: point.group.datastreamId, unique: '0', total: '0' }));
      if (point.feature.id === unique?.id) item.unique = point.quantity.toFixed();
      if (point.feature.id === total?.id) item.total = point.quantity.toFixed();
    }
    const sorted = [...items.values()].sort(
      (a, b) => a.start.getTime() - b.start.getTime() || (a.workspaceId ?? '').localeCompare(b.workspaceId ?? '') || (a.datastreamId ?? '').localeCompare(b.datastreamId ?? ''),
    );
    const pageItems = sorted.slice((page - 1) * pageSize, page * pageSize);
    const workspaceIds = [...new Set(pageItems.map((i) => i.workspaceId).filter((id): id is string => id !== null))];
    const names = new Map(
      (await ctx.prisma.workspace.findMany({ where: { AND: [{ id: { in: workspaceIds } }, visibleWorkspaces(ctx)] }, select: { id: true, name: true } })).map((w) => [w.id, w.name]),
    );
    const results: RowUsageItem[] = pageItems.map((item) => ({
      date: DateTime.fromJSDate(item.start, { zone: facts.timeZone }).toISODate()!,
      workspace_id: globalIdOf('Workspace', item.workspaceId),
      workspace_name: item.workspaceId ? (names.get(item.workspaceId) ?? null) : null,
      datastream_id: globalIdOf('Datastream', item.datastreamId),
      unique_rows: item.unique,
      total_rows: item.total,
    }));
    return {
      body: {
        count: sorted.length,
        next: page * pageSize < sorted.length ? pageLink(url, page + 1) : null,
        previous: page > 1 ? pageLink(url, Math.min(page - 1, Math.max(1, Math.ceil(sorted.length / pageSize)))) : null,
        results,
        warnings,
      },
    };
  },
};

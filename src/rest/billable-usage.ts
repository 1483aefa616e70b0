import type { Context } from '../context.js';
import { echoJson } from '../errors.js';
import { visibleApps } from '../schema/visibility.js';
import { HOUR_MS } from '../usage/time.js';
import { realmFacts, usageLoader } from '../usage/usage-loader.js';
import { MAX_HOURLY_RANGE_DAYS, resolveUsageRequest } from '../usage/usage-request.js';
import { decodeParameterId, filterIds, globalIdOf, withParameterNames } from './ids.js';
import { query, repeatable, RestInputError, type QueryParams } from './params.js';
import { exactPath, type RestRoute } from './route.js';

/**
 * `GET /api/v1/billable-usage`: a realm's billable usage in the HERE-style seed API's shape — the
 * same numbers as `Realm.usage(range, granularity, timeZone: "UTC", filter, groupBy: [PROJECT, APP,
 * BILLING_TAG])`, one item per bucket × feature × project × app × billing tag.
 */

export const BILLABLE_USAGE_PATH = '/api/v1/billable-usage';
export const MAX_BILLABLE_RANGE_DAYS = MAX_HOURLY_RANGE_DAYS;
const DETAIL_LEVELS = ['summarized', 'hour', 'day', 'month'] as const;
const GRANULARITY = { summarized: 'SUMMARIZED', hour: 'HOUR', day: 'DAY', month: 'MONTH' } as const;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/;

/** `yyyy-MM-dd'T'HH:mm:ss`, in UTC; an impossible date (2026-02-30) is refused, not rolled over. */
function parseDateTime(params: QueryParams, name: string): Date {
  const raw = params.required(name);
  const m = DATE_TIME.exec(raw);
  const date = m ? new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) : null;
  if (!m || !date || Number.isNaN(date.getTime()) || date.toISOString().slice(0, 19) !== raw) {
    throw new RestInputError(`\`${name}\` must be a UTC date-time as yyyy-MM-dd'T'HH:mm:ss, e.g. 2026-03-01T00:00:00 (got ${echoJson(raw)}).`, 'INVALID_DATE', name);
  }
  return date;
}

export interface BillableUsageItem {
  startTime: string;
  endTime: string;
  featureId: string;
  featureKey: string;
  featureName: string;
  serviceName: string;
  unitOfMeasure: string;
  value: string;
  projectId: string | null;
  appId: string | null;
  billingTag: string | null;
}

const nullableString = { type: ['string', 'null'] };

export const billableUsageRoute: RestRoute = {
  operationId: 'getBillableUsage',
  path: BILLABLE_USAGE_PATH,
  match: exactPath(BILLABLE_USAGE_PATH),
  scope: 'usage:read',
  summary: 'Billable usage of a realm (HERE-style)',
  description:
    `Usage of the realm's billable features over [startDate, endDate) (UTC, at most ${MAX_BILLABLE_RANGE_DAYS} days), in the features' units, per feature × project × app × billing tag, summarized or per hour, day or month (UTC). ` +
    'Buckets still receiving late usage are included (the feature\'s arrival delay: 2 h for location services, 48 h for cloud services). ' +
    'Ids are the GraphQL API\'s global ids. A `realmId` other than the key\'s own realm answers no items (a warning says so), as `realm(id:)` answers null. Filter ids outside the key\'s realm or workspace subtree are ignored and named in `warnings`; a workspace-scoped key gets its subtree\'s usage, with apps outside it as null.',
  parameters: [
    query({ name: 'realmId', required: true, description: 'The realm: the global id of the key\'s realm (`viewer { realm { id } }`).', schema: { type: 'string' } }),
    query({ name: 'startDate', required: true, description: "Start (included), UTC, yyyy-MM-dd'T'HH:mm:ss.", schema: { type: 'string', pattern: DATE_TIME.source }, example: '2026-03-01T00:00:00' }),
    query({ name: 'endDate', required: true, description: `End (excluded), UTC, yyyy-MM-dd'T'HH:mm:ss; at most ${MAX_BILLABLE_RANGE_DAYS} days after startDate.`, schema: { type: 'string', pattern: DATE_TIME.source }, example: '2026-04-01T00:00:00' }),
    query({ name: 'detailLevel', description: 'One item per feature and group for the whole range (summarized), or per hour, day or month (UTC).', schema: { type: 'string', enum: [...DETAIL_LEVELS], default: 'summarized' } }),
    repeatable({ name: 'appId', description: 'Only these apps (App global ids); repeat for several.', items: { type: 'string' } }),
    repeatable({ name: 'projectId', description: 'Only these projects (Project global ids); repeat for several.', items: { type: 'string' } }),
    repeatable({ name: 'featureId', description: 'Only these features (Feature global ids); repeat for several.', items: { type: 'string' } }),
    repeatable({ name: 'billingTag', description: 'Only these billing tags; repeat for several.', items: { type: 'string' } }),
  ],
  responseSchema: {
    type: 'object',
    required: ['realmId', 'startDate', 'endDate', 'detailLevel', 'total', 'items', 'warnings'],
    properties: {
      realmId: { type: ['string', 'null'], description: 'The realm reported: `realmId` as given, or null when it is not the key\'s realm (nothing is reported then).' },
      startDate: { type: 'string', format: 'date-time' },
      endDate: { type: 'string', format: 'date-time' },
      detailLevel: { type: 'string', enum: [...DETAIL_LEVELS] },
      total: { type: 'integer', description: 'Number of items.' },
      items: {
        type: 'array',
        items: {
          type: 'object',
          required: ['startTime', 'endTime', 'featureId', 'featureKey', 'featureName', 'serviceName', 'unitOfMeasure', 'value', 'projectId', 'appId', 'billingTag'],
          properties: {
            startTime: { type: 'string', format: 'date-time' },
            endTime: { type: 'string', format: 'date-time' },
            featureId: { type: 'string', description: 'Feature global id.' },
            featureKey: { type: 'string' },
            featureName: { type: 'string' },
            serviceName: { type: 'string' },
            unitOfMeasure: { type: 'string', description: 'The feature\'s unit: TRANSACTION, GB_MONTH, GB, ROW, REQUEST, …' },
            value: { type: 'string', description: 'The quantity by the feature\'s aggregation, exact, as a decimal string.' },
            projectId: { ...nullableString, description: 'Project global id (null: no project).' },
            appId: { ...nullableString, description: 'App global id (null: no app, or an app outside a workspace-scoped key\'s subtree).' },
            billingTag: nullableString,
          },
        },
      },
      warnings: { type: 'array', items: { type: 'string' } },
    },
  },

  async handle(ctx: Context, params: QueryParams) {
    const realmGlobalId = params.required('realmId');
    const realmId = decodeParameterId('realmId', 'Realm', realmGlobalId);
    const from = parseDateTime(params, 'startDate');
    const to = parseDateTime(params, 'endDate');
    if (from >= to) throw new RestInputError('`startDate` must be before `endDate` (the range is [startDate, endDate)).', 'INVALID_RANGE', 'endDate');
    const days = (to.getTime() - from.getTime()) / (24 * HOUR_MS);
    if (days > MAX_BILLABLE_RANGE_DAYS) {
      throw new RestInputError(`The range covers at most ${MAX_BILLABLE_RANGE_DAYS} days (asked: ${Math.ceil(days)}).`, 'RANGE_TOO_LARGE', 'endDate', { maxDays: MAX_BILLABLE_RANGE_DAYS });
    }
    const detailLevel = params.oneOf('detailLevel', DETAIL_LEVELS, 'summarized', { reason: 'INVALID_GRANULARITY', label: 'detailLevel' });
    const apps = await filterIds(ctx, 'appId', 'App', params.all('appId'));
    const projects = await filterIds(ctx, 'projectId', 'Project', params.all('projectId'));
    const features = await filterIds(ctx, 'featureId', 'Feature', params.all('featureId'));
    const billingTags = params.all('billingTag');
    const answer = { startDate: from.toISOString(), endDate: to.toISOString(), detailLevel };
    if (realmId !== ctx.viewer.realmId) {
      // Not echoed: an id that is not the key's realm names nothing the key may see.
      return { body: { realmId: null, ...answer, total: 0, items: [], warnings: ["Ignored realmId: it does not exist or is not this key's realm; there is nothing to report."] } };
    }

    const facts = await realmFacts(ctx);
    const request = resolveUsageRequest(
      { range: { from, to }, granularity: GRANULARITY[detailLevel], timeZone: 'UTC', groupBy: ['PROJECT', 'APP', 'BILLING_TAG'] },
      { now: ctx.now, realmTimeZone: facts.timeZone },
    );
    const filter = {
      ...(features.ids ? { featureIds: features.ids } : {}),
      ...(projects.ids ? { projectIds: projects.ids } : {}),
      ...(apps.ids ? { appIds: apps.ids } : {}),
      ...(billingTags ? { billingTags } : {}),
    };
    const ignored = [...apps.ignored, ...projects.ignored, ...features.ignored];
    const report = await usageLoader(ctx, { parentKind: 'REALM', request, filter, ignored, totals: false }).load({ id: realmId });
    // Usage of a scoped key's subtree can be attributed to another team's app: null, as in GraphQL's groups.
    const appIds = [...new Set(report.points.map((p) => p.group.appId).filter((id): id is string => id !== null))];
    const visibleAppIds = appIds.length
      ? new Set((await ctx.prisma.app.findMany({ where: { AND: [{ id: { in: appIds } }, visibleApps(ctx)] }, select: { id: true } })).map((a) => a.id))
      : new Set<string>();
    const items: BillableUsageItem[] = report.points.map((point) => ({
      startTime: point.start.toISOString(),
      endTime: point.end.toISOString(),
      featureId: globalIdOf('Feature', point.feature.id)!,
      featureKey: point.feature.key,
      featureName: point.feature.name,
      serviceName: point.feature.service,
      unitOfMeasure: point.feature.unit,
      value: point.quantity.toFixed(),
      projectId: globalIdOf('Project', point.group.projectId),
      appId: point.group.appId && visibleAppIds.has(point.group.appId) ? globalIdOf('App', point.group.appId) : null,
      billingTag: point.group.billingTag,
    }));
    return { body: { realmId: realmGlobalId, ...answer, total: items.length, items, warnings: withParameterNames(report.warnings, { appIds: 'appId', projectIds: 'projectId', featureIds: 'featureId', billingTags: 'billingTag' }) } };
  },
};

import { builder } from '../builder.js';
import { badUserInput } from '../errors.js';
import { MAX_GRAPHQL_EVENTS, tooManyEvents } from '../ingest/graphql-limit.js';
import { ingestBatch, type IngestRejection, type IngestResult } from '../ingest/pipeline.js';
import { featureWatermark } from '../usage/usage-loader.js';
import { FeatureNode } from './feature.js';
import { visibleApiKeys, visibleApps, visibleDatastreams, visibleProjects, visibleWorkspaces } from './visibility.js';

export { MAX_GRAPHQL_EVENTS } from '../ingest/graphql-limit.js';

builder.mutationType({});

const UsageEventInput = builder.inputType('UsageEventInput', {
  description:
    'One usage event. Re-sending an idempotency key with the same content is harmless. Every field is checked per event: a bad one rejects that event (with its index and a code), not the call. Text fields take at most 256 printable characters.',
  fields: (t) => ({
    idempotencyKey: t.string({ required: true, description: 'Unique per realm; chosen by the sender.' }),
    feature: t.string({ required: true, description: 'The feature key, e.g. "location.transactions".' }),
    timestamp: t.string({
      required: true,
      description: 'When the usage happened: an RFC 3339 date-time with an offset, e.g. "2026-11-22T10:15:00Z" (otherwise INVALID_TIMESTAMP).',
    }),
    quantity: t.string({
      description:
        'A non-negative decimal string, up to 20 digits and 9 decimals, e.g. "12.5" (otherwise INVALID_QUANTITY). Required except for UNIQUE_COUNT features.',
    }),
    uniqueKey: t.string({ description: 'For UNIQUE_COUNT features: the key being counted (e.g. a row id).' }),
    workspaceId: t.id(),
    datastreamId: t.id(),
    projectId: t.id(),
    appId: t.id(),
    apiKeyId: t.id(),
    billingTag: t.string(),
    resource: t.string(),
  }),
});

const IngestRejectionRef = builder.objectRef<IngestRejection>('IngestRejection').implement({
  description: 'An event that was not counted: its position in the request and why.',
  fields: (t) => ({
    index: t.exposeInt('index'),
    code: t.exposeString('code'),
    message: t.exposeString('message'),
  }),
});

const IngestUsagePayload = builder.objectRef<IngestResult>('IngestUsagePayload').implement({
  fields: (t) => ({
    accepted: t.exposeInt('accepted', { description: 'New events counted.' }),
    duplicates: t.exposeInt('duplicates', { description: 'Events already received with the same content (not counted again).' }),
    rejected: t.expose('rejected', { type: [IngestRejectionRef] }),
  }),
});

builder.mutationField('ingestUsage', (t) =>
  t.field({
    type: IngestUsagePayload,
    description: `Records up to ${MAX_GRAPHQL_EVENTS} usage events in the key's realm (needs \`usage:write\`). Valid events are counted even when others are rejected.`,
    authScopes: { usageWrite: true },
    args: { events: t.arg({ type: [UsageEventInput], required: true }) },
    resolve: async (_root, { events }, ctx) => {
      // Normally refused before validation (useIngestEventLimit); this covers a yoga without the plugin.
      if (events.length > MAX_GRAPHQL_EVENTS) throw tooManyEvents(events.length);
      return ingestBatch(ctx.prisma, { realmId: ctx.viewer.realmId, workspaceId: ctx.viewer.workspaceId }, events, { now: ctx.now });
    },
  }),
);

builder.mutationField('finalizeUsage', (t) =>
  t.prismaField({
    type: 'Feature',
    description:
      "Declares a feature's usage complete up to `through`: buckets ending by then are final, whatever the arrival delay. The watermark never moves back. Needs `usage:write` on a realm-wide key (the watermark is the whole realm's).",
    authScopes: { $all: { usageWrite: true, realmWide: true } },
    args: { feature: t.arg.globalID({ for: FeatureNode, required: true }), through: t.arg({ type: 'DateTime', required: true }) },
    resolve: async (query, _root, args, ctx) => {
      const feature = await ctx.prisma.feature.findFirst({ where: { id: args.feature.id, realmId: ctx.viewer.realmId } });
      if (!feature) throw badUserInput(`No feature ${args.feature.id} in this realm.`, 'INVALID_ID');
      if (args.through > ctx.now) throw badUserInput('`through` cannot be in the future.', 'INVALID_RANGE');
      const current = featureWatermark(feature, ctx.now);
      return ctx.prisma.feature.update({
        ...query,
        where: { id: feature.id },
        data: { finalizedThrough: args.through > current ? args.through : feature.finalizedThrough },
      });
    },
  }),
);

builder.prismaObject('UsageHourly', {
  name: 'UsageRevision',
  description: 'An hourly bucket that changed: re-read it (or the buckets containing its hour) to re-sync.',
  fields: (t) => ({
    hour: t.expose('hour', { type: 'DateTime', description: 'Start of the changed UTC hour.' }),
    feature: t.relation('feature'),
    workspace: t.relation('workspace', { nullable: true, query: (_args, ctx) => ({ where: visibleWorkspaces(ctx) }) }),
    datastream: t.relation('datastream', { nullable: true, query: (_args, ctx) => ({ where: visibleDatastreams(ctx) }) }),
    project: t.relation('project', { nullable: true, query: (_args, ctx) => ({ where: visibleProjects(ctx) }) }),
    app: t.relation('app', { nullable: true, description: "Null also for an app outside the caller's subtree.", query: (_args, ctx) => ({ where: visibleApps(ctx) }) }),
    apiKey: t.relation('apiKey', { nullable: true, description: "Null also for a key outside the caller's subtree.", query: (_args, ctx) => ({ where: visibleApiKeys(ctx) }) }),
    billingTag: t.exposeString('billingTag', { nullable: true }),
    resource: t.exposeString('resource', { nullable: true }),
    quantity: t.expose('quantity', { type: 'Decimal', description: "The bucket's value now." }),
    revision: t.exposeInt('revision', { description: 'How many times the bucket was written.' }),
    revisedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.queryField('usageRevisions', (t) =>
  t.prismaConnection({
    type: 'UsageHourly',
    cursor: 'id',
    description: "Hourly buckets of the key's realm that changed after `since`, oldest change first: re-sync only what moved.",
    authScopes: { usageRead: true },
    args: { since: t.arg({ type: 'DateTime', required: true }) },
    resolve: (query, _root, args, ctx) =>
      ctx.prisma.usageHourly.findMany({
        ...query,
        where: {
          realmId: ctx.viewer.realmId,
          updatedAt: { gt: args.since },
          ...(ctx.viewer.workspaceId ? { workspace: visibleWorkspaces(ctx) } : {}),
        },
        orderBy: [{ updatedAt: 'asc' }, { id: 'asc' }],
      }),
  }),
);

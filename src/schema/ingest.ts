import { Kind, valueFromASTUntyped, type FieldNode } from 'graphql';
import { builder } from '../builder.js';
import { badUserInput } from '../errors.js';
import { MAX_GRAPHQL_EVENTS, tooManyEvents, withUnknownFields } from '../ingest/graphql-limit.js';
import { ingestBatch, type IngestRejection, type IngestResult } from '../ingest/pipeline.js';
import {
  ingestIntoLog,
  IngestLogFullError,
  IngestLogUnavailableError,
  INGEST_LOG_FULL_RETRY_AFTER_SECONDS,
  INGEST_LOG_UNAVAILABLE_RETRY_AFTER_SECONDS,
} from '../ingest/log.js';
import { createGraphQLError } from 'graphql-yoga';
import { featureWatermark } from '../usage/usage-loader.js';
import { FeatureNode } from './feature.js';
import { visibleApiKeys, visibleApps, visibleDatastreams, visibleProjects, visibleWorkspaces } from './visibility.js';

export { MAX_GRAPHQL_EVENTS } from '../ingest/graphql-limit.js';

builder.mutationType({});

/** Any JSON value, checked per event by the pipeline (a bad one rejects that event, not the call). */
function perEventValue(name: 'UsageQuantity' | 'UsageTimestamp', description: string) {
  return builder.scalarType(name, {
    description,
    serialize: (value) => String(value),
    parseValue: (value) => value,
    parseLiteral: (ast) => valueFromASTUntyped(ast),
  });
}

const UsageQuantity = perEventValue(
  'UsageQuantity',
  'An event\'s quantity: a non-negative decimal string (up to 20 digits and 9 decimals, e.g. "12.5"), or a JSON integer up to 2^53 − 1. A JSON fraction (1.5) is rejected (INVALID_QUANTITY: send it as a string).',
);
const UsageTimestamp = perEventValue(
  'UsageTimestamp',
  'When an event happened: an RFC 3339 date-time with an offset (e.g. "2026-11-22T10:15:00Z"), or Unix time in whole seconds as a JSON integer (e.g. 1795342500). Anything else is INVALID_TIMESTAMP.',
);

/** The fields of an event's content (everything but its idempotency key). */
export const usageEventContentFields = (t: Parameters<Parameters<typeof builder.inputType>[1]['fields']>[0]) => ({
  feature: t.string({ required: true, description: 'The feature key, e.g. "location.transactions".' }),
  timestamp: t.field({ type: UsageTimestamp, required: true, description: 'When the usage happened (otherwise INVALID_TIMESTAMP).' }),
  quantity: t.field({ type: UsageQuantity, description: 'Required except for UNIQUE_COUNT features (otherwise INVALID_QUANTITY).' }),
  uniqueKey: t.string({ description: 'For UNIQUE_COUNT features: the key being counted (e.g. a row id).' }),
  workspaceId: t.id(),
  datastreamId: t.id(),
  projectId: t.id(),
  appId: t.id(),
  apiKeyId: t.id(),
  billingTag: t.string(),
  resource: t.string(),
});

export const UsageEventInput = builder.inputType('UsageEventInput', {
  description:
    'One usage event. Re-sending an idempotency key with the same content is harmless. Every field is checked per event: a bad one rejects that event (with its index and a code), not the call. Text fields take at most 256 printable characters. In a variable, an unknown field (e.g. `projectID`) rejects its event with UNKNOWN_FIELD.',
  fields: (t) => ({
    idempotencyKey: t.string({ required: true, description: 'Unique per realm; chosen by the sender.' }),
    ...usageEventContentFields(t),
  }),
});

/** The `events` argument's variable, if it is one: the unknown fields taken out of it are kept under its name. */
export function eventsVariable(fieldNodes: readonly FieldNode[]): string | undefined {
  const value = fieldNodes[0]?.arguments?.find((argument) => argument.name.value === 'events')?.value;
  return value?.kind === Kind.VARIABLE ? value.name.value : undefined;
}

const IngestRejectionRef = builder.objectRef<IngestRejection>('IngestRejection').implement({
  description: 'An event that was not counted: its position in the request and why.',
  fields: (t) => ({
    index: t.exposeInt('index'),
    code: t.exposeString('code'),
    message: t.exposeString('message'),
  }),
});

/** A 503 for a log that is full or cannot be reached, with what of the call was stored (re-sending is safe). */
function ingestLogError(error: unknown): unknown {
  const full = error instanceof IngestLogFullError;
  if (!full && !(error instanceof IngestLogUnavailableError)) return error;
  const retryAfter = full ? INGEST_LOG_FULL_RETRY_AFTER_SECONDS : INGEST_LOG_UNAVAILABLE_RETRY_AFTER_SECONDS;
  return createGraphQLError(error.message, {
    extensions: {
      code: full ? 'INGEST_LOG_FULL' : 'INGEST_LOG_UNAVAILABLE',
      retryAfter,
      accepted: error.accepted,
      duplicates: error.duplicates,
      http: { status: 503, headers: { 'Retry-After': String(retryAfter) } },
    },
  });
}

const IngestUsagePayload = builder.objectRef<IngestResult>('IngestUsagePayload').implement({
  fields: (t) => ({
    accepted: t.exposeInt('accepted', {
      description: 'New events counted. With the ingestion log (NATS_URL): new events stored in the log, counted when a worker folds them.',
    }),
    duplicates: t.exposeInt('duplicates', {
      description:
        'Events already received with the same content (not counted again). With the ingestion log: repeated in the call or already in the log; a repeat of an event already folded is known only at the fold.',
    }),
    rejected: t.expose('rejected', { type: [IngestRejectionRef] }),
  }),
});

builder.mutationField('ingestUsage', (t) =>
  t.field({
    type: IngestUsagePayload,
    description: `Records up to ${MAX_GRAPHQL_EVENTS} usage events in the key's realm (needs \`usage:write\`). Valid events are counted even when others are rejected.`,
    authScopes: { usageWrite: true },
    args: { events: t.arg({ type: [UsageEventInput], required: true }) },
    resolve: async (_root, { events }, ctx, info) => {
      // Normally refused before validation (useIngestEventLimit); this covers a yoga without the plugin.
      if (events.length > MAX_GRAPHQL_EVENTS) throw tooManyEvents(events.length);
      const raw = withUnknownFields(events, ctx.memo, eventsVariable(info.fieldNodes));
      const target = { realmId: ctx.viewer.realmId, workspaceId: ctx.viewer.workspaceId };
      if (!ctx.ingestLog) return ingestBatch(ctx.prisma, target, raw, { now: ctx.now });
      return ingestIntoLog(ctx.prisma, ctx.ingestLog, target, raw, ctx.now).catch((error: unknown) => {
        throw ingestLogError(error);
      });
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
    reopenedAt: t.expose('reopenedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When a correction (`reopen: true`) last changed this bucket after it was final; null if never.',
    }),
  }),
});

builder.queryField('usageRevisions', (t) =>
  t.prismaConnection({
    type: 'UsageHourly',
    // The table is partitioned by hour: (id, hour) is the unique key.
    cursor: 'id_hour',
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

import { builder } from '../builder.js';
import { actorOf } from '../admin/audit.js';
import type { Context } from '../context.js';
import { withUnknownFields, MAX_GRAPHQL_EVENTS, tooManyEvents } from '../ingest/graphql-limit.js';
import {
  amendUsageEvent,
  backfillUsage,
  voidUsageEvent,
  CorrectionRefused,
  type CorrectionResult,
  type CorrectionTarget,
} from '../ingest/corrections.js';
import { FeatureNode } from './feature.js';
import { eventsVariable, usageEventContentFields, UsageEventInput } from './ingest.js';
import { TimeRangeInput } from './usage.js';
import { UserErrorRef, userError, type UserError } from './user-error.js';
import { visibleWorkspaces } from './visibility.js';

const BackfillMode = builder.enumType('BackfillMode', {
  values: {
    REPLACE: { description: "The range's usage becomes exactly the events sent: the range's other events (in the key's scope) are voided." },
    ADD: { description: 'The events sent are added to the range (already stored ones with the same content are not counted again).' },
  } as const,
});

const AmendedUsageEventInput = builder.inputType('AmendedUsageEventInput', {
  description: "An event's corrected content: every field of `UsageEventInput` but the idempotency key (the event keeps it).",
  fields: (t) => usageEventContentFields(t),
});

type CorrectionPayload = CorrectionResult & { userErrors: UserError[] };

const UsageCorrectionPayload = builder.objectRef<CorrectionPayload>('UsageCorrectionPayload').implement({
  description: 'What a correction changed. The buckets it moved also show in `usageRevisions`. A refused correction changed nothing: its counts are 0 and `userErrors` says why.',
  fields: (t) => ({
    added: t.exposeInt('added', { description: 'Events stored new.' }),
    amended: t.exposeInt('amended', { description: 'Stored events whose content was replaced.' }),
    voided: t.exposeInt('voided', { description: 'Events that stopped counting.' }),
    unchanged: t.exposeInt('unchanged', { description: 'Events sent that were stored already with the same content (nothing changed).' }),
    reopenedBuckets: t.exposeInt('reopened', { description: 'Final buckets the correction changed (only with `reopen: true`).' }),
    revisions: t.prismaField({
      type: ['UsageHourly'],
      description: 'The hourly buckets whose value, event count or distinct keys changed, with their new revision.',
      resolve: (query, result, _args, ctx) =>
        result.bucketIds.length
          ? ctx.prisma.usageHourly.findMany({
              ...query,
              where: { id: { in: result.bucketIds }, realmId: ctx.viewer.realmId, ...(ctx.viewer.workspaceId ? { workspace: visibleWorkspaces(ctx) } : {}) },
              orderBy: [{ hour: 'asc' }, { id: 'asc' }],
            })
          : [],
    }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (payload) => payload.userErrors }),
  }),
});

function targetOf(ctx: Context): CorrectionTarget {
  return { realmId: ctx.viewer.realmId, workspaceId: ctx.viewer.workspaceId, actor: actorOf(ctx) };
}

const NOTHING_DONE: CorrectionResult = { bucketIds: [], reopened: 0, added: 0, amended: 0, voided: 0, unchanged: 0 };

/** The input field a refusal points at. */
const FIELD_OF: Partial<Record<CorrectionRefused['code'], string>> = {
  EVENT_NOT_FOUND: 'idempotencyKey',
  EVENT_VOIDED: 'idempotencyKey',
  BUCKET_FINAL: 'reopen',
  INVALID_RANGE: 'range',
  RANGE_TOO_LARGE: 'range',
};

/** A refused correction as `userErrors`: a rejected backfill lists each event (`events.<index>`), an amend's bad event its code. */
function userErrorsOf(error: CorrectionRefused): UserError[] {
  const rejected = error.details.rejected as { index: number; code: string; message: string }[] | undefined;
  if (rejected) return rejected.map((r) => userError(['events', String(r.index)], r.code, r.message));
  return [userError([FIELD_OF[error.code] ?? 'event'], error.code, error.message)];
}

async function answer(run: () => Promise<CorrectionResult>): Promise<CorrectionPayload> {
  try {
    return { ...(await run()), userErrors: [] };
  } catch (error) {
    if (error instanceof CorrectionRefused) return { ...NOTHING_DONE, userErrors: userErrorsOf(error) };
    throw error;
  }
}

const REOPEN_DESCRIPTION = 'Allows changing buckets that are already final (past the feature\'s watermark); without it such a correction is refused (`userErrors` code BUCKET_FINAL). Audited.';

builder.mutationField('amendUsageEvent', (t) =>
  t.field({
    type: UsageCorrectionPayload,
    description:
      "Replaces the content of a stored event (found by its idempotency key); the buckets it left and the buckets it joins are recomputed. Needs `usage:write`; a workspace key corrects only events attributed inside its subtree.",
    authScopes: { usageWrite: true },
    args: {
      idempotencyKey: t.arg.string({ required: true }),
      event: t.arg({ type: AmendedUsageEventInput, required: true }),
      reopen: t.arg.boolean({ defaultValue: false, description: REOPEN_DESCRIPTION }),
    },
    resolve: (_root, args, ctx) =>
      answer(() => amendUsageEvent(ctx.prisma, targetOf(ctx), args.idempotencyKey, { ...args.event }, { now: ctx.now, reopen: args.reopen ?? false })),
  }),
);

builder.mutationField('voidUsageEvent', (t) =>
  t.field({
    type: UsageCorrectionPayload,
    description:
      'Makes a stored event count for nothing; its idempotency key stays taken (re-sending it is a duplicate, not counted). Voiding twice changes nothing. Needs `usage:write`; a workspace key voids only events attributed inside its subtree.',
    authScopes: { usageWrite: true },
    args: {
      idempotencyKey: t.arg.string({ required: true }),
      reopen: t.arg.boolean({ defaultValue: false, description: REOPEN_DESCRIPTION }),
    },
    resolve: (_root, args, ctx) => answer(() => voidUsageEvent(ctx.prisma, targetOf(ctx), args.idempotencyKey, { now: ctx.now, reopen: args.reopen ?? false })),
  }),
);

builder.mutationField('backfillUsage', (t) =>
  t.field({
    type: UsageCorrectionPayload,
    description: `Replaces (REPLACE) or adds to (ADD) one feature's usage in \`range\` (whole UTC hours), e.g. a day a partner recomputed. Up to ${MAX_GRAPHQL_EVENTS} events, each of the feature and inside the range. All or nothing: one rejected event refuses the backfill (every rejection in \`userErrors\`, field \`events.<index>\`). Needs \`usage:write\`; a workspace key replaces only usage attributed inside its subtree.`,
    authScopes: { usageWrite: true },
    args: {
      feature: t.arg.globalID({ for: FeatureNode, required: true }),
      range: t.arg({ type: TimeRangeInput, required: true }),
      events: t.arg({ type: [UsageEventInput], required: true }),
      mode: t.arg({ type: BackfillMode, required: true }),
      reopen: t.arg.boolean({ defaultValue: false, description: REOPEN_DESCRIPTION }),
    },
    resolve: async (_root, args, ctx, info) => {
      if (args.events.length > MAX_GRAPHQL_EVENTS) throw tooManyEvents(args.events.length);
      const feature = await ctx.prisma.feature.findFirst({ where: { id: args.feature.id, realmId: ctx.viewer.realmId }, select: { id: true } });
      if (!feature) return { ...NOTHING_DONE, userErrors: [userError(['feature'], 'INVALID_ID', `No feature ${args.feature.id} in this realm.`)] };
      const events = withUnknownFields(args.events, ctx.memo, eventsVariable(info.fieldNodes));
      return answer(() =>
        backfillUsage(
          ctx.prisma,
          targetOf(ctx),
          { featureId: feature.id, from: args.range.from, to: args.range.to, mode: args.mode, events },
          { now: ctx.now, reopen: args.reopen ?? false },
        ),
      );
    },
  }),
);

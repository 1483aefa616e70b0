import { builder } from '../builder.js';
import type { Context } from '../context.js';
import { badUserInput } from '../errors.js';
import { decodeId } from '../global-id.js';
import type { Prisma } from '../generated/prisma/client.js';
import { outsideRecording } from '../db/statement-recorder.js';
import { liveStream, valueOrEnd, type LivePayload } from '../live/subscription.js';
import { BILLING_SCOPES, visibleBilling, visibleFeatures, visibleWorkspaces } from './visibility.js';

builder.subscriptionType({
  description:
    'Live events over Server-Sent Events (`POST /graphql` with `Accept: text/event-stream`). Each event is filtered by the key\'s scopes and subtree exactly like a query; every event pushed counts against the key\'s rate limit. A stream ends with a last event whose `errors[0].extensions.code` says why: KEY_REVOKED, REALM_SUSPENDED, RATE_LIMITED.',
});

/** Decodes `ids` of one type the caller can see; any other is INVALID_ID (a subscription has no `warnings` to report ignored ids in). */
async function visibleIdsOf(ctx: Context, ids: readonly (string | number)[], typename: 'Feature' | 'Workspace', argument: string): Promise<string[]> {
  const decoded = ids.map((globalId) => {
    let id: { typename: string; id: string };
    try {
      id = decodeId(String(globalId));
    } catch {
      throw badUserInput(`\`${argument}\` takes ${typename} ids; "${String(globalId)}" is not one.`, 'INVALID_ID', { id: String(globalId) });
    }
    if (id.typename !== typename) throw badUserInput(`\`${argument}\` takes ${typename} ids; "${String(globalId)}" is a ${id.typename}.`, 'INVALID_ID', { id: String(globalId) });
    return { globalId: String(globalId), id: id.id };
  });
  const where = { id: { in: decoded.map((d) => d.id) } };
  const rows =
    typename === 'Feature'
      ? await ctx.prisma.feature.findMany({ where: { ...where, ...visibleFeatures(ctx) }, select: { id: true } })
      : await ctx.prisma.workspace.findMany({ where: { ...where, ...visibleWorkspaces(ctx) }, select: { id: true } });
  const visible = new Set(rows.map((r) => r.id));
  const missing = decoded.find((d) => !visible.has(d.id));
  if (missing) throw badUserInput(`No ${typename} ${missing.globalId} visible to this key.`, 'INVALID_ID', { id: missing.globalId });
  return decoded.map((d) => d.id);
}

builder.subscriptionField('usageChanged', (t) =>
  t.prismaField({
    type: ['UsageHourly'],
    description:
      "Hourly buckets of the key's realm that an ingested batch wrote to, one event per batch (per process that committed it), with each bucket's value and revision after the write: the `usageRevisions` feed, live. Only buckets the key may see (its subtree), of `features` and of `workspace`'s subtree when given. Needs `usage:read`. Events are best effort (a gateway that stops between its commit and its notification loses that event): on reconnect, re-sync with `usageRevisions(since:)`.",
    authScopes: { usageRead: true },
    args: {
      features: t.arg.idList({ description: 'Only these features (ids); default: all.' }),
      workspace: t.arg.id({ description: "Only this workspace and its subtree (it must be in the key's subtree)." }),
    },
    subscribe: async (_root, args, ctx) => {
      const featureIds = args.features ? await visibleIdsOf(ctx, args.features, 'Feature', 'features') : null;
      const [workspaceId] = args.workspace != null ? await visibleIdsOf(ctx, [args.workspace], 'Workspace', 'workspace') : [];
      const narrowing: Prisma.UsageHourlyWhereInput[] = [];
      if (ctx.viewer.workspaceId) narrowing.push({ workspace: visibleWorkspaces(ctx) });
      if (workspaceId) narrowing.push({ workspace: { ancestors: { some: { ancestorId: workspaceId } } } });
      if (featureIds) narrowing.push({ featureId: { in: featureIds } });
      // A portal session sees its features only, whether or not `features` names some.
      if (ctx.viewer.featureIds) narrowing.push({ feature: visibleFeatures(ctx) });
      return liveStream(ctx, async (event) => {
        if (event.type !== 'usage') return null;
        const rows = await ctx.prisma.usageHourly.findMany({
          where: { id: { in: event.bucketIds.map(BigInt) }, realmId: ctx.viewer.realmId, AND: narrowing },
          select: { id: true },
        });
        return rows.length ? rows.map((r) => r.id) : null;
      });
    },
    resolve: (query, payload, _args, ctx) => {
      const ids = valueOrEnd(payload as LivePayload<bigint[]>);
      return outsideRecording(() => ctx.prisma.usageHourly.findMany({ ...query, where: { id: { in: ids } }, orderBy: [{ hour: 'asc' }, { id: 'asc' }] }));
    },
  }),
);

builder.subscriptionField('alertRaised', (t) =>
  t.prismaField({
    type: 'Alert',
    description:
      "Each new alert of the key's realm (quota rules, ACTUAL and FORECAST) as it is raised, whichever gateway process raised it. Needs `billing:read` on a realm-wide key, like `Realm.alerts`.",
    authScopes: BILLING_SCOPES,
    subscribe: (_root, _args, ctx) =>
      liveStream(ctx, async (event) => {
        if (event.type !== 'alert') return null;
        const alert = await ctx.prisma.alert.findFirst({ where: { id: event.alertId, AND: [visibleBilling(ctx)] }, select: { id: true } });
        return alert?.id ?? null;
      }),
    resolve: (query, payload, _args, ctx) => {
      const id = valueOrEnd(payload as LivePayload<string>);
      return outsideRecording(() => ctx.prisma.alert.findUniqueOrThrow({ ...query, where: { id } }));
    },
  }),
);

import { builder } from '../builder.js';
import type { Prisma } from '../generated/prisma/client.js';
import { decodeId, encodeId } from '../global-id.js';
import { RealmNode } from './realm.js';
import { OPERATOR_SCOPES } from './visibility.js';

const AuditActorType = builder.enumType('AuditActorType', {
  description: 'Who made an administrative change.',
  values: {
    API_KEY: { description: "A realm's API key." },
    OPERATOR: { description: "An operator's key." },
    SYSTEM: { description: 'The gateway itself: the demo seed, the command line with direct database access.' },
  },
});

const AuditEntryRef = builder.prismaObject('AuditEntry', {
  description: 'One administrative change, as the audit log keeps it. Entries are append-only: nothing changes or deletes them.',
  fields: (t) => ({
    id: t.string({ resolve: (entry) => entry.id.toString(), description: 'Sequence number of the entry (increasing).' }),
    action: t.exposeString('action', { description: '`<type>.<verb>`, e.g. `workspace.move`, `apiKey.revoke`, `realm.suspend`.' }),
    actorType: t.field({ type: AuditActorType, resolve: (entry) => entry.actorType as 'API_KEY' | 'OPERATOR' | 'SYSTEM' }),
    actorKeyId: t.id({
      nullable: true,
      description: 'The global id of the key that made the change (an ApiKey, or an OperatorKey for operators).',
      resolve: (entry) => (entry.actorId ? encodeId(entry.actorType === 'OPERATOR' ? 'OperatorKey' : 'ApiKey', entry.actorId) : null),
    }),
    actorKeyPrefix: t.exposeString('actorPrefix', { nullable: true, description: "The key's visible prefix." }),
    targetType: t.exposeString('targetType', { description: 'The type of the node the change is about.' }),
    targetId: t.id({ nullable: true, description: "The node's global id.", resolve: (entry) => (entry.targetId ? encodeId(entry.targetType, entry.targetId) : null) }),
    before: t.field({ type: 'JSONObject', nullable: true, description: 'The changed fields before the change (null: the node was created).', resolve: (entry) => (entry.changes as { before: Record<string, unknown> | null }).before }),
    after: t.field({ type: 'JSONObject', nullable: true, description: 'The changed fields after the change.', resolve: (entry) => (entry.changes as { after: Record<string, unknown> | null }).after }),
    requestId: t.exposeString('requestId', { nullable: true, description: 'The X-Request-Id of the request that made the change.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const AuditLogFilter = builder.inputType('AuditLogFilter', {
  fields: (t) => ({
    actions: t.stringList({ description: 'Only these actions (e.g. `workspace.move`).' }),
    targetId: t.id({ description: 'Only changes of this node.' }),
    since: t.field({ type: 'DateTime', description: 'Only changes at or after this instant.' }),
  }),
});

type Filter = { actions?: string[] | null; targetId?: string | null; since?: Date | null } | null | undefined;

function auditWhere(filter: Filter): Prisma.AuditEntryWhereInput {
  return {
    ...(filter?.actions ? { action: { in: filter.actions } } : {}),
    ...(filter?.targetId ? { targetId: decodeId(filter.targetId).id } : {}),
    ...(filter?.since ? { createdAt: { gte: filter.since } } : {}),
  };
}

builder.objectField(RealmNode, 'auditLog', (t) =>
  t.prismaConnection({
    type: 'AuditEntry',
    cursor: 'id',
    description: "The realm's administrative changes, newest first. Realm-wide keys with `admin:write` or `keys:manage`, and operators.",
    authScopes: { $any: { realmsManage: true, $all: { realmWide: true, $any: { adminWrite: true, keysManage: true } } } },
    args: { filter: t.arg({ type: AuditLogFilter }) },
    resolve: (query, realm, args, ctx) => ctx.prisma.auditEntry.findMany({ ...query, where: { realmId: realm.id, ...auditWhere(args.filter) }, orderBy: { id: 'desc' } }),
  }),
);

builder.queryField('auditLog', (t) =>
  t.prismaConnection({
    type: 'AuditEntry',
    cursor: 'id',
    description: "Operators only: every realm's administrative changes and the operators' own, newest first.",
    authScopes: OPERATOR_SCOPES,
    args: {
      filter: t.arg({ type: AuditLogFilter }),
      realmId: t.arg.id({ description: 'Only this realm.' }),
    },
    resolve: (query, _root, args, ctx) =>
      ctx.prisma.auditEntry.findMany({ ...query, where: { ...(args.realmId ? { realmId: decodeId(args.realmId).id } : {}), ...auditWhere(args.filter) }, orderBy: { id: 'desc' } }),
  }),
);

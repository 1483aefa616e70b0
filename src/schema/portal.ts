/**
 * Portal sessions: `createPortalSession`, `revokePortalSession`, `setPortalOrigins`,
 * `Realm.portalSessions`, `Realm.portalOrigins` and `Viewer.portalSession`. The rules live in
 * src/portal/ (sessions.ts: creation, revocation; authenticate.ts: what a session's token sees).
 */
import { builder } from '../builder.js';
import type { Context } from '../context.js';
import { encodeId } from '../global-id.js';
import { MAX_PORTAL_SESSION_SECONDS, PORTAL_SECTIONS } from '../portal/sections.js';
import { createPortalSession, portalPath, revokePortalSession, setPortalOrigins } from '../portal/sessions.js';
import { FeatureNode } from './feature.js';
import { RealmNode } from './realm.js';
import { UserErrorRef, type UserError } from './user-error.js';
import { ViewerRef } from './viewer.js';
import { visibleFeatures, visiblePortalSessions, visibleWorkspaces } from './visibility.js';

const SECTION_LIST = Object.keys(PORTAL_SECTIONS).join(', ');

export const PortalSessionNode = builder.prismaNode('PortalSession', {
  description:
    "A short-lived, read-only console for a realm's own customer: one workspace's subtree, some features, some console sections. " +
    'Its token is shown once, at creation; afterwards only its prefix. Visible to keys with `keys:manage` (of its subtree).',
  id: { field: 'id' },
  nullable: true,
  authScopes: { keysManage: true },
  findUnique: (id, ctx) => ({ id, AND: [visiblePortalSessions(ctx)] }),
  fields: (t) => ({
    prefix: t.exposeString('prefix', { description: 'The visible start of the token, e.g. "ugwps_3f9a1c2b".' }),
    workspace: t.prismaField({
      type: 'Workspace',
      nullable: true,
      description: 'The subtree the session sees.',
      resolve: (query, session, _args, ctx) => ctx.prisma.workspace.findFirst({ ...query, where: { id: session.workspaceId, AND: [visibleWorkspaces(ctx)] } }),
    }),
    features: t.field({
      type: [FeatureNode],
      description: 'The features whose usage the session sees.',
      resolve: (session, _args, ctx) => ctx.prisma.feature.findMany({ where: { id: { in: session.featureIds }, AND: [visibleFeatures(ctx)] }, orderBy: { key: 'asc' } }),
    }),
    sections: t.exposeStringList('sections', { description: `Console sections the session shows (of ${SECTION_LIST}).` }),
    scopes: t.exposeStringList('scopes', { description: "Read scopes only: what its sections need, at most its creating key's." }),
    path: t.string({ description: 'Where the console opens it: `/portal/<id>`, followed by `#token=<token>`.', resolve: (session) => portalPath(session.id) }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

interface SessionPayloadShape {
  sessionId: string | null;
  token: string | null;
  url: string | null;
  userErrors: UserError[];
}

const PortalSessionPayload = builder.objectRef<SessionPayloadShape>('PortalSessionPayload').implement({
  fields: (t) => ({
    portalSession: t.prismaField({
      type: 'PortalSession',
      nullable: true,
      resolve: (query, payload, _args, ctx) =>
        payload.sessionId ? ctx.prisma.portalSession.findFirst({ ...query, where: { id: payload.sessionId, AND: [visiblePortalSessions(ctx)] } }) : null,
    }),
    token: t.exposeString('token', {
      nullable: true,
      description: 'The whole token (`ugwps_…`), shown this once (createPortalSession only). Read-only; it cannot create keys or sessions.',
    }),
    url: t.exposeString('url', {
      nullable: true,
      description:
        "Opens the console for the session: `<this gateway's origin>/portal/<id>#token=<token>` (createPortalSession only). The token is in the fragment, which browsers never send: it reaches no server log; the console moves it into session storage.",
    }),
    userErrors: t.expose('userErrors', { type: [UserErrorRef] }),
  }),
});

const CreatePortalSessionInput = builder.inputType('CreatePortalSessionInput', {
  fields: (t) => ({
    workspaceId: t.id({ required: true, description: "The session sees this workspace's subtree; it must be inside the creating key's." }),
    featureIds: t.idList({ required: true, description: "The features whose usage the session sees (1 to 100, of the caller's realm)." }),
    sections: t.stringList({ required: true, description: `Console sections to show: any of ${SECTION_LIST}.` }),
    expiresInSeconds: t.int({ required: true, description: `1 to ${MAX_PORTAL_SESSION_SECONDS} (24 hours).` }),
  }),
});

/** The origin of the request's URL: where this gateway was reached, for the session's link. */
function requestOrigin(ctx: Context): string {
  const request = (ctx as Context & { request?: Request }).request;
  try {
    return request ? new URL(request.url).origin : '';
  } catch {
    return '';
  }
}

const fail = (userErrors: UserError[]): SessionPayloadShape => ({ sessionId: null, token: null, url: null, userErrors });

builder.mutationField('createPortalSession', (t) =>
  t.field({
    type: PortalSessionPayload,
    description:
      "Creates a short-lived, read-only portal session for a realm's own customer: the console limited to a workspace's subtree and some features. " +
      'Needs `keys:manage`; the session never holds more than the creating key (its scopes, its subtree) and counts against its rate limit. Audited.',
    authScopes: { keysManage: true },
    args: { input: t.arg({ type: CreatePortalSessionInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const result = await createPortalSession(ctx, {
        workspaceId: String(input.workspaceId),
        featureIds: input.featureIds.map(String),
        sections: input.sections,
        expiresInSeconds: input.expiresInSeconds,
      });
      if ('userErrors' in result) return fail(result.userErrors);
      const { session, token } = result.ok;
      return { sessionId: session.id, token, url: `${requestOrigin(ctx)}${portalPath(session.id)}#token=${token}`, userErrors: [] };
    },
  }),
);

builder.mutationField('revokePortalSession', (t) =>
  t.field({
    type: PortalSessionPayload,
    description: 'Revokes a portal session: its next request, in any gateway process, is refused (401 SESSION_EXPIRED). Needs `keys:manage`; a workspace-scoped key reaches sessions of its subtree only. Audited.',
    authScopes: { keysManage: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const result = await revokePortalSession(ctx, String(args.id));
      if ('userErrors' in result) return fail(result.userErrors);
      return { sessionId: result.ok.id, token: null, url: null, userErrors: [] };
    },
  }),
);

interface OriginsPayloadShape {
  origins: string[] | null;
  userErrors: UserError[];
}

const PortalOriginsPayload = builder.objectRef<OriginsPayloadShape>('PortalOriginsPayload').implement({
  fields: (t) => ({
    portalOrigins: t.exposeStringList('origins', { nullable: true, description: 'The realm origins now allowed to embed its portal.' }),
    userErrors: t.expose('userErrors', { type: [UserErrorRef] }),
  }),
});

builder.mutationField('setPortalOrigins', (t) =>
  t.field({
    type: PortalOriginsPayload,
    description:
      "Replaces the origins that may show this realm's portal sessions in a frame (the `frame-ancestors` of `/portal/<id>` pages; `/` itself is never framable). " +
      'Each is `https://host[:port]` (`http://localhost` for development); an empty list: nowhere. Needs `keys:manage` on a realm-wide key. Audited.',
    authScopes: { $all: { keysManage: true, realmWide: true } },
    args: { origins: t.arg.stringList({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const result = await setPortalOrigins(ctx, args.origins);
      return 'userErrors' in result ? { origins: null, userErrors: result.userErrors } : { origins: result.ok, userErrors: [] };
    },
  }),
);

builder.prismaObjectField(RealmNode, 'portalSessions', (t) =>
  t.relatedConnection('portalSessions', {
    authScopes: { keysManage: true },
    cursor: 'id',
    totalCount: true,
    description: 'Portal sessions of this realm visible to the caller (of its subtree), newest first, expired and revoked ones included.',
    query: (_args, ctx) => ({ where: visiblePortalSessions(ctx), orderBy: { id: 'desc' } }),
  }),
);

builder.prismaObjectField(RealmNode, 'portalOrigins', (t) =>
  t.exposeStringList('portalOrigins', {
    authScopes: { keysManage: true },
    description: 'Origins allowed to embed this realm\'s portal sessions in a frame (`setPortalOrigins`).',
  }),
);

interface ViewerSession {
  id: string;
  sections: readonly string[];
  expiresAt: Date;
}

const ViewerPortalSession = builder.objectRef<ViewerSession>('ViewerPortalSession').implement({
  description: 'The calling portal session: what the console shows, and until when.',
  fields: (t) => ({
    id: t.id({ resolve: (s) => encodeId('PortalSession', s.id) }),
    sections: t.stringList({ resolve: (s) => [...s.sections] }),
    expiresAt: t.field({ type: 'DateTime', resolve: (s) => s.expiresAt }),
  }),
});

builder.objectField(ViewerRef, 'portalSession', (t) =>
  t.field({
    type: ViewerPortalSession,
    nullable: true,
    description: 'The portal session calling; null for an API key.',
    resolve: (viewer) => viewer.portalSession ?? null,
  }),
);

import {
  archiveApp,
  archiveDatastream,
  archiveProject,
  createApp,
  createDatastream,
  createProject,
  moveApp,
  moveDatastream,
  unarchiveApp,
  unarchiveDatastream,
  unarchiveProject,
  updateApp,
  updateDatastream,
  updateProject,
} from '../admin/catalog.js';
import { decodeInputId, failed, runAdminMutation, type AdminPayload } from '../admin/admin-request.js';
import { MAX_NAME_LENGTH } from '../admin/names.js';
import { builder } from '../builder.js';
import { UserErrorRef } from './user-error.js';
import { ADMIN_WRITE_SCOPES, REALM_ADMIN_WRITE_SCOPES, visibleApps, visibleDatastreams, visibleProjects } from './visibility.js';

const notFound = (field: string[], what: string) => ({ id: null, ...failed(field, 'NOT_FOUND', `No such ${what}.`) });
const SCOPE_NOTE = 'Needs `admin:write`; a workspace-scoped key acts inside its subtree only.';
const REALM_NOTE = "Needs `admin:write` on a realm-wide key (projects are the realm's shared catalog).";
const IDEMPOTENCY = 'Retry safely: the same key and input again answers the same object; another input is IDEMPOTENCY_MISMATCH.';
const NAME = (unique: string) => `1 to ${MAX_NAME_LENGTH} characters, unique (case-insensitive) among the live ${unique}.`;

// ─── Payloads ───────────────────────────────────────────────────────────────────────────────────

function datastreamPayload(name: string) {
  return builder.objectRef<AdminPayload>(name).implement({
    fields: (t) => ({
      datastream: t.prismaField({
        type: 'Datastream',
        nullable: true,
        resolve: (query, p, _args, ctx) => (p.id ? ctx.prisma.datastream.findFirst({ ...query, where: { id: p.id, AND: [visibleDatastreams(ctx)] } }) : null),
      }),
      userErrors: t.expose('userErrors', { type: [UserErrorRef] }),
    }),
  });
}

function projectPayload(name: string) {
  return builder.objectRef<AdminPayload>(name).implement({
    fields: (t) => ({
      project: t.prismaField({
        type: 'Project',
        nullable: true,
        resolve: (query, p, _args, ctx) => (p.id ? ctx.prisma.project.findFirst({ ...query, where: { id: p.id, AND: [visibleProjects(ctx)] } }) : null),
      }),
      userErrors: t.expose('userErrors', { type: [UserErrorRef] }),
    }),
  });
}

function appPayload(name: string) {
  return builder.objectRef<AdminPayload>(name).implement({
    fields: (t) => ({
      app: t.prismaField({
        type: 'App',
        nullable: true,
        resolve: (query, p, _args, ctx) => (p.id ? ctx.prisma.app.findFirst({ ...query, where: { id: p.id, AND: [visibleApps(ctx)] } }) : null),
      }),
      userErrors: t.expose('userErrors', { type: [UserErrorRef] }),
    }),
  });
}

// ─── Datastreams ────────────────────────────────────────────────────────────────────────────────

const CreateDatastreamInput = builder.inputType('CreateDatastreamInput', {
  fields: (t) => ({
    workspaceId: t.id({ required: true, description: 'The (live) workspace the datastream belongs to.' }),
    name: t.string({ required: true, description: NAME('datastreams of the workspace') }),
    idempotencyKey: t.string({ description: IDEMPOTENCY }),
  }),
});

builder.mutationField('createDatastream', (t) =>
  t.field({
    type: datastreamPayload('CreateDatastreamPayload'),
    description: `Creates a datastream in a workspace. ${SCOPE_NOTE}`,
    authScopes: ADMIN_WRITE_SCOPES,
    args: { input: t.arg({ type: CreateDatastreamInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      const workspaceId = decodeInputId(input.workspaceId, 'Workspace');
      if (!workspaceId) return notFound(['input', 'workspaceId'], 'workspace');
      return runAdminMutation(ctx, (tx, request) => createDatastream(tx, request, { workspaceId, name: input.name, idempotencyKey: input.idempotencyKey }));
    },
  }),
);

const UpdateDatastreamInput = builder.inputType('UpdateDatastreamInput', {
  fields: (t) => ({ id: t.id({ required: true }), name: t.string({ required: true, description: NAME('datastreams of its workspace') }) }),
});

builder.mutationField('updateDatastream', (t) =>
  t.field({
    type: datastreamPayload('UpdateDatastreamPayload'),
    description: `Renames a datastream. ${SCOPE_NOTE}`,
    authScopes: ADMIN_WRITE_SCOPES,
    args: { input: t.arg({ type: UpdateDatastreamInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      const id = decodeInputId(input.id, 'Datastream');
      if (!id) return notFound(['input', 'id'], 'datastream');
      return runAdminMutation(ctx, (tx, request) => updateDatastream(tx, request, { id, name: input.name }));
    },
  }),
);

const MoveDatastreamInput = builder.inputType('MoveDatastreamInput', {
  fields: (t) => ({ id: t.id({ required: true }), workspaceId: t.id({ required: true, description: 'The (live) workspace it moves to.' }) }),
});

builder.mutationField('moveDatastream', (t) =>
  t.field({
    type: datastreamPayload('MoveDatastreamPayload'),
    description: `Moves a datastream to another workspace (which scoped keys see it follows); recorded usage keeps the workspace each event named. ${SCOPE_NOTE}`,
    authScopes: ADMIN_WRITE_SCOPES,
    args: { input: t.arg({ type: MoveDatastreamInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      const id = decodeInputId(input.id, 'Datastream');
      if (!id) return notFound(['input', 'id'], 'datastream');
      const workspaceId = decodeInputId(input.workspaceId, 'Workspace');
      if (!workspaceId) return notFound(['input', 'workspaceId'], 'workspace');
      return runAdminMutation(ctx, (tx, request) => moveDatastream(tx, request, { id, workspaceId }));
    },
  }),
);

builder.mutationField('archiveDatastream', (t) =>
  t.field({
    type: datastreamPayload('ArchiveDatastreamPayload'),
    description: `Archives a datastream: left out of lists unless \`includeArchived: true\`, its usage stays reportable, new usage naming it is refused (ARCHIVED_DIMENSION). ${SCOPE_NOTE}`,
    authScopes: ADMIN_WRITE_SCOPES,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => {
      const id = decodeInputId(args.id, 'Datastream');
      if (!id) return notFound(['id'], 'datastream');
      return runAdminMutation(ctx, (tx, request) => archiveDatastream(tx, request, { id }));
    },
  }),
);

builder.mutationField('unarchiveDatastream', (t) =>
  t.field({
    type: datastreamPayload('UnarchiveDatastreamPayload'),
    description: `Opens an archived datastream again (a live one stays as it is; its workspace must be live). ${SCOPE_NOTE}`,
    authScopes: ADMIN_WRITE_SCOPES,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => {
      const id = decodeInputId(args.id, 'Datastream');
      if (!id) return notFound(['id'], 'datastream');
      return runAdminMutation(ctx, (tx, request) => unarchiveDatastream(tx, request, { id }));
    },
  }),
);

// ─── Projects ───────────────────────────────────────────────────────────────────────────────────

const CreateProjectInput = builder.inputType('CreateProjectInput', {
  fields: (t) => ({ name: t.string({ required: true, description: NAME('projects of the realm') }), idempotencyKey: t.string({ description: IDEMPOTENCY }) }),
});

builder.mutationField('createProject', (t) =>
  t.field({
    type: projectPayload('CreateProjectPayload'),
    description: `Creates a project. ${REALM_NOTE}`,
    authScopes: REALM_ADMIN_WRITE_SCOPES,
    args: { input: t.arg({ type: CreateProjectInput, required: true }) },
    resolve: (_root, { input }, ctx) => runAdminMutation(ctx, (tx, request) => createProject(tx, request, { name: input.name, idempotencyKey: input.idempotencyKey })),
  }),
);

const UpdateProjectInput = builder.inputType('UpdateProjectInput', {
  fields: (t) => ({ id: t.id({ required: true }), name: t.string({ required: true, description: NAME('projects of the realm') }) }),
});

builder.mutationField('updateProject', (t) =>
  t.field({
    type: projectPayload('UpdateProjectPayload'),
    description: `Renames a project. ${REALM_NOTE}`,
    authScopes: REALM_ADMIN_WRITE_SCOPES,
    args: { input: t.arg({ type: UpdateProjectInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      const id = decodeInputId(input.id, 'Project');
      if (!id) return notFound(['input', 'id'], 'project');
      return runAdminMutation(ctx, (tx, request) => updateProject(tx, request, { id, name: input.name }));
    },
  }),
);

builder.mutationField('archiveProject', (t) =>
  t.field({
    type: projectPayload('ArchiveProjectPayload'),
    description: `Archives a project without live apps (else HAS_LIVE_CHILDREN): left out of lists, usage stays reportable, new usage naming it is refused (ARCHIVED_DIMENSION). ${REALM_NOTE}`,
    authScopes: REALM_ADMIN_WRITE_SCOPES,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => {
      const id = decodeInputId(args.id, 'Project');
      if (!id) return notFound(['id'], 'project');
      return runAdminMutation(ctx, (tx, request) => archiveProject(tx, request, { id }));
    },
  }),
);

builder.mutationField('unarchiveProject', (t) =>
  t.field({
    type: projectPayload('UnarchiveProjectPayload'),
    description: `Opens an archived project again (a live one stays as it is). ${REALM_NOTE}`,
    authScopes: REALM_ADMIN_WRITE_SCOPES,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => {
      const id = decodeInputId(args.id, 'Project');
      if (!id) return notFound(['id'], 'project');
      return runAdminMutation(ctx, (tx, request) => unarchiveProject(tx, request, { id }));
    },
  }),
);

// ─── Apps ───────────────────────────────────────────────────────────────────────────────────────

const CreateAppInput = builder.inputType('CreateAppInput', {
  fields: (t) => ({
    projectId: t.id({ required: true, description: 'The (live) project the app belongs to.' }),
    workspaceId: t.id({ description: 'The (live) workspace that owns the app; omitted or null: the realm as a whole (realm-wide keys only).' }),
    name: t.string({ required: true, description: NAME('apps of the project') }),
    idempotencyKey: t.string({ description: IDEMPOTENCY }),
  }),
});

builder.mutationField('createApp', (t) =>
  t.field({
    type: appPayload('CreateAppPayload'),
    description: `Creates an app of a project, optionally owned by a workspace. ${SCOPE_NOTE}`,
    authScopes: ADMIN_WRITE_SCOPES,
    args: { input: t.arg({ type: CreateAppInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      const projectId = decodeInputId(input.projectId, 'Project');
      if (!projectId) return notFound(['input', 'projectId'], 'project');
      const workspaceId = decodeInputId(input.workspaceId, 'Workspace');
      if (input.workspaceId && !workspaceId) return notFound(['input', 'workspaceId'], 'workspace');
      return runAdminMutation(ctx, (tx, request) => createApp(tx, request, { projectId, workspaceId, name: input.name, idempotencyKey: input.idempotencyKey }));
    },
  }),
);

const UpdateAppInput = builder.inputType('UpdateAppInput', {
  fields: (t) => ({ id: t.id({ required: true }), name: t.string({ required: true, description: NAME('apps of its project') }) }),
});

builder.mutationField('updateApp', (t) =>
  t.field({
    type: appPayload('UpdateAppPayload'),
    description: `Renames an app. ${SCOPE_NOTE}`,
    authScopes: ADMIN_WRITE_SCOPES,
    args: { input: t.arg({ type: UpdateAppInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      const id = decodeInputId(input.id, 'App');
      if (!id) return notFound(['input', 'id'], 'app');
      return runAdminMutation(ctx, (tx, request) => updateApp(tx, request, { id, name: input.name }));
    },
  }),
);

const MoveAppInput = builder.inputType('MoveAppInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    workspaceId: t.id({ description: 'The (live) workspace that owns the app from now on; omitted or null: the realm as a whole (realm-wide keys only).' }),
  }),
});

builder.mutationField('moveApp', (t) =>
  t.field({
    type: appPayload('MoveAppPayload'),
    description: `Gives an app another owning workspace (which scoped keys see it follows); recorded usage keeps the workspace each event named. ${SCOPE_NOTE}`,
    authScopes: ADMIN_WRITE_SCOPES,
    args: { input: t.arg({ type: MoveAppInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      const id = decodeInputId(input.id, 'App');
      if (!id) return notFound(['input', 'id'], 'app');
      const workspaceId = decodeInputId(input.workspaceId, 'Workspace');
      if (input.workspaceId && !workspaceId) return notFound(['input', 'workspaceId'], 'workspace');
      return runAdminMutation(ctx, (tx, request) => moveApp(tx, request, { id, workspaceId }));
    },
  }),
);

builder.mutationField('archiveApp', (t) =>
  t.field({
    type: appPayload('ArchiveAppPayload'),
    description: `Archives an app: left out of lists unless \`includeArchived: true\`, its usage stays reportable, new usage naming it is refused (ARCHIVED_DIMENSION). ${SCOPE_NOTE}`,
    authScopes: ADMIN_WRITE_SCOPES,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => {
      const id = decodeInputId(args.id, 'App');
      if (!id) return notFound(['id'], 'app');
      return runAdminMutation(ctx, (tx, request) => archiveApp(tx, request, { id }));
    },
  }),
);

builder.mutationField('unarchiveApp', (t) =>
  t.field({
    type: appPayload('UnarchiveAppPayload'),
    description: `Opens an archived app again (a live one stays as it is; its project, and its workspace if any, must be live). ${SCOPE_NOTE}`,
    authScopes: ADMIN_WRITE_SCOPES,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => {
      const id = decodeInputId(args.id, 'App');
      if (!id) return notFound(['id'], 'app');
      return runAdminMutation(ctx, (tx, request) => unarchiveApp(tx, request, { id }));
    },
  }),
);

import { decodeInputId, failed, runAdminMutation, type AdminPayload } from '../admin/admin-request.js';
import { archiveWorkspace, createWorkspace, MAX_WORKSPACE_DEPTH, moveWorkspace, unarchiveWorkspace, updateWorkspace } from '../admin/workspaces.js';
import { MAX_NAME_LENGTH } from '../admin/names.js';
import { builder } from '../builder.js';
import { UserErrorRef } from './user-error.js';
import { ADMIN_WRITE_SCOPES, visibleWorkspaces } from './visibility.js';

function workspacePayload(name: string) {
  return builder.objectRef<AdminPayload>(name).implement({
    fields: (t) => ({
      workspace: t.prismaField({
        type: 'Workspace',
        nullable: true,
        description: 'The workspace as it is now; null when the mutation failed.',
        resolve: (query, payload, _args, ctx) =>
          payload.id ? ctx.prisma.workspace.findFirst({ ...query, where: { id: payload.id, AND: [visibleWorkspaces(ctx)] } }) : null,
      }),
      userErrors: t.expose('userErrors', { type: [UserErrorRef] }),
    }),
  });
}

const notFound = (field: string[]) => ({ id: null, ...failed(field, 'NOT_FOUND', 'No such workspace.') });

const SCOPE_NOTE = 'Needs `admin:write`; a workspace-scoped key acts inside its subtree only.';

const CreateWorkspaceInput = builder.inputType('CreateWorkspaceInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: `1 to ${MAX_NAME_LENGTH} characters, unique (case-insensitive) among the live workspaces of the same parent.` }),
    parentId: t.id({ description: 'The parent workspace; omitted or null: a new root (realm-wide keys only).' }),
    idempotencyKey: t.string({ description: 'Retry safely: the same key and input again answers the same workspace; another input is IDEMPOTENCY_MISMATCH.' }),
  }),
});

builder.mutationField('createWorkspace', (t) =>
  t.field({
    type: workspacePayload('CreateWorkspacePayload'),
    description: `Creates a workspace (at most ${MAX_WORKSPACE_DEPTH} levels deep). ${SCOPE_NOTE}`,
    authScopes: ADMIN_WRITE_SCOPES,
    args: { input: t.arg({ type: CreateWorkspaceInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      const parentId = decodeInputId(input.parentId, 'Workspace');
      if (input.parentId && !parentId) return notFound(['input', 'parentId']);
      return runAdminMutation(ctx, (tx, request) => createWorkspace(tx, request, { name: input.name, parentId, idempotencyKey: input.idempotencyKey }));
    },
  }),
);

const UpdateWorkspaceInput = builder.inputType('UpdateWorkspaceInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string({ required: true, description: 'The new name, unique (case-insensitive) among the live siblings.' }),
  }),
});

builder.mutationField('updateWorkspace', (t) =>
  t.field({
    type: workspacePayload('UpdateWorkspacePayload'),
    description: `Renames a workspace. ${SCOPE_NOTE}`,
    authScopes: ADMIN_WRITE_SCOPES,
    args: { input: t.arg({ type: UpdateWorkspaceInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      const id = decodeInputId(input.id, 'Workspace');
      if (!id) return notFound(['input', 'id']);
      return runAdminMutation(ctx, (tx, request) => updateWorkspace(tx, request, { id, name: input.name }));
    },
  }),
);

const MoveWorkspaceInput = builder.inputType('MoveWorkspaceInput', {
  fields: (t) => ({
    id: t.id({ required: true, description: 'The workspace to move, with its whole subtree.' }),
    newParentId: t.id({ description: 'The new parent; omitted or null: the workspace becomes a root (realm-wide keys only).' }),
  }),
});

builder.mutationField('moveWorkspace', (t) =>
  t.field({
    type: workspacePayload('MoveWorkspacePayload'),
    description:
      'Moves a workspace and its subtree below another workspace, or makes it a root. Usage stays with the workspaces it was recorded for; ' +
      "subtree reports follow today's tree, so the new ancestors' reports include the moved subtree's history. " +
      `WOULD_CREATE_CYCLE below itself, TOO_DEEP beyond ${MAX_WORKSPACE_DEPTH} levels. ${SCOPE_NOTE} It never moves its own root.`,
    authScopes: ADMIN_WRITE_SCOPES,
    args: { input: t.arg({ type: MoveWorkspaceInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      const id = decodeInputId(input.id, 'Workspace');
      if (!id) return notFound(['input', 'id']);
      const newParentId = decodeInputId(input.newParentId, 'Workspace');
      if (input.newParentId && !newParentId) return notFound(['input', 'newParentId']);
      return runAdminMutation(ctx, (tx, request) => moveWorkspace(tx, request, { id, newParentId }));
    },
  }),
);

builder.mutationField('archiveWorkspace', (t) =>
  t.field({
    type: workspacePayload('ArchiveWorkspacePayload'),
    description:
      'Archives a workspace without live children (workspaces, datastreams, apps; else HAS_LIVE_CHILDREN): lists leave it out unless `includeArchived: true`, ' +
      `node(id) still answers it, its usage stays reportable, and new usage naming it is refused (ARCHIVED_DIMENSION). ${SCOPE_NOTE} It never archives its own root.`,
    authScopes: ADMIN_WRITE_SCOPES,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => {
      const id = decodeInputId(args.id, 'Workspace');
      if (!id) return notFound(['id']);
      return runAdminMutation(ctx, (tx, request) => archiveWorkspace(tx, request, { id }));
    },
  }),
);

builder.mutationField('unarchiveWorkspace', (t) =>
  t.field({
    type: workspacePayload('UnarchiveWorkspacePayload'),
    description: `Opens an archived workspace again (a live one stays as it is); its parent must be live. ${SCOPE_NOTE}`,
    authScopes: ADMIN_WRITE_SCOPES,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => {
      const id = decodeInputId(args.id, 'Workspace');
      if (!id) return notFound(['id']);
      return runAdminMutation(ctx, (tx, request) => unarchiveWorkspace(tx, request, { id }));
    },
  }),
);

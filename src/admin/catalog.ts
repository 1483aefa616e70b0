/**
 * Datastreams, projects and apps: create, rename, move (datastreams and apps, to another
 * workspace), archive and unarchive. The same conventions as the workspace tree (./workspaces.ts):
 * the realm's structure lock first, ids found through the visibility rule (NOT_FOUND otherwise),
 * every check before any write, one audit entry per change.
 *
 * - Datastreams and apps belong to a workspace (an app may belong to the realm as a whole:
 *   realm-wide keys only); a workspace-scoped key creates and moves them inside its subtree.
 * - Projects are the realm's shared catalog: realm-wide keys only.
 * - Names are unique (case-insensitive) among the live datastreams of a workspace, the live projects
 *   of the realm and the live apps of a project: DUPLICATE_NAME.
 * - Nothing new is created in, or moved to, an archived workspace or project (ARCHIVED); a project
 *   with live apps cannot be archived (HAS_LIVE_CHILDREN). An archived object cannot be renamed or
 *   moved (ARCHIVED); archiving twice is ALREADY_ARCHIVED; unarchiving a live one changes nothing.
 */
import { encodeId } from '../global-id.js';
import { visibleApps, visibleDatastreams, visibleProjects, visibleWorkspaces } from '../schema/visibility.js';
import { recordAudit } from './audit.js';
import { createIdempotently } from './idempotency.js';
import { checkName } from './names.js';
import { callerOf, failed, lockRealmStructure, nameTaken, type AdminRequest, type AdminResult, type Tx } from './admin-request.js';

const gid = (typename: string, id: string | null) => (id ? encodeId(typename, id) : null);

function audit(tx: Tx, request: AdminRequest, action: string, targetType: string, id: string, before: Record<string, unknown> | null, after: Record<string, unknown>) {
  return recordAudit(tx, request.actor, { action, realmId: request.realmId, targetType, targetId: id, before, after });
}

/** A live workspace the caller may put things in: its id, or the user error. */
async function liveWorkspace(tx: Tx, request: AdminRequest, id: string, field: string[]): Promise<{ id: string } | { userErrors: ReturnType<typeof failed>['userErrors'] }> {
  const workspace = await tx.workspace.findFirst({ where: { id, AND: [visibleWorkspaces(callerOf(request))] }, select: { id: true, archivedAt: true } });
  if (!workspace) return failed(field, 'NOT_FOUND', 'No such workspace.');
  if (workspace.archivedAt) return failed(field, 'ARCHIVED', 'This workspace is archived: nothing new goes into it.');
  return { id: workspace.id };
}

const realmWideOnly = (field: string[]) => failed(field, 'FORBIDDEN_TARGET', "Projects are the realm's shared catalog: they need a realm-wide key.");

// ─── Datastreams ────────────────────────────────────────────────────────────────────────────────

const DATASTREAM_FIELDS = { id: true, name: true, workspaceId: true, archivedAt: true } as const;
type DatastreamState = { name: string; workspaceId: string; archivedAt: Date | null };
const datastreamState = (d: DatastreamState) => ({ name: d.name, workspaceId: gid('Workspace', d.workspaceId), archivedAt: d.archivedAt });
const noDatastream = (field: string[]) => failed(field, 'NOT_FOUND', 'No such datastream.');

function visibleDatastream(tx: Tx, request: AdminRequest, id: string) {
  return tx.datastream.findFirst({ where: { id, AND: [visibleDatastreams(callerOf(request))] }, select: DATASTREAM_FIELDS });
}

export async function createDatastream(tx: Tx, request: AdminRequest, input: { id?: string; workspaceId: string; name: string; idempotencyKey?: string | null }): Promise<AdminResult> {
  const checked = checkName(input.name, ['input', 'name']);
  if ('error' in checked) return { userErrors: [checked.error] };
  return createIdempotently(
    tx,
    { scope: request.idempotencyScope, key: input.idempotencyKey, action: 'datastream.create', input: { workspaceId: input.workspaceId, name: input.name }, now: request.now },
    async () => {
      await lockRealmStructure(tx, request.realmId);
      const workspace = await liveWorkspace(tx, request, input.workspaceId, ['input', 'workspaceId']);
      if ('userErrors' in workspace) return workspace;
      if (await nameTaken(tx, 'Datastream', { realmId: request.realmId, parentId: workspace.id, name: checked.name })) {
        return failed(['input', 'name'], 'DUPLICATE_NAME', `This workspace already has a datastream named "${checked.name}".`);
      }
      const datastream = await tx.datastream.create({
        data: { ...(input.id ? { id: input.id } : {}), realmId: request.realmId, workspaceId: workspace.id, name: checked.name, createdAt: request.now },
        select: DATASTREAM_FIELDS,
      });
      await audit(tx, request, 'datastream.create', 'Datastream', datastream.id, null, datastreamState(datastream));
      return { id: datastream.id };
    },
  );
}

export async function updateDatastream(tx: Tx, request: AdminRequest, input: { id: string; name: string }): Promise<AdminResult> {
  const checked = checkName(input.name, ['input', 'name']);
  if ('error' in checked) return { userErrors: [checked.error] };
  await lockRealmStructure(tx, request.realmId);
  const datastream = await visibleDatastream(tx, request, input.id);
  if (!datastream) return noDatastream(['input', 'id']);
  if (datastream.archivedAt) return failed(['input', 'id'], 'ARCHIVED', 'An archived datastream cannot be changed: unarchive it first.');
  if (datastream.name === checked.name) return { id: datastream.id };
  if (await nameTaken(tx, 'Datastream', { realmId: request.realmId, parentId: datastream.workspaceId, name: checked.name, exceptId: datastream.id })) {
    return failed(['input', 'name'], 'DUPLICATE_NAME', `This workspace already has a datastream named "${checked.name}".`);
  }
  await tx.datastream.update({ where: { id: datastream.id }, data: { name: checked.name }, select: { id: true } });
  await audit(tx, request, 'datastream.update', 'Datastream', datastream.id, datastreamState(datastream), datastreamState({ ...datastream, name: checked.name }));
  return { id: datastream.id };
}

/** Moves a datastream to another workspace (which scoped keys see it follows); usage keeps the workspace each event named. */
export async function moveDatastream(tx: Tx, request: AdminRequest, input: { id: string; workspaceId: string }): Promise<AdminResult> {
  await lockRealmStructure(tx, request.realmId);
  const datastream = await visibleDatastream(tx, request, input.id);
  if (!datastream) return noDatastream(['input', 'id']);
  if (datastream.archivedAt) return failed(['input', 'id'], 'ARCHIVED', 'An archived datastream cannot be moved: unarchive it first.');
  const workspace = await liveWorkspace(tx, request, input.workspaceId, ['input', 'workspaceId']);
  if ('userErrors' in workspace) return workspace;
  if (workspace.id === datastream.workspaceId) return { id: datastream.id };
  if (await nameTaken(tx, 'Datastream', { realmId: request.realmId, parentId: workspace.id, name: datastream.name, exceptId: datastream.id })) {
    return failed(['input', 'workspaceId'], 'DUPLICATE_NAME', `That workspace already has a datastream named "${datastream.name}".`);
  }
  await tx.datastream.update({ where: { id: datastream.id }, data: { workspaceId: workspace.id }, select: { id: true } });
  await audit(tx, request, 'datastream.move', 'Datastream', datastream.id, datastreamState(datastream), datastreamState({ ...datastream, workspaceId: workspace.id }));
  return { id: datastream.id };
}

export async function archiveDatastream(tx: Tx, request: AdminRequest, input: { id: string }): Promise<AdminResult> {
  await lockRealmStructure(tx, request.realmId);
  const datastream = await visibleDatastream(tx, request, input.id);
  if (!datastream) return noDatastream(['id']);
  if (datastream.archivedAt) return failed(['id'], 'ALREADY_ARCHIVED', 'This datastream is archived already.');
  await tx.datastream.update({ where: { id: datastream.id }, data: { archivedAt: request.now }, select: { id: true } });
  await audit(tx, request, 'datastream.archive', 'Datastream', datastream.id, datastreamState(datastream), datastreamState({ ...datastream, archivedAt: request.now }));
  return { id: datastream.id };
}

export async function unarchiveDatastream(tx: Tx, request: AdminRequest, input: { id: string }): Promise<AdminResult> {
  await lockRealmStructure(tx, request.realmId);
  const datastream = await tx.datastream.findFirst({
    where: { id: input.id, AND: [visibleDatastreams(callerOf(request))] },
    select: { ...DATASTREAM_FIELDS, workspace: { select: { archivedAt: true } } },
  });
  if (!datastream) return noDatastream(['id']);
  if (!datastream.archivedAt) return { id: datastream.id };
  if (datastream.workspace.archivedAt) return failed(['id'], 'ARCHIVED', 'Its workspace is archived: unarchive the workspace first.');
  if (await nameTaken(tx, 'Datastream', { realmId: request.realmId, parentId: datastream.workspaceId, name: datastream.name, exceptId: datastream.id })) {
    return failed(['id'], 'DUPLICATE_NAME', `A live datastream of its workspace is named "${datastream.name}" now: rename it first.`);
  }
  await tx.datastream.update({ where: { id: datastream.id }, data: { archivedAt: null }, select: { id: true } });
  await audit(tx, request, 'datastream.unarchive', 'Datastream', datastream.id, datastreamState(datastream), datastreamState({ ...datastream, archivedAt: null }));
  return { id: datastream.id };
}

// ─── Projects (the realm's shared catalog: realm-wide keys only) ────────────────────────────────

const PROJECT_FIELDS = { id: true, name: true, archivedAt: true } as const;
type ProjectState = { name: string; archivedAt: Date | null };
const projectState = (p: ProjectState) => ({ name: p.name, archivedAt: p.archivedAt });
const noProject = (field: string[]) => failed(field, 'NOT_FOUND', 'No such project.');

function visibleProject(tx: Tx, request: AdminRequest, id: string) {
  return tx.project.findFirst({ where: { id, AND: [visibleProjects(callerOf(request))] }, select: PROJECT_FIELDS });
}

export async function createProject(tx: Tx, request: AdminRequest, input: { id?: string; name: string; idempotencyKey?: string | null }): Promise<AdminResult> {
  if (request.workspaceId) return realmWideOnly(['input']);
  const checked = checkName(input.name, ['input', 'name']);
  if ('error' in checked) return { userErrors: [checked.error] };
  return createIdempotently(
    tx,
    { scope: request.idempotencyScope, key: input.idempotencyKey, action: 'project.create', input: { name: input.name }, now: request.now },
    async () => {
      await lockRealmStructure(tx, request.realmId);
      if (await nameTaken(tx, 'Project', { realmId: request.realmId, parentId: null, name: checked.name })) {
        return failed(['input', 'name'], 'DUPLICATE_NAME', `The realm already has a project named "${checked.name}".`);
      }
      const project = await tx.project.create({ data: { ...(input.id ? { id: input.id } : {}), realmId: request.realmId, name: checked.name, createdAt: request.now }, select: PROJECT_FIELDS });
      await audit(tx, request, 'project.create', 'Project', project.id, null, projectState(project));
      return { id: project.id };
    },
  );
}

export async function updateProject(tx: Tx, request: AdminRequest, input: { id: string; name: string }): Promise<AdminResult> {
  if (request.workspaceId) return realmWideOnly(['input']);
  const checked = checkName(input.name, ['input', 'name']);
  if ('error' in checked) return { userErrors: [checked.error] };
  await lockRealmStructure(tx, request.realmId);
  const project = await visibleProject(tx, request, input.id);
  if (!project) return noProject(['input', 'id']);
  if (project.archivedAt) return failed(['input', 'id'], 'ARCHIVED', 'An archived project cannot be changed: unarchive it first.');
  if (project.name === checked.name) return { id: project.id };
  if (await nameTaken(tx, 'Project', { realmId: request.realmId, parentId: null, name: checked.name, exceptId: project.id })) {
    return failed(['input', 'name'], 'DUPLICATE_NAME', `The realm already has a project named "${checked.name}".`);
  }
  await tx.project.update({ where: { id: project.id }, data: { name: checked.name }, select: { id: true } });
  await audit(tx, request, 'project.update', 'Project', project.id, projectState(project), projectState({ ...project, name: checked.name }));
  return { id: project.id };
}

export async function archiveProject(tx: Tx, request: AdminRequest, input: { id: string }): Promise<AdminResult> {
  if (request.workspaceId) return realmWideOnly(['id']);
  await lockRealmStructure(tx, request.realmId);
  const project = await tx.project.findFirst({
    where: { id: input.id, AND: [visibleProjects(callerOf(request))] },
    select: { ...PROJECT_FIELDS, _count: { select: { apps: { where: { archivedAt: null } } } } },
  });
  if (!project) return noProject(['id']);
  if (project.archivedAt) return failed(['id'], 'ALREADY_ARCHIVED', 'This project is archived already.');
  if (project._count.apps > 0) return failed(['id'], 'HAS_LIVE_CHILDREN', `Archive its apps first: ${project._count.apps} app(s) of this project are live.`);
  await tx.project.update({ where: { id: project.id }, data: { archivedAt: request.now }, select: { id: true } });
  await audit(tx, request, 'project.archive', 'Project', project.id, projectState(project), projectState({ ...project, archivedAt: request.now }));
  return { id: project.id };
}

export async function unarchiveProject(tx: Tx, request: AdminRequest, input: { id: string }): Promise<AdminResult> {
  if (request.workspaceId) return realmWideOnly(['id']);
  await lockRealmStructure(tx, request.realmId);
  const project = await visibleProject(tx, request, input.id);
  if (!project) return noProject(['id']);
  if (!project.archivedAt) return { id: project.id };
  if (await nameTaken(tx, 'Project', { realmId: request.realmId, parentId: null, name: project.name, exceptId: project.id })) {
    return failed(['id'], 'DUPLICATE_NAME', `A live project is named "${project.name}" now: rename it first.`);
  }
  await tx.project.update({ where: { id: project.id }, data: { archivedAt: null }, select: { id: true } });
  await audit(tx, request, 'project.unarchive', 'Project', project.id, projectState(project), projectState({ ...project, archivedAt: null }));
  return { id: project.id };
}

// ─── Apps ───────────────────────────────────────────────────────────────────────────────────────

const APP_FIELDS = { id: true, name: true, projectId: true, workspaceId: true, archivedAt: true } as const;
type AppState = { name: string; projectId: string; workspaceId: string | null; archivedAt: Date | null };
const appState = (a: AppState) => ({ name: a.name, projectId: gid('Project', a.projectId), workspaceId: gid('Workspace', a.workspaceId), archivedAt: a.archivedAt });
const noApp = (field: string[]) => failed(field, 'NOT_FOUND', 'No such app.');
const realmWideApp = (field: string[]) =>
  failed(field, 'FORBIDDEN_TARGET', 'An app without a workspace belongs to the realm as a whole: a key scoped to a workspace gives a workspaceId inside its subtree.');

function visibleApp(tx: Tx, request: AdminRequest, id: string) {
  return tx.app.findFirst({ where: { id, AND: [visibleApps(callerOf(request))] }, select: APP_FIELDS });
}

export async function createApp(
  tx: Tx,
  request: AdminRequest,
  input: { id?: string; projectId: string; workspaceId?: string | null; name: string; idempotencyKey?: string | null },
): Promise<AdminResult> {
  const checked = checkName(input.name, ['input', 'name']);
  if ('error' in checked) return { userErrors: [checked.error] };
  const workspaceId = input.workspaceId ?? null;
  if (!workspaceId && request.workspaceId) return realmWideApp(['input', 'workspaceId']);
  return createIdempotently(
    tx,
    { scope: request.idempotencyScope, key: input.idempotencyKey, action: 'app.create', input: { projectId: input.projectId, workspaceId, name: input.name }, now: request.now },
    async () => {
      await lockRealmStructure(tx, request.realmId);
      const project = await visibleProject(tx, request, input.projectId);
      if (!project) return noProject(['input', 'projectId']);
      if (project.archivedAt) return failed(['input', 'projectId'], 'ARCHIVED', 'This project is archived: nothing new goes into it.');
      if (workspaceId) {
        const workspace = await liveWorkspace(tx, request, workspaceId, ['input', 'workspaceId']);
        if ('userErrors' in workspace) return workspace;
      }
      if (await nameTaken(tx, 'App', { realmId: request.realmId, parentId: project.id, name: checked.name })) {
        return failed(['input', 'name'], 'DUPLICATE_NAME', `This project already has an app named "${checked.name}".`);
      }
      const app = await tx.app.create({
        data: { ...(input.id ? { id: input.id } : {}), realmId: request.realmId, projectId: project.id, workspaceId, name: checked.name, createdAt: request.now },
        select: APP_FIELDS,
      });
      await audit(tx, request, 'app.create', 'App', app.id, null, appState(app));
      return { id: app.id };
    },
  );
}

export async function updateApp(tx: Tx, request: AdminRequest, input: { id: string; name: string }): Promise<AdminResult> {
  const checked = checkName(input.name, ['input', 'name']);
  if ('error' in checked) return { userErrors: [checked.error] };
  await lockRealmStructure(tx, request.realmId);
  const app = await visibleApp(tx, request, input.id);
  if (!app) return noApp(['input', 'id']);
  if (app.archivedAt) return failed(['input', 'id'], 'ARCHIVED', 'An archived app cannot be changed: unarchive it first.');
  if (app.name === checked.name) return { id: app.id };
  if (await nameTaken(tx, 'App', { realmId: request.realmId, parentId: app.projectId, name: checked.name, exceptId: app.id })) {
    return failed(['input', 'name'], 'DUPLICATE_NAME', `This project already has an app named "${checked.name}".`);
  }
  await tx.app.update({ where: { id: app.id }, data: { name: checked.name }, select: { id: true } });
  await audit(tx, request, 'app.update', 'App', app.id, appState(app), appState({ ...app, name: checked.name }));
  return { id: app.id };
}

/** Gives an app another workspace (null: the realm as a whole, realm-wide keys only). Usage keeps the workspace each event named. */
export async function moveApp(tx: Tx, request: AdminRequest, input: { id: string; workspaceId: string | null }): Promise<AdminResult> {
  await lockRealmStructure(tx, request.realmId);
  const app = await visibleApp(tx, request, input.id);
  if (!app) return noApp(['input', 'id']);
  if (app.archivedAt) return failed(['input', 'id'], 'ARCHIVED', 'An archived app cannot be moved: unarchive it first.');
  if (input.workspaceId === null) {
    if (request.workspaceId) return realmWideApp(['input', 'workspaceId']);
  } else {
    const workspace = await liveWorkspace(tx, request, input.workspaceId, ['input', 'workspaceId']);
    if ('userErrors' in workspace) return workspace;
  }
  if (app.workspaceId === input.workspaceId) return { id: app.id };
  await tx.app.update({ where: { id: app.id }, data: { workspaceId: input.workspaceId }, select: { id: true } });
  await audit(tx, request, 'app.move', 'App', app.id, appState(app), appState({ ...app, workspaceId: input.workspaceId }));
  return { id: app.id };
}

export async function archiveApp(tx: Tx, request: AdminRequest, input: { id: string }): Promise<AdminResult> {
  await lockRealmStructure(tx, request.realmId);
  const app = await visibleApp(tx, request, input.id);
  if (!app) return noApp(['id']);
  if (app.archivedAt) return failed(['id'], 'ALREADY_ARCHIVED', 'This app is archived already.');
  await tx.app.update({ where: { id: app.id }, data: { archivedAt: request.now }, select: { id: true } });
  await audit(tx, request, 'app.archive', 'App', app.id, appState(app), appState({ ...app, archivedAt: request.now }));
  return { id: app.id };
}

export async function unarchiveApp(tx: Tx, request: AdminRequest, input: { id: string }): Promise<AdminResult> {
  await lockRealmStructure(tx, request.realmId);
  const app = await tx.app.findFirst({
    where: { id: input.id, AND: [visibleApps(callerOf(request))] },
    select: { ...APP_FIELDS, project: { select: { archivedAt: true } }, workspace: { select: { archivedAt: true } } },
  });
  if (!app) return noApp(['id']);
  if (!app.archivedAt) return { id: app.id };
  if (app.project.archivedAt) return failed(['id'], 'ARCHIVED', 'Its project is archived: unarchive the project first.');
  if (app.workspace?.archivedAt) return failed(['id'], 'ARCHIVED', 'Its workspace is archived: unarchive the workspace first.');
  if (await nameTaken(tx, 'App', { realmId: request.realmId, parentId: app.projectId, name: app.name, exceptId: app.id })) {
    return failed(['id'], 'DUPLICATE_NAME', `A live app of its project is named "${app.name}" now: rename it first.`);
  }
  await tx.app.update({ where: { id: app.id }, data: { archivedAt: null }, select: { id: true } });
  await audit(tx, request, 'app.unarchive', 'App', app.id, appState(app), appState({ ...app, archivedAt: null }));
  return { id: app.id };
}

/**
 * `usage-gateway workspaces:create|move|archive|tree` and `datastreams:create|rename|move|archive|list`:
 * the workspace tree and its datastreams through the gateway's GraphQL mutations (createWorkspace,
 * moveWorkspace, archiveWorkspace, createDatastream, …) and `realm { workspaces, datastreams }`.
 * The calling key needs `admin:write` to change anything; a workspace-scoped key acts inside its subtree.
 */
import type { Command } from 'commander';
import {
  addGatewayOptions,
  allNodes,
  answerAt,
  badInput,
  EXIT_CODES_HELP,
  gatewayFrom,
  graphqlRequest,
  isArray,
  isObject,
  payloadObject,
  printJson,
  withSpinner,
  type Gateway,
  type GatewayOptions,
} from './client.js';
import { addTableOptions, cellText, parseColumns, printRows, type Row, type TableOptions, type TableSpec } from './table.js';

const ERRORS = 'userErrors { field message code }';

// ─── Workspaces ─────────────────────────────────────────────────────────────────────────────────

interface WorkspaceFields {
  id: string;
  name: string;
  depth: number;
  createdAt: string;
  archivedAt: string | null;
  parent: { id: string } | null;
}

const WORKSPACE_FIELDS = 'id name depth createdAt archivedAt parent { id }';

function workspaceRecord(workspace: WorkspaceFields): Row {
  return { id: workspace.id, name: workspace.name, depth: workspace.depth, parent_id: workspace.parent?.id ?? null, created: workspace.createdAt, archived: workspace.archivedAt };
}

async function workspaceMutation(options: GatewayOptions & { json?: boolean }, spinner: string, mutation: string, document: string, variables: Record<string, unknown>, done: (w: WorkspaceFields) => string) {
  const gateway = gatewayFrom(options);
  const workspace = await withSpinner(spinner, async () => payloadObject<WorkspaceFields>(await graphqlRequest(gateway, document, variables), mutation, 'workspace'));
  if (options.json) printJson(workspaceRecord(workspace));
  else process.stdout.write(`${done(workspace)}\n`);
}

interface CreateWorkspaceOptions extends GatewayOptions {
  name: string;
  parent?: string;
  idempotencyKey?: string;
  json?: boolean;
}

export function runWorkspaceCreate(options: CreateWorkspaceOptions): Promise<void> {
  return workspaceMutation(
    options,
    'creating the workspace',
    'createWorkspace',
    `mutation ($input: CreateWorkspaceInput!) { createWorkspace(input: $input) { workspace { ${WORKSPACE_FIELDS} } ${ERRORS} } }`,
    { input: { name: options.name, parentId: options.parent ?? null, ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}) } },
    (w) => `created workspace "${w.name}" (${w.id}) at depth ${w.depth}`,
  );
}

export function runWorkspaceMove(id: string, options: GatewayOptions & { parent?: string; root?: boolean; json?: boolean }): Promise<void> {
  if (Boolean(options.root) === Boolean(options.parent)) throw badInput('give exactly one of --parent <id> and --root');
  return workspaceMutation(
    options,
    'moving the workspace',
    'moveWorkspace',
    `mutation ($input: MoveWorkspaceInput!) { moveWorkspace(input: $input) { workspace { ${WORKSPACE_FIELDS} } ${ERRORS} } }`,
    { input: { id, newParentId: options.root ? null : options.parent } },
    (w) => `moved workspace "${w.name}" (${w.id}) ${w.parent ? `below ${w.parent.id}` : 'to the roots'}; its depth is ${w.depth}`,
  );
}

export function runWorkspaceArchive(id: string, options: GatewayOptions & { json?: boolean }): Promise<void> {
  return workspaceMutation(
    options,
    'archiving the workspace',
    'archiveWorkspace',
    `mutation ($id: ID!) { archiveWorkspace(id: $id) { workspace { ${WORKSPACE_FIELDS} } ${ERRORS} } }`,
    { id },
    (w) => `archived workspace "${w.name}" (${w.id}) at ${w.archivedAt}`,
  );
}

/** Every workspace the key can see, page by page. */
function listWorkspaces(gateway: Gateway, includeArchived: boolean): Promise<WorkspaceFields[]> {
  return allNodes<WorkspaceFields>(
    gateway,
    `query ($after: String, $all: Boolean) { viewer { realm { workspaces(first: 100, after: $after, includeArchived: $all) { pageInfo { hasNextPage endCursor } edges { node { ${WORKSPACE_FIELDS} } } } } } }`,
    ['viewer', 'realm', 'workspaces'],
    'workspaces',
    { all: includeArchived },
  );
}

/**
 * The workspaces in tree order (each parent before its children, siblings by name), each with its
 * level in the drawing: a workspace whose parent the key cannot see (the root of a scoped key's
 * subtree) is drawn as a root. Pure, so the drawing is tested on its own.
 */
export function treeOrder<T extends { id: string; name: string; parent: { id: string } | null }>(workspaces: T[]): Array<T & { level: number }> {
  const ids = new Set(workspaces.map((w) => w.id));
  const children = new Map<string | null, T[]>();
  for (const workspace of workspaces) {
    const parent = workspace.parent && ids.has(workspace.parent.id) ? workspace.parent.id : null;
    children.set(parent, [...(children.get(parent) ?? []), workspace]);
  }
  const ordered: Array<T & { level: number }> = [];
  const visit = (parent: string | null, level: number) => {
    const list = (children.get(parent) ?? []).sort((a, b) => a.name.localeCompare(b.name) || (a.id < b.id ? -1 : 1));
    for (const workspace of list) {
      ordered.push({ ...workspace, level });
      visit(workspace.id, level + 1);
    }
  };
  visit(null, 0);
  return ordered;
}

export const TREE_TABLE: TableSpec = {
  columns: ['tree', 'id', 'name', 'depth', 'parent_id', 'created', 'archived'],
  tableColumns: ['tree', 'id', 'archived'],
  whole: new Set(['id', 'parent_id', 'tree']),
  numeric: new Set(['depth']),
};

export async function runWorkspaceTree(options: GatewayOptions & TableOptions & { includeArchived?: boolean }): Promise<void> {
  const columns = parseColumns(TREE_TABLE, options);
  const gateway = gatewayFrom(options);
  const workspaces = await withSpinner('fetching the workspaces', () => listWorkspaces(gateway, Boolean(options.includeArchived)));
  if (workspaces.length === 0) process.stderr.write('No workspaces.\n');
  const rows = treeOrder(workspaces).map((w) => ({
    tree: `${'  '.repeat(w.level)}${w.name}${w.archivedAt ? ' (archived)' : ''}`,
    ...workspaceRecord(w),
  }));
  printRows(TREE_TABLE, columns, rows, options);
}

// ─── Datastreams ────────────────────────────────────────────────────────────────────────────────

interface DatastreamFields {
  id: string;
  name: string;
  createdAt: string;
  archivedAt: string | null;
  workspace: { id: string; name: string } | null;
}

const DATASTREAM_FIELDS = 'id name createdAt archivedAt workspace { id name }';

function datastreamRecord(d: DatastreamFields): Row {
  return { id: d.id, name: d.name, workspace_id: d.workspace?.id ?? null, workspace: d.workspace?.name ?? null, created: d.createdAt, archived: d.archivedAt };
}

async function datastreamMutation(options: GatewayOptions & { json?: boolean }, spinner: string, mutation: string, document: string, variables: Record<string, unknown>, done: (d: DatastreamFields) => string) {
  const gateway = gatewayFrom(options);
  const datastream = await withSpinner(spinner, async () => payloadObject<DatastreamFields>(await graphqlRequest(gateway, document, variables), mutation, 'datastream'));
  if (options.json) printJson(datastreamRecord(datastream));
  else process.stdout.write(`${done(datastream)}\n`);
}

export function runDatastreamCreate(options: GatewayOptions & { workspace: string; name: string; idempotencyKey?: string; json?: boolean }): Promise<void> {
  return datastreamMutation(
    options,
    'creating the datastream',
    'createDatastream',
    `mutation ($input: CreateDatastreamInput!) { createDatastream(input: $input) { datastream { ${DATASTREAM_FIELDS} } ${ERRORS} } }`,
    { input: { workspaceId: options.workspace, name: options.name, ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}) } },
    (d) => `created datastream "${d.name}" (${d.id}) in workspace "${d.workspace?.name ?? ''}"`,
  );
}

export function runDatastreamRename(id: string, options: GatewayOptions & { name: string; json?: boolean }): Promise<void> {
  return datastreamMutation(
    options,
    'renaming the datastream',
    'updateDatastream',
    `mutation ($input: UpdateDatastreamInput!) { updateDatastream(input: $input) { datastream { ${DATASTREAM_FIELDS} } ${ERRORS} } }`,
    { input: { id, name: options.name } },
    (d) => `renamed datastream ${d.id} to "${d.name}"`,
  );
}

export function runDatastreamMove(id: string, options: GatewayOptions & { workspace: string; json?: boolean }): Promise<void> {
  return datastreamMutation(
    options,
    'moving the datastream',
    'moveDatastream',
    `mutation ($input: MoveDatastreamInput!) { moveDatastream(input: $input) { datastream { ${DATASTREAM_FIELDS} } ${ERRORS} } }`,
    { input: { id, workspaceId: options.workspace } },
    (d) => `moved datastream "${d.name}" (${d.id}) to workspace "${d.workspace?.name ?? ''}"`,
  );
}

export function runDatastreamArchive(id: string, options: GatewayOptions & { json?: boolean }): Promise<void> {
  return datastreamMutation(
    options,
    'archiving the datastream',
    'archiveDatastream',
    `mutation ($id: ID!) { archiveDatastream(id: $id) { datastream { ${DATASTREAM_FIELDS} } ${ERRORS} } }`,
    { id },
    (d) => `archived datastream "${d.name}" (${d.id}) at ${d.archivedAt}`,
  );
}

export const DATASTREAM_TABLE: TableSpec = {
  columns: ['id', 'name', 'workspace_id', 'workspace', 'created', 'archived'],
  tableColumns: ['id', 'name', 'workspace', 'archived'],
  whole: new Set(['id', 'workspace_id']),
  tableFormat: { created: (v) => cellText(v).replace(/:\d{2}(\.\d+)?Z$/, 'Z'), archived: (v) => cellText(v).replace(/:\d{2}(\.\d+)?Z$/, 'Z') },
};

export async function runDatastreamList(options: GatewayOptions & TableOptions & { workspace?: string; includeArchived?: boolean }): Promise<void> {
  const columns = parseColumns(DATASTREAM_TABLE, options);
  const gateway = gatewayFrom(options);
  const datastreams = await withSpinner('fetching the datastreams', async () => {
    const found: DatastreamFields[] = [];
    let after: string | null = null;
    do {
      const data = options.workspace
        ? await graphqlRequest(
            gateway,
            `query ($id: ID!, $after: String, $all: Boolean) { node(id: $id) { ... on Workspace { datastreams(first: 100, after: $after, includeArchived: $all) { pageInfo { hasNextPage endCursor } edges { node { ${DATASTREAM_FIELDS} } } } } } }`,
            { id: options.workspace, after, all: Boolean(options.includeArchived) },
          )
        : await graphqlRequest(
            gateway,
            `query ($after: String, $all: Boolean) { viewer { realm { datastreams(first: 100, after: $after, includeArchived: $all) { pageInfo { hasNextPage endCursor } edges { node { ${DATASTREAM_FIELDS} } } } } } }`,
            { after, all: Boolean(options.includeArchived) },
          );
      const path = options.workspace ? ['node', 'datastreams'] : ['viewer', 'realm', 'datastreams'];
      if (options.workspace && !isObject((data as { node?: unknown }).node)) throw badInput(`no workspace ${options.workspace} (see workspaces:tree --columns tree,id)`);
      const connection = answerAt(data, path, isObject, 'datastreams');
      const edges = answerAt(connection, ['edges'], isArray, 'datastreams') as Array<{ node: DatastreamFields }>;
      found.push(...edges.map((edge) => edge.node));
      const pageInfo = connection.pageInfo as { hasNextPage?: boolean; endCursor?: string | null } | undefined;
      after = pageInfo?.hasNextPage && pageInfo.endCursor ? pageInfo.endCursor : null;
    } while (after);
    return found;
  });
  if (datastreams.length === 0) process.stderr.write('No datastreams.\n');
  printRows(DATASTREAM_TABLE, columns, datastreams.map(datastreamRecord), options);
}

// ─── Registration ───────────────────────────────────────────────────────────────────────────────

const EXIT = `\n\nChanges need a key with the admin:write scope; a key scoped to a workspace acts inside its subtree.\n\n${EXIT_CODES_HELP}`;

export function registerWorkspaces(program: Command): void {
  const create = program
    .command('workspaces:create')
    .summary('create a workspace')
    .description(`Creates a workspace below --parent (or a root). Names are unique among live siblings.${EXIT}`)
    .requiredOption('--name <name>', 'the workspace\'s name')
    .option('--parent <id>', 'the parent workspace\'s id (omitted: a new root)')
    .option('--idempotency-key <key>', 'retry safely: the same key and input again answers the same workspace')
    .option('--json', 'print the workspace as JSON');
  addGatewayOptions(create)
    .addHelpText('after', '\nExample:\n  usage-gateway workspaces:create --name "Data team" --parent V29ya3NwYWNlOj…')
    .action((options: CreateWorkspaceOptions) => runWorkspaceCreate(options));

  const move = program
    .command('workspaces:move')
    .summary('move a workspace and its subtree')
    .description(`Moves a workspace, with everything below it, below --parent, or makes it a root (--root).${EXIT}`)
    .argument('<id>', 'the workspace to move')
    .option('--parent <id>', 'the new parent workspace')
    .option('--root', 'make the workspace a root')
    .option('--json', 'print the moved workspace as JSON');
  addGatewayOptions(move).action((id: string, options: GatewayOptions & { parent?: string; root?: boolean; json?: boolean }) => runWorkspaceMove(id, options));

  const archive = program
    .command('workspaces:archive')
    .summary('archive a workspace')
    .description(`Archives a workspace without live children: hidden from lists, closed to new usage, its usage still reportable.${EXIT}`)
    .argument('<id>', 'the workspace to archive')
    .option('--json', 'print the archived workspace as JSON');
  addGatewayOptions(archive).action((id: string, options: GatewayOptions & { json?: boolean }) => runWorkspaceArchive(id, options));

  const tree = program
    .command('workspaces:tree')
    .summary('draw the workspace tree')
    .description(
      `Draws the workspaces the key can see as a tree (indented by level, siblings by name). Columns: ${TREE_TABLE.columns.join(', ')} ` +
        `(the table shows ${TREE_TABLE.tableColumns.join(', ')} unless --columns names others; --csv and --json have all).${EXIT}`,
    )
    .option('--include-archived', 'archived workspaces too');
  addTableOptions(tree, TREE_TABLE);
  addGatewayOptions(tree)
    .addHelpText('after', '\nExamples:\n  usage-gateway workspaces:tree\n  usage-gateway workspaces:tree --columns tree --no-header\n  usage-gateway workspaces:tree --json')
    .action((options: GatewayOptions & TableOptions & { includeArchived?: boolean }) => runWorkspaceTree(options));

  const dsCreate = program
    .command('datastreams:create')
    .summary('create a datastream')
    .description(`Creates a datastream in a workspace. Names are unique among the workspace's live datastreams.${EXIT}`)
    .requiredOption('--workspace <id>', 'the workspace it belongs to')
    .requiredOption('--name <name>', 'the datastream\'s name')
    .option('--idempotency-key <key>', 'retry safely: the same key and input again answers the same datastream')
    .option('--json', 'print the datastream as JSON');
  addGatewayOptions(dsCreate).action((options: GatewayOptions & { workspace: string; name: string; idempotencyKey?: string; json?: boolean }) => runDatastreamCreate(options));

  const dsRename = program
    .command('datastreams:rename')
    .summary('rename a datastream')
    .description(`Renames a datastream.${EXIT}`)
    .argument('<id>', 'the datastream')
    .requiredOption('--name <name>', 'the new name')
    .option('--json', 'print the datastream as JSON');
  addGatewayOptions(dsRename).action((id: string, options: GatewayOptions & { name: string; json?: boolean }) => runDatastreamRename(id, options));

  const dsMove = program
    .command('datastreams:move')
    .summary('move a datastream to another workspace')
    .description(`Moves a datastream to another workspace; recorded usage keeps the workspace each event named.${EXIT}`)
    .argument('<id>', 'the datastream')
    .requiredOption('--workspace <id>', 'the workspace it moves to')
    .option('--json', 'print the datastream as JSON');
  addGatewayOptions(dsMove).action((id: string, options: GatewayOptions & { workspace: string; json?: boolean }) => runDatastreamMove(id, options));

  const dsArchive = program
    .command('datastreams:archive')
    .summary('archive a datastream')
    .description(`Archives a datastream: hidden from lists, closed to new usage, its usage still reportable.${EXIT}`)
    .argument('<id>', 'the datastream')
    .option('--json', 'print the datastream as JSON');
  addGatewayOptions(dsArchive).action((id: string, options: GatewayOptions & { json?: boolean }) => runDatastreamArchive(id, options));

  const dsList = program
    .command('datastreams:list')
    .summary('list the datastreams')
    .description(
      `Lists the datastreams the key can see (of one workspace with --workspace). Columns: ${DATASTREAM_TABLE.columns.join(', ')} ` +
        `(the table shows ${DATASTREAM_TABLE.tableColumns.join(', ')} unless --columns names others; --csv and --json have all).${EXIT}`,
    )
    .option('--workspace <id>', 'only this workspace\'s datastreams')
    .option('--include-archived', 'archived datastreams too');
  addTableOptions(dsList, DATASTREAM_TABLE);
  addGatewayOptions(dsList).action((options: GatewayOptions & TableOptions & { workspace?: string; includeArchived?: boolean }) => runDatastreamList(options));
}

/**
 * `usage-gateway keys:create`, `keys:list` and `keys:revoke`: API keys through the gateway's GraphQL
 * mutations `createApiKey` / `revokeApiKey` and `realm { apiKeys }`. The calling key needs the
 * `keys:manage` scope.
 */
import type { Command } from 'commander';
import {
  addGatewayOptions,
  answerAt,
  badInput,
  CliError,
  EXIT_CODES_HELP,
  gatewayFrom,
  graphqlRequest,
  isArray,
  isObject,
  withSpinner,
  type Gateway,
  type GatewayOptions,
} from './client.js';
import { addTableOptions, cellText, parseColumns, printRows, type Row, type TableOptions, type TableSpec } from './table.js';

interface ApiKeyFields {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

interface KeyPayload {
  apiKey: ApiKeyFields | null;
  secret: string | null;
  userErrors: Array<{ field: string[]; message: string; code: string }>;
}

const KEY_FIELDS = 'id name prefix scopes createdAt lastUsedAt revokedAt';

function checkPayload(data: unknown, field: string): KeyPayload & { apiKey: ApiKeyFields } {
  const payload = answerAt(data, [field], isObject, 'payload') as unknown as KeyPayload;
  if (!Array.isArray(payload.userErrors)) answerAt(data, [field, 'userErrors'], isArray, 'userErrors');
  const problem = payload.userErrors[0];
  if (problem) throw badInput(`${problem.message}${problem.field.length ? ` (${problem.field.join('.')}, ${problem.code})` : ` (${problem.code})`}`);
  if (!payload.apiKey) throw new CliError('the gateway answered without the key');
  return payload as KeyPayload & { apiKey: ApiKeyFields };
}

/** The JSON of one key (`--json`): the same names as the keys:list columns. */
function keyRecord(key: ApiKeyFields): Row {
  return { id: key.id, name: key.name, prefix: key.prefix, scopes: key.scopes, created: key.createdAt, last_used: key.lastUsedAt, revoked: key.revokedAt };
}

interface CreateOptions extends GatewayOptions {
  json?: boolean;
  name: string;
  scopes: string;
  workspace?: string;
}

export async function runCreate(options: CreateOptions): Promise<void> {
  const scopes = options.scopes
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (scopes.length === 0) throw badInput('--scopes needs at least one scope, e.g. --scopes usage:read');
  const gateway = gatewayFrom(options);
  const data = await withSpinner('creating the key', () =>
    graphqlRequest(
      gateway,
      `mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { ${KEY_FIELDS} } secret userErrors { field message code } } }`,
      { input: { name: options.name, scopes, ...(options.workspace ? { workspaceId: options.workspace } : {}) } },
    ),
  );
  const payload = checkPayload(data, 'createApiKey');
  const key = payload.apiKey;
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ ...keyRecord(key), secret: payload.secret }, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `created API key "${key.name}"\n` +
      `id:      ${key.id}\n` +
      `prefix:  ${key.prefix}\n` +
      `scopes:  ${key.scopes.join(', ')}\n` +
      `secret:  ${payload.secret}\n\n` +
      'Store the secret now: it is shown this once.\n',
  );
}

const shortTime = (value: unknown) => (typeof value === 'string' ? value.replace(/:\d{2}(\.\d+)?Z$/, 'Z') : cellText(value));

export const KEY_TABLE: TableSpec = {
  columns: ['id', 'name', 'prefix', 'scopes', 'created', 'last_used', 'revoked'],
  tableColumns: ['prefix', 'name', 'scopes', 'last_used', 'revoked'],
  whole: new Set(['id', 'prefix']),
  tableFormat: { created: shortTime, last_used: shortTime, revoked: shortTime },
};

/** Every key the calling key can see, page by page. */
async function listKeys(gateway: Gateway): Promise<ApiKeyFields[]> {
  const keys: ApiKeyFields[] = [];
  let after: string | null = null;
  do {
    const data = await graphqlRequest(
      gateway,
      `query ($after: String) { viewer { realm { apiKeys(first: 100, after: $after) { pageInfo { hasNextPage endCursor } edges { node { ${KEY_FIELDS} } } } } } }`,
      { after },
    );
    const connection = answerAt(data, ['viewer', 'realm', 'apiKeys'], isObject, 'API keys');
    const edges = answerAt(connection, ['edges'], isArray, 'API keys') as Array<{ node: ApiKeyFields }>;
    keys.push(...edges.map((edge) => edge.node));
    const pageInfo = connection.pageInfo as { hasNextPage?: boolean; endCursor?: string | null } | undefined;
    after = pageInfo?.hasNextPage && pageInfo.endCursor ? pageInfo.endCursor : null;
  } while (after);
  return keys;
}

export async function runList(options: GatewayOptions & TableOptions): Promise<void> {
  const columns = parseColumns(KEY_TABLE, options);
  const gateway = gatewayFrom(options);
  const keys = await withSpinner('fetching the API keys', () => listKeys(gateway));
  if (keys.length === 0) process.stderr.write('No API keys.\n');
  printRows(KEY_TABLE, columns, keys.map(keyRecord), options);
}

const PREFIX = /^ugw_[0-9a-f]{8}$/;

/** Revokes a key by its id or its prefix (`ugw_1a2b3c4d`, as keys:list shows it). */
export async function runRevoke(idOrPrefix: string, options: GatewayOptions & { json?: boolean }): Promise<void> {
  const gateway = gatewayFrom(options);
  const payload = await withSpinner('revoking the key', async () => {
    let id = idOrPrefix.trim();
    if (PREFIX.test(id)) {
      const match = (await listKeys(gateway)).find((key) => key.prefix === id);
      if (!match) throw badInput(`no API key with the prefix ${id} (see keys:list)`);
      id = match.id;
    }
    const data = await graphqlRequest(gateway, `mutation ($id: ID!) { revokeApiKey(id: $id) { apiKey { ${KEY_FIELDS} } secret userErrors { field message code } } }`, { id });
    return checkPayload(data, 'revokeApiKey');
  });
  const key = payload.apiKey;
  if (options.json) {
    process.stdout.write(`${JSON.stringify(keyRecord(key), null, 2)}\n`);
    return;
  }
  process.stdout.write(`revoked API key "${key.name}" (${key.prefix}, ${key.id})${key.revokedAt ? ` at ${key.revokedAt}` : ''}\n`);
}

const EXIT = `\n\nThe calling key needs the keys:manage scope.\n\n${EXIT_CODES_HELP}`;

export function registerKeys(program: Command): void {
  const create = program
    .command('keys:create')
    .summary('create an API key (prints its secret once)')
    .description(`Creates an API key in the calling key's realm and prints its id and its secret, once.${EXIT}`)
    .requiredOption('--name <name>', 'a name for the key')
    .requiredOption('--scopes <a,b>', 'comma-separated scopes: usage:read, usage:write, keys:manage, billing:read (at most the calling key\'s own)')
    .option('--workspace <id>', "scope the key to this workspace's subtree (a Workspace id)")
    .option('--json', 'print the key (with its secret) as JSON');
  addGatewayOptions(create)
    .addHelpText('after', '\nExample:\n  usage-gateway keys:create --name reporting --scopes usage:read')
    .action((options: CreateOptions) => runCreate(options));

  const list = program
    .command('keys:list')
    .summary('list the API keys')
    .description(
      `Lists the API keys the calling key can see (its realm, or its workspace subtree). Columns: ${KEY_TABLE.columns.join(', ')} ` +
        `(the table shows ${KEY_TABLE.tableColumns.join(', ')} unless --columns names others; --csv and --json have all).${EXIT}`,
    );
  addTableOptions(list, KEY_TABLE);
  addGatewayOptions(list)
    .addHelpText('after', '\nExamples:\n  usage-gateway keys:list\n  usage-gateway keys:list --columns id,name,scopes --no-truncate\n  usage-gateway keys:list --json')
    .action((options: GatewayOptions & TableOptions) => runList(options));

  const revoke = program
    .command('keys:revoke')
    .summary('revoke an API key')
    .description(`Revokes the API key with this id (printed by keys:create, or keys:list --columns id) or this prefix (ugw_…, as keys:list shows it); it fails from the very next request.${EXIT}`)
    .argument('<id-or-prefix>', "the key's id or prefix")
    .option('--json', 'print the revoked key as JSON');
  addGatewayOptions(revoke).action((id: string, options: GatewayOptions & { json?: boolean }) => runRevoke(id, options));
}

/**
 * `usage-gateway keys:create`, `keys:list` and `keys:revoke`: API keys through the gateway's GraphQL
 * mutations `createApiKey` / `revokeApiKey` and `realm { apiKeys }`. The calling key needs the
 * `keys:manage` scope.
 */
import type { Command } from 'commander';
import { addGatewayOptions, badInput, CliError, gatewayFrom, httpError, networkError, type Gateway, type GatewayOptions } from './client.js';
import { formatTable } from './usage.js';

interface GraphQLAnswer<T> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
}

/** One GraphQL request; a GraphQL error becomes a CliError with the server's message. */
export async function graphqlRequest<T>(gateway: Gateway, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const url = gateway.endpoint('/graphql');
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${gateway.key}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
  } catch (error) {
    throw networkError(error, url);
  }
  if (!response.ok) throw await httpError(response);
  let answer: GraphQLAnswer<T>;
  try {
    answer = (await response.json()) as GraphQLAnswer<T>;
  } catch {
    throw new CliError(`the gateway answered ${response.status} but not with JSON; is --url the gateway?`);
  }
  const error = answer.errors?.[0];
  if (error) throw new CliError(`${error.message}${error.extensions?.code ? ` (${error.extensions.code})` : ''}`);
  if (!answer.data) throw new CliError('the gateway answered without data');
  return answer.data;
}

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

function checkPayload(payload: KeyPayload): ApiKeyFields {
  const problem = payload.userErrors[0];
  if (problem) throw badInput(`${problem.message}${problem.field.length ? ` (${problem.field.join('.')}, ${problem.code})` : ` (${problem.code})`}`);
  if (!payload.apiKey) throw new CliError('the gateway answered without the key');
  return payload.apiKey;
}

interface CreateOptions extends GatewayOptions {
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
  const data = await graphqlRequest<{ createApiKey: KeyPayload }>(
    gateway,
    `mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { ${KEY_FIELDS} } secret userErrors { field message code } } }`,
    { input: { name: options.name, scopes, ...(options.workspace ? { workspaceId: options.workspace } : {}) } },
  );
  const key = checkPayload(data.createApiKey);
  process.stdout.write(
    `created API key "${key.name}"\n` +
      `id:      ${key.id}\n` +
      `prefix:  ${key.prefix}\n` +
      `scopes:  ${key.scopes.join(', ')}\n` +
      `secret:  ${data.createApiKey.secret}\n\n` +
      'Store the secret now: it is shown this once.\n',
  );
}

export async function runList(options: GatewayOptions & { header: boolean }): Promise<void> {
  const gateway = gatewayFrom(options);
  const data = await graphqlRequest<{ viewer: { realm: { apiKeys: { edges: Array<{ node: ApiKeyFields }> } } } }>(
    gateway,
    `{ viewer { realm { apiKeys(first: 100) { edges { node { ${KEY_FIELDS} } } } } } }`,
  );
  const keys = data.viewer.realm.apiKeys.edges.map((edge) => edge.node);
  const columns = ['id', 'name', 'prefix', 'scopes', 'created', 'last_used', 'revoked'];
  const rows = keys.map((k) => [k.id, k.name, k.prefix, k.scopes.join(','), k.createdAt, k.lastUsedAt ?? '', k.revokedAt ?? '']);
  process.stdout.write(formatTable(columns, rows, { header: options.header }));
}

export async function runRevoke(id: string, options: GatewayOptions): Promise<void> {
  const gateway = gatewayFrom(options);
  const data = await graphqlRequest<{ revokeApiKey: KeyPayload }>(
    gateway,
    `mutation ($id: ID!) { revokeApiKey(id: $id) { apiKey { ${KEY_FIELDS} } secret userErrors { field message code } } }`,
    { id },
  );
  const key = checkPayload(data.revokeApiKey);
  process.stdout.write(`revoked API key "${key.name}" (${key.prefix}, ${key.id})${key.revokedAt ? ` at ${key.revokedAt}` : ''}\n`);
}

const EXIT = '\n\nExit code 0 on success, 1 on an error. The calling key needs the keys:manage scope.';

export function registerKeys(program: Command): void {
  const create = program
    .command('keys:create')
    .summary('create an API key (prints its secret once)')
    .description(`Creates an API key in the calling key's realm and prints its secret, once.${EXIT}`)
    .requiredOption('--name <name>', 'a name for the key')
    .requiredOption('--scopes <a,b>', 'comma-separated scopes: usage:read, usage:write, keys:manage, billing:read (at most the calling key\'s own)')
    .option('--workspace <id>', "scope the key to this workspace's subtree (a Workspace id)");
  addGatewayOptions(create)
    .addHelpText('after', '\nExample:\n  usage-gateway keys:create --name reporting --scopes usage:read')
    .action((options: CreateOptions) => runCreate(options));

  const list = program
    .command('keys:list')
    .summary('list the API keys (first 100)')
    .description(`Lists the API keys the calling key can see (its realm, or its workspace subtree): id, name, prefix, scopes, created, last used, revoked.${EXIT}`)
    .option('--no-header', 'leave out the header line');
  addGatewayOptions(list).action((options: GatewayOptions & { header: boolean }) => runList(options));

  const revoke = program
    .command('keys:revoke')
    .summary('revoke an API key')
    .description(`Revokes the API key with this id (from keys:list); it fails from the very next request.${EXIT}`)
    .argument('<id>', 'the key\'s id');
  addGatewayOptions(revoke).action((id: string, options: GatewayOptions) => runRevoke(id, options));
}

/**
 * `usage-gateway realms:create`, `realms:list`, `realms:suspend` and `realms:resume`: realms through
 * the gateway's operator fields (`createRealm`, `realms`, `suspendRealm`, `resumeRealm`). The calling
 * key must be an operator's key (`usage-gateway operator:create-key`).
 */
import { Option, type Command } from 'commander';
import { SLUG_PATTERN } from '../admin/realms.js';
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

interface RealmFields {
  id: string;
  name: string;
  slug: string;
  tier: string;
  customRateLimit: number | null;
  timeZone: string;
  createdAt: string;
  suspendedAt: string | null;
}

interface UserErrorFields {
  field: string[];
  message: string;
  code: string;
}

const REALM_FIELDS = 'id name slug tier customRateLimit timeZone createdAt suspendedAt';
const TIERS = ['FREE', 'STARTER', 'PROFESSIONAL', 'ENTERPRISE'];

function checkUserErrors(payload: Record<string, unknown>): void {
  const errors = payload.userErrors as UserErrorFields[] | undefined;
  if (!Array.isArray(errors)) throw new CliError('the gateway answered without userErrors');
  const problem = errors[0];
  if (problem) throw badInput(`${problem.message}${problem.field.length ? ` (${problem.field.join('.')}, ${problem.code})` : ` (${problem.code})`}`);
}

/** The JSON of one realm (`--json`): the same names as the realms:list columns. */
function realmRecord(realm: RealmFields): Row {
  return {
    id: realm.id,
    name: realm.name,
    slug: realm.slug,
    tier: realm.tier,
    custom_rate_limit: realm.customRateLimit,
    time_zone: realm.timeZone,
    created: realm.createdAt,
    suspended: realm.suspendedAt,
  };
}

const shortTime = (value: unknown) => (typeof value === 'string' ? value.replace(/:\d{2}(\.\d+)?Z$/, 'Z') : cellText(value));

export const REALM_TABLE: TableSpec = {
  columns: ['id', 'name', 'slug', 'tier', 'custom_rate_limit', 'time_zone', 'created', 'suspended'],
  tableColumns: ['slug', 'name', 'tier', 'time_zone', 'suspended'],
  numeric: new Set(['custom_rate_limit']),
  whole: new Set(['id', 'slug']),
  tableFormat: { created: shortTime, suspended: shortTime },
};

interface CreateOptions extends GatewayOptions {
  name: string;
  slug: string;
  timeZone?: string;
  tier?: string;
  customRateLimit?: string;
  idempotencyKey?: string;
  json?: boolean;
}

export async function runCreate(options: CreateOptions): Promise<void> {
  let customRateLimit: number | undefined;
  if (options.customRateLimit !== undefined) {
    if (!/^\d{1,7}$/.test(options.customRateLimit)) throw badInput(`--custom-rate-limit must be a whole number of requests per minute (got "${options.customRateLimit}")`);
    customRateLimit = Number(options.customRateLimit);
  }
  const gateway = gatewayFrom(options);
  const input = {
    name: options.name,
    slug: options.slug,
    ...(options.timeZone ? { timeZone: options.timeZone } : {}),
    ...(options.tier ? { tier: options.tier } : {}),
    ...(customRateLimit !== undefined ? { customRateLimit } : {}),
    ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
  };
  const data = await withSpinner('creating the realm', () =>
    graphqlRequest(
      gateway,
      `mutation ($input: CreateRealmInput!) { createRealm(input: $input) { realm { ${REALM_FIELDS} } adminKey { id prefix scopes } adminKeySecret userErrors { field message code } } }`,
      { input },
    ),
  );
  const payload = answerAt(data, ['createRealm'], isObject, 'payload');
  checkUserErrors(payload);
  const realm = payload.realm as RealmFields | null;
  const adminKey = payload.adminKey as { id: string; prefix: string; scopes: string[] } | null;
  if (!realm || !adminKey) throw new CliError('the gateway answered without the realm');
  const secret = payload.adminKeySecret as string | null;
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ ...realmRecord(realm), admin_key: { id: adminKey.id, prefix: adminKey.prefix, scopes: adminKey.scopes, secret } }, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `created realm "${realm.name}" (${realm.slug})\n` +
      `id:         ${realm.id}\n` +
      `tier:       ${realm.tier}${realm.customRateLimit != null ? ` (${realm.customRateLimit} requests per minute)` : ''}\n` +
      `time zone:  ${realm.timeZone}\n` +
      `admin key:  ${adminKey.prefix} (${adminKey.scopes.join(', ')})\n` +
      (secret
        ? `secret:     ${secret}\n\nStore the admin key's secret now: it is shown this once. Hand it to the realm's administrator.\n`
        : '\nThis idempotency key was used before: this is the realm it created. The admin key\'s secret was shown that first time only.\n'),
  );
}

interface Filter {
  suspended?: boolean;
  active?: boolean;
}

/** Every realm the operator can see (all of them), page by page. */
async function listRealms(gateway: Gateway, suspended: boolean | null): Promise<RealmFields[]> {
  const realms: RealmFields[] = [];
  let after: string | null = null;
  do {
    const data = await graphqlRequest(
      gateway,
      `query ($after: String, $filter: RealmsFilter) { realms(first: 100, after: $after, filter: $filter) { pageInfo { hasNextPage endCursor } edges { node { ${REALM_FIELDS} } } } }`,
      { after, filter: suspended === null ? null : { suspended } },
    );
    const connection = answerAt(data, ['realms'], isObject, 'realms');
    const edges = answerAt(connection, ['edges'], isArray, 'realms') as Array<{ node: RealmFields }>;
    realms.push(...edges.map((edge) => edge.node));
    const pageInfo = connection.pageInfo as { hasNextPage?: boolean; endCursor?: string | null } | undefined;
    after = pageInfo?.hasNextPage && pageInfo.endCursor ? pageInfo.endCursor : null;
  } while (after);
  return realms;
}

export async function runList(options: GatewayOptions & TableOptions & Filter): Promise<void> {
  if (options.suspended && options.active) throw badInput('give --suspended or --active, not both');
  const columns = parseColumns(REALM_TABLE, options);
  const gateway = gatewayFrom(options);
  const suspended = options.suspended ? true : options.active ? false : null;
  const realms = await withSpinner('fetching the realms', () => listRealms(gateway, suspended));
  if (realms.length === 0) process.stderr.write('No realms.\n');
  printRows(REALM_TABLE, columns, realms.map(realmRecord), options);
}

/** Suspends or resumes a realm given by its id or its slug. */
async function runSetSuspended(idOrSlug: string, suspended: boolean, options: GatewayOptions & { json?: boolean }): Promise<void> {
  const gateway = gatewayFrom(options);
  const field = suspended ? 'suspendRealm' : 'resumeRealm';
  const realm = await withSpinner(suspended ? 'suspending the realm' : 'resuming the realm', async () => {
    let id = idOrSlug.trim();
    if (SLUG_PATTERN.test(id)) {
      const match = (await listRealms(gateway, null)).find((r) => r.slug === id);
      if (!match) throw badInput(`no realm with the slug ${id} (see realms:list)`);
      id = match.id;
    }
    const data = await graphqlRequest(gateway, `mutation ($id: ID!) { ${field}(id: $id) { realm { ${REALM_FIELDS} } userErrors { field message code } } }`, { id });
    const payload = answerAt(data, [field], isObject, 'payload');
    checkUserErrors(payload);
    if (!payload.realm) throw new CliError('the gateway answered without the realm');
    return payload.realm as RealmFields;
  });
  if (options.json) {
    process.stdout.write(`${JSON.stringify(realmRecord(realm), null, 2)}\n`);
    return;
  }
  process.stdout.write(
    suspended
      ? `suspended realm "${realm.name}" (${realm.slug}, ${realm.id}) since ${realm.suspendedAt}: its keys are refused (403 REALM_SUSPENDED); nothing was deleted\n`
      : `resumed realm "${realm.name}" (${realm.slug}, ${realm.id}): its keys work again\n`,
  );
}

const EXIT = `\n\nThe calling key must be an operator's key (see operator:create-key).\n\n${EXIT_CODES_HELP}`;

export function registerRealms(program: Command): void {
  const create = program
    .command('realms:create')
    .summary("create a realm and its admin key (prints the key's secret once)")
    .description(`Creates a realm and its first realm-wide admin key (every scope), and prints the key's secret, once.${EXIT}`)
    .requiredOption('--name <name>', "the realm's name")
    .requiredOption('--slug <slug>', 'its permanent handle: 3 to 63 lowercase letters, digits and hyphens')
    .option('--time-zone <zone>', 'IANA time zone usage aligns to (default UTC)')
    .addOption(new Option('--tier <tier>', 'the rate-limit tier (default FREE)').choices(TIERS))
    .option('--custom-rate-limit <n>', 'requests per minute (ENTERPRISE only)')
    .option('--idempotency-key <key>', 'makes a retry safe: the same key and input again answers the same realm')
    .option('--json', 'print the realm and its admin key (with its secret) as JSON');
  addGatewayOptions(create)
    .addHelpText('after', '\nExample:\n  usage-gateway realms:create --name "Globex" --slug globex --time-zone America/New_York --tier STARTER')
    .action((options: CreateOptions) => runCreate(options));

  const list = program
    .command('realms:list')
    .summary('list the realms')
    .description(
      `Lists every realm. Columns: ${REALM_TABLE.columns.join(', ')} (the table shows ${REALM_TABLE.tableColumns.join(', ')} unless --columns names others; --csv and --json have all).${EXIT}`,
    )
    .option('--suspended', 'only suspended realms')
    .option('--active', 'only realms that are not suspended');
  addTableOptions(list, REALM_TABLE);
  addGatewayOptions(list)
    .addHelpText('after', '\nExamples:\n  usage-gateway realms:list\n  usage-gateway realms:list --suspended --json')
    .action((options: GatewayOptions & TableOptions & Filter) => runList(options));

  for (const [name, suspended] of [
    ['realms:suspend', true],
    ['realms:resume', false],
  ] as const) {
    const command = program
      .command(name)
      .summary(suspended ? 'suspend a realm (its keys are refused; nothing is deleted)' : 'resume a suspended realm')
      .description(
        (suspended
          ? "Suspends the realm with this id or slug: its keys get 403 REALM_SUSPENDED on every route until it is resumed. Nothing is deleted."
          : 'Resumes the suspended realm with this id or slug: its keys work again.') + EXIT,
      )
      .argument('<id-or-slug>', "the realm's id or slug")
      .option('--json', 'print the realm as JSON');
    addGatewayOptions(command).action((idOrSlug: string, options: GatewayOptions & { json?: boolean }) => runSetSuspended(idOrSlug, suspended, options));
  }
}

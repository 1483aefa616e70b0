/**
 * `usage-gateway features:create|list` and `contracts:create|amend|list`: the realm's meters and its
 * contracts through the gateway's GraphQL mutations (createFeature, createContract, amendContract)
 * and `realm { features, contracts }`. Features need `admin:write`, contracts `billing:write`
 * (and `billing:read` to read them back), both on a realm-wide key.
 */
import type { Command } from 'commander';
import {
  addGatewayOptions,
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
const shortTime = (value: unknown) => (typeof value === 'string' ? value.replace(/:\d{2}(\.\d+)?Z$/, 'Z') : cellText(value));

/** Every node of a connection under `viewer.realm`, page by page. */
async function allNodes<T>(gateway: Gateway, connection: string, args: string, fields: string, pageSize = 100): Promise<T[]> {
  const nodes: T[] = [];
  let after: string | null = null;
  do {
    const data = await graphqlRequest(
      gateway,
      `query ($after: String) { viewer { realm { ${connection}(first: ${pageSize}, after: $after${args}) { pageInfo { hasNextPage endCursor } edges { node { ${fields} } } } } } }`,
      { after },
    );
    const page = answerAt(data, ['viewer', 'realm', connection], isObject, connection);
    const edges = answerAt(page, ['edges'], isArray, connection) as Array<{ node: T }>;
    nodes.push(...edges.map((edge) => edge.node));
    const pageInfo = page.pageInfo as { hasNextPage?: boolean; endCursor?: string | null } | undefined;
    after = pageInfo?.hasNextPage && pageInfo.endCursor ? pageInfo.endCursor : null;
  } while (after);
  return nodes;
}

// ─── Features ───────────────────────────────────────────────────────────────────────────────────

interface FeatureFields {
  id: string;
  key: string;
  name: string;
  service: string;
  unit: string;
  aggregation: string;
  arrivalDelaySeconds: number;
  createdAt: string;
  archivedAt: string | null;
}

const FEATURE_FIELDS = 'id key name service unit aggregation arrivalDelaySeconds createdAt archivedAt';
const UNITS = ['TRANSACTION', 'GB_MONTH', 'GB', 'ROW', 'REQUEST', 'DYNO_UNIT', 'SPACE', 'CREDIT'];
const AGGREGATIONS = ['SUM', 'COUNT', 'MAX', 'UNIQUE_COUNT', 'LATEST'];

function featureRecord(f: FeatureFields): Row {
  return { id: f.id, key: f.key, name: f.name, service: f.service, unit: f.unit, aggregation: f.aggregation, arrival_delay_s: f.arrivalDelaySeconds, created: f.createdAt, archived: f.archivedAt };
}

export const FEATURE_TABLE: TableSpec = {
  columns: ['id', 'key', 'name', 'service', 'unit', 'aggregation', 'arrival_delay_s', 'created', 'archived'],
  tableColumns: ['key', 'name', 'service', 'unit', 'aggregation', 'arrival_delay_s', 'archived'],
  numeric: new Set(['arrival_delay_s']),
  whole: new Set(['id', 'key']),
  tableFormat: { created: shortTime, archived: shortTime },
};

function choice(value: string, allowed: readonly string[], option: string): string {
  const upper = value.trim().toUpperCase();
  if (!allowed.includes(upper)) throw badInput(`${option} is one of ${allowed.join(', ')} (got "${value}")`);
  return upper;
}

function wholeNumber(value: string, option: string): number {
  if (!/^\d+$/.test(value.trim())) throw badInput(`${option} is a whole number of seconds (got "${value}")`);
  return Number(value);
}

interface FeatureCreateOptions extends GatewayOptions {
  name: string;
  service: string;
  unit: string;
  aggregation: string;
  arrivalDelay?: string;
  idempotencyKey?: string;
  json?: boolean;
}

export async function runFeatureCreate(featureKey: string, options: FeatureCreateOptions): Promise<void> {
  const input = {
    key: featureKey,
    name: options.name,
    service: options.service,
    unit: choice(options.unit, UNITS, '--unit'),
    aggregation: choice(options.aggregation, AGGREGATIONS, '--aggregation'),
    ...(options.arrivalDelay !== undefined ? { arrivalDelaySeconds: wholeNumber(options.arrivalDelay, '--arrival-delay') } : {}),
    ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
  };
  const gateway = gatewayFrom(options);
  const data = await withSpinner('creating the feature', () =>
    graphqlRequest(gateway, `mutation ($input: CreateFeatureInput!) { createFeature(input: $input) { feature { ${FEATURE_FIELDS} } ${ERRORS} } }`, { input }),
  );
  const feature = payloadObject<FeatureFields>(data, 'createFeature', 'feature');
  if (options.json) return printJson(featureRecord(feature));
  process.stdout.write(`created feature "${feature.key}" (${feature.name}): ${feature.unit}, ${feature.aggregation}, arrival delay ${feature.arrivalDelaySeconds} s\nid: ${feature.id}\n`);
}

export async function runFeatureList(options: GatewayOptions & TableOptions & { includeArchived?: boolean }): Promise<void> {
  const columns = parseColumns(FEATURE_TABLE, options);
  const gateway = gatewayFrom(options);
  const features = await withSpinner('fetching the features', () =>
    allNodes<FeatureFields>(gateway, 'features', options.includeArchived ? ', includeArchived: true' : '', FEATURE_FIELDS),
  );
  if (features.length === 0) process.stderr.write('No features.\n');
  printRows(FEATURE_TABLE, columns, features.map(featureRecord), options);
}

// ─── Contracts ──────────────────────────────────────────────────────────────────────────────────

interface LicenseFields {
  id: string;
  quantityPerMonth: string;
  startsAt: string;
  endsAt: string;
  feature: { id: string; key: string };
}

interface ContractFields {
  id: string;
  name: string;
  startsAt: string;
  endsAt: string;
  licenses: { edges: Array<{ node: LicenseFields }> };
}

const CONTRACT_FIELDS = 'id name startsAt endsAt licenses(first: 40) { edges { node { id quantityPerMonth startsAt endsAt feature { id key } } } }';

function contractRecord(c: ContractFields): Row {
  const licenses = c.licenses.edges.map(({ node }) => ({ feature: node.feature.key, quantity_per_month: node.quantityPerMonth, starts: node.startsAt, ends: node.endsAt, id: node.id }));
  return { id: c.id, name: c.name, starts: c.startsAt, ends: c.endsAt, licenses };
}

export const CONTRACT_TABLE: TableSpec = {
  columns: ['id', 'name', 'starts', 'ends', 'licenses'],
  tableColumns: ['name', 'starts', 'ends', 'licenses'],
  whole: new Set(['id']),
  tableFormat: {
    starts: shortTime,
    ends: shortTime,
    licenses: (value) => (Array.isArray(value) ? value.map((l: Row) => `${cellText(l.feature)}=${cellText(l.quantity_per_month)}`).join(', ') : cellText(value)),
  },
};

function instant(value: string, option: string): string {
  const date = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(date.getTime())) throw badInput(`${option} is an ISO 8601 date or instant, e.g. 2026-01-01T00:00:00Z (got "${value}")`);
  return date.toISOString();
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `--license tx=1000` or `--license tx=1000@2026-03-16T00:00:00Z`: a feature key (or id), a quantity, for amendments a date. */
function parseLicense(value: string, withDate: boolean): { feature: string; quantityPerMonth: string; effectiveFrom?: string } {
  const match = /^([^=]+)=([0-9]+(?:\.[0-9]+)?)(?:@(.+))?$/.exec(value.trim());
  if (!match || (withDate && !match[3]) || (!withDate && match[3])) {
    throw badInput(`--license is ${withDate ? '<feature>=<quantity>@<effective-from>' : '<feature>=<quantity>'} (feature key or id; got "${value}")`);
  }
  return { feature: match[1]!.trim(), quantityPerMonth: match[2]!, ...(match[3] ? { effectiveFrom: instant(match[3], '--license date') } : {}) };
}

/** Feature keys → ids (ids given as ids pass through), with one listing of the realm's features. */
async function featureIds(gateway: Gateway, names: string[]): Promise<Map<string, string>> {
  if (!names.length) return new Map();
  const features = await allNodes<{ id: string; key: string }>(gateway, 'features', ', includeArchived: true', 'id key');
  const byKey = new Map(features.map((f) => [f.key, f.id]));
  const ids = new Set(features.map((f) => f.id));
  return new Map(
    names.map((name) => {
      const id = byKey.get(name) ?? (ids.has(name) ? name : undefined);
      if (!id) throw badInput(`no feature "${name}" in the realm (see features:list)`);
      return [name, id];
    }),
  );
}

function printContract(contract: ContractFields, verb: string, json?: boolean): void {
  const record = contractRecord(contract);
  if (json) return printJson(record);
  const lines = (record.licenses as Row[]).map((l) => `  ${cellText(l.feature)}: ${cellText(l.quantity_per_month)} per month from ${cellText(l.starts)} to ${cellText(l.ends)}`);
  process.stdout.write(`${verb} contract "${contract.name}" (${contract.startsAt} to ${contract.endsAt})\nid: ${contract.id}\n${lines.length ? `licenses:\n${lines.join('\n')}\n` : 'no licenses\n'}`);
}

interface ContractCreateOptions extends GatewayOptions {
  name: string;
  starts: string;
  ends: string;
  license?: string[];
  idempotencyKey?: string;
  json?: boolean;
}

export async function runContractCreate(options: ContractCreateOptions): Promise<void> {
  const startsAt = instant(options.starts, '--starts');
  const endsAt = instant(options.ends, '--ends');
  const licenses = (options.license ?? []).map((l) => parseLicense(l, false));
  const gateway = gatewayFrom(options);
  const contract = await withSpinner('creating the contract', async () => {
    const ids = await featureIds(gateway, licenses.map((l) => l.feature));
    const input = {
      name: options.name,
      startsAt,
      endsAt,
      licenses: licenses.map((l) => ({ featureId: ids.get(l.feature)!, quantityPerMonth: l.quantityPerMonth })),
      ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
    };
    const data = await graphqlRequest(gateway, `mutation ($input: CreateContractInput!) { createContract(input: $input) { contract { ${CONTRACT_FIELDS} } ${ERRORS} } }`, { input });
    return payloadObject<ContractFields>(data, 'createContract', 'contract');
  });
  printContract(contract, 'created', options.json);
}

interface ContractAmendOptions extends GatewayOptions {
  ends?: string;
  license?: string[];
  json?: boolean;
}

export async function runContractAmend(id: string, options: ContractAmendOptions): Promise<void> {
  const endsAt = options.ends === undefined ? undefined : instant(options.ends, '--ends');
  const licenses = (options.license ?? []).map((l) => parseLicense(l, true));
  if (endsAt === undefined && !licenses.length) throw badInput('give --ends or at least one --license: there is nothing to amend');
  const gateway = gatewayFrom(options);
  const contract = await withSpinner('amending the contract', async () => {
    const ids = await featureIds(gateway, licenses.map((l) => l.feature));
    const input = {
      id,
      ...(endsAt ? { endsAt } : {}),
      licenses: licenses.map((l) => ({ featureId: ids.get(l.feature)!, quantityPerMonth: l.quantityPerMonth, effectiveFrom: l.effectiveFrom })),
    };
    const data = await graphqlRequest(gateway, `mutation ($input: AmendContractInput!) { amendContract(input: $input) { contract { ${CONTRACT_FIELDS} } ${ERRORS} } }`, { input });
    return payloadObject<ContractFields>(data, 'amendContract', 'contract');
  });
  printContract(contract, 'amended', options.json);
}

export async function runContractList(options: GatewayOptions & TableOptions): Promise<void> {
  const columns = parseColumns(CONTRACT_TABLE, options);
  const gateway = gatewayFrom(options);
  const contracts = await withSpinner('fetching the contracts', () => allNodes<ContractFields>(gateway, 'contracts', '', CONTRACT_FIELDS, 10));
  if (contracts.length === 0) process.stderr.write('No contracts.\n');
  const rows = contracts.map(contractRecord);
  // CSV has no nested values: there the licenses are `key=quantity@start..end` joined by commas.
  const flat = options.csv ? rows.map((r) => ({ ...r, licenses: (r.licenses as Row[]).map((l) => `${cellText(l.feature)}=${cellText(l.quantity_per_month)}@${cellText(l.starts)}..${cellText(l.ends)}`) })) : rows;
  printRows(CONTRACT_TABLE, columns, flat, options);
}

// ─── Registration ───────────────────────────────────────────────────────────────────────────────

const FEATURE_EXIT = `\n\nThe calling key needs the admin:write scope on a realm-wide key (features:list needs any key of the realm).\n\n${EXIT_CODES_HELP}`;
const CONTRACT_EXIT = `\n\nThe calling key needs billing:write and billing:read on a realm-wide key.\n\n${EXIT_CODES_HELP}`;

export function registerCatalogBilling(program: Command): void {
  const featureCreate = program
    .command('features:create')
    .summary('register a meter (feature)')
    .description(`Registers a feature in the calling key's realm. Its key is what ingestion names it: a lower-case letter, then up to 62 of a-z 0-9 _ . - (unique in the realm, never changed).${FEATURE_EXIT}`)
    .argument('<feature-key>', 'the feature key, e.g. maps.tiles')
    .requiredOption('--name <name>', 'a display name')
    .requiredOption('--service <service>', 'the product family, e.g. maps')
    .requiredOption('--unit <unit>', `one of ${UNITS.join(', ')}`)
    .requiredOption('--aggregation <aggregation>', `one of ${AGGREGATIONS.join(', ')}`)
    .option('--arrival-delay <seconds>', 'how late usage may arrive (0 to 2592000; default 7200)')
    .option('--idempotency-key <key>', 'retrying with the same key and input creates nothing new')
    .option('--json', 'print the feature as JSON');
  addGatewayOptions(featureCreate)
    .addHelpText('after', '\nExample:\n  usage-gateway features:create maps.tiles --name "Map tiles" --service maps --unit REQUEST --aggregation COUNT')
    .action((featureKey: string, options: FeatureCreateOptions) => runFeatureCreate(featureKey, options));

  const featureList = program
    .command('features:list')
    .summary('list the features (meters)')
    .description(`Lists the realm's features by key. Columns: ${FEATURE_TABLE.columns.join(', ')}.${FEATURE_EXIT}`)
    .option('--include-archived', 'list archived features too');
  addTableOptions(featureList, FEATURE_TABLE);
  addGatewayOptions(featureList).action((options: GatewayOptions & TableOptions & { includeArchived?: boolean }) => runFeatureList(options));

  const contractCreate = program
    .command('contracts:create')
    .summary('create a contract with its licenses')
    .description(`Creates a contract; contracts of a realm do not overlap.${CONTRACT_EXIT}`)
    .requiredOption('--name <name>', 'a name for the contract')
    .requiredOption('--starts <instant>', 'its start, e.g. 2026-01-01T00:00:00Z')
    .requiredOption('--ends <instant>', 'its end (exclusive)')
    .option('--license <feature=quantity>', 'a licensed quantity per month of a feature (key or id); repeat for more', collect)
    .option('--idempotency-key <key>', 'retrying with the same key and input creates nothing new')
    .option('--json', 'print the contract as JSON');
  addGatewayOptions(contractCreate)
    .addHelpText('after', '\nExample:\n  usage-gateway contracts:create --name "2026" --starts 2026-01-01T00:00:00Z --ends 2027-01-01T00:00:00Z --license maps.tiles=100000')
    .action((options: ContractCreateOptions) => runContractCreate(options));

  const contractAmend = program
    .command('contracts:amend')
    .summary("amend a contract's end date or quantities")
    .description(`Changes a contract's end date, and products' quantities from a date (earlier months stay as billed).${CONTRACT_EXIT}`)
    .argument('<contract-id>', 'the contract (an id from contracts:list --columns id)')
    .option('--ends <instant>', 'a new end (exclusive)')
    .option('--license <feature=quantity@from>', 'a new quantity per month from an instant, e.g. maps.tiles=200000@2026-07-01T00:00:00Z; repeat for more', collect)
    .option('--json', 'print the contract as JSON');
  addGatewayOptions(contractAmend).action((id: string, options: ContractAmendOptions) => runContractAmend(id, options));

  const contractList = program
    .command('contracts:list')
    .summary('list the contracts')
    .description(`Lists the realm's contracts by start, with their license rows (the first 40 of each). Columns: ${CONTRACT_TABLE.columns.join(', ')}.${CONTRACT_EXIT}`);
  addTableOptions(contractList, CONTRACT_TABLE);
  addGatewayOptions(contractList).action((options: GatewayOptions & TableOptions) => runContractList(options));
}

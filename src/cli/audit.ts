/**
 * `usage-gateway audit:list`: the audit log through `Realm.auditLog` (a realm-wide key with
 * `admin:write` or `keys:manage`: the key's realm) or `Query.auditLog` (an operator's key: every realm).
 */
import type { Command } from 'commander';
import { addGatewayOptions, answerAt, badInput, EXIT_CODES_HELP, gatewayFrom, graphqlRequest, isArray, isObject, withSpinner, type Gateway, type GatewayOptions } from './client.js';
import { addTableOptions, cellText, parseColumns, printRows, type Row, type TableOptions, type TableSpec } from './table.js';

interface AuditEntryFields {
  id: string;
  createdAt: string;
  action: string;
  actorType: string;
  actorKeyPrefix: string | null;
  targetType: string;
  targetId: string | null;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  requestId: string | null;
}

const ENTRY_FIELDS = 'id createdAt action actorType actorKeyPrefix targetType targetId before after requestId';
export const MAX_AUDIT_ENTRIES = 1000;
const PAGE_SIZE = 100;

export const AUDIT_TABLE: TableSpec = {
  columns: ['id', 'at', 'action', 'actor', 'key', 'target_type', 'target_id', 'before', 'after', 'request_id'],
  tableColumns: ['at', 'action', 'actor', 'key', 'target_type', 'after'],
  numeric: new Set(['id']),
  whole: new Set(['target_id', 'request_id']),
  tableFormat: { at: (value) => (typeof value === 'string' ? value.replace(/\.\d+Z$/, 'Z') : cellText(value)) },
};

function entryRecord(entry: AuditEntryFields): Row {
  return {
    id: entry.id,
    at: entry.createdAt,
    action: entry.action,
    actor: entry.actorType,
    key: entry.actorKeyPrefix,
    target_type: entry.targetType,
    target_id: entry.targetId,
    before: entry.before as never,
    after: entry.after as never,
    request_id: entry.requestId,
  };
}

interface ListOptions extends GatewayOptions, TableOptions {
  action?: string[];
  target?: string;
  since?: string;
  limit: string;
  allRealms?: boolean;
}

async function fetchEntries(gateway: Gateway, filter: Record<string, unknown>, limit: number, operator: boolean): Promise<AuditEntryFields[]> {
  const entries: AuditEntryFields[] = [];
  let after: string | null = null;
  const path = operator ? ['auditLog'] : ['viewer', 'realm', 'auditLog'];
  const field = `auditLog(first: $first, after: $after, filter: $filter) { pageInfo { hasNextPage endCursor } edges { node { ${ENTRY_FIELDS} } } }`;
  const query = operator
    ? `query ($first: Int!, $after: String, $filter: AuditLogFilter) { ${field} }`
    : `query ($first: Int!, $after: String, $filter: AuditLogFilter) { viewer { realm { ${field} } } }`;
  do {
    const data = await graphqlRequest(gateway, query, { first: Math.min(PAGE_SIZE, limit - entries.length), after, filter });
    const connection = answerAt(data, path, isObject, 'audit log');
    const edges = answerAt(connection, ['edges'], isArray, 'audit log') as Array<{ node: AuditEntryFields }>;
    entries.push(...edges.map((edge) => edge.node));
    const pageInfo = connection.pageInfo as { hasNextPage?: boolean; endCursor?: string | null } | undefined;
    after = pageInfo?.hasNextPage && pageInfo.endCursor && entries.length < limit ? pageInfo.endCursor : null;
  } while (after);
  return entries;
}

export async function runList(options: ListOptions): Promise<void> {
  const columns = parseColumns(AUDIT_TABLE, options);
  if (!/^\d{1,4}$/.test(options.limit) || Number(options.limit) < 1 || Number(options.limit) > MAX_AUDIT_ENTRIES) {
    throw badInput(`--limit must be a whole number from 1 to ${MAX_AUDIT_ENTRIES} (got "${options.limit}")`);
  }
  if (options.since !== undefined && Number.isNaN(Date.parse(options.since))) throw badInput(`--since must be an ISO 8601 instant, e.g. 2026-12-01T00:00:00Z (got "${options.since}")`);
  const filter = {
    ...(options.action?.length ? { actions: options.action } : {}),
    ...(options.target ? { targetId: options.target } : {}),
    ...(options.since ? { since: new Date(options.since).toISOString() } : {}),
  };
  const gateway = gatewayFrom(options);
  const entries = await withSpinner('fetching the audit log', () => fetchEntries(gateway, filter, Number(options.limit), !!options.allRealms));
  if (entries.length === 0) process.stderr.write('No audit entries.\n');
  printRows(AUDIT_TABLE, columns, entries.map(entryRecord), options);
}

export function registerAudit(program: Command): void {
  const list = program
    .command('audit:list')
    .summary('list the audit log (newest first)')
    .description(
      'Lists administrative changes, newest first: who (key prefix), what (action), which node, the changed fields before and after, ' +
        "when, and the request id. A realm-wide key with admin:write or keys:manage sees its realm's log; an operator's key with " +
        `--all-realms sees every realm's. Columns: ${AUDIT_TABLE.columns.join(', ')}.\n\n${EXIT_CODES_HELP}`,
    )
    .option('--action <action...>', 'only these actions, e.g. workspace.move apiKey.revoke')
    .option('--target <id>', 'only changes of this node (its global id)')
    .option('--since <instant>', 'only changes at or after this ISO 8601 instant')
    .option('--limit <n>', `at most this many entries (1 to ${MAX_AUDIT_ENTRIES})`, '100')
    .option('--all-realms', "every realm's log (an operator's key)");
  addTableOptions(list, AUDIT_TABLE);
  addGatewayOptions(list)
    .addHelpText('after', '\nExamples:\n  usage-gateway audit:list --action workspace.move --since 2026-12-01T00:00:00Z\n  usage-gateway audit:list --all-realms --json')
    .action((options: ListOptions) => runList(options));
}

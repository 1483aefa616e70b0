/**
 * `usage-gateway usage:monthly` and `usage:daily`: fetch the gateway's CSV usage exports
 * (`GET /exports/usage/monthly.csv`, `/exports/usage/daily.csv`) and format them locally: an aligned
 * table by default, CSV with `--csv`; columns, filters and sorting are applied here.
 */
import { parse } from 'csv-parse/sync';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { closest, distance } from 'fastest-levenshtein';
import {
  addGatewayOptions,
  allNodes,
  badInput,
  EXIT_CODES_HELP,
  gatewayFrom,
  httpError,
  networkError,
  notTheGateway,
  withSpinner,
  type Gateway,
  type GatewayOptions,
} from './client.js';
import { addTableOptions, parseColumns, printRows, splitList, unknownColumns, type TableOptions, type TableSpec } from './table.js';

export type UsageKind = 'monthly' | 'daily';

const NUMERIC_COLUMNS = new Set(['quantity']);

/** The export's columns (see src/exports/usage-export.ts); the first is `month` or `date`. The table leaves out the ids. */
export const USAGE_TABLES: Record<UsageKind, TableSpec> = {
  monthly: {
    columns: ['month', 'team_id', 'team', 'app_id', 'app', 'product', 'unit', 'quantity'],
    tableColumns: ['month', 'team', 'app', 'product', 'unit', 'quantity'],
    numeric: NUMERIC_COLUMNS,
    whole: new Set(['team_id', 'app_id']),
  },
  daily: {
    columns: ['date', 'team_id', 'team', 'app_id', 'app', 'product', 'unit', 'quantity'],
    tableColumns: ['date', 'team', 'app', 'product', 'unit', 'quantity'],
    numeric: NUMERIC_COLUMNS,
    whole: new Set(['team_id', 'app_id']),
  },
};
export const USAGE_COLUMNS: Record<UsageKind, readonly string[]> = { monthly: USAGE_TABLES.monthly.columns, daily: USAGE_TABLES.daily.columns };

interface UsageOptions extends GatewayOptions, TableOptions {
  team?: string;
  filter?: string[];
  sort?: string;
  startDate?: string;
  endDate?: string;
  month?: string;
  months?: number;
  days?: number;
}

type Row = Record<string, string>;

export interface SortKey {
  column: string;
  descending: boolean;
}

export function parseSort(kind: UsageKind, raw: string | undefined): SortKey[] {
  if (raw === undefined) return [];
  const keys = splitList(raw).map((part) => {
    const descending = part.startsWith('-') || part.startsWith('−');
    return { column: descending ? part.slice(1) : part.replace(/^\+/, ''), descending };
  });
  if (keys.length === 0) throw badInput('--sort needs at least one column, e.g. --sort -quantity,team');
  const unknown = keys.filter((k) => !USAGE_COLUMNS[kind].includes(k.column)).map((k) => k.column);
  if (unknown.length) unknownColumns(USAGE_TABLES[kind], unknown, unknown.length > 1 ? 'sort fields' : 'sort field');
  return keys;
}

export interface Filter {
  column: string;
  value: string;
}

export function parseFilters(kind: UsageKind, raw: string[]): Filter[] {
  return raw.map((entry) => {
    const at = entry.indexOf('=');
    if (at <= 0) throw badInput(`--filter "${entry}" must be name=value, e.g. --filter team=sales`);
    const column = entry.slice(0, at).trim();
    if (!USAGE_COLUMNS[kind].includes(column)) unknownColumns(USAGE_TABLES[kind], [column], 'filter field');
    return { column, value: entry.slice(at + 1) };
  });
}

/** Compares two decimal strings exactly (no floating point). */
export function compareDecimals(a: string, b: string): number {
  const split = (s: string) => {
    const negative = s.startsWith('-');
    const [int = '0', frac = ''] = s.replace(/^[-+]/, '').split('.');
    return { negative, int: int.replace(/^0+(?=\d)/, ''), frac: frac.replace(/0+$/, '') };
  };
  const x = split(a.trim() || '0');
  const y = split(b.trim() || '0');
  const zero = (n: { int: string; frac: string }) => /^0*$/.test(n.int) && n.frac === '';
  const xNeg = x.negative && !zero(x);
  const yNeg = y.negative && !zero(y);
  if (xNeg !== yNeg) return xNeg ? -1 : 1;
  let magnitude = x.int.length - y.int.length || (x.int < y.int ? -1 : x.int > y.int ? 1 : 0);
  if (magnitude === 0) {
    const width = Math.max(x.frac.length, y.frac.length);
    const fx = x.frac.padEnd(width, '0');
    const fy = y.frac.padEnd(width, '0');
    magnitude = fx < fy ? -1 : fx > fy ? 1 : 0;
  }
  return xNeg ? -magnitude : magnitude;
}

export function sortRows(rows: Row[], keys: SortKey[]): Row[] {
  if (keys.length === 0) return rows;
  return [...rows].sort((a, b) => {
    for (const key of keys) {
      const x = a[key.column] ?? '';
      const y = b[key.column] ?? '';
      const order = NUMERIC_COLUMNS.has(key.column) ? compareDecimals(x, y) : x.localeCompare(y, 'en', { sensitivity: 'base', numeric: true });
      if (order !== 0) return key.descending ? -order : order;
    }
    return 0;
  });
}

/** Rows of these teams (workspace ids; undefined: every team) that match every filter. */
export function filterRows(rows: Row[], filters: Filter[], teamIds?: ReadonlySet<string>): Row[] {
  return rows.filter(
    (row) => (!teamIds || teamIds.has(row.team_id ?? '')) && filters.every((f) => (row[f.column] ?? '').toLowerCase().includes(f.value.toLowerCase())),
  );
}

export interface Team {
  id: string;
  name: string;
}

/**
 * The workspaces `--team` names (by name, case-insensitively, or by id); an unknown team is an
 * error that lists the closest names, so a typo is not mistaken for a team without usage.
 */
export function matchTeam(wanted: string, teams: Team[]): Team[] {
  const name = wanted.trim().toLowerCase();
  const matches = teams.filter((team) => team.id === wanted.trim() || team.name.toLowerCase() === name);
  if (matches.length > 0) return matches;
  const names = [...new Set(teams.map((team) => team.name))];
  const near = names
    .map((candidate) => ({ candidate, score: distance(name, candidate.toLowerCase()) }))
    .filter(({ candidate, score }) => score <= Math.max(2, Math.floor(name.length / 3)) || candidate.toLowerCase().includes(name) || name.includes(candidate.toLowerCase()))
    .sort((x, y) => x.score - y.score || x.candidate.localeCompare(y.candidate))
    .slice(0, 5)
    .map(({ candidate }) => candidate);
  if (near.length === 0 && names.length > 0) near.push(closest(name, names));
  const hint = near.length ? `; did you mean ${near.map((n) => `"${n}"`).join(', ')}?` : '; the key sees no teams';
  throw badInput(`no team (workspace) named "${wanted}"${hint}`);
}

/** Every workspace the key can see, through the GraphQL API, page by page. */
function fetchTeams(gateway: Gateway): Promise<Team[]> {
  return allNodes<Team>(
    gateway,
    'query ($after: String) { viewer { realm { workspaces(first: 100, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id name } } } } } }',
    ['viewer', 'realm', 'workspaces'],
    'workspaces',
  );
}

const MONTH = /^(\d{4})-(\d{2})$/;

/** The months from `start` through `end` (YYYY-MM, or a YYYY-MM-DD date whose month counts). */
export function monthsBetween(start: string, end: string): string[] {
  const month = (raw: string, flag: string) => {
    const match = MONTH.exec(raw.slice(0, 7));
    if (!match || !(raw.length === 7 || /^\d{4}-\d{2}-\d{2}$/.test(raw)) || Number(match[2]) < 1 || Number(match[2]) > 12) {
      throw badInput(`${flag} "${raw}" must be a month as YYYY-MM (or a date as YYYY-MM-DD)`);
    }
    return Number(match[1]) * 12 + Number(match[2]) - 1;
  };
  const from = month(start, '--start-date');
  const to = month(end, '--end-date');
  if (to < from) throw badInput(`--end-date ${end} is before --start-date ${start}`);
  if (to - from >= 12) throw badInput('the monthly export covers the last 12 months: ask for 12 months at most');
  const months: string[] = [];
  for (let m = from; m <= to; m++) months.push(`${Math.floor(m / 12)}-${String((m % 12) + 1).padStart(2, '0')}`);
  return months;
}

interface Export {
  rows: Row[];
  /** The period the gateway answered for, from its file name (`usage-monthly-2026-03.csv`). */
  period: string | null;
}

async function fetchCsv(gateway: Gateway, kind: UsageKind, params: Record<string, string | undefined>): Promise<Export> {
  const path = `/exports/usage/${kind}.csv`;
  const url = gateway.endpoint(path);
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, value);
  let response: Response;
  try {
    response = await fetch(url, { headers: { authorization: `Bearer ${gateway.key}`, accept: 'text/csv' } });
  } catch (error) {
    throw networkError(error, url);
  }
  if (!response.ok) throw await httpError(response);
  const type = response.headers.get('content-type') ?? '';
  if (!/^text\/csv\b/i.test(type)) throw notTheGateway(`${type.split(';')[0] || 'no content type'} instead of text/csv`);
  const text = await response.text();
  let records: string[][];
  try {
    records = parse(text, { skip_empty_lines: true }) as string[][];
  } catch (error) {
    throw notTheGateway(`not CSV: ${error instanceof Error ? error.message : String(error)}`);
  }
  const [header, ...body] = records;
  const expected = USAGE_COLUMNS[kind];
  if (!header || header.join(',') !== expected.join(',')) throw notTheGateway(`CSV without the columns ${expected.join(',')}`);
  const period = /filename="usage-[a-z]+-([^"]+)\.csv"/.exec(response.headers.get('content-disposition') ?? '')?.[1] ?? null;
  return { rows: body.map((record) => Object.fromEntries(expected.map((column, i) => [column, record[i] ?? '']))), period };
}

/** The `count` months that end with `last` (YYYY-MM), oldest first. */
export function monthsEndingWith(last: string, count: number): string[] {
  const [year, month] = last.split('-').map(Number) as [number, number];
  const end = year * 12 + month - 1;
  return Array.from({ length: count }, (_, i) => {
    const m = end - count + 1 + i;
    return `${Math.floor(m / 12)}-${String((m % 12) + 1).padStart(2, '0')}`;
  });
}

/** The `count` days that end today (UTC), as start and end dates. */
export function lastDays(count: number, now: Date = new Date()): { start: string; end: string } {
  const end = now.toISOString().slice(0, 10);
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - (count - 1))).toISOString().slice(0, 10);
  return { start, end };
}

/** What the command asked for, for "No usage data for …". */
function describeRequest(kind: UsageKind, options: UsageOptions, team: string | undefined, filters: Filter[]): string {
  let period: string;
  if (kind === 'monthly') {
    const start = options.startDate ?? options.endDate;
    period = options.months !== undefined ? `the last ${options.months} month(s)` : start ? (options.endDate && options.endDate !== start ? `${start} to ${options.endDate}` : start) : (options.month ?? 'the current month');
  } else {
    period = options.days !== undefined ? `the last ${options.days} day(s)` : options.startDate || options.endDate ? `${options.startDate ?? 'the first of the month'} to ${options.endDate ?? (options.startDate ? '30 days later' : 'today')}` : 'the month to date';
  }
  const parts = [period];
  if (team) parts.push(`team "${team}"`);
  if (filters.length) parts.push(filters.map((f) => `${f.column} containing "${f.value}"`).join(', '));
  return parts.join(', ');
}

export async function runUsage(kind: UsageKind, options: UsageOptions): Promise<void> {
  // Every argument is checked before anything is fetched.
  const spec = USAGE_TABLES[kind];
  const columns = parseColumns(spec, options);
  const sort = parseSort(kind, options.sort);
  const filters = parseFilters(kind, options.filter ?? []);
  let requests: Array<Record<string, string | undefined>>;
  const ways = [options.month !== undefined, options.startDate !== undefined || options.endDate !== undefined, options.months !== undefined, options.days !== undefined];
  if (ways.filter(Boolean).length > 1) throw badInput(`give one of ${kind === 'monthly' ? '--month, --months' : '--days'} or --start-date/--end-date`);
  if (kind === 'monthly') {
    if (options.days !== undefined) throw badInput('usage:monthly takes --months; --days is for usage:daily');
    if (options.months !== undefined) {
      if (options.months < 1 || options.months > 12) throw badInput('--months must be 1 to 12 (the monthly export covers the current month and the 11 before it)');
      requests = [{}];
    } else if (options.startDate || options.endDate) {
      const start = options.startDate ?? options.endDate!;
      requests = monthsBetween(start, options.endDate ?? start).map((month) => ({ month }));
    } else {
      requests = [{ month: options.month }];
    }
  } else {
    if (options.month !== undefined || options.months !== undefined) throw badInput('usage:daily takes --days or --start-date and --end-date; --month(s) is for usage:monthly');
    if (options.days !== undefined) {
      if (options.days < 1 || options.days > 31) throw badInput('--days must be 1 to 31 (a daily export covers at most 31 days)');
      const { start, end } = lastDays(options.days);
      requests = [{ start, end }];
    } else {
      requests = [{ start: options.startDate, end: options.endDate }];
    }
  }
  const gateway = gatewayFrom(options);
  const team = options.team?.trim() || undefined;
  const { rows, teamIds } = await withSpinner(`fetching ${kind} usage`, async () => {
    const teamIds = team ? new Set(matchTeam(team, await fetchTeams(gateway)).map((t) => t.id)) : undefined;
    const rows: Row[] = [];
    for (const params of requests) {
      const answer = await fetchCsv(gateway, kind, params);
      rows.push(...answer.rows);
      // --months N: the current month (the gateway's, in the realm's time zone), then the N−1 before it.
      if (options.months !== undefined && options.months > 1) {
        const current = answer.period ?? new Date().toISOString().slice(0, 7);
        for (const month of monthsEndingWith(current, options.months).slice(0, -1).reverse()) rows.unshift(...(await fetchCsv(gateway, kind, { month })).rows);
      }
    }
    return { rows, teamIds };
  });
  const shown = sortRows(filterRows(rows, filters, teamIds), sort);
  if (shown.length === 0) process.stderr.write(`No usage data for ${describeRequest(kind, options, team, filters)}.\n`);
  printRows(spec, columns, shown, options);
}

function parseWhole(raw: string): number {
  if (!/^\d+$/.test(raw.trim())) throw new InvalidArgumentError('must be a whole number.');
  return Number(raw);
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function registerUsage(program: Command): void {
  for (const kind of ['monthly', 'daily'] as const) {
    const spec = USAGE_TABLES[kind];
    const columns = spec.columns;
    const command = program
      .command(`usage:${kind}`)
      .summary(`${kind} usage by team, app and product`)
      .description(
        (kind === 'monthly'
          ? 'Usage per month by team (workspace), app and product (feature), in the realm\'s time zone, from the gateway\'s ' +
            'GET /exports/usage/monthly.csv: a month of the last 12 (--month, default: the current month), or each month from ' +
            '--start-date through --end-date.'
          : 'Usage per day by team (workspace), app and product (feature), in the realm\'s time zone, from the gateway\'s ' +
            'GET /exports/usage/daily.csv: --start-date through --end-date (inclusive; at most 31 days, starting at most 6 months ago; ' +
            'default: the month to date).') +
          ` The key needs the usage:read scope.\n\nColumns: ${columns.join(', ')} (the table leaves out the ids unless --columns names them; --csv and --json have all). ` +
          'No rows: "No usage data for …" on stderr (and an empty table, CSV header or []), exit code 0.\n\n' +
          EXIT_CODES_HELP,
      );
    addGatewayOptions(command);
    if (kind === 'monthly') {
      command
        .option('--month <YYYY-MM>', 'the month (default: the current month)')
        .addOption(new Option('--months <n>', 'the current month and the n−1 before it (1 to 12)').argParser(parseWhole))
        .option('--start-date <YYYY-MM>', 'the first month of a range of months')
        .option('--end-date <YYYY-MM>', 'the last month of a range of months (default: --start-date)');
    } else {
      command
        .addOption(new Option('--days <n>', 'the last n days, today (UTC) included (1 to 31)').argParser(parseWhole))
        .option('--start-date <YYYY-MM-DD>', 'the first day (default: the first of the current month)')
        .option('--end-date <YYYY-MM-DD>', 'the last day, inclusive (default: today, or 30 days after --start-date)');
    }
    command
      .option('--team <name>', 'only this team: a workspace name (case-insensitive) or id; an unknown name is an error listing the closest ones')
      .addOption(new Option('--filter <name=value>', 'only rows whose column contains the value (case-insensitive); repeatable').argParser(collect))
      .option('--sort <field,-field>', 'sort by these columns; a leading - sorts descending (e.g. -quantity,team)');
    addTableOptions(command, spec)
      .addHelpText(
        'after',
        `\nExamples:\n  USAGE_GATEWAY_KEY=ugw_… usage-gateway usage:${kind} --sort -quantity --filter product=transactions\n` +
          `  usage-gateway usage:${kind} --csv --columns ${columns[0]},team,product,quantity > usage.csv\n` +
          `  usage-gateway usage:${kind} --team Mobile --json`,
      )
      .action((options: UsageOptions) => runUsage(kind, options));
  }
}

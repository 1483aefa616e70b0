/**
 * `usage-gateway usage:monthly` and `usage:daily`: fetch the gateway's CSV usage exports
 * (`GET /exports/usage/monthly.csv`, `/exports/usage/daily.csv`) and format them locally: an aligned
 * table by default, CSV with `--csv`; columns, filters and sorting are applied here.
 */
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { Option, type Command } from 'commander';
import { addGatewayOptions, badInput, CliError, gatewayFrom, httpError, networkError, type Gateway, type GatewayOptions } from './client.js';

export type UsageKind = 'monthly' | 'daily';

/** The export's columns (see src/exports/usage-export.ts); the first is `month` or `date`. */
export const USAGE_COLUMNS: Record<UsageKind, readonly string[]> = {
  monthly: ['month', 'team_id', 'team', 'app_id', 'app', 'product', 'unit', 'quantity'],
  daily: ['date', 'team_id', 'team', 'app_id', 'app', 'product', 'unit', 'quantity'],
};
/** The table leaves out the ids unless `--columns` asks for them; `--csv` has every column. */
const TABLE_COLUMNS: Record<UsageKind, readonly string[]> = {
  monthly: ['month', 'team', 'app', 'product', 'unit', 'quantity'],
  daily: ['date', 'team', 'app', 'product', 'unit', 'quantity'],
};
const NUMERIC_COLUMNS = new Set(['quantity']);
/** Cells longer than this are cut (with …) in the table unless `--no-truncate`. */
export const TRUNCATE_AT = 32;

interface UsageOptions extends GatewayOptions {
  team?: string;
  columns?: string;
  csv?: boolean;
  filter?: string[];
  sort?: string;
  header: boolean;
  truncate: boolean;
  startDate?: string;
  endDate?: string;
  month?: string;
}

type Row = Record<string, string>;

function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
}

function unknownNames(kind: UsageKind, names: string[], what: string): never {
  throw badInput(`unknown ${what} ${names.map((n) => `"${n}"`).join(', ')}; the columns are ${USAGE_COLUMNS[kind].join(', ')}`);
}

export function parseColumns(kind: UsageKind, raw: string | undefined, csv: boolean): string[] {
  if (raw === undefined) return [...(csv ? USAGE_COLUMNS : TABLE_COLUMNS)[kind]];
  const columns = splitList(raw);
  if (columns.length === 0) throw badInput('--columns needs at least one column');
  const unknown = columns.filter((c) => !USAGE_COLUMNS[kind].includes(c));
  if (unknown.length) unknownNames(kind, unknown, unknown.length > 1 ? 'columns' : 'column');
  return columns;
}

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
  if (unknown.length) unknownNames(kind, unknown, unknown.length > 1 ? 'sort fields' : 'sort field');
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
    if (!USAGE_COLUMNS[kind].includes(column)) unknownNames(kind, [column], 'filter field');
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

export function filterRows(rows: Row[], filters: Filter[], team?: string): Row[] {
  const wanted = team?.trim().toLowerCase();
  return rows.filter(
    (row) =>
      (!wanted || (row.team ?? '').toLowerCase() === wanted || (row.team_id ?? '').toLowerCase() === wanted) &&
      filters.every((f) => (row[f.column] ?? '').toLowerCase().includes(f.value.toLowerCase())),
  );
}

function truncateCell(value: string, width: number): string {
  const chars = [...value];
  return chars.length > width ? `${chars.slice(0, width - 1).join('')}…` : value;
}

/** An aligned table: columns separated by two spaces, numbers right-aligned. */
export function formatTable(columns: string[], rows: string[][], options: { header?: boolean; truncate?: number | false; rightAligned?: Set<string> } = {}): string {
  const limit = options.truncate ?? false;
  // Line breaks inside a cell would break the table's lines.
  const clean = (value: string) => {
    const flat = value.replace(/\r?\n|\r/g, ' ');
    return limit ? truncateCell(flat, limit) : flat;
  };
  const body = rows.map((row) => row.map(clean));
  const lines = options.header === false ? body : [columns.map(clean), ...body];
  const widths = columns.map((_, i) => Math.max(0, ...lines.map((line) => [...(line[i] ?? '')].length)));
  const pad = (value: string, i: number) => {
    const gap = ' '.repeat(widths[i]! - [...value].length);
    return options.rightAligned?.has(columns[i]!) ? gap + value : value + gap;
  };
  return lines.map((line) => line.map((cell, i) => pad(cell, i)).join('  ').trimEnd()).join('\n') + (lines.length ? '\n' : '');
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

async function fetchCsv(gateway: Gateway, path: string, params: Record<string, string | undefined>): Promise<Row[]> {
  const url = gateway.endpoint(path);
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, value);
  let response: Response;
  try {
    response = await fetch(url, { headers: { authorization: `Bearer ${gateway.key}`, accept: 'text/csv' } });
  } catch (error) {
    throw networkError(error, url);
  }
  if (!response.ok) throw await httpError(response);
  const text = await response.text();
  try {
    return parse(text, { columns: true, skip_empty_lines: true }) as Row[];
  } catch (error) {
    throw new CliError(`the gateway's answer is not CSV (${error instanceof Error ? error.message : String(error)}); is --url the gateway?`);
  }
}

export async function runUsage(kind: UsageKind, options: UsageOptions): Promise<void> {
  // Every argument is checked before anything is fetched.
  const columns = parseColumns(kind, options.columns, !!options.csv);
  const sort = parseSort(kind, options.sort);
  const filters = parseFilters(kind, options.filter ?? []);
  let requests: Array<Record<string, string | undefined>>;
  if (kind === 'monthly') {
    if (options.month && (options.startDate || options.endDate)) throw badInput('give --month or --start-date/--end-date, not both');
    if (options.startDate || options.endDate) {
      const start = options.startDate ?? options.endDate!;
      requests = monthsBetween(start, options.endDate ?? start).map((month) => ({ month }));
    } else {
      requests = [{ month: options.month }];
    }
  } else {
    if (options.month) throw badInput('usage:daily takes --start-date and --end-date; --month is for usage:monthly');
    requests = [{ start: options.startDate, end: options.endDate }];
  }
  const gateway = gatewayFrom(options);
  const rows: Row[] = [];
  for (const params of requests) rows.push(...(await fetchCsv(gateway, `/exports/usage/${kind}.csv`, params)));
  const shown = sortRows(filterRows(rows, filters, options.team), sort);
  const cells = shown.map((row) => columns.map((c) => row[c] ?? ''));
  if (options.csv) {
    process.stdout.write(stringify(options.header ? [columns, ...cells] : cells, { record_delimiter: 'windows' }));
    return;
  }
  process.stdout.write(
    formatTable(columns, cells, { header: options.header, truncate: options.truncate ? TRUNCATE_AT : false, rightAligned: NUMERIC_COLUMNS }),
  );
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function registerUsage(program: Command): void {
  for (const kind of ['monthly', 'daily'] as const) {
    const columns = USAGE_COLUMNS[kind];
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
          ` The key needs the usage:read scope.\n\nColumns: ${columns.join(', ')} (the table leaves out the ids unless --columns names them; --csv has all).\n\n` +
          'Exit code 0 on success, 1 on an error (unknown column or sort field, a refused range, an unreachable gateway).',
      );
    addGatewayOptions(command);
    if (kind === 'monthly') {
      command
        .option('--month <YYYY-MM>', 'the month (default: the current month)')
        .option('--start-date <YYYY-MM>', 'the first month of a range of months')
        .option('--end-date <YYYY-MM>', 'the last month of a range of months (default: --start-date)');
    } else {
      command
        .option('--start-date <YYYY-MM-DD>', 'the first day (default: the first of the current month)')
        .option('--end-date <YYYY-MM-DD>', 'the last day, inclusive (default: today, or 30 days after --start-date)');
    }
    command
      .option('--team <name>', 'only this team (workspace name or id; case-insensitive)')
      .option('--columns <a,b,c>', `the columns to show, in order (of ${columns.join(', ')})`)
      .addOption(new Option('--filter <name=value>', 'only rows whose column contains the value (case-insensitive); repeatable').argParser(collect))
      .option('--sort <field,-field>', 'sort by these columns; a leading - sorts descending (e.g. -quantity,team)')
      .option('--csv', 'print CSV (RFC 4180) instead of a table')
      .option('--no-header', 'leave out the header line')
      .option('--no-truncate', `do not cut table cells longer than ${TRUNCATE_AT} characters`)
      .addHelpText(
        'after',
        `\nExamples:\n  USAGE_GATEWAY_KEY=ugw_… usage-gateway usage:${kind} --sort -quantity --filter product=tx\n` +
          `  usage-gateway usage:${kind} --csv --columns ${columns[0]},team,product,quantity > usage.csv`,
      )
      .action((options: UsageOptions) => runUsage(kind, options));
  }
}

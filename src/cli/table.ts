/**
 * How every command prints a list of records: an aligned table by default, CSV with `--csv`, JSON
 * with `--json`; `--columns` picks and orders the columns, `--no-header`, `--no-truncate`. The
 * flags and their checks are the same on every command that prints rows.
 */
import { stringify } from 'csv-stringify/sync';
import type { Command } from 'commander';
import { badInput } from './client.js';

/** A record as the gateway gave it: strings, numbers, lists (shown joined by commas), null (empty). */
export type Row = Record<string, unknown>;

export interface TableSpec {
  /** Every column, in their natural order (CSV and JSON show them all by default). */
  columns: readonly string[];
  /** The table's default columns (the ids are often left out: they are long). */
  tableColumns: readonly string[];
  /** Right-aligned in the table. */
  numeric?: ReadonlySet<string>;
  /** Never cut in the table: a cut id cannot be used. */
  whole?: ReadonlySet<string>;
  /** How the table (only) shows a column's values, e.g. shorter timestamps. */
  tableFormat?: Readonly<Record<string, (value: unknown) => string>>;
}

export interface TableOptions {
  columns?: string;
  csv?: boolean;
  json?: boolean;
  header: boolean;
  truncate: boolean;
}

/** Cells longer than this are cut (with …) in the table unless `--no-truncate`. */
export const TRUNCATE_AT = 32;

export function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
}

export function unknownColumns(spec: TableSpec, names: string[], what: string): never {
  throw badInput(`unknown ${what} ${names.map((n) => `"${n}"`).join(', ')}; the columns are ${spec.columns.join(', ')}`);
}

/** The columns to print: `--columns` as given (checked), else the table's or all of them. */
export function parseColumns(spec: TableSpec, options: Pick<TableOptions, 'columns' | 'csv' | 'json'>): string[] {
  if (options.csv && options.json) throw badInput('give --csv or --json, not both');
  if (options.columns === undefined) return [...(options.csv || options.json ? spec.columns : spec.tableColumns)];
  const columns = splitList(options.columns);
  if (columns.length === 0) throw badInput('--columns needs at least one column');
  const unknown = columns.filter((c) => !spec.columns.includes(c));
  if (unknown.length) unknownColumns(spec, unknown, unknown.length > 1 ? 'columns' : 'column');
  return columns;
}

export function addTableOptions(command: Command, spec: TableSpec): Command {
  return command
    .option('--columns <a,b,c>', `the columns to show, in order (of ${spec.columns.join(', ')})`)
    .option('--csv', 'print CSV (RFC 4180) instead of a table')
    .option('--json', 'print a JSON array of objects instead of a table (every column unless --columns)')
    .option('--no-header', 'leave out the header line (table and CSV)')
    .option('--no-truncate', `do not cut table cells longer than ${TRUNCATE_AT} characters`);
}

export function cellText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.map(cellText).join(',');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function truncateCell(value: string, width: number): string {
  const chars = [...value];
  return chars.length > width ? `${chars.slice(0, width - 1).join('')}…` : value;
}

/** An aligned table: columns separated by two spaces, numbers right-aligned. */
export function formatTable(
  columns: string[],
  rows: string[][],
  options: { header?: boolean; truncate?: number | false; rightAligned?: ReadonlySet<string>; whole?: ReadonlySet<string> } = {},
): string {
  const limit = options.truncate ?? false;
  // Line breaks inside a cell would break the table's lines.
  const clean = (value: string, column: string) => {
    const flat = value.replace(/\r?\n|\r/g, ' ');
    return limit && !options.whole?.has(column) ? truncateCell(flat, limit) : flat;
  };
  const body = rows.map((row) => row.map((cell, i) => clean(cell, columns[i]!)));
  const lines = options.header === false ? body : [columns.map((c) => clean(c, c)), ...body];
  const widths = columns.map((_, i) => Math.max(0, ...lines.map((line) => [...(line[i] ?? '')].length)));
  const pad = (value: string, i: number) => {
    const gap = ' '.repeat(widths[i]! - [...value].length);
    return options.rightAligned?.has(columns[i]!) ? gap + value : value + gap;
  };
  return lines.map((line) => line.map((cell, i) => pad(cell, i)).join('  ').trimEnd()).join('\n') + (lines.length ? '\n' : '');
}

/** Prints the rows on stdout as the options say (columns already checked by parseColumns). */
export function printRows(spec: TableSpec, columns: string[], rows: Row[], options: TableOptions): void {
  if (options.json) {
    const objects = rows.map((row) => Object.fromEntries(columns.map((c) => [c, row[c] ?? null])));
    process.stdout.write(`${JSON.stringify(objects, null, 2)}\n`);
    return;
  }
  if (options.csv) {
    const cells = rows.map((row) => columns.map((c) => cellText(row[c])));
    process.stdout.write(stringify(options.header ? [columns, ...cells] : cells, { record_delimiter: 'windows' }));
    return;
  }
  const cells = rows.map((row) => columns.map((c) => (spec.tableFormat?.[c] ?? cellText)(row[c])));
  process.stdout.write(
    formatTable(columns, cells, { header: options.header, truncate: options.truncate ? TRUNCATE_AT : false, rightAligned: spec.numeric, whole: spec.whole }),
  );
}

/**
 * Usage exports: one row per period × team (workspace) × app × product (feature), in the realm's
 * time zone, exact decimals. Shared by the CSV endpoints (./http.ts) and `Realm.usageExport`.
 *
 * Monthly: any month of the last 12 (the current month, month to date, and the 11 before it).
 * Daily: `start`…`end` inclusive, at most 31 days, `start` at most 6 months before today.
 */
import { DateTime } from 'luxon';
import type { Viewer } from '../context.js';
import { echoJson } from '../errors.js';
import { Prisma, type PrismaClient } from '../generated/prisma/client.js';
import { encodeId } from '../global-id.js';
import { dayNumber, startOfLocalDay, type TimeRange } from '../usage/time.js';
import { buildUsageSql, type UsageRow } from '../usage/usage-sql.js';
import { visibleApps, visibleFeatures, visibleWorkspaces } from '../schema/visibility.js';

export const EXPORT_KINDS = ['MONTHLY', 'DAILY'] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];

export const MAX_DAILY_DAYS = 31;
export const DAILY_MAX_MONTHS_BACK = 6;
export const MONTHLY_MONTHS = 12;

/** The CSV columns, in order; the first is `month` (monthly) or `date` (daily). */
export const EXPORT_COLUMNS = {
  MONTHLY: ['month', 'team_id', 'team', 'app_id', 'app', 'product', 'unit', 'quantity'],
  DAILY: ['date', 'team_id', 'team', 'app_id', 'app', 'product', 'unit', 'quantity'],
} as const satisfies Record<ExportKind, readonly string[]>;

export interface UsageExportRow {
  /** `YYYY-MM` (monthly) or `YYYY-MM-DD` (daily), in the realm's time zone. */
  period: string;
  /** The workspace's global id; null for usage attributed to no workspace. */
  teamId: string | null;
  team: string | null;
  /** The app's global id; null for usage attributed to no app, or to an app outside the viewer's subtree (not named, as `node(id)` would not). */
  appId: string | null;
  app: string | null;
  /** The feature's key. */
  product: string;
  unit: string;
  /** An exact decimal, no exponent, no trailing zeros. */
  quantity: string;
}

export type ExportInputReason =
  | 'INVALID_DATE'
  | 'INVALID_MONTH'
  | 'MONTH_OUT_OF_RANGE'
  | 'END_BEFORE_START'
  | 'RANGE_TOO_LARGE'
  | 'START_TOO_EARLY';

/** Bad export arguments: answered as 400 (HTTP) or BAD_USER_INPUT (GraphQL). */
export class ExportInputError extends Error {
  override name = 'ExportInputError';
  constructor(
    message: string,
    readonly reason: ExportInputReason,
  ) {
    super(message);
  }
}

export interface ExportArgs {
  month?: string | null;
  startDate?: string | null;
  endDate?: string | null;
}

export interface ExportRequest {
  kind: ExportKind;
  range: TimeRange;
  timeZone: string;
  /** For the file name: `2026-03` or `2026-03-01_2026-03-31`. */
  label: string;
}

/**
 * Dates are calendar dates (luxon in UTC, no zone: days and months add up as on a calendar); a
 * date becomes an instant only at the end, as its first instant in the realm's zone (see
 * `startOfLocalDay`: local midnight may be skipped or happen twice).
 */
function parseDay(raw: string, name: string): DateTime {
  const day = /^\d{4}-\d{2}-\d{2}$/.test(raw) ? DateTime.fromISO(raw, { zone: 'utc' }) : null;
  if (!day?.isValid) throw new ExportInputError(`\`${name}\` must be a date as YYYY-MM-DD (got "${raw}").`, 'INVALID_DATE');
  return day;
}

const firstInstant = (date: DateTime, timeZone: string) => startOfLocalDay(dayNumber(date.year, date.month, date.day), timeZone);

/** Validates the arguments against `now` in the realm's time zone (pure). */
export function resolveExportRequest(kind: ExportKind, args: ExportArgs, now: Date, timeZone: string): ExportRequest {
  const local = DateTime.fromJSDate(now, { zone: timeZone });
  const today = DateTime.utc(local.year, local.month, local.day);
  if (kind === 'MONTHLY') {
    const raw = args.month ?? today.toFormat('yyyy-MM');
    const month = /^\d{4}-\d{2}$/.test(raw) ? DateTime.fromISO(`${raw}-01`, { zone: 'utc' }) : null;
    if (!month?.isValid) throw new ExportInputError(`\`month\` must be a month as YYYY-MM (got "${raw}").`, 'INVALID_MONTH');
    const current = today.startOf('month');
    const earliest = current.minus({ months: MONTHLY_MONTHS - 1 });
    if (month < earliest || month > current) {
      throw new ExportInputError(
        `\`month\` must be one of the last ${MONTHLY_MONTHS} months, ${earliest.toFormat('yyyy-MM')} to ${current.toFormat('yyyy-MM')} (got ${echoJson(raw)}).`,
        'MONTH_OUT_OF_RANGE',
      );
    }
    return { kind, range: { from: firstInstant(month, timeZone), to: firstInstant(month.plus({ months: 1 }), timeZone) }, timeZone, label: raw };
  }
  const start = args.startDate != null ? parseDay(args.startDate, 'start') : today.startOf('month');
  const end = args.endDate != null ? parseDay(args.endDate, 'end') : args.startDate != null ? start.plus({ days: MAX_DAILY_DAYS - 1 }) : today;
  if (end < start) throw new ExportInputError(`\`end\` (${end.toISODate()}) is before \`start\` (${start.toISODate()}).`, 'END_BEFORE_START');
  const days = Math.round(end.diff(start, 'days').days) + 1;
  if (days > MAX_DAILY_DAYS) {
    throw new ExportInputError(`A daily export covers at most ${MAX_DAILY_DAYS} days (asked: ${days}); split it into shorter ranges.`, 'RANGE_TOO_LARGE');
  }
  const earliest = today.minus({ months: DAILY_MAX_MONTHS_BACK });
  if (start < earliest) {
    throw new ExportInputError(
      `A daily export starts at most ${DAILY_MAX_MONTHS_BACK} months ago, on ${earliest.toISODate()} or later (got ${start.toISODate()}); use the monthly export for older usage.`,
      'START_TOO_EARLY',
    );
  }
  return {
    kind,
    range: { from: firstInstant(start, timeZone), to: firstInstant(end.plus({ days: 1 }), timeZone) },
    timeZone,
    label: `${start.toISODate()}_${end.toISODate()}`,
  };
}

export async function realmTimeZone(prisma: PrismaClient, realmId: string): Promise<string> {
  const realm = await prisma.realm.findUniqueOrThrow({ where: { id: realmId }, select: { timeZone: true } });
  return realm.timeZone;
}

const byText = (a: string | null, b: string | null) => (a ?? '').localeCompare(b ?? '', 'en');

/**
 * The rows of an export, sorted by period, team, app and product. One statement for the usage (the
 * same one `usage` fields use, grouped by workspace and app in DAY or MONTH buckets), then the names.
 * A workspace-scoped viewer reads only usage attributed to its subtree.
 */
export async function loadExportRows(prisma: PrismaClient, viewer: Pick<Viewer, 'realmId' | 'workspaceId' | 'featureIds'>, request: ExportRequest): Promise<UsageExportRow[]> {
  const features = await prisma.feature.findMany({ where: visibleFeatures({ viewer }), select: { id: true, key: true, unit: true, aggregation: true } });
  const { sql, params } = buildUsageSql({
    parentKind: 'REALM',
    parentIds: [viewer.realmId],
    realmId: viewer.realmId,
    scopeWorkspaceId: viewer.workspaceId,
    range: request.range,
    granularity: request.kind === 'MONTHLY' ? 'MONTH' : 'DAY',
    timeZone: request.timeZone,
    filter: {},
    groupBy: ['WORKSPACE', 'APP'],
    features,
    totals: false,
  });
  const usage = (await prisma.$queryRawUnsafe<UsageRow[]>(sql, ...params)).filter((row) => row.kind === 'point');
  const workspaceIds = [...new Set(usage.map((r) => r.workspaceId).filter((id): id is string => !!id))];
  const appIds = [...new Set(usage.map((r) => r.appId).filter((id): id is string => !!id))];
  const [workspaces, apps] = await Promise.all([
    workspaceIds.length ? prisma.workspace.findMany({ where: { id: { in: workspaceIds }, AND: [visibleWorkspaces({ viewer })] }, select: { id: true, name: true } }) : [],
    appIds.length ? prisma.app.findMany({ where: { id: { in: appIds }, AND: [visibleApps({ viewer })] }, select: { id: true, name: true } }) : [],
  ]);
  const featureById = new Map(features.map((f) => [f.id, f]));
  const workspaceName = new Map(workspaces.map((w) => [w.id, w.name]));
  const appName = new Map(apps.map((a) => [a.id, a.name]));
  const periodFormat = request.kind === 'MONTHLY' ? 'yyyy-MM' : 'yyyy-MM-dd';
  const rows: UsageExportRow[] = [];
  for (const row of usage) {
    const feature = featureById.get(row.feature);
    if (!feature) continue;
    rows.push({
      period: DateTime.fromISO(row.bucket!, { zone: request.timeZone }).toFormat(periodFormat),
      teamId: row.workspaceId && workspaceName.has(row.workspaceId) ? encodeId('Workspace', row.workspaceId) : null,
      team: row.workspaceId ? (workspaceName.get(row.workspaceId) ?? null) : null,
      appId: row.appId && appName.has(row.appId) ? encodeId('App', row.appId) : null,
      app: row.appId ? (appName.get(row.appId) ?? null) : null,
      product: feature.key,
      unit: feature.unit,
      quantity: new Prisma.Decimal(row.quantity).toFixed(),
    });
  }
  rows.sort(
    (a, b) =>
      a.period.localeCompare(b.period) ||
      byText(a.team, b.team) ||
      byText(a.teamId, b.teamId) ||
      byText(a.app, b.app) ||
      byText(a.appId, b.appId) ||
      a.product.localeCompare(b.product),
  );
  return rows;
}

/** Characters that make a spreadsheet read a cell as a formula (OWASP "CSV Injection"). */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * A text cell a spreadsheet shows as text: one starting like a formula gets a leading `'`, as OWASP
 * recommends (the CSV writer still quotes it when it holds a comma, quote or line break).
 */
export function spreadsheetSafe(cell: string): string {
  return FORMULA_START.test(cell) ? `'${cell}` : cell;
}

/**
 * A row as CSV cells, in `EXPORT_COLUMNS` order (nulls as empty cells). Names, keys and units are
 * made spreadsheet-safe; `quantity` is written as is: always a non-negative plain decimal (digits
 * and a point), so it stays a number in a spreadsheet and never starts like a formula.
 */
export function csvRecord(row: UsageExportRow): string[] {
  const text = [row.period, row.teamId ?? '', row.team ?? '', row.appId ?? '', row.app ?? '', row.product, row.unit].map(spreadsheetSafe);
  return [...text, row.quantity];
}

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useUsageExportEndpoints } from '../src/exports/http.js';
import { resolveExportRequest } from '../src/exports/usage-export.js';
import { encodeId } from '../src/global-id.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm, insertUsage } from './helpers/usage-fixture.js';

// Europe/Berlin is UTC+1 until 2026-03-29: 2026-02-28T23:00Z is already March 1st there.
const NOW = new Date('2026-03-10T12:30:00Z');

type UsageRealm = Awaited<ReturnType<typeof createUsageRealm>>;

let db: TestDatabase;
let app: App;
let r: UsageRealm;
let other: UsageRealm;
let writeOnly: string;
const SALES = 'Sales, "EMEA"';
const APP_ONE = 'app "one", beta';

const ids = () => ({
  left: encodeId('Workspace', r.tree.left.id),
  leaf: encodeId('Workspace', r.tree.leaf.id),
  right: encodeId('Workspace', r.tree.right.id),
  app0: encodeId('App', r.apps[0]!.id),
  app1: encodeId('App', r.apps[1]!.id),
});

async function get(path: string, key: string | null = r.admin.key) {
  const response = await app.fetch(`http://gateway.test${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const rowsOf = (text: string) => parse(text, { columns: true }) as Record<string, string>[];

beforeAll(async () => {
  db = await createTestDatabase();
  r = await createUsageRealm(db.prisma, 'Europe/Berlin');
  other = await createUsageRealm(db.prisma, 'Europe/Berlin');
  await db.prisma.workspace.update({ where: { id: r.tree.right.id }, data: { name: SALES } });
  await db.prisma.app.update({ where: { id: r.apps[1]!.id }, data: { name: APP_ONE } });
  writeOnly = (await createKey(db.prisma, r.realm.id, { scopes: ['usage:write'] })).key;
  const features = (u: UsageRealm) => Object.fromEntries(Object.entries(u.features).map(([key, f]) => [key, f.id]));
  const { left, leaf, right } = r.tree;
  const [app0, app1] = r.apps;
  const h = (iso: string) => new Date(iso);
  await insertUsage(db.prisma, r.realm.id, features(r), [
    { feature: 'tx', hour: h('2026-02-28T22:00:00Z'), workspaceId: left.id, appId: app0!.id, quantity: '1.5' },
    { feature: 'tx', hour: h('2026-02-28T23:00:00Z'), workspaceId: left.id, appId: app0!.id, quantity: '2.25' },
    { feature: 'tx', hour: h('2026-03-02T10:00:00Z'), workspaceId: left.id, appId: app0!.id, quantity: '3' },
    { feature: 'tx', hour: h('2026-03-02T10:00:00Z'), workspaceId: right.id, appId: app1!.id, quantity: '4' },
    { feature: 'req', hour: h('2026-03-02T11:00:00Z'), workspaceId: leaf.id, quantity: '7' },
    { feature: 'spaces', hour: h('2026-03-03T10:00:00Z'), workspaceId: right.id, appId: app1!.id, quantity: '2' },
    { feature: 'spaces', hour: h('2026-03-03T11:00:00Z'), workspaceId: right.id, appId: app1!.id, quantity: '5' },
    { feature: 'rows', hour: h('2026-03-04T10:00:00Z'), workspaceId: leaf.id, keys: ['a', 'b'] },
    { feature: 'rows', hour: h('2026-03-04T11:00:00Z'), workspaceId: leaf.id, keys: ['b', 'c'] },
    { feature: 'tx', hour: h('2026-03-05T10:00:00Z'), quantity: '0.000000001' },
  ]);
  // Another realm's usage never shows.
  await insertUsage(db.prisma, other.realm.id, features(other), [
    { feature: 'tx', hour: h('2026-03-02T10:00:00Z'), workspaceId: other.tree.left.id, quantity: '100' },
  ]);
  const now = () => NOW;
  app = createApp({ prisma: db.prisma, now, plugins: [useUsageExportEndpoints({ prisma: db.prisma, now })] });
});

afterAll(async () => {
  await db?.destroy();
});

describe('GET /exports/usage/monthly.csv', () => {
  it('answers one row per team × app × product for the month, in the realm time zone, quoted per RFC 4180', async () => {
    const { status, headers, text } = await get('/exports/usage/monthly.csv?month=2026-03');
    expect(status).toBe(200);
    expect(headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(headers.get('content-disposition')).toBe('attachment; filename="usage-monthly-2026-03.csv"');
    const i = ids();
    expect(text).toBe(
      [
        'month,team_id,team,app_id,app,product,unit,quantity',
        '2026-03,,,,,tx,TRANSACTION,0.000000001',
        `2026-03,${i.leaf},leaf,,,req,REQUEST,7`,
        `2026-03,${i.leaf},leaf,,,rows,ROW,3`,
        `2026-03,${i.left},left,${i.app0},app 0,tx,TRANSACTION,5.25`,
        `2026-03,${i.right},"Sales, ""EMEA""",${i.app1},"app ""one"", beta",spaces,SPACE,5`,
        `2026-03,${i.right},"Sales, ""EMEA""",${i.app1},"app ""one"", beta",tx,TRANSACTION,4`,
        '',
      ].join('\r\n'),
    );
    // A CSV reader gets the names back as they are.
    expect(rowsOf(text).map((row) => row.team)).toEqual(['', 'leaf', 'leaf', 'left', SALES, SALES]);
  });

  it('counts the hour before local midnight in the previous month', async () => {
    const { text } = await get('/exports/usage/monthly.csv?month=2026-02');
    expect(rowsOf(text)).toEqual([
      { month: '2026-02', team_id: ids().left, team: 'left', app_id: ids().app0, app: 'app 0', product: 'tx', unit: 'TRANSACTION', quantity: '1.5' },
    ]);
  });

  it('defaults to the current month and answers a header only when there is no usage', async () => {
    expect(rowsOf((await get('/exports/usage/monthly.csv')).text)).toHaveLength(6);
    const empty = await get('/exports/usage/monthly.csv?month=2025-04');
    expect(empty.status).toBe(200);
    expect(empty.text).toBe('month,team_id,team,app_id,app,product,unit,quantity\r\n');
  });

  it('shows a workspace-scoped key its subtree only', async () => {
    const rows = rowsOf((await get('/exports/usage/monthly.csv?month=2026-03', r.scoped.key)).text);
    expect(rows.map((row) => [row.team, row.app, row.product, row.quantity])).toEqual([
      ['leaf', '', 'req', '7'],
      ['leaf', '', 'rows', '3'],
      ['left', 'app 0', 'tx', '5.25'],
    ]);
  });
});

/**
 * The exact bytes of an export, with the (random) ids replaced by the names of what they identify,
 * against a committed file in test/golden/. `UPDATE_GOLDEN=1 npm test` rewrites the files.
 */
function expectGolden(text: string, file: string) {
  let stable = text;
  for (const [name, id] of Object.entries(ids())) stable = stable.replaceAll(id, `{${name}}`);
  const url = new URL(`./golden/${file}`, import.meta.url);
  if (process.env.UPDATE_GOLDEN) {
    mkdirSync(new URL('./golden/', import.meta.url), { recursive: true });
    writeFileSync(url, stable);
  }
  expect(existsSync(url), `${file} is missing: run UPDATE_GOLDEN=1 npm test`).toBe(true);
  expect(stable).toBe(readFileSync(url, 'utf8'));
}

describe('golden files', () => {
  it('the monthly and daily CSV exports match test/golden byte for byte', async () => {
    expectGolden((await get('/exports/usage/monthly.csv?month=2026-03')).text, 'usage-monthly-2026-03.csv');
    expectGolden((await get('/exports/usage/daily.csv?start=2026-03-01&end=2026-03-05')).text, 'usage-daily-2026-03-01_2026-03-05.csv');
  });
});

describe('GET /exports/usage/daily.csv', () => {
  it('answers one row per day × team × app × product, days in the realm time zone', async () => {
    const { status, headers, text } = await get('/exports/usage/daily.csv?start=2026-03-01&end=2026-03-05');
    expect(status).toBe(200);
    expect(headers.get('content-disposition')).toBe('attachment; filename="usage-daily-2026-03-01_2026-03-05.csv"');
    expect(text.split('\r\n')[0]).toBe('date,team_id,team,app_id,app,product,unit,quantity');
    expect(rowsOf(text).map((row) => [row.date, row.team, row.app, row.product, row.unit, row.quantity])).toEqual([
      ['2026-03-01', 'left', 'app 0', 'tx', 'TRANSACTION', '2.25'],
      ['2026-03-02', 'leaf', '', 'req', 'REQUEST', '7'],
      ['2026-03-02', 'left', 'app 0', 'tx', 'TRANSACTION', '3'],
      ['2026-03-02', SALES, APP_ONE, 'tx', 'TRANSACTION', '4'],
      ['2026-03-03', SALES, APP_ONE, 'spaces', 'SPACE', '5'],
      ['2026-03-04', 'leaf', '', 'rows', 'ROW', '3'],
      ['2026-03-05', '', '', 'tx', 'TRANSACTION', '0.000000001'],
    ]);
  });

  it('includes both ends: a one-day range is that day', async () => {
    const rows = rowsOf((await get('/exports/usage/daily.csv?start=2026-03-03&end=2026-03-03')).text);
    expect(rows.map((row) => [row.date, row.product, row.quantity])).toEqual([['2026-03-03', 'spaces', '5']]);
  });

  it('accepts exactly 31 days and a start exactly 6 months ago', async () => {
    expect((await get('/exports/usage/daily.csv?start=2026-02-01&end=2026-03-03')).status).toBe(200);
    expect((await get('/exports/usage/daily.csv?start=2025-09-10&end=2025-09-20')).status).toBe(200);
  });
});

describe('bad input and auth', () => {
  const cases: Array<[string, string, string]> = [
    ['end before start', '/exports/usage/daily.csv?start=2026-03-05&end=2026-03-01', 'END_BEFORE_START'],
    ['over 31 days', '/exports/usage/daily.csv?start=2026-02-01&end=2026-03-04', 'RANGE_TOO_LARGE'],
    ['a start more than 6 months ago', '/exports/usage/daily.csv?start=2025-09-09&end=2025-09-20', 'START_TOO_EARLY'],
    ['a month before the last 12', '/exports/usage/monthly.csv?month=2025-03', 'MONTH_OUT_OF_RANGE'],
    ['a month in the future', '/exports/usage/monthly.csv?month=2026-04', 'MONTH_OUT_OF_RANGE'],
    ['a malformed month', '/exports/usage/monthly.csv?month=2026-3', 'INVALID_MONTH'],
    ['month 13', '/exports/usage/monthly.csv?month=2026-13', 'INVALID_MONTH'],
    ['February 30th', '/exports/usage/daily.csv?start=2026-02-30&end=2026-03-01', 'INVALID_DATE'],
    ['a malformed date', '/exports/usage/daily.csv?start=2026-03-01&end=yesterday', 'INVALID_DATE'],
  ];
  for (const [name, path, reason] of cases) {
    it(`answers 400 BAD_USER_INPUT for ${name}`, async () => {
      const { status, headers, text } = await get(path);
      expect(status).toBe(400);
      expect(headers.get('content-type')).toMatch(/^application\/json/);
      const body = JSON.parse(text);
      expect(body).toEqual({ errors: [{ message: expect.any(String), extensions: { code: 'BAD_USER_INPUT', reason } }], extensions: { requestId: expect.any(String) } });
    });
  }

  it('answers 401 without a valid key and 403 without usage:read', async () => {
    for (const key of [null, 'ugw_00000000_nope']) {
      const answer = await get('/exports/usage/monthly.csv', key);
      expect(answer.status).toBe(401);
      expect(answer.headers.get('www-authenticate')).toBe('Bearer');
      expect(JSON.parse(answer.text).errors[0].extensions.code).toBe('UNAUTHENTICATED');
    }
    const forbidden = await get('/exports/usage/daily.csv', writeOnly);
    expect(forbidden.status).toBe(403);
    expect(JSON.parse(forbidden.text).errors[0].extensions).toEqual({ code: 'FORBIDDEN', requiredScope: 'usage:read' });
  });

  it('answers 405 to other methods', async () => {
    const response = await app.fetch('http://gateway.test/exports/usage/monthly.csv', { method: 'POST', headers: { authorization: `Bearer ${r.admin.key}` } });
    expect(response.status).toBe(405);
  });
});

describe('Realm.usageExport', () => {
  const QUERY = `query ($kind: UsageExportKind!, $month: String, $start: String, $end: String) {
    viewer { realm { usageExport(kind: $kind, month: $month, startDate: $start, endDate: $end) { period teamId team appId app product unit quantity } } }
  }`;
  const asCsvRows = (rows: any[], first: string) =>
    rows.map((row) => ({
      [first]: row.period,
      team_id: row.teamId ?? '',
      team: row.team ?? '',
      app_id: row.appId ?? '',
      app: row.app ?? '',
      product: row.product,
      unit: row.unit,
      quantity: row.quantity,
    }));

  it('answers the same rows as the CSV exports', async () => {
    for (const key of [r.admin.key, r.scoped.key]) {
      const monthly = await graphql(app, QUERY, { key, variables: { kind: 'MONTHLY', month: '2026-03' } });
      expect(monthly.body.errors).toBeUndefined();
      const csvMonthly = rowsOf((await get('/exports/usage/monthly.csv?month=2026-03', key)).text);
      expect(asCsvRows(monthly.body.data.viewer.realm.usageExport, 'month')).toEqual(csvMonthly);

      const daily = await graphql(app, QUERY, { key, variables: { kind: 'DAILY', start: '2026-03-01', end: '2026-03-05' } });
      expect(daily.body.errors).toBeUndefined();
      const csvDaily = rowsOf((await get('/exports/usage/daily.csv?start=2026-03-01&end=2026-03-05', key)).text);
      expect(csvDaily.length).toBeGreaterThan(0);
      expect(asCsvRows(daily.body.data.viewer.realm.usageExport, 'date')).toEqual(csvDaily);
    }
  });

  it('rejects bad input with BAD_USER_INPUT and a reason, and needs usage:read', async () => {
    const bad = await graphql(app, QUERY, { key: r.admin.key, variables: { kind: 'DAILY', start: '2026-03-05', end: '2026-03-01' } });
    expect(bad.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'END_BEFORE_START' });
    const forbidden = await graphql(app, QUERY, { key: writeOnly, variables: { kind: 'MONTHLY' } });
    expect(forbidden.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

describe('resolveExportRequest', () => {
  it('uses local midnights of the realm time zone, across a DST change', () => {
    const request = resolveExportRequest('DAILY', { startDate: '2026-03-28', endDate: '2026-03-30' }, new Date('2026-04-01T00:00:00Z'), 'Europe/Berlin');
    expect(request.range).toEqual({ from: new Date('2026-03-27T23:00:00Z'), to: new Date('2026-03-30T22:00:00Z') });
    const month = resolveExportRequest('MONTHLY', { month: '2026-03' }, new Date('2026-04-01T00:00:00Z'), 'Europe/Berlin');
    expect(month.range).toEqual({ from: new Date('2026-02-28T23:00:00Z'), to: new Date('2026-03-31T22:00:00Z') });
  });
});

describe('resolveExportRequest where DST changes at local midnight', () => {
  const now = new Date('2026-11-20T12:00:00Z');
  it('starts a day at its first local instant (America/Havana, 1 November 2026: 00:00 happens at 04:00Z and again at 05:00Z)', () => {
    const day = resolveExportRequest('DAILY', { startDate: '2026-11-01', endDate: '2026-11-01' }, now, 'America/Havana');
    expect(day.range).toEqual({ from: new Date('2026-11-01T04:00:00Z'), to: new Date('2026-11-02T05:00:00Z') });
    const month = resolveExportRequest('MONTHLY', { month: '2026-11' }, now, 'America/Havana');
    expect(month.range).toEqual({ from: new Date('2026-11-01T04:00:00Z'), to: new Date('2026-12-01T05:00:00Z') });
  });

  it('ends a day where the next one starts (America/Santiago, 6 September 2026: a 23 h day, 7 September starts at 03:00Z)', () => {
    const day = resolveExportRequest('DAILY', { startDate: '2026-09-06', endDate: '2026-09-06' }, now, 'America/Santiago');
    expect(day.range).toEqual({ from: new Date('2026-09-06T04:00:00Z'), to: new Date('2026-09-07T03:00:00Z') });
    const month = resolveExportRequest('MONTHLY', { month: '2026-09' }, now, 'America/Santiago');
    expect(month.range).toEqual({ from: new Date('2026-09-01T04:00:00Z'), to: new Date('2026-10-01T03:00:00Z') });
  });
});

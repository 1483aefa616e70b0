import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useUsageExportEndpoints } from '../src/exports/http.js';
import { encodeId } from '../src/global-id.js';
import { createApp } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { runCliInProcess } from './helpers/cli-in-process.js';
import { createUsageRealm, insertUsage } from './helpers/usage-fixture.js';
import { listenOnFreePort } from './server/server-process.js';

// A real listening gateway (node:http + the app with the export endpoints) and the CLI's main run
// in this process (test/helpers/cli-in-process.ts). What only the executable shows (that
// bin/usage-gateway runs `main`, its help and version, exit codes) test/cli.test.ts spawns.

const SALES = 'Sales, "EMEA"';
const LONG = 'leaf with a very long name that goes on and on';

let db: TestDatabase;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
let listening: Awaited<ReturnType<typeof listenOnFreePort>> | undefined;
let url: string;
/** Yesterday (UTC, the realm's time zone) and its month. */
let day: string;
let month: string;

const cli = (args: string[], key: string | null = realm.admin.key) => runCliInProcess(args, { USAGE_GATEWAY_URL: url, USAGE_GATEWAY_KEY: key ?? undefined });

function previousMonth(yyyyMm: string): string {
  const [y, m] = yyyyMm.split('-').map(Number) as [number, number];
  return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, '0')}`;
}

const daily = (...args: string[]) => cli(['usage:daily', '--start-date', day, '--end-date', day, ...args]);
const lines = (text: string) => text.trimEnd().split(/\r?\n/);

beforeAll(async () => {
  db = await createTestDatabase();
  realm = await createUsageRealm(db.prisma, 'UTC');
  await db.prisma.workspace.update({ where: { id: realm.tree.right.id }, data: { name: SALES } });
  await db.prisma.workspace.update({ where: { id: realm.tree.leaf.id }, data: { name: LONG } });
  const yesterday = new Date(Date.now() - 86_400_000);
  day = yesterday.toISOString().slice(0, 10);
  month = day.slice(0, 7);
  const hour = new Date(`${day}T10:00:00Z`);
  const features = Object.fromEntries(Object.entries(realm.features).map(([k, f]) => [k, f.id]));
  const { left, leaf, right } = realm.tree;
  await insertUsage(db.prisma, realm.realm.id, features, [
    { feature: 'tx', hour, workspaceId: left.id, appId: realm.apps[0]!.id, quantity: '12.5' },
    { feature: 'tx', hour, workspaceId: right.id, appId: realm.apps[1]!.id, quantity: '3' },
    { feature: 'spaces', hour, workspaceId: right.id, appId: realm.apps[1]!.id, quantity: '2' },
    { feature: 'req', hour, workspaceId: leaf.id, quantity: '40' },
  ]);
  const app = createApp({ prisma: db.prisma, plugins: [useUsageExportEndpoints({ prisma: db.prisma })] });
  listening = await listenOnFreePort(app);
  url = listening.url;
});

afterAll(async () => {
  await listening?.close();
  await db?.destroy();
});

describe('usage:daily and usage:monthly', () => {
  it('print an aligned table, long cells cut unless --no-truncate', async () => {
    const run = await daily();
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const table = lines(run.stdout);
    expect(table[0]).toMatch(/^date\s+team\s+app\s+product\s+unit\s+quantity$/);
    expect(table).toHaveLength(5);
    // Columns line up: each header starts where its cells start; quantities are right-aligned.
    const at = (name: string) => table[0]!.indexOf(name);
    for (const line of table.slice(1)) {
      expect(line.slice(0, 10)).toBe(day);
      expect(line[at('team') - 1]).toBe(' ');
      expect(line[at('team')]).not.toBe(' ');
    }
    const width = table[0]!.length;
    expect(table.slice(1).every((line) => line.length === width)).toBe(true);
    expect(table.map((line) => line.trim().split(/\s+/).at(-1))).toEqual(['quantity', '40', '12.5', '2', '3']);
    expect(run.stdout).not.toContain(LONG);
    expect(run.stdout).toContain('leaf with a very long name that…');
    expect(run.stdout).toContain(SALES);

    const full = await daily('--no-truncate');
    expect(full.stdout).toContain(LONG);
  });

  it('--csv prints every column, quoted per RFC 4180', async () => {
    const run = await daily('--csv');
    expect(run.code).toBe(0);
    const right = encodeId('Workspace', realm.tree.right.id);
    const app1 = encodeId('App', realm.apps[1]!.id);
    expect(run.stdout.split('\r\n')[0]).toBe('date,team_id,team,app_id,app,product,unit,quantity');
    expect(run.stdout).toContain(`${day},${right},"Sales, ""EMEA""",${app1},app 1,tx,TRANSACTION,3\r\n`);
    expect(parse(run.stdout, { columns: true })).toHaveLength(4);
  });

  it('--columns, --sort -quantity and --no-header', async () => {
    const run = await daily('--columns', 'team,product,quantity', '--sort', '-quantity', '--no-header', '--csv');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe([`${LONG},req,40`, 'left,tx,12.5', `"${SALES.replace(/"/g, '""')}",tx,3`, `"${SALES.replace(/"/g, '""')}",spaces,2`, ''].join('\r\n'));
    const sorted = await daily('--columns', 'product,quantity', '--sort', 'product,-quantity');
    expect(lines(sorted.stdout).map((line) => line.split(/\s+/))).toEqual([
      ['product', 'quantity'],
      ['req', '40'],
      ['spaces', '2'],
      ['tx', '12.5'],
      ['tx', '3'],
    ]);
  });

  it('--filter matches part of a value, case-insensitively, every filter; --team matches a whole name', async () => {
    const run = await daily('--filter', 'product=TX', '--filter', 'team=sal', '--columns', 'team,product,quantity', '--csv', '--no-header');
    expect(run.stdout).toBe(`"Sales, ""EMEA""",tx,3\r\n`);
    const team = await daily('--team', 'LEFT', '--columns', 'team,quantity', '--csv', '--no-header');
    expect(team.stdout).toBe('left,12.5\r\n');
    const byId = await daily('--team', encodeId('Workspace', realm.tree.left.id), '--columns', 'team,quantity', '--csv', '--no-header');
    expect(byId.stdout).toBe('left,12.5\r\n');
  });

  it('an unknown --team is an error (exit 2) that lists the closest names, found through the API', async () => {
    const typo = await daily('--team', 'lef', '--csv');
    expect(typo.code).toBe(2);
    expect(typo.stdout).toBe('');
    expect(typo.stderr).toBe('error: no team (workspace) named "lef"; did you mean "left"?\n');
    const far = await daily('--team', 'Marketing');
    expect(far.code).toBe(2);
    expect(far.stderr).toMatch(/^error: no team \(workspace\) named "Marketing"; did you mean "/);
  });

  it('"No usage data for …" on stderr when no row is left; stdout stays a valid empty answer', async () => {
    const filtered = await daily('--filter', 'product=nothing', '--csv');
    expect(filtered.code).toBe(0);
    expect(filtered.stdout).toBe('date,team_id,team,app_id,app,product,unit,quantity\r\n');
    expect(filtered.stderr).toBe(`No usage data for ${day} to ${day}, product containing "nothing".\n`);
    // A team that exists but has no usage of its own.
    const quiet = await daily('--team', 'root', '--json');
    expect(quiet.code).toBe(0);
    expect(JSON.parse(quiet.stdout)).toEqual([]);
    expect(quiet.stderr).toBe(`No usage data for ${day} to ${day}, team "root".\n`);
    const earlier = await cli(['usage:monthly', '--month', previousMonth(month), '--team', 'left']);
    expect(earlier.code).toBe(0);
    expect(earlier.stderr).toBe(`No usage data for ${previousMonth(month)}, team "left".\n`);
  }, 180_000);

  it('--json prints every column as an array of objects (or the --columns)', async () => {
    const run = await daily('--json', '--sort', '-quantity');
    expect(run.code).toBe(0);
    const rows = JSON.parse(run.stdout) as Array<Record<string, string>>;
    expect(rows).toHaveLength(4);
    expect(rows[0]).toEqual({ date: day, team_id: encodeId('Workspace', realm.tree.leaf.id), team: LONG, app_id: '', app: '', product: 'req', unit: 'REQUEST', quantity: '40' });
    const picked = await daily('--json', '--columns', 'team,quantity', '--team', 'left');
    expect(JSON.parse(picked.stdout)).toEqual([{ team: 'left', quantity: '12.5' }]);
    const both = await daily('--json', '--csv');
    expect(both.code).toBe(2);
    expect(both.stderr).toBe('error: give --csv or --json, not both\n');
  }, 180_000);

  it('--days n and --months n ask for relative periods', async () => {
    const days = await cli(['usage:daily', '--days', '3', '--columns', 'date,quantity', '--csv', '--no-header']);
    expect(days.code).toBe(0);
    expect(lines(days.stdout)).toHaveLength(4);
    const months = await cli(['usage:monthly', '--months', '2', '--columns', 'month,team,quantity', '--sort', 'quantity', '--json']);
    expect(months.code).toBe(0);
    expect(JSON.parse(months.stdout)).toEqual([
      { month, team: SALES, quantity: '2' },
      { month, team: SALES, quantity: '3' },
      { month, team: 'left', quantity: '12.5' },
      { month, team: LONG, quantity: '40' },
    ]);
    const tooMany = await cli(['usage:monthly', '--months', '13']);
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr).toMatch(/^error: --months must be 1 to 12/);
    const mixed = await cli(['usage:daily', '--days', '3', '--start-date', day]);
    expect(mixed.code).toBe(2);
  }, 180_000);

  it('usage:monthly reads a month (and a range of months)', async () => {
    const run = await cli(['usage:monthly', '--month', month, '--columns', 'month,team,product,quantity', '--sort', 'quantity', '--csv']);
    expect(run.code).toBe(0);
    expect(parse(run.stdout, { columns: true })).toEqual([
      { month, team: SALES, product: 'spaces', quantity: '2' },
      { month, team: SALES, product: 'tx', quantity: '3' },
      { month, team: 'left', product: 'tx', quantity: '12.5' },
      { month, team: LONG, product: 'req', quantity: '40' },
    ]);
    const range = await cli(['usage:monthly', '--start-date', month, '--end-date', month, '--csv', '--no-header']);
    expect(lines(range.stdout)).toHaveLength(4);
  });

  it('unknown columns and sort fields are an error (one line on stderr, exit 2) before anything is fetched', async () => {
    const column = await daily('--columns', 'team,bogus');
    expect(column.code).toBe(2);
    expect(column.stdout).toBe('');
    expect(column.stderr).toBe('error: unknown column "bogus"; the columns are date, team_id, team, app_id, app, product, unit, quantity\n');
    const sort = await cli(['usage:monthly', '--sort', '-cost']);
    expect(sort.code).toBe(2);
    expect(sort.stderr).toMatch(/^error: unknown sort field "cost"; the columns are month, /);
    const filter = await daily('--filter', 'nope');
    expect(filter.code).toBe(2);
    expect(filter.stderr).toMatch(/must be name=value/);
  });

  it("the gateway's refusals are one line on stderr: exit 2 for a bad request, 1 otherwise", async () => {
    const early = await cli(['usage:daily', '--start-date', '2020-01-01', '--end-date', '2020-01-02']);
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/^error: the gateway answered 400 Bad Request: A daily export starts at most 6 months ago/);
    const unauthenticated = await cli(['usage:monthly'], 'ugw_00000000_nope');
    expect(unauthenticated.code).toBe(1);
    expect(unauthenticated.stderr).toMatch(/^error: the gateway answered 401 Unauthorized/);
  });
});

describe('keys:create, keys:list, keys:revoke', () => {
  it('creates a key (secret printed once), lists it, revokes it', async () => {
    const created = await cli(['keys:create', '--name', 'reporting', '--scopes', 'usage:read', '--workspace', encodeId('Workspace', realm.tree.left.id)]);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const secret = /^secret: +(\S+)$/m.exec(created.stdout)?.[1];
    const id = /^id: +(\S+)$/m.exec(created.stdout)?.[1];
    expect(secret).toMatch(/^ugw_[0-9a-f]{8}_/);
    expect(created.stdout).toContain('shown this once');

    // The new key works, and sees its workspace's subtree only.
    const scoped = await cli(['usage:daily', '--start-date', day, '--end-date', day, '--columns', 'team', '--csv', '--no-header'], secret!);
    expect(scoped.code).toBe(0);
    expect(lines(scoped.stdout).sort()).toEqual([LONG, 'left'].sort());

    const listed = await cli(['keys:list', '--columns', 'id,name,prefix,scopes,created,last_used,revoked']);
    expect(listed.code).toBe(0);
    expect(lines(listed.stdout)[0]).toMatch(/^id\s+name\s+prefix\s+scopes\s+created\s+last_used\s+revoked$/);
    const row = lines(listed.stdout).find((line) => line.startsWith(id!));
    expect(row).toContain('reporting');
    expect(row).toContain(secret!.slice(0, 12));
    expect(listed.stdout).not.toContain(secret!);

    const revoked = await cli(['keys:revoke', id!]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toMatch(/^revoked API key "reporting"/);
    const after = await cli(['usage:monthly'], secret!);
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(/401/);
    const relisted = await cli(['keys:list', '--columns', 'id,revoked']);
    expect(lines(relisted.stdout).find((line) => line.startsWith(id!))).toMatch(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z$/);
  }, 180_000);

  it('keys:list has the table flags: short default columns, --columns, --csv, --json, --no-truncate', async () => {
    const longName = 'a key with a name long enough to be cut in a table';
    const created = await cli(['keys:create', '--name', longName, '--scopes', 'usage:read,usage:write,keys:manage', '--json']);
    expect(created.code).toBe(0);
    const key = JSON.parse(created.stdout) as Record<string, unknown>;
    expect(key).toMatchObject({ name: longName, scopes: ['usage:read', 'usage:write', 'keys:manage'], revoked: null });
    expect(key.secret).toMatch(/^ugw_[0-9a-f]{8}_/);
    expect(Object.keys(key)).toEqual(['id', 'name', 'prefix', 'scopes', 'created', 'last_used', 'revoked', 'secret']);

    // Independent reads: run side by side (each CLI run starts a Node process).
    const [table, full, csv, json, bad] = await Promise.all([
      cli(['keys:list']),
      cli(['keys:list', '--no-truncate', '--columns', 'name,scopes']),
      cli(['keys:list', '--csv']),
      cli(['keys:list', '--json']),
      cli(['keys:list', '--columns', 'id,secret']),
    ]);
    expect(table.code).toBe(0);
    expect(lines(table.stdout)[0]).toMatch(/^prefix\s+name\s+scopes\s+last_used\s+revoked$/);
    expect(table.stdout).toContain('a key with a name long enough t…');
    expect(Math.max(...lines(table.stdout).map((line) => line.length))).toBeLessThanOrEqual(120);
    expect(full.stdout).toContain(longName);
    expect(full.stdout).toContain('usage:read,usage:write,keys:manage');

    expect(csv.stdout.split('\r\n')[0]).toBe('id,name,prefix,scopes,created,last_used,revoked');
    expect(csv.stdout).toContain(`${key.id as string},${longName},${key.prefix as string},"usage:read,usage:write,keys:manage",`);
    const listed = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    expect(listed.find((k) => k.id === key.id)).toEqual({ ...key, secret: undefined, last_used: null });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('error: unknown column "secret"; the columns are id, name, prefix, scopes, created, last_used, revoked\n');

    // keys:revoke takes the prefix keys:list shows, and --json.
    const revoked = await cli(['keys:revoke', key.prefix as string, '--json']);
    expect(revoked.code).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ id: key.id, revoked: expect.stringMatching(/Z$/) });
    const unknown = await cli(['keys:revoke', 'ugw_00000000']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('error: no API key with the prefix ugw_00000000 (see keys:list)\n');
  }, 180_000);

  it('reports what the gateway refuses', async () => {
    const bad = await cli(['keys:create', '--name', 'x', '--scopes', 'everything']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error: .+/);
    const missing = await cli(['keys:revoke', encodeId('ApiKey', '00000000-0000-0000-0000-000000000000')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^error: No such API key/);
    const noName = await cli(['keys:create', '--scopes', 'usage:read']);
    expect(noName.code).toBe(2);
    expect(noName.stderr).toMatch(/--name/);
  });

  it('--help on every command', async () => {
    for (const command of ['usage:monthly', 'usage:daily', 'keys:create', 'keys:list', 'keys:revoke']) {
      const run = await cli([command, '--help'], null);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^Usage: usage-gateway ${command}`));
    }
  });
});

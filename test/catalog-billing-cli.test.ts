import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { runCliInProcess } from './helpers/cli-in-process.js';
import { createKey } from './helpers/fixtures.js';
import { createUsageRealm } from './helpers/usage-fixture.js';
import { listenOnFreePort } from './server/server-process.js';

let db: TestDatabase;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
let listening: Awaited<ReturnType<typeof listenOnFreePort>> | undefined;
let url: string;

const cli = (args: string[], key: string = realm.admin.key) => runCliInProcess(args, { USAGE_GATEWAY_URL: url, USAGE_GATEWAY_KEY: key });

beforeAll(async () => {
  db = await createTestDatabase();
  realm = await createUsageRealm(db.prisma, 'UTC');
  listening = await listenOnFreePort(createApp({ prisma: db.prisma }));
  url = listening.url;
}, 60_000);

afterAll(async () => {
  await listening?.close();
  await db?.destroy();
});

describe('features:create and features:list', () => {
  it('creates a feature and lists it as a table, CSV or JSON', async () => {
    const created = await cli(['features:create', 'maps.tiles', '--name', 'Map tiles', '--service', 'maps', '--unit', 'request', '--aggregation', 'COUNT', '--arrival-delay', '600', '--json']);
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(created.stdout)).toMatchObject({ key: 'maps.tiles', name: 'Map tiles', service: 'maps', unit: 'REQUEST', aggregation: 'COUNT', arrival_delay_s: 600, archived: null });

    const table = await cli(['features:list']);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^key\s+name\s+service\s+unit\s+aggregation\s+arrival_delay_s\s+archived$/);
    expect(lines.find((l) => l.startsWith('maps.tiles'))).toMatch(/^maps\.tiles\s+Map tiles\s+maps\s+REQUEST\s+COUNT\s+600$/);
    const json = JSON.parse((await cli(['features:list', '--json', '--columns', 'key,unit'])).stdout);
    expect(json).toContainEqual({ key: 'maps.tiles', unit: 'REQUEST' });
    const csv = (await cli(['features:list', '--csv', '--no-header', '--columns', 'key'])).stdout.split('\r\n').filter(Boolean);
    expect(csv).toEqual(['maps.tiles', 'req', 'rows', 'spaces', 'storage', 'tx']);
  });

  it('answers a user error with exit code 2 and the code', async () => {
    const duplicate = await cli(['features:create', 'tx', '--name', 'x', '--service', 'x', '--unit', 'ROW', '--aggregation', 'SUM']);
    expect(duplicate.code).toBe(2);
    expect(duplicate.stderr).toMatch(/DUPLICATE_KEY/);
    const badUnit = await cli(['features:create', 'new.one', '--name', 'x', '--service', 'x', '--unit', 'LITRE', '--aggregation', 'SUM']);
    expect(badUnit.code).toBe(2);
    expect(badUnit.stderr).toMatch(/--unit is one of/);
  });

  it('a key without admin:write is refused (exit code 1, FORBIDDEN)', async () => {
    const { key } = await createKey(db.prisma, realm.realm.id, { scopes: ['usage:read', 'billing:write'] });
    const refused = await cli(['features:create', 'nope', '--name', 'x', '--service', 'x', '--unit', 'ROW', '--aggregation', 'SUM'], key);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/FORBIDDEN/);
  });
});

describe('contracts:create, contracts:amend and contracts:list', () => {
  it('creates a contract with licenses named by feature key, amends it from a date and lists the rows', async () => {
    const created = await cli(['contracts:create', '--name', 'Year 2026', '--starts', '2026-01-01T00:00:00Z', '--ends', '2027-01-01T00:00:00Z', '--license', 'tx=3100', '--license', 'req=50', '--json']);
    expect(created).toMatchObject({ code: 0, stderr: '' });
    const contract = JSON.parse(created.stdout);
    expect(contract).toMatchObject({ name: 'Year 2026', starts: '2026-01-01T00:00:00.000Z', ends: '2027-01-01T00:00:00.000Z' });
    expect(contract.licenses.map((l: any) => [l.feature, l.quantity_per_month])).toEqual([
      ['tx', '3100'],
      ['req', '50'],
    ]);

    const amended = await cli(['contracts:amend', contract.id, '--license', 'tx=6200@2026-03-16T00:00:00Z']);
    expect(amended.code).toBe(0);
    expect(amended.stdout).toContain('amended contract "Year 2026"');
    expect(amended.stdout).toContain('tx: 3100 per month from 2026-01-01T00:00:00.000Z to 2026-03-16T00:00:00.000Z');
    expect(amended.stdout).toContain('tx: 6200 per month from 2026-03-16T00:00:00.000Z to 2027-01-01T00:00:00.000Z');

    const table = await cli(['contracts:list']);
    expect(table.stderr).toBe('');
    expect(table.stdout).toMatch(/Year 2026\s+2026-01-01T00:00Z\s+2027-01-01T00:00Z\s+tx=3100, req=50, tx=6200/);
    const csv = await cli(['contracts:list', '--csv', '--columns', 'name,licenses']);
    expect(csv.stdout).toContain('tx=3100@2026-01-01T00:00:00.000Z..2026-03-16T00:00:00.000Z');
  });

  it('refuses an unknown feature key, a malformed --license and a bad date before calling the gateway (exit code 2)', async () => {
    for (const args of [
      ['contracts:create', '--name', 'x', '--starts', '2030-01-01', '--ends', '2031-01-01', '--license', 'nope=1'],
      ['contracts:create', '--name', 'x', '--starts', '2030-01-01', '--ends', '2031-01-01', '--license', 'tx=-1'],
      ['contracts:create', '--name', 'x', '--starts', 'soon', '--ends', '2031-01-01'],
      ['contracts:amend', 'some-id', '--license', 'tx=1'],
      ['contracts:amend', 'some-id'],
    ]) {
      const run = await cli(args);
      expect(run.code, args.join(' ')).toBe(2);
    }
    const overlap = await cli(['contracts:create', '--name', 'x', '--starts', '2026-06-01T00:00:00Z', '--ends', '2028-01-01T00:00:00Z']);
    expect(overlap.code).toBe(2);
    expect(overlap.stderr).toMatch(/OVERLAPPING_CONTRACT/);
  });
});

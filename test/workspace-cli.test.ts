import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { treeOrder } from '../src/cli/workspaces.js';
import { encodeId } from '../src/global-id.js';
import { createApp } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { runCliInProcess } from './helpers/cli-in-process.js';
import { createKey } from './helpers/fixtures.js';
import { createUsageRealm } from './helpers/usage-fixture.js';
import { listenOnFreePort } from './server/server-process.js';

// A real listening gateway and the CLI's main run in this process (test/helpers/cli-in-process.ts).

let db: TestDatabase;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
let listening: Awaited<ReturnType<typeof listenOnFreePort>> | undefined;
let url: string;
let readOnly: string;

const cli = (args: string[], key: string = realm.admin.key) => runCliInProcess(args, { USAGE_GATEWAY_URL: url, USAGE_GATEWAY_KEY: key });
const json = (text: string) => JSON.parse(text);

beforeAll(async () => {
  db = await createTestDatabase();
  realm = await createUsageRealm(db.prisma, 'UTC');
  readOnly = (await createKey(db.prisma, realm.realm.id, { scopes: ['usage:read'] })).key;
  listening = await listenOnFreePort(createApp({ prisma: db.prisma }));
  url = listening.url;
});
afterAll(async () => {
  await listening?.close();
  await db?.destroy();
});

describe('workspaces:*', () => {
  it('create, move and archive; the tree drawn with indentation', async () => {
    const team = await cli(['workspaces:create', '--name', 'Team', '--parent', encodeId('Workspace', realm.tree.right.id), '--json']);
    expect(team).toMatchObject({ code: 0, stderr: '' });
    const created = json(team.stdout);
    expect(created).toMatchObject({ name: 'Team', depth: 2, parent_id: encodeId('Workspace', realm.tree.right.id), archived: null });
    const squad = json((await cli(['workspaces:create', '--name', 'Squad', '--parent', created.id, '--json'])).stdout);
    expect(squad.depth).toBe(3);

    const moved = await cli(['workspaces:move', created.id, '--parent', encodeId('Workspace', realm.tree.leaf.id)]);
    expect(moved).toMatchObject({ code: 0 });
    expect(moved.stdout).toMatch(/^moved workspace "Team" .* its depth is 3\n$/);

    const tree = await cli(['workspaces:tree', '--columns', 'tree', '--no-header']);
    expect(tree.code).toBe(0);
    expect(tree.stdout).toBe(['root', '  left', '    leaf', '      Team', '        Squad', '  right', ''].join('\n'));

    const archived = await cli(['workspaces:archive', squad.id]);
    expect(archived).toMatchObject({ code: 0, stdout: expect.stringMatching(/^archived workspace "Squad"/) });
    expect((await cli(['workspaces:tree', '--columns', 'tree', '--no-header'])).stdout).not.toContain('Squad');
    expect((await cli(['workspaces:tree', '--columns', 'tree', '--no-header', '--include-archived'])).stdout).toContain('        Squad (archived)\n');

    const rows = json((await cli(['workspaces:tree', '--json'])).stdout) as Array<Record<string, unknown>>;
    expect(rows.map((r) => r.name)).toEqual(['root', 'left', 'leaf', 'Team', 'right']);
    expect(Object.keys(rows[0]!)).toEqual(['tree', 'id', 'name', 'depth', 'parent_id', 'created', 'archived']);
    const csv = parse((await cli(['workspaces:tree', '--csv', '--columns', 'name,depth'])).stdout) as string[][];
    expect(csv.slice(0, 3)).toEqual([['name', 'depth'], ['root', '0'], ['left', '1']]);

    const root = await cli(['workspaces:move', created.id, '--root', '--json']);
    expect(json(root.stdout)).toMatchObject({ depth: 0, parent_id: null });
  });

  it('user errors are exit code 2 with the code; a wrong command line too; a key without admin:write exit code 1', async () => {
    const cycle = await cli(['workspaces:move', encodeId('Workspace', realm.tree.root.id), '--parent', encodeId('Workspace', realm.tree.leaf.id)]);
    expect(cycle).toMatchObject({ code: 2, stdout: '' });
    expect(cycle.stderr).toContain('WOULD_CREATE_CYCLE');
    const duplicate = await cli(['workspaces:create', '--name', 'LEFT', '--parent', encodeId('Workspace', realm.tree.root.id)]);
    expect(duplicate).toMatchObject({ code: 2, stderr: expect.stringContaining('DUPLICATE_NAME') });
    const live = await cli(['workspaces:archive', encodeId('Workspace', realm.tree.root.id)]);
    expect(live).toMatchObject({ code: 2, stderr: expect.stringContaining('HAS_LIVE_CHILDREN') });
    expect(await cli(['workspaces:move', encodeId('Workspace', realm.tree.leaf.id)])).toMatchObject({ code: 2, stderr: expect.stringContaining('--parent') });
    expect((await cli(['workspaces:tree', '--columns', 'nope'])).code).toBe(2);
    const forbidden = await cli(['workspaces:create', '--name', 'x'], readOnly);
    expect(forbidden).toMatchObject({ code: 1, stderr: expect.stringContaining('admin:write') });
  });
});

describe('datastreams:*', () => {
  it('create, rename, move, archive and list', async () => {
    const left = encodeId('Workspace', realm.tree.left.id);
    const right = encodeId('Workspace', realm.tree.right.id);
    const created = await cli(['datastreams:create', '--workspace', left, '--name', 'Orders', '--idempotency-key', 'orders-1', '--json']);
    expect(created).toMatchObject({ code: 0 });
    const stream = json(created.stdout);
    expect(stream).toMatchObject({ name: 'Orders', workspace_id: left, workspace: 'left', archived: null });
    // a retry with the same key answers the same datastream
    expect(json((await cli(['datastreams:create', '--workspace', left, '--name', 'Orders', '--idempotency-key', 'orders-1', '--json'])).stdout).id).toBe(stream.id);

    expect((await cli(['datastreams:rename', stream.id, '--name', 'Invoices'])).stdout).toBe(`renamed datastream ${stream.id} to "Invoices"\n`);
    expect((await cli(['datastreams:move', stream.id, '--workspace', right])).stdout).toContain('to workspace "right"');
    const listed = json((await cli(['datastreams:list', '--workspace', right, '--json'])).stdout) as Array<Record<string, unknown>>;
    expect(listed.map((d) => d.name).sort()).toEqual(['Invoices', 'stream 2']);
    const table = await cli(['datastreams:list', '--columns', 'name,workspace']);
    expect(table.stdout.split('\n')[0]).toMatch(/^name\s+workspace$/);
    expect(table.stdout).toMatch(/Invoices\s+right/);

    expect((await cli(['datastreams:archive', stream.id])).code).toBe(0);
    const after = json((await cli(['datastreams:list', '--json'])).stdout) as Array<Record<string, unknown>>;
    expect(after.some((d) => d.id === stream.id)).toBe(false);
    const all = json((await cli(['datastreams:list', '--json', '--include-archived'])).stdout) as Array<Record<string, unknown>>;
    expect(all.find((d) => d.id === stream.id)).toMatchObject({ archived: expect.any(String) });
    expect(await cli(['datastreams:archive', stream.id])).toMatchObject({ code: 2, stderr: expect.stringContaining('ALREADY_ARCHIVED') });
    expect(await cli(['datastreams:create', '--workspace', left, '--name', ''])).toMatchObject({ code: 2, stderr: expect.stringContaining('BLANK') });
  });
});

describe('treeOrder', () => {
  it('puts each parent before its children, siblings by name; an invisible parent makes a root', () => {
    const w = (id: string, name: string, parent: string | null) => ({ id, name, parent: parent ? { id: parent } : null });
    const ordered = treeOrder([w('3', 'b', '1'), w('1', 'root', 'hidden'), w('2', 'a', '1'), w('4', 'x', '2')]);
    expect(ordered.map((o) => `${o.level}:${o.name}`)).toEqual(['0:root', '1:a', '2:x', '1:b']);
  });
});

import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperatorKey } from '../src/admin/operators.js';
import { parseApiKey } from '../src/auth/api-key-secret.js';
import { MAX_AUDIT_ENTRIES } from '../src/cli/audit.js';
import { encodeId } from '../src/global-id.js';
import { createApp } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { runCliInProcess } from './helpers/cli-in-process.js';
import { createKey } from './helpers/fixtures.js';
import { createUsageRealm } from './helpers/usage-fixture.js';
import { listenOnFreePort } from './server/server-process.js';

// `usage-gateway audit:list` against a real listening gateway, the CLI's main run in this process.

let db: TestDatabase;
let realmA: Awaited<ReturnType<typeof createUsageRealm>>;
let realmB: Awaited<ReturnType<typeof createUsageRealm>>;
let listening: Awaited<ReturnType<typeof listenOnFreePort>> | undefined;
let url: string;
let operatorKey: string;
/** Global ids of what the CLI created in each realm, oldest first. */
const made = { a: [] as string[], b: [] as string[] };
let movedId: string;

const cli = (args: string[], key: string) => runCliInProcess(args, { USAGE_GATEWAY_URL: url, USAGE_GATEWAY_KEY: key });
type Entry = { id: string; at: string; action: string; actor: string; key: string | null; target_type: string; target_id: string | null; before: unknown; after: unknown; request_id: string | null };
async function entries(args: string[], key: string = realmA.admin.key): Promise<Entry[]> {
  const run = await cli(['audit:list', ...args, '--json'], key);
  expect(run, run.stderr).toMatchObject({ code: 0 });
  return JSON.parse(run.stdout) as Entry[];
}

async function created(args: string[], key: string): Promise<string> {
  const run = await cli([...args, '--json'], key);
  expect(run.code, run.stderr).toBe(0);
  return (JSON.parse(run.stdout) as { id: string }).id;
}

beforeAll(async () => {
  db = await createTestDatabase();
  realmA = await createUsageRealm(db.prisma, 'UTC');
  realmB = await createUsageRealm(db.prisma, 'UTC');
  const operator = await createOperatorKey(db.prisma, { name: 'audit test operator' });
  if (!('secret' in operator)) throw new Error(JSON.stringify(operator));
  operatorKey = operator.secret;
  listening = await listenOnFreePort(createApp({ prisma: db.prisma }));
  url = listening.url;

  // An entry from long ago (before every --since below): written as the log is written, by an INSERT.
  await db.prisma.auditEntry.create({
    data: { realmId: realmA.realm.id, actorType: 'SYSTEM', action: 'workspace.create', targetType: 'Workspace', targetId: realmA.tree.root.id, changes: { before: null, after: { name: 'root' } }, createdAt: new Date('2020-01-01T00:00:00Z') },
  });
  made.a.push(await created(['workspaces:create', '--name', 'Audited A', '--parent', encodeId('Workspace', realmA.tree.root.id)], realmA.admin.key));
  made.a.push(await created(['workspaces:create', '--name', 'Audited A2', '--parent', encodeId('Workspace', realmA.tree.root.id)], realmA.admin.key));
  movedId = made.a[1]!;
  const move = await cli(['workspaces:move', movedId, '--parent', made.a[0]!], realmA.admin.key);
  expect(move.code, move.stderr).toBe(0);
  made.b.push(await created(['workspaces:create', '--name', 'Audited B', '--parent', encodeId('Workspace', realmB.tree.root.id)], realmB.admin.key));
});
afterAll(async () => {
  await listening?.close();
  await db?.destroy();
});

describe('audit:list', () => {
  it("shows a realm key its realm's entries, newest first, with who did what to which node", async () => {
    const list = await entries([]);
    expect(list.map((e) => e.action)).toEqual(['workspace.move', 'workspace.create', 'workspace.create', 'workspace.create']);
    expect(list.map((e) => e.target_id)).toEqual([movedId, made.a[1], made.a[0], encodeId('Workspace', realmA.tree.root.id)]);
    expect(list.map((e) => Number(e.id))).toEqual([...list.map((e) => Number(e.id))].sort((x, y) => y - x));
    const [move] = list;
    expect(move).toMatchObject({
      actor: 'API_KEY',
      key: parseApiKey(realmA.admin.key)!.prefix,
      target_type: 'Workspace',
      before: { parentId: encodeId('Workspace', realmA.tree.root.id), depth: 1 },
      after: { parentId: made.a[0], depth: 2 },
    });
    expect(move!.request_id).toEqual(expect.any(String));
    expect(Object.keys(move!)).toEqual(['id', 'at', 'action', 'actor', 'key', 'target_type', 'target_id', 'before', 'after', 'request_id']);
    // Nothing of realm B.
    expect(list.some((e) => made.b.includes(e.target_id!))).toBe(false);
    expect((await entries([], realmB.admin.key)).map((e) => e.target_id)).toEqual(made.b);
  });

  it('filters by action (one or several), by target and by time', async () => {
    expect((await entries(['--action', 'workspace.move'])).map((e) => e.target_id)).toEqual([movedId]);
    expect((await entries(['--action', 'workspace.move', 'workspace.create'])).length).toBe(4);
    expect(await entries(['--action', 'realm.suspend'])).toEqual([]);
    expect((await entries(['--target', movedId])).map((e) => e.action)).toEqual(['workspace.move', 'workspace.create']);
    const since = await entries(['--since', '2021-01-01T00:00:00Z']);
    expect(since.map((e) => e.target_id)).toEqual([movedId, made.a[1], made.a[0]]);
    expect(await entries(['--since', '2999-01-01T00:00:00Z'])).toEqual([]);
    expect((await entries(['--limit', '2'])).map((e) => e.action)).toEqual(['workspace.move', 'workspace.create']);
  });

  it('prints a table by default and CSV with --csv; an empty log says so on stderr', async () => {
    const table = await cli(['audit:list', '--action', 'workspace.move'], realmA.admin.key);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^at\s+action\s+actor\s+key\s+target_type\s+after/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain('workspace.move');
    const csv = parse((await cli(['audit:list', '--csv', '--columns', 'action,target_id', '--action', 'workspace.move'], realmA.admin.key)).stdout) as string[][];
    expect(csv).toEqual([['action', 'target_id'], ['workspace.move', movedId]]);
    const empty = await cli(['audit:list', '--action', 'nothing.ever'], realmA.admin.key);
    expect(empty).toMatchObject({ code: 0, stderr: 'No audit entries.\n' });
  });

  it('pages through more entries than one request answers, up to --limit', async () => {
    await db.prisma.auditEntry.createMany({
      data: Array.from({ length: 150 }, (_, i) => ({ realmId: realmA.realm.id, actorType: 'SYSTEM', action: 'test.bulk', targetType: 'Workspace', targetId: null, changes: { before: null, after: { i } } })),
    });
    const list = await entries(['--action', 'test.bulk', '--limit', '120']);
    expect(list).toHaveLength(120);
    expect(new Set(list.map((e) => e.id)).size).toBe(120);
    expect(list.map((e) => (e.after as { i: number }).i)).toEqual(Array.from({ length: 120 }, (_, i) => 149 - i));
    expect(await entries(['--action', 'test.bulk', '--limit', String(MAX_AUDIT_ENTRIES)])).toHaveLength(150);
  });

  it('refuses a bad --limit or --since with exit code 2 before asking the gateway', async () => {
    for (const limit of ['0', '-1', 'ten', '1.5', String(MAX_AUDIT_ENTRIES + 1)]) {
      const run = await cli(['audit:list', '--limit', limit], realmA.admin.key);
      expect(run, limit).toMatchObject({ code: 2, stdout: '' });
      expect(run.stderr).toContain('--limit');
    }
    const since = await cli(['audit:list', '--since', 'yesterday'], realmA.admin.key);
    expect(since).toMatchObject({ code: 2, stdout: '' });
    expect(since.stderr).toContain('--since');
  });

  it('refuses keys without the right: read-only, workspace-scoped (exit code 1)', async () => {
    const readOnly = (await createKey(db.prisma, realmA.realm.id, { scopes: ['usage:read'] })).key;
    const scopedAdmin = (await createKey(db.prisma, realmA.realm.id, { workspaceId: realmA.tree.left.id, scopes: ['admin:write', 'keys:manage'] })).key;
    for (const key of [readOnly, scopedAdmin]) {
      const run = await cli(['audit:list'], key);
      expect(run).toMatchObject({ code: 1, stdout: '' });
      expect(run.stderr).toMatch(/FORBIDDEN|not allowed|scope/i);
    }
  });

  it("shows an operator every realm's entries with --all-realms, and the operators' own", async () => {
    const list = await entries(['--all-realms', '--action', 'workspace.create', 'workspace.move', 'operatorKey.create'], operatorKey);
    const targets = list.map((e) => e.target_id);
    for (const id of [...made.a, ...made.b]) expect(targets).toContain(id);
    expect(list.some((e) => e.action === 'operatorKey.create' && e.actor === 'SYSTEM')).toBe(true);
    expect(list.map((e) => Number(e.id))).toEqual([...list.map((e) => Number(e.id))].sort((x, y) => y - x));
  });
});

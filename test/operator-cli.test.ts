import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_OPERATOR_KEY, devOperatorKeyAtStart } from '../src/admin/operators.js';
import { openDatabase, type Database } from '../src/db/database.js';
import { createApp } from '../src/yoga.js';
import { runCliInProcess } from './helpers/cli-in-process.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from './helpers/database.js';
import { createKey, createRealm } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { listenOnFreePort } from './server/server-process.js';

/**
 * operator:create-key opens the database itself: on PostgreSQL this run's scratch database
 * (DATABASE_URL), on PGlite a directory of its own (PGLITE_DIR) that the test opens afterwards.
 */
let db: Database & { destroy?: () => Promise<void> };
let databaseEnv: Record<string, string | undefined>;
let pgliteDir: string | undefined;
let operatorKey: string;

beforeAll(async () => {
  if (testDatabaseKind() === 'postgres') {
    const test: TestDatabase = await createTestDatabase();
    db = test;
    if (test.target.kind !== 'postgres') throw new Error('expected PostgreSQL');
    databaseEnv = { DATABASE_URL: test.target.url, PGLITE_DIR: undefined };
  } else {
    pgliteDir = mkdtempSync(path.join(os.tmpdir(), 'ugw-operator-cli-'));
    databaseEnv = { DATABASE_URL: undefined, PGLITE_DIR: pgliteDir };
  }
}, 120_000);

afterAll(async () => {
  await (db?.destroy ?? db?.close)?.call(db);
  if (pgliteDir) rmSync(pgliteDir, { recursive: true, force: true });
});

/** The PGlite directory is one process's: the test opens it only between CLI runs. */
async function withDatabase<T>(work: (database: Database) => Promise<T>): Promise<T> {
  if (db) return work(db);
  const opened = await openDatabase({ kind: 'pglite', dir: pgliteDir! });
  try {
    return await work(opened);
  } finally {
    await opened.close();
  }
}

describe('usage-gateway operator:create-key', () => {
  it('creates an operator key in the database (migrating it first), audits it, and prints the secret once', async () => {
    const run = await runCliInProcess(['operator:create-key', '--name', 'on-call'], databaseEnv);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const secret = /^secret:\s+(ugwop_[0-9a-f]{8}_\S+)$/m.exec(run.stdout)?.[1];
    const id = /^id:\s+(\S+)$/m.exec(run.stdout)?.[1];
    expect(secret).toBeDefined();
    expect(run.stdout.split(secret!).length - 1).toBe(1);
    expect(run.stdout).toMatch(/shown this once/);
    operatorKey = secret!;

    await withDatabase(async ({ prisma }) => {
      const row = await prisma.operatorKey.findUniqueOrThrow({ where: { id: Buffer.from(id!, 'base64url').toString().replace(/^OperatorKey:/, '') } });
      expect(row).toMatchObject({ name: 'on-call', prefix: secret!.slice(0, 'ugwop_'.length + 8), revokedAt: null });
      expect(JSON.stringify(row)).not.toContain(secret!.slice(15));
      const [entry] = await prisma.auditEntry.findMany({ where: { targetId: row.id } });
      expect(entry).toMatchObject({ action: 'operatorKey.create', actorType: 'SYSTEM', actorId: null, realmId: null, targetType: 'OperatorKey', changes: { before: null, after: { name: 'on-call', prefix: row.prefix } } });
      // The key works against a gateway on that database: an operator, no realm.
      const app = createApp({ prisma });
      const viewer = await graphql(app, '{ viewer { kind scopes realm { id } } }', { key: secret! });
      expect(viewer.body.data.viewer).toEqual({ kind: 'OPERATOR', scopes: ['realms:manage'], realm: null });
    });
  });

  it('--json prints the key with its secret', async () => {
    const run = await runCliInProcess(['operator:create-key', '--name', 'automation', '--json'], databaseEnv);
    expect(run.code).toBe(0);
    const json = JSON.parse(run.stdout);
    expect(json).toEqual({ id: expect.any(String), name: 'automation', prefix: expect.stringMatching(/^ugwop_[0-9a-f]{8}$/), created: expect.any(String), secret: expect.stringMatching(/^ugwop_/) });
    expect(json.secret.startsWith(`${json.prefix}_`)).toBe(true);
  });

  it('a blank name or an unusable DATABASE_URL is a wrong command line (exit 2), and nothing is created', async () => {
    const count = () => withDatabase(({ prisma }) => prisma.operatorKey.count());
    const before = await count();
    const blank = await runCliInProcess(['operator:create-key', '--name', '  '], databaseEnv);
    expect(blank.code).toBe(2);
    expect(blank.stderr).toMatch(/^error: --name: A name cannot be empty/);
    const badUrl = await runCliInProcess(['operator:create-key', '--name', 'x'], { DATABASE_URL: 'mysql://nope', PGLITE_DIR: undefined });
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toMatch(/^error: .*DATABASE_URL/);
    const missingName = await runCliInProcess(['operator:create-key'], databaseEnv);
    expect(missingName.code).toBe(2);
    expect(await count()).toBe(before);
  });
});

describe('usage-gateway realms:*', () => {
  let listening: Awaited<ReturnType<typeof listenOnFreePort>>;
  let gateway: (key: string) => Record<string, string>;
  let database: Database;
  let realmKey: string;

  beforeAll(async () => {
    database = db ?? (await openDatabase({ kind: 'pglite', dir: pgliteDir! }));
    listening = await listenOnFreePort(createApp({ prisma: database.prisma }));
    gateway = (key) => ({ USAGE_GATEWAY_URL: listening.url, USAGE_GATEWAY_KEY: key });
    const realm = await createRealm(database.prisma, 'CLI realm');
    realmKey = (await createKey(database.prisma, realm.id)).key;
  });
  afterAll(async () => {
    await listening?.close();
    if (!db) await database?.close();
  });

  const slug = `cli-${Date.now().toString(36)}`;

  it('realms:create prints the realm and its admin key secret once; a retry with the idempotency key does not print it again', async () => {
    const args = ['realms:create', '--name', 'Umbrella', '--slug', slug, '--time-zone', 'Europe/Paris', '--tier', 'ENTERPRISE', '--custom-rate-limit', '4000', '--idempotency-key', `cli-${slug}`];
    const run = await runCliInProcess(args, gateway(operatorKey));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^created realm "Umbrella" \\(${slug}\\)$`, 'm'));
    expect(run.stdout).toMatch(/^tier:\s+ENTERPRISE \(4000 requests per minute\)$/m);
    const secret = /^secret:\s+(ugw_\S+)$/m.exec(run.stdout)?.[1];
    expect(secret).toBeDefined();
    const viewer = await fetch(`${listening.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ viewer { realm { slug } } }' }),
    });
    expect(((await viewer.json()) as any).data.viewer.realm.slug).toBe(slug);

    const again = await runCliInProcess([...args, '--json'], gateway(operatorKey));
    expect(again.code).toBe(0);
    const json = JSON.parse(again.stdout);
    expect(json).toMatchObject({ slug, name: 'Umbrella', tier: 'ENTERPRISE', custom_rate_limit: 4000, time_zone: 'Europe/Paris', suspended: null, admin_key: { secret: null } });
    expect(json.admin_key.scopes).toContain('admin:write');
  });

  it('realms:create reports bad input with its code (exit 2)', async () => {
    const taken = await runCliInProcess(['realms:create', '--name', 'Again', '--slug', slug], gateway(operatorKey));
    expect(taken.code).toBe(2);
    expect(taken.stderr).toMatch(/slug.*DUPLICATE_KEY/);
    const zone = await runCliInProcess(['realms:create', '--name', 'Zone', '--slug', `${slug}-z`, '--time-zone', 'Nowhere/Land'], gateway(operatorKey));
    expect(zone.code).toBe(2);
    expect(zone.stderr).toMatch(/INVALID_TIME_ZONE/);
    const tier = await runCliInProcess(['realms:create', '--name', 'Tier', '--slug', `${slug}-t`, '--tier', 'GOLD'], gateway(operatorKey));
    expect(tier.code).toBe(2);
  });

  it('realms:list: a table, CSV, JSON, chosen columns, and the suspension filters', async () => {
    const table = await runCliInProcess(['realms:list'], gateway(operatorKey));
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^slug\s+name\s+tier\s+time_zone\s+suspended$/);
    expect(table.stdout).toContain(slug);
    const json = JSON.parse((await runCliInProcess(['realms:list', '--json'], gateway(operatorKey))).stdout) as Array<Record<string, unknown>>;
    expect(json.length).toBe(await database.prisma.realm.count());
    expect(Object.keys(json[0]!)).toEqual(['id', 'name', 'slug', 'tier', 'custom_rate_limit', 'time_zone', 'created', 'suspended']);
    const csv = await runCliInProcess(['realms:list', '--csv', '--columns', 'slug,tier', '--no-header'], gateway(operatorKey));
    expect(csv.stdout).toContain(`${slug},ENTERPRISE\r\n`);
    const none = await runCliInProcess(['realms:list', '--suspended', '--json'], gateway(operatorKey));
    expect(JSON.parse(none.stdout).map((r: { slug: string }) => r.slug)).not.toContain(slug);
    const both = await runCliInProcess(['realms:list', '--suspended', '--active'], gateway(operatorKey));
    expect(both.code).toBe(2);
    const badColumn = await runCliInProcess(['realms:list', '--columns', 'slug,owner'], gateway(operatorKey));
    expect(badColumn.code).toBe(2);
  });

  it('realms:suspend by slug and realms:resume by id; the realm key is refused in between', async () => {
    const suspended = await runCliInProcess(['realms:suspend', slug, '--json'], gateway(operatorKey));
    expect(suspended.code).toBe(0);
    const realm = JSON.parse(suspended.stdout);
    expect(realm.suspended).toEqual(expect.any(String));
    const listed = JSON.parse((await runCliInProcess(['realms:list', '--suspended', '--json', '--columns', 'slug'], gateway(operatorKey))).stdout);
    expect(listed).toEqual([{ slug }]);
    const resumed = await runCliInProcess(['realms:resume', realm.id], gateway(operatorKey));
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/^resumed realm "Umbrella"/);
    const unknown = await runCliInProcess(['realms:suspend', 'no-such-realm'], gateway(operatorKey));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no realm with the slug no-such-realm/);
  });

  it("a realm's key is refused: every realms command exits 1 with FORBIDDEN's message", async () => {
    for (const args of [['realms:list'], ['realms:create', '--name', 'x', '--slug', `${slug}-x`], ['realms:suspend', slug]]) {
      const run = await runCliInProcess(args, gateway(realmKey));
      expect(run.code, args.join(' ')).toBe(1);
      expect(run.stderr).toMatch(/realms:manage/);
    }
  });
});

describe('--help', () => {
  it('documents the exit codes and --json on every operator command', async () => {
    for (const command of ['operator:create-key', 'realms:create', 'realms:list', 'realms:suspend', 'realms:resume']) {
      const help = await runCliInProcess([command, '--help']);
      expect(help.code, command).toBe(0);
      expect(help.stdout.replace(/\s+/g, ' '), command).toContain('Exit codes: 0 success; 1 an error');
      expect(help.stdout, command).toMatch(/--json/);
    }
  });
});

describe('the development operator key', () => {
  it('is created at a development start when the database has no operator key, kept, and revoked by a production start', async () => {
    const fresh = await createTestDatabase();
    try {
      const dev = { development: true, seedDemo: true };
      expect(await devOperatorKeyAtStart(fresh.prisma, dev)).toEqual({ key: DEV_OPERATOR_KEY });
      expect(await devOperatorKeyAtStart(fresh.prisma, dev)).toEqual({ key: DEV_OPERATOR_KEY });
      expect(await fresh.prisma.operatorKey.count()).toBe(1);
      const app = createApp({ prisma: fresh.prisma });
      expect((await graphql(app, '{ viewer { kind } }', { key: DEV_OPERATOR_KEY })).body.data.viewer.kind).toBe('OPERATOR');

      expect(await devOperatorKeyAtStart(fresh.prisma, { development: false, seedDemo: true })).toEqual({ revoked: true });
      expect((await graphql(app, '{ viewer { kind } }', { key: DEV_OPERATOR_KEY })).status).toBe(401);
      expect(await devOperatorKeyAtStart(fresh.prisma, { development: false, seedDemo: false })).toEqual({});
      // Revoked by an operator's choice: a development start does not bring it back.
      expect(await devOperatorKeyAtStart(fresh.prisma, dev)).toEqual({});
      const actions = (await fresh.prisma.auditEntry.findMany({ orderBy: { id: 'asc' } })).map((e) => e.action);
      expect(actions).toEqual(['operatorKey.create', 'operatorKey.revoke']);
    } finally {
      await fresh.destroy();
    }
  });

  // On the file's database (no fresh copy needed): it holds an operator key, made here or by operator:create-key above.
  it('is not created when the database has an operator key already', async () => {
    await withDatabase(async ({ prisma }) => {
      await prisma.operatorKey.create({ data: { name: 'real', prefix: 'ugwop_12345678', secretHash: '0'.repeat(64) } });
      const before = await prisma.operatorKey.count();
      expect(await devOperatorKeyAtStart(prisma, { development: true, seedDemo: true })).toEqual({});
      expect(await prisma.operatorKey.count()).toBe(before);
    });
  });
});

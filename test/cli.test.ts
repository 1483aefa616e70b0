import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useIngestEndpoint } from '../src/ingest/http.js';
import { createApp } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createUsageRealm } from './helpers/usage-fixture.js';
import { freePort, listenOnFreePort, runCli } from './server/server-process.js';

// A real listening gateway (node:http + the app) and the real CLI (bin/usage-gateway) as a child process.


let db: TestDatabase;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
let listening: Awaited<ReturnType<typeof listenOnFreePort>> | undefined;
let url: string;
let dir: string;

/** Runs the CLI with only the environment variables given here. */
const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, env);

function writeEvents(name: string, lines: string[]): string {
  const file = path.join(dir, name);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** Events an hour ago: inside every feature's arrival delay whenever the test runs. */
function event(id: string, quantity = '1') {
  const timestamp = new Date(Date.now() - 3_600_000).toISOString();
  return JSON.stringify({ idempotencyKey: id, feature: 'tx', timestamp, quantity });
}

beforeAll(async () => {
  db = await createTestDatabase();
  realm = await createUsageRealm(db.prisma);
  const app = createApp({ prisma: db.prisma, plugins: [useIngestEndpoint({ prisma: db.prisma })] });
  listening = await listenOnFreePort(app);
  url = listening.url;
  dir = mkdtempSync(path.join(os.tmpdir(), 'ugw-cli-'));
});

afterAll(async () => {
  await listening?.close();
  await db?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('usage-gateway CLI', () => {
  it('prints help for the program and for ingest', async () => {
    const root = await cli(['--help']);
    expect(root.code).toBe(0);
    expect(root.stdout).toMatch(/Usage: usage-gateway/);
    expect(root.stdout).toMatch(/ingest \[options\] <file>/);

    const ingest = await cli(['ingest', '--help']);
    expect(ingest.code).toBe(0);
    expect(ingest.stdout).toMatch(/Usage: usage-gateway ingest \[options\] <file>/);
    expect(ingest.stdout).toMatch(/USAGE_GATEWAY_URL/);
    expect(ingest.stdout).toMatch(/USAGE_GATEWAY_KEY/);
  });

  it('streams a file to the gateway, prints the counts and the rejected lines', async () => {
    const file = writeEvents('events.ndjson', [event('cli-1', '2'), '{broken', event('cli-2'), event('cli-3', '-1'), event('cli-4', '0.5')]);
    const run = await cli(['ingest', file, '--url', url], { USAGE_GATEWAY_KEY: realm.admin.key });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^accepted\s+3$/m);
    expect(run.stdout).toMatch(/^duplicates\s+0$/m);
    expect(run.stdout).toMatch(/^rejected\s+2$/m);
    expect(run.stdout).toMatch(/^lines\s+5$/m);
    expect(run.stdout).toMatch(/line 2: MALFORMED_JSON: not valid JSON/);
    expect(run.stdout).toMatch(/line 4: INVALID_QUANTITY: /);

    const stored = await db.prisma.usageEvent.findMany({ where: { realmId: realm.realm.id }, select: { idempotencyKey: true }, orderBy: { idempotencyKey: 'asc' } });
    expect(stored.map((e) => e.idempotencyKey)).toEqual(['cli-1', 'cli-2', 'cli-4']);
    const hourly = await db.prisma.usageHourly.aggregate({ where: { realmId: realm.realm.id, featureId: realm.features.tx.id }, _sum: { quantity: true } });
    expect(hourly._sum.quantity?.toString()).toBe('3.5');

    // Again, with --key and --json: nothing new, all duplicates.
    const again = await cli(['ingest', file, '--url', url, '--key', realm.admin.key, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ accepted: 0, duplicates: 3, rejected: 2, lines: 5 });
  });

  it('exits 1 with the server\'s message for a bad key or a key without usage:write', async () => {
    const file = writeEvents('one.ndjson', [event('never')]);
    const bad = await cli(['ingest', file], { USAGE_GATEWAY_URL: url, USAGE_GATEWAY_KEY: 'ugw_00000000_AAAAAAAAAAAAAAAAAAAAAAAA' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error: the gateway answered 401 Unauthorized: A valid API key is required/);
    expect(bad.stdout).toBe('');

    const readOnly = await cli(['ingest', file], { USAGE_GATEWAY_URL: url, USAGE_GATEWAY_KEY: realm.scoped.key });
    expect(readOnly.code).toBe(1);
    expect(readOnly.stderr).toMatch(/^error: the gateway answered 403 Forbidden: .*usage:write/);
    expect(await db.prisma.usageEvent.count({ where: { idempotencyKey: 'never' } })).toBe(0);
  });

  it('exits with a clear line: 2 for wrong input (no key, an empty file), 1 when a file or the gateway cannot be reached', async () => {
    const file = writeEvents('two.ndjson', [event('nobody')]);
    const noKey = await cli(['ingest', file, '--url', url]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/^error: no API key: pass --key <key> or set USAGE_GATEWAY_KEY/);

    const noFile = await cli(['ingest', path.join(dir, 'missing.ndjson'), '--url', url, '--key', realm.admin.key]);
    expect(noFile.code).toBe(1);
    expect(noFile.stderr).toMatch(/^error: cannot read .*missing\.ndjson: no such file/);

    const emptyFile = path.join(dir, 'empty.ndjson');
    writeFileSync(emptyFile, '');
    const empty = await cli(['ingest', emptyFile, '--url', url, '--key', realm.admin.key]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/^error: the gateway answered 400 Bad Request: The body is empty/);

    const closedPort = await freePort();
    const noGateway = await cli(['ingest', file, '--url', `http://127.0.0.1:${closedPort}`, '--key', realm.admin.key]);
    expect(noGateway.code).toBe(1);
    expect(noGateway.stderr).toMatch(/^error: cannot connect to the gateway at http:\/\/127\.0\.0\.1:\d+ \(connection refused\)/);
  });
});

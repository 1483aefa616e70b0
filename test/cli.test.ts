import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useIngestEndpoint } from '../src/ingest/http.js';
import { createApp } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { runCliInProcess } from './helpers/cli-in-process.js';
import { createUsageRealm } from './helpers/usage-fixture.js';
import { freePort, listenOnFreePort, outputOf, projectRoot, runCli, type CliRun } from './server/server-process.js';

// A real listening gateway (node:http + the app) and the real CLI (bin/usage-gateway) as a child
// process for what only the executable shows (help and version, exit codes, symlinks, a terminal);
// the commands' behaviour runs the same `main` in this process (test/helpers/cli-in-process.ts).


let db: TestDatabase;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
let listening: Awaited<ReturnType<typeof listenOnFreePort>> | undefined;
let url: string;
let dir: string;

/** Runs the CLI with only the environment variables given here. */
const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, env);
/** The same, with the CLI's `main` run in this process. */
const cliInProcess = (args: string[], env: Record<string, string> = {}) => runCliInProcess(args, env);

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
  // In process: what the executable does with the exit code `main` returns is proved by --version (0) and no command (2) below.
  it('prints help for the program and for ingest', async () => {
    const root = await cliInProcess(['--help']);
    expect(root.code).toBe(0);
    expect(root.stdout).toMatch(/Usage: usage-gateway/);
    expect(root.stdout).toMatch(/ingest \[options\] <file>/);

    const ingest = await cliInProcess(['ingest', '--help']);
    expect(ingest.code).toBe(0);
    expect(ingest.stdout).toMatch(/Usage: usage-gateway ingest \[options\] <file>/);
    expect(ingest.stdout).toMatch(/USAGE_GATEWAY_URL/);
    expect(ingest.stdout).toMatch(/USAGE_GATEWAY_KEY/);
  });

  it('streams a file to the gateway, prints the counts and the rejected lines', async () => {
    const file = writeEvents('events.ndjson', [event('cli-1', '2'), '{broken', event('cli-2'), event('cli-3', '-1'), event('cli-4', '0.5')]);
    const run = await cliInProcess(['ingest', file, '--url', url], { USAGE_GATEWAY_KEY: realm.admin.key });
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
    const again = await cliInProcess(['ingest', file, '--url', url, '--key', realm.admin.key, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ accepted: 0, duplicates: 3, rejected: 2, lines: 5 });
  });

  it('exits 1 with the server\'s message for a bad key or a key without usage:write', async () => {
    const file = writeEvents('one.ndjson', [event('never')]);
    const bad = await cliInProcess(['ingest', file], { USAGE_GATEWAY_URL: url, USAGE_GATEWAY_KEY: 'ugw_00000000_AAAAAAAAAAAAAAAAAAAAAAAA' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error: the gateway answered 401 Unauthorized: A valid API key is required/);
    expect(bad.stdout).toBe('');

    const readOnly = await cliInProcess(['ingest', file], { USAGE_GATEWAY_URL: url, USAGE_GATEWAY_KEY: realm.scoped.key });
    expect(readOnly.code).toBe(1);
    expect(readOnly.stderr).toMatch(/^error: the gateway answered 403 Forbidden: .*usage:write/);
    expect(await db.prisma.usageEvent.count({ where: { idempotencyKey: 'never' } })).toBe(0);
  });

  it('exits with a clear line: 2 for wrong input (no key, an empty file), 1 when a file or the gateway cannot be reached', async () => {
    const file = writeEvents('two.ndjson', [event('nobody')]);
    const noKey = await cliInProcess(['ingest', file, '--url', url]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/^error: no API key: pass --key <key> or set USAGE_GATEWAY_KEY/);

    const noFile = await cliInProcess(['ingest', path.join(dir, 'missing.ndjson'), '--url', url, '--key', realm.admin.key]);
    expect(noFile.code).toBe(1);
    expect(noFile.stderr).toMatch(/^error: cannot read .*missing\.ndjson: no such file/);

    const emptyFile = path.join(dir, 'empty.ndjson');
    writeFileSync(emptyFile, '');
    const empty = await cliInProcess(['ingest', emptyFile, '--url', url, '--key', realm.admin.key]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/^error: the gateway answered 400 Bad Request: The body is empty/);

    const closedPort = await freePort();
    const noGateway = await cliInProcess(['ingest', file, '--url', `http://127.0.0.1:${closedPort}`, '--key', realm.admin.key]);
    expect(noGateway.code).toBe(1);
    expect(noGateway.stderr).toMatch(/^error: cannot connect to the gateway at http:\/\/127\.0\.0\.1:\d+ \(connection refused\)/);
  });

  it('--version prints the package version; no command prints the help on stderr, exit 2', async () => {
    const { version } = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string };
    const run = await cli(['--version']);
    expect(run).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
    const bare = await cli([]);
    expect(bare.code).toBe(2);
    expect(bare.stdout).toBe('');
    expect(bare.stderr).toMatch(/^Usage: usage-gateway/);
  });

  it('--help documents every exit code on every command, and they are the codes the CLI uses', async () => {
    const commands = [[], ['ingest'], ['usage:monthly'], ['usage:daily'], ['keys:create'], ['keys:list'], ['keys:revoke']];
    for (const help of await Promise.all(commands.map((command) => cliInProcess([...command, '--help'])))) {
      expect(help.code).toBe(0);
      expect(help.stdout.replace(/\s+/g, ' ')).toContain('Exit codes: 0 success; 1 an error');
      expect(help.stdout.replace(/\s+/g, ' ')).toContain('2 a wrong command line');
      expect(help.stdout).toMatch(/--json/);
    }
    const unknownOption = await cliInProcess(['usage:monthly', '--bogus']);
    expect(unknownOption.code).toBe(2);
    const unknownCommand = await cliInProcess(['usage:yearly']);
    expect(unknownCommand.code).toBe(2);
  }, 180_000);

  it("the example of ingest --help runs as written: events timestamped now are accepted, not TOO_LATE", async () => {
    const help = await cliInProcess(['ingest', '--help']);
    expect(help.stdout).not.toMatch(/"timestamp":"\d{4}-/);
    const example = help.stdout.split('\n').find((line) => line.trim().startsWith('printf '))!.trim();
    const made = spawnSync('bash', ['-c', example], { cwd: dir, encoding: 'utf8' });
    expect(made.status).toBe(0);
    const run = await cliInProcess(['ingest', path.join(dir, 'events.ndjson'), '--url', url, '--json'], { USAGE_GATEWAY_KEY: realm.admin.key });
    expect(run.code).toBe(0);
    // The example's feature key is the demo's; this realm calls it "tx": the line is rejected as UNKNOWN_FEATURE, not TOO_LATE.
    expect(JSON.parse(run.stdout).errors.map((e: { code: string }) => e.code)).toEqual(['UNKNOWN_FEATURE']);
  });

  it('works from any directory, through a chain of symlinks (npm link, npm install -g .)', async () => {
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'ugw-link-'));
    try {
      symlinkSync(path.join(projectRoot, 'bin/usage-gateway'), path.join(elsewhere, 'first-link'));
      symlinkSync('first-link', path.join(elsewhere, 'usage-gateway'));
      const file = writeEvents('linked.ndjson', [event('linked-1')]);
      const run = await runIn(elsewhere, ['./usage-gateway', 'ingest', file, '--url', url, '--json'], { USAGE_GATEWAY_KEY: realm.admin.key });
      expect(run.stderr).toBe('');
      expect(JSON.parse(run.stdout)).toMatchObject({ accepted: 1 });
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it("an answer that is not the gateway's (HTML, JSON of another shape) is an error (exit 1), not an empty table", async () => {
    const impostor = http.createServer((req, res) => {
      if (req.url?.startsWith('/json')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(req.url.includes('ingest') ? '{"ok":true}' : '{"data":{"hello":"world"}}');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><html><body>Welcome to nginx!</body></html>');
    });
    const port = await freePort();
    await new Promise<void>((resolve) => impostor.listen(port, '127.0.0.1', resolve));
    const env = { USAGE_GATEWAY_KEY: realm.admin.key };
    const file = writeEvents('impostor.ndjson', [event('impostor-1')]);
    try {
      const html = `http://127.0.0.1:${port}`;
      const json = `http://127.0.0.1:${port}/json`;
      const cases: Array<[string, string[]]> = [
        ['usage over HTML', ['usage:monthly', '--url', html]],
        ['keys over HTML', ['keys:list', '--url', html]],
        ['ingest over HTML', ['ingest', file, '--url', html]],
        ['usage over JSON', ['usage:daily', '--url', json]],
        ['keys over JSON', ['keys:list', '--url', json]],
        ['team over JSON', ['usage:daily', '--team', 'left', '--url', json]],
        ['ingest over JSON', ['ingest', file, '--url', json]],
      ];
      const runs = await Promise.all(cases.map(async ([what, args]): Promise<[string, CliRun]> => [what, await cliInProcess(args, env)]));
      for (const [what, run] of runs) {
        expect(run.code, what).toBe(1);
        expect(run.stdout, what).toBe('');
        expect(run.stderr, what).toMatch(/^error: the answer is not the gateway's \(.+\); is --url \(USAGE_GATEWAY_URL\) the gateway\?\n$/);
      }
    } finally {
      await new Promise((resolve) => impostor.close(resolve));
    }
  }, 180_000);

  it('shows a spinner on stderr only when stderr is a terminal', async () => {
    // `script` gives the command a pseudo-terminal (sized, as a terminal window is); stdout and stderr both go to it.
    const command = ['stty cols 120 rows 40;', path.join(projectRoot, 'bin/usage-gateway'), 'keys:list', '--url', url, '--key', realm.admin.key].join(' ');
    const tty = await runIn(dir, ['script', '-qec', command, '/dev/null'], {});
    expect(tty.code).toBe(0);
    expect(tty.stdout).toContain('fetching the API keys');
    expect(tty.stdout).toMatch(/prefix\s+name\s+scopes/);
    const piped = await cli(['keys:list', '--url', url, '--key', realm.admin.key]);
    expect(piped.stderr).toBe('');
  });
});

/** Runs a command in `cwd` with only these gateway variables. */
function runIn(cwd: string, argv: string[], env: Record<string, string>): Promise<CliRun> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.USAGE_GATEWAY_URL;
  if (!env.USAGE_GATEWAY_KEY) delete childEnv.USAGE_GATEWAY_KEY;
  return outputOf(spawn(argv[0]!, argv.slice(1), { cwd, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] }));
}

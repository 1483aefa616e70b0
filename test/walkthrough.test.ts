import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliInProcess } from './helpers/cli-in-process.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from './helpers/database.js';
import { freePort, outputOf, projectRoot, startServer, type CliRun, type ServerProcess } from './server/server-process.js';

/**
 * README "From an empty database to the first usage report of a new customer", run as written on an
 * empty database (PGlite: a directory of its own; PostgreSQL: this file's scratch database), in the
 * reader's shell: bash expands each `$ ` line of its console blocks after the `export`s before it,
 * from a directory outside the project. `SEED_DEMO=false npm start` starts the server (src/server.ts,
 * the `npm start` entry). `usage-gateway ingest umbrella.ndjson` reads the file the shell wrote in
 * that directory: it runs the real command, bin/usage-gateway, on PATH through a symlink as
 * `npm link` makes. The other `usage-gateway` lines run the same CLI `main` in this process
 * (test/helpers/cli-in-process.ts) with the arguments and the variables bash gave them: a spawned
 * CLI per line costs a second of CPU and proves nothing the real one here and in test/cli.test.ts
 * does not. The values the reader copies from a step's output into `export NAME=…` are taken from
 * what that step printed. The blocks are `console` fences, which test/readme.test.ts (it runs the
 * `sh` ones against the demo) leaves alone.
 */

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const HEADING = '## From an empty database to the first usage report of a new customer\n';
const section = readme.slice(readme.indexOf(HEADING), readme.indexOf('\n## ', readme.indexOf(HEADING) + HEADING.length));

interface Step {
  /** The command as written, continuation lines (a here-document) included. */
  command: string;
  /** The output the README shows below it. */
  shown: string[];
}

/** The blocks' steps: `$ ` lines, a here-document up to its terminator, then the lines shown as output. */
function stepsOf(block: string): Step[] {
  const steps: Step[] = [];
  const lines = block.split('\n').filter((line, i, all) => line !== '' || i < all.length - 1);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.startsWith('$ ')) {
      steps.at(-1)!.shown.push(line);
      continue;
    }
    let command = line.slice(2);
    const heredoc = /<<\s*'?(\w+)'?\s*$/.exec(command)?.[1];
    if (heredoc) {
      while (lines[++i] !== heredoc) command += `\n${lines[i]}`;
      command += `\n${heredoc}`;
    }
    steps.push({ command, shown: [] });
  }
  return steps;
}

const blocks = [...section.matchAll(/^```console\n([\s\S]*?)^```/gm)].map((m) => stepsOf(m[1]!));

/** Where the reader finds each value in the output of the step before its `export`. */
const COPIED: Record<string, { from: RegExp; like: RegExp }> = {
  OPERATOR_KEY: { from: /^secret:\s+(\S+)$/m, like: /^ugwop_[0-9a-f]{8}_/ },
  USAGE_GATEWAY_KEY: { from: /^secret:\s+(\S+)$/m, like: /^ugw_[0-9a-f]{8}_/ },
  ROOT_ID: { from: /^created workspace "[^"]+" \((\S+)\)/m, like: /^V29ya3NwYWNl/ },
  RESEARCH_ID: { from: /^created workspace "[^"]+" \((\S+)\)/m, like: /^V29ya3NwYWNl/ },
  SENSORS_ID: { from: /^created datastream "[^"]+" \((\S+)\)/m, like: /^RGF0YXN0cmVhbT/ },
};

let db: TestDatabase | undefined;
let databaseEnv: Record<string, string>;
let pgliteDir: string | undefined;
let server: ServerProcess | undefined;
let url: string;
let workDir: string;
let binDir: string;
/** `export`s and assignments so far: every later command runs after them, as in the reader's shell. */
const prelude: string[] = [];
const printed: Array<{ command: string; run: CliRun }> = [];

beforeAll(async () => {
  if (testDatabaseKind() === 'postgres') {
    db = await createTestDatabase();
    if (db.target.kind !== 'postgres') throw new Error('expected PostgreSQL');
    databaseEnv = { DATABASE_URL: db.target.url };
  } else {
    pgliteDir = mkdtempSync(path.join(os.tmpdir(), 'ugw-walkthrough-db-'));
    databaseEnv = { PGLITE_DIR: pgliteDir };
  }
  workDir = mkdtempSync(path.join(os.tmpdir(), 'ugw-walkthrough-'));
  binDir = path.join(workDir, 'bin');
  mkdirSync(binDir);
  symlinkSync(path.join(projectRoot, 'bin/usage-gateway'), path.join(binDir, 'usage-gateway'));
}, 120_000);

afterAll(async () => {
  await server?.stop();
  // The server and the CLI have closed it: the scratch database can go.
  await db?.destroy();
  for (const dir of [pgliteDir, workDir]) if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

function bash(command: string): Promise<CliRun> {
  const env: Record<string, string | undefined> = { ...process.env, ...databaseEnv, PATH: `${binDir}${path.delimiter}${process.env.PATH}` };
  for (const name of ['USAGE_GATEWAY_URL', 'USAGE_GATEWAY_KEY', ...(testDatabaseKind() === 'postgres' ? ['PGLITE_DIR'] : ['DATABASE_URL'])]) delete env[name];
  return outputOf(spawn('bash', ['-c', [...prelude, command].join('\n')], { cwd: workDir, env, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Runs the real executable: the step reads a file the shell wrote in its working directory. */
const REAL_EXECUTABLE = /^usage-gateway ingest /;

/**
 * A `usage-gateway` line the way the reader's shell would run it, with the CLI's `main` in this
 * process: bash expands the arguments (quotes, "$ROOT_ID") and reports the gateway variables the
 * `export`s set; the database variables are this file's, as bash's environment has them.
 */
async function cliInProcess(command: string): Promise<CliRun> {
  const words = command.slice('usage-gateway '.length);
  // `${NAME+=…}`: empty when unset, `=value` when set (even to the empty string).
  const expanded = await bash(`printf '%s\\0' "\${USAGE_GATEWAY_URL+=$USAGE_GATEWAY_URL}" "\${USAGE_GATEWAY_KEY+=$USAGE_GATEWAY_KEY}" ${words}`);
  expect(expanded.code, `${command}\n${expanded.stderr}`).toBe(0);
  const [url, key, ...args] = expanded.stdout.split('\0').slice(0, -1);
  const variable = (value: string | undefined) => (value ? value.slice(1) : undefined);
  const other = testDatabaseKind() === 'postgres' ? 'PGLITE_DIR' : 'DATABASE_URL';
  return runCliInProcess(args, { ...databaseEnv, [other]: undefined, USAGE_GATEWAY_URL: variable(url), USAGE_GATEWAY_KEY: variable(key) });
}

const quote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;
/** The first word of each line, months as YYYY-MM: the shape of an output, whatever ids and dates it holds. */
const shape = (lines: string[]) => lines.filter((line) => line.trim()).map((line) => line.trim().split(/\s+/)[0]!.replace(/^\d{4}-\d{2}$/, 'YYYY-MM'));

async function runStep(step: Step): Promise<void> {
  const { command } = step;
  if (/^SEED_DEMO=false npm start$/.test(command)) {
    const port = await freePort();
    server = startServer({ ...databaseEnv, SEED_DEMO: 'false', PORT: String(port), HOST: '127.0.0.1' });
    await server.waitForLine(/listening on/, 180_000);
    url = `http://127.0.0.1:${port}`;
    expect(server.stdout.join('\n'), 'no demo key and no development operator key without the demo').not.toMatch(/^(API|Operator) key:/m);
    return;
  }
  const assignment = /^(export )?([A-Z_]+)=(.+?)(\s+#\s.*)?$/.exec(command);
  if (assignment) {
    const [, exported, name, written] = assignment as unknown as [string, string | undefined, string, string];
    if (name === 'USAGE_GATEWAY_URL') {
      expect(written).toBe('http://localhost:4000');
      prelude.push(`export ${name}=${quote(url)}`);
    } else if (COPIED[name]) {
      const { from, like } = COPIED[name];
      const previous = printed.at(-1)!;
      const value = from.exec(previous.run.stdout)?.[1];
      expect(value, `${name} from the output of ${previous.command}`).toBeDefined();
      // The README's example has the form of what the step printed.
      expect(written, name).toMatch(like);
      expect(value, name).toMatch(like);
      prelude.push(`export ${name}=${quote(value!)}`);
    } else {
      // An assignment the shell computes itself (NOW=$(date …)).
      expect(exported, `${command}: set by the shell, not copied`).toBeUndefined();
      prelude.push(command);
    }
    return;
  }
  const run = command.startsWith('usage-gateway ') && !REAL_EXECUTABLE.test(command) ? await cliInProcess(command) : await bash(command);
  expect(run.code, `${command}\n${run.stdout}\n${run.stderr}`).toBe(0);
  expect(run.stderr, command).not.toMatch(/error/i);
  if (step.shown.length) expect(shape(run.stdout.split('\n')), `${command} prints what the README shows`).toEqual(shape(step.shown));
  printed.push({ command, run });
}

describe(`README walkthrough on an empty ${testDatabaseKind()} database`, () => {
  it('finds the section and its steps', () => {
    expect(section.startsWith(HEADING)).toBe(true);
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    const commands = blocks.flat().map((s) => s.command);
    for (const needed of ['operator:create-key', 'realms:create', 'workspaces:create', 'datastreams:create', 'features:create', 'contracts:create', 'ingest', 'usage:monthly', 'audit:list']) {
      expect(commands.some((c) => c.startsWith(`usage-gateway ${needed} `) || c === `usage-gateway ${needed}`), needed).toBe(true);
    }
    // One step runs the real executable (bin/usage-gateway through its symlink on PATH).
    expect(commands.filter((c) => REAL_EXECUTABLE.test(c))).toHaveLength(1);
    // Only the CLI and the API: no SQL, no curl to anything but the gateway, no other tool.
    expect(commands.filter((c) => !/^(usage-gateway |export |[A-Z_]+=|SEED_DEMO=false npm start$|cat > \S+ <<EOF\n)/.test(c))).toEqual([]);
  });

  it.each(blocks.map((steps, i) => [i + 1, steps] as const))('runs block %i as written', async (_n, steps) => {
    for (const step of steps) await runStep(step);
  }, 300_000);

  it("ends with the new customer's usage and the trail of what was done", () => {
    const report = printed.find((p) => p.command.startsWith('usage-gateway usage:monthly'))!;
    const rows = report.run.stdout.trim().split('\n').map((line) => line.trim().split(/\s+/));
    expect(rows[0]).toEqual(['month', 'team', 'app', 'product', 'unit', 'quantity']);
    // Team, product and quantity of each row (the app column is empty: no app was named).
    expect(rows.slice(1).map((r) => [r[1], r[2], r[4]])).toEqual([
      ['Research', 'lab.samples', '200.5'],
      ['Umbrella', 'lab.samples', '42'],
    ]);
    const trail = printed.find((p) => p.command.startsWith('usage-gateway audit:list'))!;
    const actions = trail.run.stdout.trim().split('\n').slice(1).map((line) => line.trim().split(/\s+/).slice(0, 2));
    expect(actions).toEqual([
      ['contract.create', 'API_KEY'],
      ['feature.create', 'API_KEY'],
      ['datastream.create', 'API_KEY'],
      ['workspace.create', 'API_KEY'],
      ['workspace.create', 'API_KEY'],
      ['apiKey.create', 'OPERATOR'],
      ['realm.create', 'OPERATOR'],
    ]);
  });
});

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, validate, type OperationDefinitionNode } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_API_KEY } from '../src/db/seed.js';
import { useUsageExportEndpoints } from '../src/exports/http.js';
import { useIngestEndpoint } from '../src/ingest/http.js';
import { memoryLiveHub, type LiveHub } from '../src/live/hub.js';
import { useRestRoutes } from '../src/rest/http.js';
import { schema } from '../src/schema/index.js';
import { createApp } from '../src/yoga.js';
import { runCliInProcess } from './helpers/cli-in-process.js';
import type { TestDatabase } from './helpers/database.js';
import { createDemoTestDatabase } from './helpers/demo-database.js';
import { takeSseEvents } from './helpers/sse.js';
import { listenOnFreePort, outputOf, projectRoot, type CliRun } from './server/server-process.js';

// Every example of README.md runs as written against a copy of the run's freshly seeded demo and answers with data:
// the GraphQL blocks over HTTP with the demo key, the shell blocks (curl, usage-gateway) in bash,
// the command installed as `npm link` would (a symlink on PATH), from a directory outside the project.
// A `usage-gateway` line that needs no more of the shell than its words and variables (no redirection,
// no variables set in front of it) runs the CLI's `main` in this process with the arguments and the
// variables bash expanded (test/helpers/cli-in-process.ts): a spawned CLI costs a second of CPU per line.
// The others (reading and writing files in that directory) run the real command through the symlinks.

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

interface Fence {
  lang: string;
  body: string;
  /** 1-based line of the opening fence, to name the example. */
  line: number;
}

const fences: Fence[] = [...readme.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)].map((m) => ({
  lang: m[1]!,
  body: m[2]!,
  line: readme.slice(0, m.index).split('\n').length,
}));

const graphqlExamples = fences.filter((f) => f.lang === 'graphql' && /^\s*(\{|query|mutation)/.test(f.body));
const subscriptionExamples = fences.filter((f) => f.lang === 'graphql' && /^\s*subscription/.test(f.body));
const shellFences = fences.filter((f) => f.lang === 'sh');

/** The commands of a shell block: continuation lines joined, comment-only lines left out. */
function shellCommands(body: string): string[] {
  const commands: string[] = [];
  let current = '';
  for (const line of body.split('\n')) {
    if (!current && /^\s*(#|$)/.test(line)) continue;
    // A quoted argument may span lines (curl -d '{ … }'): keep reading until the quotes close.
    current += (current ? '\n' : '') + line;
    const open = (current.replace(/"[^"]*"/g, '').match(/'/g) ?? []).length % 2 === 1;
    if (open || current.endsWith('\\')) continue;
    commands.push(current);
    current = '';
  }
  if (current) commands.push(current);
  return commands;
}

/** Commands about the project itself (install, tests, migrations): not run against the demo. */
const PROJECT_COMMAND = /^(npm |npx prisma |[A-Z_]+=\S+ npm )/;
const isDemoCommand = (command: string) => !PROJECT_COMMAND.test(command);
const shellExamples = shellFences
  .map((fence) => ({ ...fence, commands: shellCommands(fence.body).filter(isDemoCommand) }))
  .filter((fence) => fence.commands.length > 0);

let db: TestDatabase;
let live: LiveHub;
let listening: Awaited<ReturnType<typeof listenOnFreePort>> | undefined;
let origin: string;
let workDir: string;
let binDir: string;
/** Values for the GraphQL examples' variables, by name, read from the demo. */
let variables: Record<string, unknown>;

async function graphql(query: string, vars: Record<string, unknown> = {}) {
  const response = await fetch(`${origin}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${DEMO_API_KEY}`, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query, variables: vars }),
  });
  return (await response.json()) as { data?: Record<string, unknown>; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
}

beforeAll(async () => {
  db = await createDemoTestDatabase();
  live = memoryLiveHub(db.prisma);
  const app = createApp({ prisma: db.prisma, live, plugins: [useIngestEndpoint({ prisma: db.prisma }), useUsageExportEndpoints({ prisma: db.prisma }), useRestRoutes({ prisma: db.prisma })] });
  listening = await listenOnFreePort(app);
  origin = listening.url;
  workDir = mkdtempSync(path.join(os.tmpdir(), 'ugw-readme-'));
  // What `npm link` makes: a symlink to a symlink to bin/usage-gateway, on PATH.
  binDir = path.join(workDir, 'bin');
  mkdirSync(binDir);
  symlinkSync(path.join(projectRoot, 'bin/usage-gateway'), path.join(binDir, 'ugw-link'));
  symlinkSync(path.join(binDir, 'ugw-link'), path.join(binDir, 'usage-gateway'));

  const ids = await graphql('{ viewer { realm { workspaces(first: 1, rootsOnly: true) { edges { node { id } } } features(first: 50) { edges { node { id key } } } } } }');
  const realm = (ids.data as { viewer: { realm: { workspaces: { edges: Array<{ node: { id: string } }> }; features: { edges: Array<{ node: { id: string; key: string } }> } } } }).viewer.realm;
  const feature = (key: string) => realm.features.edges.find((edge) => edge.node.key === key)!.node.id;
  variables = {
    ids: [realm.workspaces.edges[0]!.node.id, feature('location.transactions')],
    features: [feature('rows.unique'), feature('rows.total')],
    featureId: feature('location.transactions'),
    workspaceId: realm.workspaces.edges[0]!.node.id,
    events: [{ idempotencyKey: 'readme-graphql-1', feature: 'location.transactions', timestamp: new Date().toISOString(), quantity: '12' }],
  };
  // The first file to ask for the run's demo seeds it (13 months of hourly usage): minutes on a busy machine.
}, 600_000);

afterAll(async () => {
  await listening?.close();
  await live?.close();
  await db?.destroy();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/** Lists with at least one element anywhere in a JSON value. */
function nonEmptyLists(value: unknown): number {
  if (Array.isArray(value)) return (value.length > 0 ? 1 : 0) + value.reduce((n: number, v) => n + nonEmptyLists(v), 0);
  if (value && typeof value === 'object') return Object.values(value).reduce((n: number, v) => n + nonEmptyLists(v), 0);
  return 0;
}

/** What a mutation refused: its `userErrors`, the events `ingestUsage` rejected. */
function userErrors(value: unknown): unknown[] {
  if (Array.isArray(value)) return value.flatMap(userErrors);
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => ((k === 'userErrors' || k === 'rejected') && Array.isArray(v) ? v : userErrors(v)));
  }
  return [];
}

/** The first `event: next` of a subscription over SSE (graphql-yoga's transport), or what ended the stream. */
async function firstPushed(query: string, trigger: () => Promise<unknown>): Promise<{ data?: Record<string, unknown>; errors?: unknown[] }> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 20_000);
  try {
    const response = await fetch(`${origin}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${DEMO_API_KEY}`, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query }),
      signal: abort.signal,
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    // The subscription may start listening a moment after the answer's headers: make something
    // happen now and every half second until it is heard.
    let heard = false;
    const triggering = (async () => {
      while (!heard && !abort.signal.aborted) {
        await trigger();
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended without an event: ${text}`);
      text += decoder.decode(value, { stream: true });
      const pushed = takeSseEvents(text).events.find((e) => e.event === 'next' || e.event === 'complete');
      if (pushed) {
        heard = true;
        await triggering;
        return pushed.data ?? {};
      }
    }
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

describe('README subscription examples', () => {
  it.each(subscriptionExamples.map((f) => [f.line, f.body]))('the example at line %i is valid and pushes data on the demo when usage arrives', async (_line, body) => {
    expect(validate(schema, parse(body as string)).map((e) => e.message)).toEqual([]);
    let sent = 0;
    const pushed = await firstPushed(body as string, () =>
      graphql('mutation ($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted } }', {
        events: [{ idempotencyKey: `readme-subscription-${_line}-${++sent}`, feature: 'location.transactions', timestamp: new Date().toISOString(), quantity: '1' }],
      }),
    );
    expect(pushed.errors).toBeUndefined();
    expect(nonEmptyLists(pushed.data)).toBeGreaterThan(0);
  });
});

describe('README GraphQL examples', () => {
  it('finds the examples', () => {
    expect(graphqlExamples.length).toBeGreaterThanOrEqual(12);
  });

  it.each(graphqlExamples.map((f) => [f.line, f.body]))('the example at line %i is valid against the schema', (_line, body) => {
    expect(validate(schema, parse(body as string)).map((e) => e.message)).toEqual([]);
  });

  it.each(graphqlExamples.map((f) => [f.line, f.body]))('the example at line %i answers with data on the demo', async (_line, body) => {
    const operation = parse(body as string).definitions[0] as OperationDefinitionNode;
    const names = (operation.variableDefinitions ?? []).map((v) => v.variable.name.value);
    for (const name of names) expect(variables, `a value for $${name}`).toHaveProperty(name);
    const answer = await graphql(body as string, Object.fromEntries(names.map((name) => [name, variables[name]])));
    expect(answer.errors).toBeUndefined();
    expect(userErrors(answer.data)).toEqual([]);
    expect(nonEmptyLists(answer.data) + (operation.operation === 'mutation' ? 1 : 0)).toBeGreaterThan(0);
    if (operation.operation === 'mutation') expect(JSON.stringify(answer.data)).not.toMatch(/:null[,}]/);
  });
});

type Run = CliRun;

function bash(command: string, env: Record<string, string>): Promise<Run> {
  return outputOf(
    spawn('bash', ['-c', command], {
      cwd: workDir,
      env: { ...process.env, USAGE_GATEWAY_URL: '', USAGE_GATEWAY_KEY: '', ...env, PATH: `${binDir}${path.delimiter}${process.env.PATH}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

/** Non-null scalars anywhere in a JSON value. */
function leaves(value: unknown): number {
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + leaves(v), 0);
  if (value && typeof value === 'object') return Object.values(value).reduce((n: number, v) => n + leaves(v), 0);
  return value === null || value === undefined ? 0 : 1;
}

/** What a command printed (or wrote to the file it redirects to) holds data, not just a header. */
function expectData(command: string, run: Run) {
  const withoutComments = command.replace(/\s+#\s.*$/gm, '');
  const file = /\s(?:>|-o)\s*(\S+\.\w+)\s*$/.exec(withoutComments)?.[1];
  const output = file ? readFileSync(path.join(workDir, file), 'utf8') : run.stdout;
  if (/--version\b/.test(command)) return expect(output.trim()).toMatch(/^\d+\.\d+\.\d+/);
  let json: unknown;
  try {
    json = JSON.parse(output);
  } catch {
    json = undefined;
  }
  if (json !== undefined) {
    expect(JSON.stringify(json), command).not.toMatch(/"errors":\[\{/);
    expect(userErrors(json), command).toEqual([]);
    const counts = json as { accepted?: number; duplicates?: number };
    if (Array.isArray(json)) expect(json.length, command).toBeGreaterThan(0);
    else if (typeof counts.accepted === 'number') expect(counts.accepted + (counts.duplicates ?? 0), command).toBeGreaterThan(0);
    expect(leaves(json), command).toBeGreaterThan(0);
    return;
  }
  // A table or CSV has a header and at least one row; other commands print at least a line.
  const listing = /usage:(monthly|daily)|keys:list|\.csv\b/.test(withoutComments);
  expect(output.split(/\r?\n/).filter((line) => line.trim()).length, `${command}\n${output}`).toBeGreaterThanOrEqual(listing ? 2 : 1);
}

/** A `usage-gateway` line without redirections, pipes or variables set in front of it: its CLI can run in this process. */
const runsInProcess = (command: string) => /^usage-gateway\s/.test(command) && !/[<>|;&`]/.test(command.replace(/\s+#\s.*$/gm, ''));

/** The line the way bash runs it (its words and `export`s expanded), with the CLI's `main` in this process. */
async function cliInProcess(script: string[], command: string, env: Record<string, string>): Promise<Run> {
  // `${NAME+=…}`: empty when unset, `=value` when set (even to the empty string).
  const words = command.slice('usage-gateway'.length);
  const expanded = await bash([...script, `printf '%s\\0' "\${USAGE_GATEWAY_URL+=$USAGE_GATEWAY_URL}" "\${USAGE_GATEWAY_KEY+=$USAGE_GATEWAY_KEY}"${words}`].join('\n'), env);
  expect(expanded.code, `${command}\n${expanded.stderr}`).toBe(0);
  const [url, key, ...args] = expanded.stdout.split('\0').slice(0, -1);
  const variable = (value: string | undefined) => (value ? value.slice(1) : undefined);
  return runCliInProcess(args, { USAGE_GATEWAY_URL: variable(url), USAGE_GATEWAY_KEY: variable(key) });
}

describe('README REST examples', () => {
  it("use the demo realm's id for realmId", async () => {
    const realm = /^export REALM=(\S+)/m.exec(readme)?.[1];
    const answer = await graphql('{ viewer { realm { id } } }');
    expect(realm).toBe((answer.data as { viewer: { realm: { id: string } } }).viewer.realm.id);
  });

  it('answer rows and billable items on the demo', async () => {
    const get = async (path: string) => (await fetch(`${origin}${path}`, { headers: { authorization: `Bearer ${DEMO_API_KEY}` } })).json() as Promise<Record<string, unknown[]>>;
    expect((await get('/api/v1/usage/?granularity=monthly&page_size=5')).results!.length).toBe(5);
    const day = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);
    const realm = /^export REALM=(\S+)/m.exec(readme)?.[1];
    const billable = await get(`/api/v1/billable-usage?realmId=${realm}&startDate=${day(7)}T00:00:00&endDate=${day(0)}T00:00:00&detailLevel=day`);
    expect(billable.items!.length).toBeGreaterThan(0);
  });
});

describe('README shell examples', () => {
  it('finds the examples, and every other shell line is about the project itself', () => {
    expect(shellExamples.length).toBeGreaterThanOrEqual(5);
    const all = shellFences.flatMap((f) => shellCommands(f.body));
    expect(all.filter((c) => !isDemoCommand(c)).every((c) => /^(npm (install|start|test|run \w+)|npx prisma |[A-Z_]+=\S+ npm test)/.test(c))).toBe(true);
    // Outside the project `npx usage-gateway` would look for a package of that name: the README installs the command.
    expect(all.filter((c) => /npx usage-gateway/.test(c))).toEqual([]);
  });

  // A reader runs the blocks in one shell, in order: an `export` holds for the blocks after it.
  const exports: string[] = [];
  let createdKeyId: string | undefined;
  /** The `usage-gateway` lines run by the real command (bin/usage-gateway through the symlinks). */
  const realExecutable: string[] = [];

  it.each(shellExamples.map((f) => [f.line, f.commands]))('the commands at line %i run on the demo and print data', async (_line, commands) => {
    for (const written of commands as string[]) {
      let command = written.replaceAll('localhost:4000', origin.replace(/^http:\/\//, '')).replaceAll('<printed key>', DEMO_API_KEY);
      if (command.includes('<id printed by keys:create>')) {
        expect(createdKeyId, 'keys:create runs before').toBeDefined();
        command = command.replaceAll('<id printed by keys:create>', createdKeyId!);
      }
      expect(command.replace(/\s+#\s.*$/gm, '').match(/<[a-z][^<>]*>/gi) ?? [], 'placeholders the test cannot fill').toEqual([]);
      if (command.startsWith('export ')) {
        exports.push(command);
        continue;
      }
      const run = runsInProcess(command) ? await cliInProcess(exports, command, { KEY: DEMO_API_KEY }) : await bash([...exports, command].join('\n'), { KEY: DEMO_API_KEY });
      if (!runsInProcess(command) && /usage-gateway /.test(command)) realExecutable.push(command);
      expect(run.stderr, written).not.toMatch(/error/i);
      expect(run.code, `${written}\n${run.stderr}`).toBe(0);
      expectData(command, run);
      if (/usage-gateway keys:create/.test(command)) createdKeyId = /^id:\s+(\S+)$/m.exec(run.stdout)?.[1];
    }
  });

  it('runs the examples from a directory outside the project, through symlinks', () => {
    // At least the lines that read or write a file there: the command on PATH, found through its symlinks.
    expect(realExecutable.length).toBeGreaterThanOrEqual(2);
    expect(path.relative(projectRoot, workDir).startsWith('..')).toBe(true);
    expect(existsSync(path.join(workDir, 'node_modules'))).toBe(false);
  });
});

/**
 * `npm run bench:ingest [-- --events 200000 --streams 4 --databases postgres,pglite --before <dir> --no-write]`
 *
 * Ingestion throughput through `POST /ingest` over real HTTP, into PostgreSQL and into PGlite, next
 * to what the database itself can take (COPY):
 *
 * 1. A gateway process (this file with `--serve`, forked) opens a fresh database — a new PostgreSQL
 *    database created on the server of `DATABASE_URL` (default postgresql://postgres@127.0.0.1:5432/postgres,
 *    used as admin) and dropped afterwards, or PGlite in a temporary directory — seeds the demo
 *    (`seedDemo`) and listens on 127.0.0.1 with `createApp` + `useIngestEndpoint`. With
 *    `--before <dir>` (a checkout of older code, e.g. `git worktree add <dir> HEAD~1` with node_modules
 *    linked), each database is measured first with that checkout's gateway code, then with this one's.
 * 2. This process generates N valid events for the demo realm deterministically (a fixed mix of
 *    features and dimensions, timestamps in the current hour), as NDJSON in memory, split into
 *    `--streams` disjoint slices.
 * 3. It sends the slices as concurrent uploads (fetch, streamed bodies) and times from the first
 *    byte to the last answer: events/s = N / seconds. Then it sends the very same bodies again
 *    (every event a duplicate) and times that. It counts the CPU time of the gateway, of the
 *    database's server processes (PostgreSQL backends of the bench database, read from /proc) and
 *    of this client, and the machine's CPU use by everything else.
 * 4. It reconciles (src/ingest/reconcile.ts, as `npm run verify` does): every bucket recomputed from
 *    the stored events must match; any difference fails the run.
 * 5. On PostgreSQL, the physical limit: the stored events are copied out (COPY TO) and COPYed into
 *    a bare table with UsageEvent's columns — without indexes, with the (realmId, idempotencyKey)
 *    unique index, and with all of UsageEvent's indexes — and timed.
 * 6. It prints a table and writes it into BENCHMARKS.md (between the `bench:ingest` markers).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createScratchDatabase } from '../src/db/scratch-database.js';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { PrismaClient } from '../src/generated/prisma/client.js';
import { parseArgs } from 'node:util';
import { random } from './random.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_ADMIN_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';
const CHUNK_BYTES = 256 * 1024;

type DatabaseKind = 'postgres' | 'pglite';

/** What the gateway process tells the bench once it listens. */
interface Ready {
  type: 'ready';
  port: number;
  apiKey: string;
  dims: Dimensions;
  seedMs: number;
  description: string;
  serverVersion: string;
  realmId: string;
}

interface Dimensions {
  workspaces: string[];
  datastreams: Array<{ id: string; workspaceId: string }>;
  apps: Array<{ id: string; projectId: string; workspaceId: string | null }>;
}

// ---------------------------------------------------------------------------------------------
// The gateway process (`--serve <kind> <target>`)
// ---------------------------------------------------------------------------------------------

async function serve(kind: DatabaseKind, where: string, code: string): Promise<void> {
  // The gateway's code from `code` (this checkout, or the `--before` one); the bench's own from here.
  const load = (file: string) => import(pathToFileURL(path.join(code, file)).href);
  const { openDatabase } = await load('src/db/database.ts');
  const { seedDemo, DEMO, DEMO_API_KEY } = await load('src/db/seed.ts');
  const { encodeId } = await load('src/global-id.ts');
  const { createApp } = await load('src/yoga.ts');
  const { useIngestEndpoint } = await load('src/ingest/http.ts');
  const { reconcile } = await load('src/ingest/reconcile.ts');

  const db = await openDatabase(kind === 'pglite' ? { kind: 'pglite', dir: where } : { kind: 'postgres', url: where });
  const prisma = db.prisma as PrismaClient;
  const seedStarted = performance.now();
  await seedDemo(prisma);
  const seedMs = performance.now() - seedStarted;
  const realm = await prisma.realm.findUniqueOrThrow({ where: { slug: DEMO.realms.acme.slug } });
  const [workspaces, datastreams, apps] = await Promise.all([
    prisma.workspace.findMany({ where: { realmId: realm.id }, select: { id: true }, orderBy: { id: 'asc' } }),
    prisma.datastream.findMany({ where: { realmId: realm.id }, select: { id: true, workspaceId: true }, orderBy: { id: 'asc' } }),
    prisma.app.findMany({ where: { realmId: realm.id }, select: { id: true, projectId: true, workspaceId: true }, orderBy: { id: 'asc' } }),
  ]);
  const dims: Dimensions = {
    workspaces: workspaces.map((w) => encodeId('Workspace', w.id)),
    datastreams: datastreams.map((d) => ({ id: encodeId('Datastream', d.id), workspaceId: encodeId('Workspace', d.workspaceId) })),
    apps: apps.map((a) => ({ id: encodeId('App', a.id), projectId: encodeId('Project', a.projectId), workspaceId: a.workspaceId ? encodeId('Workspace', a.workspaceId) : null })),
  };
  const version = (await prisma.$queryRawUnsafe<Array<{ server_version: string }>>('SHOW server_version'))[0]?.server_version ?? '?';

  let unexpected: unknown;
  const app = createApp({
    prisma,
    plugins: [useIngestEndpoint({ prisma, onUnexpectedError: (error: unknown) => (unexpected = error) })],
  });
  const server = http.createServer((req, res) => void app.handleNodeRequest(req, res));
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  // Memory while ingesting (not the migrations' and the seed's, which come before).
  const rssAtReady = process.memoryUsage().rss;
  let maxRss = rssAtReady;
  setInterval(() => {
    maxRss = Math.max(maxRss, process.memoryUsage().rss);
  }, 50).unref();
  process.send!({ type: 'ready', port, apiKey: DEMO_API_KEY, dims, seedMs, description: db.description, serverVersion: version, realmId: realm.id } satisfies Ready);

  process.on('message', async (message: { type: string; since?: string }) => {
    if (message.type === 'cpu') process.send!({ type: 'cpu', ...process.cpuUsage() });
    if (message.type === 'stats') {
      const events = await prisma.usageEvent.count({ where: { realmId: realm.id } });
      const buckets = await prisma.usageHourly.count({ where: { realmId: realm.id, updatedAt: { gte: new Date(message.since!) } } });
      process.send!({ type: 'stats', events, buckets, rssAtReady, maxRss, unexpected: unexpected ? String(unexpected) : null });
    }
    if (message.type === 'reconcile') {
      const report = (await reconcile(prisma, { realmId: realm.id })) as Record<string, unknown> & { bucketsChecked: number };
      // Every list of differences the reconciliation has (buckets, unique keys, rollups…).
      const differences = Object.entries(report)
        .filter(([name, value]) => /differences$/i.test(name) && Array.isArray(value))
        .map(([name, value]) => ({ name, count: (value as unknown[]).length, first: (value as unknown[]).slice(0, 3) }));
      process.send!({ type: 'reconcile', bucketsChecked: report.bucketsChecked, differences });
    }
    if (message.type === 'stop') {
      server.closeAllConnections();
      server.close();
      await db.close();
      process.exit(0);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

const HOUR_MS = 3_600_000;

/**
 * Events fall between the start of the current hour and `base`: the demo's seeded aggregates end at
 * the last whole hour, and a bucket holding both a seeded aggregate and events cannot be reconciled.
 */
function eventWindowMs(base: number): number {
  return base - Math.floor(base / HOUR_MS) * HOUR_MS;
}

/** Event `i` of the run: a fixed mix of features (SUM, COUNT, UNIQUE_COUNT, MAX) and dimensions. */
function generateEvent(i: number, base: number, dims: Dimensions, next: () => number): Record<string, unknown> {
  const timestamp = new Date(base - Math.floor(next() * eventWindowMs(base))).toISOString();
  const pick = next();
  const idempotencyKey = `bench-${i}`;
  if (pick < 0.45) {
    const app = dims.apps[Math.floor(next() * dims.apps.length)]!;
    return { idempotencyKey, feature: 'location.transactions', timestamp, quantity: String(1 + Math.floor(next() * 20)), appId: app.id, projectId: app.projectId, ...(app.workspaceId ? { workspaceId: app.workspaceId } : {}) };
  }
  if (pick < 0.65) {
    return { idempotencyKey, feature: 'api.requests', timestamp, quantity: '1', workspaceId: dims.workspaces[Math.floor(next() * dims.workspaces.length)] };
  }
  const stream = dims.datastreams[Math.floor(next() * dims.datastreams.length)]!;
  if (pick < 0.85) {
    return { idempotencyKey, feature: 'rows.unique', timestamp, uniqueKey: `row-${Math.floor(next() * 50_000)}`, datastreamId: stream.id, workspaceId: stream.workspaceId };
  }
  if (pick < 0.93) {
    return { idempotencyKey, feature: 'rows.total', timestamp, quantity: String(1 + Math.floor(next() * 500)), datastreamId: stream.id, workspaceId: stream.workspaceId };
  }
  if (pick < 0.97) {
    return { idempotencyKey, feature: 'transfer.gb', timestamp, quantity: (next() * 4).toFixed(6), workspaceId: stream.workspaceId, billingTag: `team-${Math.floor(next() * 8)}` };
  }
  return { idempotencyKey, feature: 'spaces.private', timestamp, quantity: Math.floor(next() * 12), workspaceId: stream.workspaceId, resource: `space-${Math.floor(next() * 4)}` };
}

/** The NDJSON bodies: `streams` disjoint slices of the N events, each as ~256 KiB chunks. */
function generateBodies(events: number, streams: number, base: number, dims: Dimensions): Buffer[][] {
  const next = random(20261122);
  const bodies: Buffer[][] = Array.from({ length: streams }, () => []);
  const perStream = Math.ceil(events / streams);
  for (let s = 0; s < streams; s++) {
    let pending: string[] = [];
    let pendingLength = 0;
    for (let i = s * perStream; i < Math.min(events, (s + 1) * perStream); i++) {
      const line = `${JSON.stringify(generateEvent(i, base, dims, next))}\n`;
      pending.push(line);
      pendingLength += line.length;
      if (pendingLength >= CHUNK_BYTES) {
        bodies[s]!.push(Buffer.from(pending.join('')));
        pending = [];
        pendingLength = 0;
      }
    }
    if (pending.length) bodies[s]!.push(Buffer.from(pending.join('')));
  }
  return bodies;
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

interface Answer {
  accepted: number;
  duplicates: number;
  rejected: number;
  errors: Array<{ line: number; code: string; message: string }>;
  lines: number;
}

async function upload(port: number, key: string, chunks: Buffer[]): Promise<Answer> {
  let index = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (index >= chunks.length) controller.close();
      else controller.enqueue(chunks[index++]!);
    },
  });
  const response = await fetch(`http://127.0.0.1:${port}/ingest`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-ndjson' },
    body,
    duplex: 'half',
  } as RequestInit & { duplex: 'half' });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST /ingest answered ${response.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as Answer;
}

async function timedRun(port: number, key: string, bodies: Buffer[][]) {
  const started = performance.now();
  const answers = await Promise.all(bodies.map((chunks) => upload(port, key, chunks)));
  const seconds = (performance.now() - started) / 1000;
  const total = answers.reduce(
    (sum, a) => ({ accepted: sum.accepted + a.accepted, duplicates: sum.duplicates + a.duplicates, rejected: sum.rejected + a.rejected }),
    { accepted: 0, duplicates: 0, rejected: 0 },
  );
  const firstErrors = answers.flatMap((a) => a.errors).slice(0, 5);
  return { seconds, ...total, firstErrors };
}

function startGateway(kind: DatabaseKind, where: string, code: string): Promise<{ child: ChildProcess; ready: Ready }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', kind, where, code], {
    cwd: code,
    // BENCH_CPU_PROFILE=<dir>: a V8 CPU profile of the gateway process (open it in Chrome DevTools).
    execArgv: ['--import', 'tsx', ...(process.env.BENCH_CPU_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROFILE}`] : [])],
    env: { ...process.env, LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the gateway process exited (${code}) before it was ready`)));
    child.once('message', (message: Ready) => resolve({ child, ready: message }));
  });
}

function ask<T>(child: ChildProcess, message: { type: string; [name: string]: unknown }): Promise<T> {
  return new Promise((resolve) => {
    const listen = (answer: { type?: string }) => {
      if (answer.type !== message.type) return;
      child.off('message', listen);
      resolve(answer as T);
    };
    child.on('message', listen);
    child.send(message);
  });
}

// ---------------------------------------------------------------------------------------------
// CPU accounting (Linux /proc)
// ---------------------------------------------------------------------------------------------

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU milliseconds (user + system) a process has used, or undefined when it is gone. */
function processCpuMs(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

/** Busy and total CPU milliseconds of the whole machine (all cores). */
function machineCpuMs(): { busy: number; total: number } {
  const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const ticks = values.map(Number);
  const total = ticks.reduce((sum, t) => sum + t, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return { busy: (total - idle) * TICK_MS, total: total * TICK_MS };
}

/**
 * The CPU time of one database's PostgreSQL backends over a run: sampled every 200 ms (a pooled
 * connection may end during the run; its last sample still counts).
 */
function watchBackends(admin: pg.Client | null, database: string) {
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  let initial = true;
  let stopped = false;
  const sample = async () => {
    if (!admin) return;
    const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [database]);
    for (const { pid } of rows) {
      const ms = processCpuMs(pid);
      if (ms === undefined) continue;
      // A backend that appears during the run used all its CPU in the run.
      if (!first.has(pid)) first.set(pid, initial ? ms : 0);
      last.set(pid, ms);
    }
    initial = false;
  };
  const ready = sample();
  const loop = (async () => {
    await ready;
    while (!stopped) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      await sample();
    }
  })();
  // A run that fails stops the bench; the sampling must not outlive it with an error of its own.
  loop.catch(() => {});
  return {
    /** The first sample is taken. */
    ready,
    /** Stops sampling; the backends' CPU milliseconds since the first sample. */
    async stop() {
      stopped = true;
      await loop;
      let total = 0;
      for (const [pid, ms] of last) total += ms - (first.get(pid) ?? 0);
      return total;
    },
  };
}

interface Cpu {
  gatewayMs: number;
  databaseMs: number | null;
  clientMs: number;
  /** Everything else on the machine (other processes, PostgreSQL's background writers). */
  otherMs: number;
  /** Wall time × cores. */
  capacityMs: number;
}

interface Row {
  database: string;
  code: string;
  run: string;
  events: number;
  streams: number;
  seconds: number;
  rate: number;
  cpu: Cpu;
}

interface CopyRow {
  table: string;
  rows: number;
  seconds: number;
  rate: number;
  backendMs: number | null;
}

async function measuredRun(gateway: ChildProcess, admin: pg.Client | null, database: string, port: number, key: string, bodies: Buffer[][]) {
  const gatewayBefore = await ask<{ user: number; system: number }>(gateway, { type: 'cpu' });
  const clientBefore = process.cpuUsage();
  const machineBefore = machineCpuMs();
  const backends = watchBackends(admin, database);
  await backends.ready;
  const result = await timedRun(port, key, bodies).finally(() => backends.stop().catch(() => 0));
  const backendMs = await backends.stop().catch(() => 0);
  const databaseMs = admin ? backendMs : null;
  const machine = machineCpuMs();
  const client = process.cpuUsage(clientBefore);
  const gatewayAfter = await ask<{ user: number; system: number }>(gateway, { type: 'cpu' });
  const gatewayMs = (gatewayAfter.user + gatewayAfter.system - gatewayBefore.user - gatewayBefore.system) / 1000;
  const clientMs = (client.user + client.system) / 1000;
  const busy = machine.busy - machineBefore.busy;
  const cpu: Cpu = {
    gatewayMs,
    databaseMs,
    clientMs,
    otherMs: Math.max(0, busy - gatewayMs - clientMs - (databaseMs ?? 0)),
    capacityMs: machine.total - machineBefore.total,
  };
  return { ...result, cpu };
}

/**
 * The physical limit on PostgreSQL: the realm's stored events, copied out and COPYed into plain
 * tables with UsageEvent's columns (no indexes; the unique index; all of UsageEvent's indexes).
 */
async function copyLimits(url: string, realmId: string): Promise<CopyRow[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const columns = (
      await client.query<{ name: string }>(
        `SELECT quote_ident(attname) AS name FROM pg_attribute WHERE attrelid = '"UsageEvent"'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
      )
    ).rows.map((r) => r.name);
    const chunks: Buffer[] = [];
    await pipeline(client.query(copyTo(`COPY (SELECT ${columns.join(', ')} FROM "UsageEvent" WHERE "realmId" = '${realmId}') TO STDOUT`)), async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) chunks.push(chunk);
    });
    const rows = chunks.reduce((n, chunk) => n + chunk.reduce((c, byte) => c + (byte === 0x0a ? 1 : 0), 0), 0);
    const { rows: [backend] } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const variants: Array<{ table: string; setup: string }> = [
      { table: 'bare table, no indexes', setup: 'CREATE TABLE bench_copy (LIKE "UsageEvent")' },
      {
        table: 'with the unique index (realmId, idempotencyKey)',
        setup: 'CREATE TABLE bench_copy (LIKE "UsageEvent"); CREATE UNIQUE INDEX ON bench_copy ("realmId", "idempotencyKey")',
      },
      {
        table: "with all of UsageEvent's indexes",
        setup: `CREATE TABLE bench_copy (LIKE "UsageEvent");
                DO $$ DECLARE d text; BEGIN
                  FOR d IN SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = '"UsageEvent"'::regclass LOOP
                    EXECUTE regexp_replace(regexp_replace(d, '^CREATE (UNIQUE )?INDEX \\S+ ON (ONLY )?\\S+', 'CREATE \\1INDEX ON bench_copy'), ' ONLY ', ' ');
                  END LOOP; END $$`,
      },
    ];
    const results: CopyRow[] = [];
    for (const variant of variants) {
      await client.query('DROP TABLE IF EXISTS bench_copy');
      await client.query(variant.setup);
      const cpuBefore = processCpuMs(backend!.pid);
      const started = performance.now();
      await pipeline(Readable.from(chunks), client.query(copyFrom(`COPY bench_copy (${columns.join(', ')}) FROM STDIN`)));
      const seconds = (performance.now() - started) / 1000;
      const cpuAfter = processCpuMs(backend!.pid);
      results.push({ table: variant.table, rows, seconds, rate: rows / seconds, backendMs: cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : null });
      process.stderr.write(`PostgreSQL: COPY ${rows} rows, ${variant.table}: ${seconds.toFixed(2)} s, ${Math.round(rows / seconds)} rows/s\n`);
    }
    await client.query('DROP TABLE IF EXISTS bench_copy');
    return results;
  } finally {
    await client.end();
  }
}

interface Options {
  events: number;
  streams: number;
  /** [label, checkout] of the gateway code to measure, in order. */
  codes: Array<[string, string]>;
}

async function benchDatabase(kind: DatabaseKind, code: [string, string], options: Options, rows: Row[], notes: string[], copies: CopyRow[]) {
  const [codeLabel, codeRoot] = code;
  let where: string;
  let cleanup: () => Promise<void>;
  let admin: pg.Client | null = null;
  let databaseName = '';
  if (kind === 'pglite') {
    where = mkdtempSync(path.join(os.tmpdir(), 'ugw-bench-pglite-'));
    cleanup = async () => rmSync(where, { recursive: true, force: true });
  } else {
    const adminUrl = process.env.DATABASE_URL?.trim() || DEFAULT_ADMIN_URL;
    const scratch = await createScratchDatabase(adminUrl, 'ugw_bench');
    where = scratch.url;
    databaseName = scratch.name;
    admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    cleanup = async () => {
      await admin?.end();
      await scratch.drop();
    };
  }
  const label = kind === 'pglite' ? 'PGlite' : 'PostgreSQL';
  const what = `${label} (${codeLabel})`;
  let gateway: { child: ChildProcess; ready: Ready } | undefined;
  try {
    process.stderr.write(`${what}: creating, migrating and seeding the demo…\n`);
    gateway = await startGateway(kind, where, codeRoot);
    const { ready } = gateway;
    process.stderr.write(`${what}: ${ready.description} (server ${ready.serverVersion}), seeded in ${(ready.seedMs / 1000).toFixed(1)} s\n`);
    // At least a minute into the hour, so the events spread over some time (see eventWindowMs).
    const intoHour = eventWindowMs(Date.now());
    if (intoHour < 60_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoHour));
    const base = Date.now();
    const bodies = generateBodies(options.events, options.streams, base, ready.dims);
    const bytes = bodies.flat().reduce((sum, chunk) => sum + chunk.length, 0);
    process.stderr.write(`${what}: ${options.events} events, ${(bytes / 1024 ** 2).toFixed(1)} MiB of NDJSON (${Math.round(bytes / options.events)} bytes/event), ${options.streams} concurrent uploads\n`);
    const row = (run: string, result: { seconds: number; cpu: Cpu }): Row => ({
      database: label,
      code: codeLabel,
      run,
      events: options.events,
      streams: options.streams,
      seconds: result.seconds,
      rate: options.events / result.seconds,
      cpu: result.cpu,
    });

    const fresh = await measuredRun(gateway.child, admin, databaseName, ready.port, ready.apiKey, bodies);
    if (fresh.accepted !== options.events) {
      throw new Error(`${what}: expected ${options.events} accepted, got ${JSON.stringify({ ...fresh, cpu: undefined })}`);
    }
    rows.push(row('new events', fresh));
    process.stderr.write(`${what}: new events: ${fresh.seconds.toFixed(2)} s, ${Math.round(options.events / fresh.seconds)} events/s ${describeCpu(fresh.cpu, options.events)}\n`);

    const again = await measuredRun(gateway.child, admin, databaseName, ready.port, ready.apiKey, bodies);
    if (again.duplicates !== options.events) {
      throw new Error(`${what}: expected ${options.events} duplicates on re-sending, got ${JSON.stringify({ ...again, cpu: undefined })}`);
    }
    rows.push(row('re-sent (all duplicates)', again));
    process.stderr.write(`${what}: re-sent: ${again.seconds.toFixed(2)} s, ${Math.round(options.events / again.seconds)} events/s ${describeCpu(again.cpu, options.events)}\n`);

    const stats = await ask<{ events: number; buckets: number; rssAtReady: number; maxRss: number; unexpected: string | null }>(gateway.child, {
      type: 'stats',
      since: new Date(base).toISOString(),
    });
    if (stats.unexpected) throw new Error(`${what}: the gateway hit an unexpected error: ${stats.unexpected}`);
    if (stats.events !== options.events) throw new Error(`${what}: ${stats.events} events stored, expected ${options.events}`);
    const reconciled = await ask<{ bucketsChecked: number; differences: Array<{ name: string; count: number; first: unknown[] }> }>(gateway.child, { type: 'reconcile' });
    const differing = reconciled.differences.filter((d) => d.count > 0);
    const verdict = `${reconciled.bucketsChecked.toLocaleString('en-US')} buckets recomputed from the raw events: ${
      differing.length ? differing.map((d) => `${d.count} ${d.name}`).join(', ') : `no differences (${reconciled.differences.map((d) => d.name).join(', ')} all empty)`
    }`;
    process.stderr.write(`${what}: reconciliation: ${verdict}\n`);
    if (differing.length) throw new Error(`${what}: the reconciliation found differences: ${JSON.stringify(differing)}`);
    const mib = (bytes: number) => `${Math.round(bytes / 1024 ** 2)} MiB`;
    notes.push(
      `${what}, ${label} ${ready.serverVersion}: the events touched ${stats.buckets.toLocaleString('en-US')} hourly buckets; reconciliation after both runs: ${verdict}; the gateway process had ${mib(stats.rssAtReady)} RSS when ready and at most ${mib(stats.maxRss)} while ingesting.`,
    );
    if (kind === 'postgres' && codeLabel === options.codes[options.codes.length - 1]![0]) {
      await stopGateway(gateway);
      gateway = undefined;
      copies.push(...(await copyLimits(where, ready.realmId)));
    }
  } finally {
    if (gateway) await stopGateway(gateway);
    await cleanup();
  }
}

async function stopGateway(gateway: { child: ChildProcess }) {
  const exited = new Promise((resolve) => gateway.child.once('exit', resolve));
  gateway.child.send({ type: 'stop' });
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  if (gateway.child.exitCode === null) gateway.child.kill('SIGKILL');
}

/** µs of CPU per event: gateway, database backends, client, everything else. */
function describeCpu(cpu: Cpu, events: number): string {
  const us = (ms: number | null) => (ms === null ? '–' : ((ms * 1000) / events).toFixed(1));
  return `(CPU µs/event: gateway ${us(cpu.gatewayMs)}, database ${us(cpu.databaseMs)}, client ${us(cpu.clientMs)}, other processes ${us(cpu.otherMs)}; machine ${Math.round((100 * (cpu.gatewayMs + (cpu.databaseMs ?? 0) + cpu.clientMs + cpu.otherMs)) / cpu.capacityMs)} % busy)`;
}

// ---------------------------------------------------------------------------------------------
// BENCHMARKS.md
// ---------------------------------------------------------------------------------------------

const START_MARKER = '<!-- bench:ingest start -->';
const END_MARKER = '<!-- bench:ingest end -->';

function renderSection(rows: Row[], copies: CopyRow[], notes: string[], options: Options, loadBefore: number[]): string {
  const cpus = os.cpus();
  const machine = `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 1024 ** 3)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}`;
  const us = (ms: number | null, events: number) => (ms === null ? '–' : ((ms * 1000) / events).toFixed(1));
  const busy = (cpu: Cpu) => Math.round((100 * (cpu.gatewayMs + (cpu.databaseMs ?? 0) + cpu.clientMs + cpu.otherMs)) / cpu.capacityMs);
  const table = [
    '| database | code | run | events | seconds | events/s | CPU µs/event: gateway | database | client | other processes | machine busy |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.database} | ${r.code} | ${r.run} | ${r.events.toLocaleString('en-US')} | ${r.seconds.toFixed(2)} | **${Math.round(r.rate).toLocaleString('en-US')}** | ${us(r.cpu.gatewayMs, r.events)} | ${us(r.cpu.databaseMs, r.events)} | ${us(r.cpu.clientMs, r.events)} | ${us(r.cpu.otherMs, r.events)} | ${busy(r.cpu)} % |`,
    ),
  ];
  const copyTable = copies.length
    ? [
        '| COPY into (PostgreSQL, one connection) | rows | seconds | rows/s | backend CPU µs/row |',
        '| --- | ---: | ---: | ---: | ---: |',
        ...copies.map((c) => `| ${c.table} | ${c.rows.toLocaleString('en-US')} | ${c.seconds.toFixed(2)} | **${Math.round(c.rate).toLocaleString('en-US')}** | ${us(c.backendMs, c.rows)} |`),
      ]
    : [];
  const command = `npm run bench:ingest -- --events ${options.events} --streams ${options.streams}${options.codes.length > 1 ? ` --before ${options.codes[0]![1]}` : ''}`;
  return [
    START_MARKER,
    '## Ingestion',
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`${command}\` on ${machine}.`,
    `Client, gateway and database share the machine; ${options.streams} concurrent uploads. Load average (1 min) before each database's runs: ${loadBefore.map((l) => l.toFixed(2)).join(', ')}.`,
    '',
    ...table,
    '',
    ...copyTable,
    ...(copyTable.length ? [''] : []),
    ...notes.map((note) => `- ${note}`),
    '',
    INGEST_ANALYSIS,
    END_MARKER,
    '',
  ].join('\n');
}

/** The hand-written part of the section (method, profile, what bounds it): kept in bench/ingest-analysis.md. */
const INGEST_ANALYSIS = existsSync(path.join(root, 'bench/ingest-analysis.md')) ? readFileSync(path.join(root, 'bench/ingest-analysis.md'), 'utf8').trim() + '\n' : '';

function writeBenchmarks(section: string): string {
  const file = path.join(root, 'BENCHMARKS.md');
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\n';
  let next: string;
  const startAt = current.indexOf(START_MARKER);
  const endAt = current.indexOf(END_MARKER);
  if (startAt >= 0 && endAt > startAt) {
    next = `${current.slice(0, startAt)}${section.trimEnd()}\n${current.slice(endAt + END_MARKER.length).replace(/^\n/, '')}`;
  } else {
    // The section before it had markers: from its heading to the next one.
    const start = current.search(/^## Ingestion\s*$/m);
    if (start < 0) {
      next = `${current.trimEnd()}\n\n${section}`;
    } else {
      const after = current.slice(start + 1).search(/^## /m);
      const end = after < 0 ? current.length : start + 1 + after;
      next = `${current.slice(0, start)}${section}${after < 0 ? '' : `\n${current.slice(end)}`}`;
    }
  }
  writeFileSync(file, `${next.trimEnd()}\n`);
  return file;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '200000' },
      streams: { type: 'string', default: '4' },
      databases: { type: 'string', default: 'postgres,pglite' },
      before: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'npm run bench:ingest -- [--events 200000] [--streams 4] [--databases postgres,pglite] [--before <checkout>] [--no-write]\n' +
        'PostgreSQL: DATABASE_URL (as admin: a database is created and dropped), default ' +
        `${DEFAULT_ADMIN_URL}\n` +
        '--before <checkout>: also measure the gateway code of another checkout (with node_modules), first.\n' +
        'BENCH_CPU_PROFILE=<dir>: write a CPU profile of the gateway process there.\n',
    );
    return;
  }
  const events = Number(values.events);
  const streams = Number(values.streams);
  if (!Number.isSafeInteger(events) || events < 1) throw new Error(`--events must be a positive whole number (got ${values.events})`);
  if (!Number.isSafeInteger(streams) || streams < 1 || streams > 64) throw new Error(`--streams must be 1 to 64 (got ${values.streams})`);
  const databases = values.databases.split(',').map((d) => d.trim()) as DatabaseKind[];
  for (const d of databases) if (d !== 'postgres' && d !== 'pglite') throw new Error(`--databases takes postgres and/or pglite (got ${d})`);
  const codes: Array<[string, string]> = [];
  if (values.before) {
    const before = path.resolve(values.before);
    if (!existsSync(path.join(before, 'src/ingest/pipeline.ts'))) throw new Error(`--before ${values.before}: no src/ingest/pipeline.ts there`);
    codes.push(['before', before]);
  }
  codes.push([values.before ? 'after' : 'this checkout', root]);
  const options: Options = { events, streams, codes };

  const rows: Row[] = [];
  const copies: CopyRow[] = [];
  const notes: string[] = [];
  const loadBefore: number[] = [];
  for (const kind of databases) {
    loadBefore.push(os.loadavg()[0]!);
    for (const code of codes) await benchDatabase(kind, code, options, rows, notes, copies);
  }

  const section = renderSection(rows, copies, notes, options, loadBefore);
  process.stdout.write(`\n${section}`);
  if (!values['no-write']) process.stderr.write(`\nwrote ${writeBenchmarks(section)}\n`);
}

const serveIndex = process.argv.indexOf('--serve');
if (serveIndex >= 0) {
  await serve(process.argv[serveIndex + 1] as DatabaseKind, process.argv[serveIndex + 2]!, process.argv[serveIndex + 3] ?? root);
} else {
  await main().catch((error: unknown) => {
    process.stderr.write(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}

/**
 * `npm run bench:ingest [-- --events 200000 --streams 4 --databases postgres,pglite --no-write]`
 *
 * Ingestion throughput through `POST /ingest` over real HTTP, into PostgreSQL and into PGlite:
 *
 * 1. A gateway process (this file with `--serve`, forked) opens a fresh database — a new PostgreSQL
 *    database created on the server of `DATABASE_URL` (default postgresql://postgres@127.0.0.1:5432/postgres,
 *    used as admin) and dropped afterwards, or PGlite in a temporary directory — seeds the demo
 *    (`seedDemo`) and listens on 127.0.0.1 with `createApp` + `useIngestEndpoint`.
 * 2. This process generates N valid events for the demo realm deterministically (a fixed mix of
 *    features and dimensions, timestamps in the last 90 minutes), as NDJSON in memory, split into
 *    `--streams` disjoint slices.
 * 3. It sends the slices as concurrent uploads (fetch, streamed bodies) and times from the first
 *    byte to the last answer: events/s = N / seconds. Then it sends the very same bodies again
 *    (every event a duplicate) and times that.
 * 4. It checks the answers' counts, prints a table, and writes it into BENCHMARKS.md ("Ingestion").
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createScratchDatabase } from '../src/db/scratch-database.js';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

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
}

interface Dimensions {
  workspaces: string[];
  datastreams: Array<{ id: string; workspaceId: string }>;
  apps: Array<{ id: string; projectId: string; workspaceId: string | null }>;
}

// ---------------------------------------------------------------------------------------------
// The gateway process (`--serve <kind> <target>`)
// ---------------------------------------------------------------------------------------------

async function serve(kind: DatabaseKind, where: string): Promise<void> {
  const { openDatabase } = await import('../src/db/database.js');
  const { seedDemo, DEMO, DEMO_API_KEY } = await import('../src/db/seed.js');
  const { encodeId } = await import('../src/global-id.js');
  const { createApp } = await import('../src/yoga.js');
  const { useIngestEndpoint } = await import('../src/ingest/http.js');

  const db = await openDatabase(kind === 'pglite' ? { kind: 'pglite', dir: where } : { kind: 'postgres', url: where });
  const seedStarted = performance.now();
  await seedDemo(db.prisma);
  const seedMs = performance.now() - seedStarted;
  const realm = await db.prisma.realm.findUniqueOrThrow({ where: { slug: DEMO.realms.acme.slug } });
  const [workspaces, datastreams, apps] = await Promise.all([
    db.prisma.workspace.findMany({ where: { realmId: realm.id }, select: { id: true }, orderBy: { id: 'asc' } }),
    db.prisma.datastream.findMany({ where: { realmId: realm.id }, select: { id: true, workspaceId: true }, orderBy: { id: 'asc' } }),
    db.prisma.app.findMany({ where: { realmId: realm.id }, select: { id: true, projectId: true, workspaceId: true }, orderBy: { id: 'asc' } }),
  ]);
  const dims: Dimensions = {
    workspaces: workspaces.map((w) => encodeId('Workspace', w.id)),
    datastreams: datastreams.map((d) => ({ id: encodeId('Datastream', d.id), workspaceId: encodeId('Workspace', d.workspaceId) })),
    apps: apps.map((a) => ({ id: encodeId('App', a.id), projectId: encodeId('Project', a.projectId), workspaceId: a.workspaceId ? encodeId('Workspace', a.workspaceId) : null })),
  };
  const version = (await db.prisma.$queryRawUnsafe<Array<{ server_version: string }>>('SHOW server_version'))[0]?.server_version ?? '?';

  let unexpected: unknown;
  const app = createApp({
    prisma: db.prisma,
    plugins: [useIngestEndpoint({ prisma: db.prisma, onUnexpectedError: (error) => (unexpected = error) })],
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
  process.send!({ type: 'ready', port, apiKey: DEMO_API_KEY, dims, seedMs, description: db.description, serverVersion: version } satisfies Ready);

  process.on('message', async (message: { type: string; since?: string }) => {
    if (message.type === 'stats') {
      const events = await db.prisma.usageEvent.count({ where: { realmId: realm.id } });
      const buckets = await db.prisma.usageHourly.count({ where: { realmId: realm.id, updatedAt: { gte: new Date(message.since!) } } });
      process.send!({ type: 'stats', events, buckets, rssAtReady, maxRss, unexpected: unexpected ? String(unexpected) : null });
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

/** A small deterministic PRNG (mulberry32): the same seed, the same events. */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WINDOW_MS = 90 * 60_000;

/** Event `i` of the run: a fixed mix of features (SUM, COUNT, UNIQUE_COUNT) and dimensions. */
function generateEvent(i: number, base: number, dims: Dimensions, next: () => number): Record<string, unknown> {
  const timestamp = new Date(base - Math.floor(next() * WINDOW_MS)).toISOString();
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
  if (pick < 0.95) {
    return { idempotencyKey, feature: 'rows.total', timestamp, quantity: String(1 + Math.floor(next() * 500)), datastreamId: stream.id, workspaceId: stream.workspaceId };
  }
  return { idempotencyKey, feature: 'transfer.gb', timestamp, quantity: (next() * 4).toFixed(6), workspaceId: stream.workspaceId, billingTag: `team-${Math.floor(next() * 8)}` };
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

function startGateway(kind: DatabaseKind, where: string): Promise<{ child: ChildProcess; ready: Ready }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', kind, where], {
    cwd: root,
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
    child.once('message', (answer: T) => resolve(answer));
    child.send(message);
  });
}

interface Row {
  database: string;
  run: string;
  events: number;
  streams: number;
  seconds: number;
  rate: number;
}

async function benchDatabase(kind: DatabaseKind, options: { events: number; streams: number }, rows: Row[], notes: string[]) {
  let where: string;
  let cleanup: () => Promise<void>;
  if (kind === 'pglite') {
    where = mkdtempSync(path.join(os.tmpdir(), 'ugw-bench-pglite-'));
    cleanup = async () => rmSync(where, { recursive: true, force: true });
  } else {
    const adminUrl = process.env.DATABASE_URL?.trim() || DEFAULT_ADMIN_URL;
    const scratch = await createScratchDatabase(adminUrl, 'ugw_bench');
    where = scratch.url;
    cleanup = scratch.drop;
  }
  const label = kind === 'pglite' ? 'PGlite' : 'PostgreSQL';
  let gateway: { child: ChildProcess; ready: Ready } | undefined;
  try {
    process.stderr.write(`${label}: creating, migrating and seeding the demo…\n`);
    gateway = await startGateway(kind, where);
    const { ready } = gateway;
    process.stderr.write(`${label}: ${ready.description} (server ${ready.serverVersion}), seeded in ${(ready.seedMs / 1000).toFixed(1)} s\n`);
    const base = Date.now();
    const bodies = generateBodies(options.events, options.streams, base, ready.dims);
    const bytes = bodies.flat().reduce((sum, chunk) => sum + chunk.length, 0);
    process.stderr.write(`${label}: ${options.events} events, ${(bytes / 1024 ** 2).toFixed(1)} MiB of NDJSON (${Math.round(bytes / options.events)} bytes/event), ${options.streams} concurrent uploads\n`);

    const fresh = await timedRun(ready.port, ready.apiKey, bodies);
    if (fresh.accepted !== options.events) {
      throw new Error(`${label}: expected ${options.events} accepted, got ${JSON.stringify(fresh)}`);
    }
    rows.push({ database: label, run: 'new events', events: options.events, streams: options.streams, seconds: fresh.seconds, rate: options.events / fresh.seconds });
    process.stderr.write(`${label}: new events: ${fresh.seconds.toFixed(2)} s, ${Math.round(options.events / fresh.seconds)} events/s\n`);

    const again = await timedRun(ready.port, ready.apiKey, bodies);
    if (again.duplicates !== options.events) {
      throw new Error(`${label}: expected ${options.events} duplicates on re-sending, got ${JSON.stringify(again)}`);
    }
    rows.push({ database: label, run: 're-sent (all duplicates)', events: options.events, streams: options.streams, seconds: again.seconds, rate: options.events / again.seconds });
    process.stderr.write(`${label}: re-sent: ${again.seconds.toFixed(2)} s, ${Math.round(options.events / again.seconds)} events/s\n`);

    const stats = await ask<{ events: number; buckets: number; rssAtReady: number; maxRss: number; unexpected: string | null }>(gateway.child, {
      type: 'stats',
      since: new Date(base).toISOString(),
    });
    if (stats.unexpected) throw new Error(`${label}: the gateway hit an unexpected error: ${stats.unexpected}`);
    if (stats.events !== options.events) throw new Error(`${label}: ${stats.events} events stored, expected ${options.events}`);
    const mib = (bytes: number) => `${Math.round(bytes / 1024 ** 2)} MiB`;
    notes.push(
      `${label} ${ready.serverVersion}: the events touched ${stats.buckets.toLocaleString('en-US')} hourly buckets; the gateway process had ${mib(stats.rssAtReady)} RSS when ready and at most ${mib(stats.maxRss)} while ingesting.`,
    );
  } finally {
    if (gateway) {
      const exited = new Promise((resolve) => gateway!.child.once('exit', resolve));
      gateway.child.send({ type: 'stop' });
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      if (gateway.child.exitCode === null) gateway.child.kill('SIGKILL');
    }
    await cleanup();
  }
}

// ---------------------------------------------------------------------------------------------
// BENCHMARKS.md
// ---------------------------------------------------------------------------------------------

function renderSection(rows: Row[], notes: string[], options: { events: number; streams: number }): string {
  const cpus = os.cpus();
  const machine = `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 1024 ** 3)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}`;
  const table = [
    '| database | run | events | uploads | seconds | events/s |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.database} | ${r.run} | ${r.events.toLocaleString('en-US')} | ${r.streams} | ${r.seconds.toFixed(2)} | **${Math.round(r.rate).toLocaleString('en-US')}** |`),
  ];
  return [
    '## Ingestion',
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run bench:ingest -- --events ${options.events} --streams ${options.streams}\` on ${machine}.`,
    'Client, gateway and database share the machine.',
    '',
    ...table,
    '',
    '**Method.** `bench/ingest.ts` forks a gateway process that opens a fresh database (a new PostgreSQL',
    'database, dropped afterwards; PGlite in a temporary directory), seeds the demo and listens on',
    '127.0.0.1 with `POST /ingest`. The benchmark generates the events deterministically for the demo',
    'realm (45 % `location.transactions` with app/project/workspace, 20 % `api.requests` with a workspace,',
    '20 % `rows.unique` with a datastream and one of 50,000 row keys, 10 % `rows.total`, 5 % `transfer.gb`',
    'with a billing tag; timestamps in the last 90 minutes), as NDJSON in memory, and sends disjoint slices',
    'of them as concurrent streamed uploads (fetch, chunked bodies). The time runs from the first byte to',
    'the last answer; events/s = events ÷ seconds. Each upload is stored in batches of 5,000 events, one',
    'transaction each (idempotency keys checked, hourly buckets and unique keys updated), while the next',
    'batch is read and parsed. The second run sends the same bodies again: every event is a duplicate and',
    'nothing changes. The answers\' counts and the stored events are checked.',
    '',
    '**What limits it.** The gateway is one Node process, and on this machine it shares two cores with',
    'PostgreSQL and the client. A CPU profile of the gateway during a PostgreSQL run',
    '(`BENCH_CPU_PROFILE=<dir> npm run bench:ingest`, then open the `.cpuprofile` in Chrome DevTools; taken',
    '2026-11-22) put about 36 % of its time in the pipeline\'s own code (per-event validation and id',
    'decoding, SHA-256 content hashes, dimension keys, bucket folding), 25 % in the Prisma client building',
    'and mapping the batch statements, 6 % in the pg driver, 22 % in garbage collection, about 2 % in',
    'reading and parsing NDJSON and 17 % idle (waiting for the database). Reading alone runs at about',
    '900,000 lines (300 MiB) per second, and a 1 GiB body goes through with flat memory. On PostgreSQL,',
    're-sent events are barely faster than new ones: the per-event work before the database dominates, not',
    'the writes. More cores (or several gateway processes behind one database) scale it. The figures vary',
    'up to twofold with the machine\'s other load (9,000–21,000 events/s seen for the same PostgreSQL run).',
    '',
    ...notes.map((note) => `- ${note}`),
    '',
  ].join('\n');
}

function writeBenchmarks(section: string): string {
  const file = path.join(root, 'BENCHMARKS.md');
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\n';
  const start = current.search(/^## Ingestion\s*$/m);
  let next: string;
  if (start < 0) {
    next = `${current.trimEnd()}\n\n${section}`;
  } else {
    const after = current.slice(start + 1).search(/^## /m);
    const end = after < 0 ? current.length : start + 1 + after;
    next = `${current.slice(0, start)}${section}${after < 0 ? '' : `\n${current.slice(end)}`}`;
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
      'no-write': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'npm run bench:ingest -- [--events 200000] [--streams 4] [--databases postgres,pglite] [--no-write]\n' +
        'PostgreSQL: DATABASE_URL (as admin: a database is created and dropped), default ' +
        `${DEFAULT_ADMIN_URL}\n` +
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

  const rows: Row[] = [];
  const notes: string[] = [`Load average (1 min) before the run: ${os.loadavg()[0]!.toFixed(2)} on ${os.cpus().length} cores (other work on the machine skews the figures).`];
  for (const kind of databases) await benchDatabase(kind, { events, streams }, rows, notes);

  const section = renderSection(rows, notes, { events, streams });
  process.stdout.write(`\n${section}`);
  if (!values['no-write']) process.stderr.write(`\nwrote ${writeBenchmarks(section)}\n`);
}

const serveIndex = process.argv.indexOf('--serve');
if (serveIndex >= 0) {
  await serve(process.argv[serveIndex + 1] as DatabaseKind, process.argv[serveIndex + 2]!);
} else {
  await main().catch((error: unknown) => {
    process.stderr.write(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}

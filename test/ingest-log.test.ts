/**
 * The durable ingestion log (NATS JetStream): the edge answers once JetStream stored the events,
 * workers fold them into the database through `ingestBatch`. Against a real nats-server with
 * JetStream (TEST_NATS_URL, default nats://127.0.0.1:4222); each test has its own stream and
 * subjects and deletes them. The restart test runs a nats-server of its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { headers as natsHeaders } from '@nats-io/transport-node';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { Prisma } from '../src/generated/prisma/client.js';
import { encodeId } from '../src/global-id.js';
import { useIngestEndpoint } from '../src/ingest/http.js';
import {
  HEADER_REALM,
  HEADER_RECEIVED_AT,
  HEADER_WORKSPACE,
  IngestLog,
  ingestLogSettings,
  INGEST_LOG_FULL_RETRY_AFTER_SECONDS,
  type IngestLogSettings,
} from '../src/ingest/log.js';
import { registerIngestLogMetrics } from '../src/ingest/log-metrics.js';
import { startIngestWorker, type FoldReport } from '../src/ingest/log-worker.js';
import { ingestBatch } from '../src/ingest/pipeline.js';
import { useHealthCheck } from '../src/observability.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';
import { openDatabase } from '../src/db/database.js';
import { readPGliteTemplate } from '../src/db/pglite-template.js';
import { runCliInProcess } from './helpers/cli-in-process.js';
import { freePort, projectRoot, startServer } from './server/server-process.js';

const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const NATS_SERVER = '/usr/sbin/nats-server';
/** The edge's clock: months before the real one, so a worker folding with its own clock would find every event TOO_LATE. */
const NOW = new Date('2026-03-10T12:30:00Z');
const HOUR = '2026-03-10T10:15:00Z';
const NDJSON = 'application/x-ndjson';

type UsageRealm = Awaited<ReturnType<typeof createUsageRealm>>;

let db: TestDatabase;
let a: UsageRealm;
let scopedWriter: string;
let clock = NOW;
const now = () => clock;
const opened: IngestLog[] = [];
let streamCounter = 0;

function settings(overrides: Partial<IngestLogSettings> = {}): IngestLogSettings {
  const id = `${testDatabaseKind()}_${process.pid}_${Date.now().toString(36)}_${++streamCounter}`;
  return {
    url: NATS_URL,
    stream: `UGW_TEST_${id}`,
    subjectPrefix: `ugwtest.${id}`,
    consumer: 'workers',
    maxBytes: 256 * 1024 ** 2,
    maxMessages: 1_000_000,
    ackWaitMs: 30_000,
    replicas: 1,
    workers: 0,
    ...overrides,
  };
}

/** A log on a fresh stream of its own, deleted after the test. */
async function openLog(overrides: Partial<IngestLogSettings> = {}): Promise<IngestLog> {
  const log = await IngestLog.open(settings(overrides));
  opened.push(log);
  return log;
}

function appWith(log: IngestLog): App {
  return createApp({ prisma: db.prisma, now, ingestLog: log, plugins: [useIngestEndpoint({ prisma: db.prisma, now, log })] });
}

const event = (id: string, extra: Record<string, unknown> = {}) => ({ idempotencyKey: id, feature: 'tx', timestamp: HOUR, quantity: '1.000000001', ...extra });
const ndjson = (events: unknown[]) => events.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))).join('\n') + '\n';
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

async function post(app: App, body: string, key = a.admin.key) {
  const response = await app.fetch('http://gateway.test/ingest', { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': NDJSON }, body });
  return { status: response.status, headers: response.headers, body: (await response.json()) as any };
}

const INGEST = `mutation ($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted duplicates rejected { index code message } } }`;

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every message delivered and acknowledged (the consumer's view: after a crash of nats-server the stream may keep acknowledged ones). */
async function drained(log: IngestLog) {
  let last: unknown;
  await waitFor(
    `${log.settings.stream} to be folded`,
    async () => {
      last = await log.stats().catch((error: unknown) => String(error));
      const stats = last as { pending?: number; ackPending?: number };
      return stats.pending === 0 && stats.ackPending === 0;
    },
    150_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; the log: ${JSON.stringify(last)}`);
  });
}

/** The realm's `tx` buckets: summed quantity (exact) and event count. */
async function totals(realmId: string, featureId = a.features.tx.id) {
  const rows = await db.prisma.usageHourly.findMany({ where: { realmId, featureId }, select: { quantity: true, eventCount: true } });
  return {
    quantity: rows.reduce((sum, row) => sum.plus(row.quantity), new Prisma.Decimal(0)).toFixed(),
    events: rows.reduce((sum, row) => sum + Number(row.eventCount), 0),
  };
}

const eventsWithPrefix = (prefix: string) => db.prisma.usageEvent.count({ where: { realmId: a.realm.id, idempotencyKey: { startsWith: prefix } } });

beforeAll(async () => {
  db = await createTestDatabase();
  a = await createUsageRealm(db.prisma);
  scopedWriter = (await createKey(db.prisma, a.realm.id, { workspaceId: a.tree.left.id, scopes: ['usage:write'] })).key;
});

afterEach(async () => {
  clock = NOW;
  for (const log of opened.splice(0)) {
    await log.manager.streams.delete(log.settings.stream).catch(() => {});
    await log.close();
  }
});

afterAll(async () => {
  await db?.destroy();
});

describe('settings', () => {
  it('is off without NATS_URL, and says what is wrong with a bad setting', () => {
    expect(ingestLogSettings({})).toBeUndefined();
    expect(() => ingestLogSettings({ INGEST_WORKERS: '2' })).toThrow(/INGEST_WORKERS needs NATS_URL/);
    expect(ingestLogSettings({ NATS_URL: 'nats://127.0.0.1:4222', INGEST_STREAM_MAX_BYTES: '64MiB', INGEST_WORKERS: '2' })).toMatchObject({
      stream: 'UGW_USAGE',
      subjectPrefix: 'ugw.usage',
      maxBytes: 64 * 1024 ** 2,
      workers: 2,
    });
    expect(() => ingestLogSettings({ NATS_URL: 'http://x' })).toThrow(/NATS_URL must look like nats:\/\/host:4222/);
    expect(() => ingestLogSettings({ NATS_URL: 'nats://x', INGEST_STREAM: 'a.b' })).toThrow(/INGEST_STREAM must be a stream name/);
    expect(() => ingestLogSettings({ NATS_URL: 'nats://x', INGEST_STREAM_MAX_MSGS: '-1' })).toThrow(/INGEST_STREAM_MAX_MSGS must be a whole number/);
    expect(() => ingestLogSettings({ NATS_URL: 'nats://x', INGEST_STREAM_MAX_BYTES: '12 parsecs' })).toThrow(/INGEST_STREAM_MAX_BYTES must be at least 1KiB/);
  });
});

describe('the edge', () => {
  it('answers once JetStream stored the events (one message per event, the target and receive time in its headers), before any fold', async () => {
    const log = await openLog();
    const app = appWith(log);
    const left = encodeId('Workspace', a.tree.left.id);
    const sent = await post(app, ndjson([event('edge-1'), event('edge-2', { quantity: '2' })]));
    expect(sent).toMatchObject({ status: 200, body: { accepted: 2, duplicates: 0, rejected: 0, errors: [], lines: 2 } });
    // Stored when answered; nothing in the database yet (no worker).
    expect((await log.stats()).messages).toBe(2);
    expect(await eventsWithPrefix('edge-')).toBe(0);

    const scoped = await graphql(app, INGEST, { key: scopedWriter, variables: { events: [event('edge-3', { workspaceId: left })] } });
    expect(scoped.body.data).toEqual({ ingestUsage: { accepted: 1, duplicates: 0, rejected: [] } });
    const stored = await log.manager.streams.getMessage(log.settings.stream, { seq: 3 });
    expect(stored!.subject).toBe(`${log.settings.subjectPrefix}.${a.realm.id}`);
    expect(stored!.header.get(HEADER_REALM)).toBe(a.realm.id);
    expect(stored!.header.get(HEADER_WORKSPACE)).toBe(a.tree.left.id);
    expect(stored!.header.get(HEADER_RECEIVED_AT)).toBe(NOW.toISOString());
    expect(stored!.json()).toEqual(event('edge-3', { workspaceId: left }));

    // Re-sent: JetStream drops them (the same realm, key and content), nothing is stored twice.
    expect((await post(app, ndjson([event('edge-1'), event('edge-2', { quantity: '2' })]))).body).toMatchObject({ accepted: 0, duplicates: 2 });
    expect((await log.stats()).messages).toBe(3);
  });

  it('gives bad input its per-event codes on both routes, and stores only the valid events', async () => {
    const log = await openLog();
    const app = appWith(log);
    const right = encodeId('Workspace', a.tree.right.id);
    const body = ndjson([
      event('bad-ok'),
      '{"idempotencyKey": "bad-json"',
      event('bad-feature', { feature: 'nope' }),
      event('bad-quantity', { quantity: 1.5 }),
      event('bad-ok', { quantity: '7' }),
      event('bad-ok'),
      event('bad-late', { timestamp: '2025-01-01T00:00:00Z' }),
    ]);
    const sent = await post(app, body);
    expect(sent.status).toBe(200);
    expect(sent.body).toMatchObject({ accepted: 1, duplicates: 1, rejected: 5, lines: 7 });
    expect(sent.body.errors.map((e: { line: number; code: string }) => [e.line, e.code])).toEqual([
      [2, 'MALFORMED_JSON'],
      [3, 'UNKNOWN_FEATURE'],
      [4, 'INVALID_QUANTITY'],
      [5, 'DUPLICATE_MISMATCH'],
      [7, 'TOO_LATE'],
    ]);

    // A workspace-scoped key: a workspace outside its subtree is unknown to it, at the edge.
    const viaGraphql = await graphql(app, INGEST, {
      key: scopedWriter,
      variables: { events: [event('bad-gql-1', { workspaceId: right }), event('bad-gql-2', { feature: 'nope' }), event('bad-gql-3', { workspaceId: encodeId('Workspace', a.tree.leaf.id) })] },
    });
    expect(viaGraphql.body.errors).toBeUndefined();
    const payload = viaGraphql.body.data!.ingestUsage;
    expect(payload.accepted).toBe(1);
    expect(payload.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([
      [0, 'UNKNOWN_DIMENSION'],
      [1, 'UNKNOWN_FEATURE'],
    ]);
    expect((await log.stats()).messages).toBe(2);
  });

  it('answers 503 INGEST_LOG_FULL with Retry-After at the stream limit, and stores nothing of the refused batch', async () => {
    const log = await openLog({ maxMessages: 10 });
    const app = appWith(log);
    expect((await post(app, ndjson(range(6).map((i) => event(`full-a${i}`))))).body).toMatchObject({ accepted: 6 });
    const refused = await post(app, ndjson(range(6).map((i) => event(`full-b${i}`))));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe(String(INGEST_LOG_FULL_RETRY_AFTER_SECONDS));
    expect(refused.body.errors[0].extensions).toMatchObject({ code: 'INGEST_LOG_FULL', retryAfter: INGEST_LOG_FULL_RETRY_AFTER_SECONDS, accepted: 0 });
    expect((await log.stats()).messages).toBe(6);

    const viaGraphql = await graphql(appWith(log), INGEST, { key: a.admin.key, variables: { events: range(5).map((i) => event(`full-c${i}`)) } });
    expect(viaGraphql.status).toBe(503);
    expect(viaGraphql.headers.get('retry-after')).toBe(String(INGEST_LOG_FULL_RETRY_AFTER_SECONDS));
    expect(viaGraphql.body.errors![0]!.extensions).toMatchObject({ code: 'INGEST_LOG_FULL', accepted: 0 });
    expect((await log.stats()).messages).toBe(6);
    expect((await log.health()).status).toBe('ok');

    // What still fits is taken: the limit refuses batches, not the log.
    expect((await post(app, ndjson(range(4).map((i) => event(`full-d${i}`))))).body).toMatchObject({ accepted: 4 });
    expect(await log.health()).toMatchObject({ status: 'full', messages: 10, maxMessages: 10 });
    expect((await post(app, ndjson([event('full-e')]))).status).toBe(503);
  });

  it('shows lag, pending acks and the oldest event in /metrics and /healthz', async () => {
    const log = await openLog();
    const app = appWith(log);
    await post(app, ndjson(range(3).map((i) => event(`metrics-${i}`))));
    const registry = new Registry();
    registerIngestLogMetrics(registry, log);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/^ingest_log_consumer_pending_messages 3$/m);
    expect(metrics).toMatch(/^ingest_log_consumer_ack_pending_messages 0$/m);
    expect(metrics).toMatch(/^ingest_log_consumer_redelivered_messages 0$/m);
    expect(metrics).toMatch(/^ingest_log_oldest_unprocessed_age_seconds \d/m);
    expect(metrics).toMatch(/^ingest_log_up 1$/m);

    const health = createApp({
      prisma: db.prisma,
      plugins: [useHealthCheck({ database: testDatabaseKind(), check: () => db.prisma.$queryRawUnsafe('SELECT 1'), ingestLog: () => log.health() })],
    });
    const answer = await (await health.fetch('http://gateway.test/healthz')).json();
    expect(answer).toMatchObject({ status: 'ok', ingestLog: { status: 'ok', stream: log.settings.stream, pending: 3, ackPending: 0, messages: 3 } });
    expect(answer.ingestLog.oldestUnprocessedAgeSeconds).toBeGreaterThanOrEqual(0);
  });
});

describe('workers', () => {
  it('fold into the database with exact totals, with the edge target and receive time', async () => {
    const log = await openLog();
    const app = appWith(log);
    const before = await totals(a.realm.id);
    const left = encodeId('Workspace', a.tree.left.id);
    const sent = await post(app, ndjson([...range(200).map((i) => event(`fold-${i}`, { quantity: i % 2 ? '0.000000001' : '12.5' })), event('fold-200')]));
    expect(sent.body).toMatchObject({ accepted: 201 });
    const scoped = await graphql(app, INGEST, { key: scopedWriter, variables: { events: [event('fold-scoped', { workspaceId: left, quantity: '3' })] } });
    expect(scoped.body.data!.ingestUsage.accepted).toBe(1);

    const reports: FoldReport[] = [];
    const worker = startIngestWorker({ prisma: db.prisma, log, onFold: (report) => reports.push(report) });
    try {
      await drained(log);
    } finally {
      await worker.stop();
    }
    // Real time is months after NOW: only the carried receive time keeps these events in the window.
    const folded = reports.reduce((sum, r) => ({ accepted: sum.accepted + r.result.accepted, rejected: sum.rejected + r.result.rejected.length }), { accepted: 0, rejected: 0 });
    expect(folded).toEqual({ accepted: 202, rejected: 0 });
    expect(reports.find((r) => r.target.workspaceId === a.tree.left.id)?.events).toBe(1);
    const after = await totals(a.realm.id);
    // 100 × 12.5 + 100 × 0.000000001 + 1.000000001 + 3
    expect(new Prisma.Decimal(after.quantity).minus(before.quantity).toFixed()).toBe('1254.000000101');
    expect(after.events - before.events).toBe(202);
    const scopedRow = await db.prisma.usageEvent.findFirstOrThrow({ where: { realmId: a.realm.id, idempotencyKey: 'fold-scoped' } });
    expect(scopedRow.workspaceId).toBe(a.tree.left.id);
  });

  it('count a message delivered again after its fold committed as a duplicate, never twice', async () => {
    const log = await openLog();
    const app = appWith(log);
    await post(app, ndjson(range(50).map((i) => event(`again-${i}`))));
    const worker = startIngestWorker({ prisma: db.prisma, log });
    const reports: FoldReport[] = [];
    try {
      await drained(log);
      await worker.stop();
      const once = await totals(a.realm.id);
      // What a redelivery after the commit (the ack lost) looks like: the same events, headers and receive time again.
      await Promise.all(
        range(50).map((i) => {
          const h = natsHeaders();
          h.set(HEADER_REALM, a.realm.id);
          h.set(HEADER_RECEIVED_AT, NOW.toISOString());
          return log.client.publish(log.subjectOf(a.realm.id), JSON.stringify(event(`again-${i}`)), { headers: h, msgID: `redelivery-${i}` });
        }),
      );
      const second = startIngestWorker({ prisma: db.prisma, log, onFold: (report) => reports.push(report) });
      await drained(log);
      await second.stop();
      expect(await totals(a.realm.id)).toEqual(once);
    } finally {
      await worker.stop();
    }
    expect(reports.reduce((sum, r) => sum + r.result.duplicates, 0)).toBe(50);
    expect(reports.reduce((sum, r) => sum + r.result.accepted, 0)).toBe(0);
  });
});

/** `usage-gateway worker` as a child process, with the log's settings in its environment. */
function startWorkerProcess(log: IngestLog, databaseUrl: string, args: string[] = []) {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.PGLITE_DIR;
  const child = spawn(process.execPath, ['scripts/cli.mjs', 'worker', ...args], {
    cwd: projectRoot,
    env: {
      ...env,
      DATABASE_URL: databaseUrl,
      NATS_URL: log.settings.url,
      INGEST_STREAM: log.settings.stream,
      INGEST_SUBJECT_PREFIX: log.settings.subjectPrefix,
      INGEST_CONSUMER: log.settings.consumer,
      INGEST_ACK_WAIT_MS: String(log.settings.ackWaitMs),
      LOG_LEVEL: 'debug',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let stderr = '';
  let rest = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    rest += chunk;
    const parts = rest.split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | string>((resolve) => child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const entries = () => lines.flatMap((line) => (line.startsWith('{') ? [JSON.parse(line) as Record<string, any>] : []));
  return {
    child,
    exited,
    /** Events this worker folded (its debug lines). */
    folded: () => entries().filter((e) => e.msg === 'ingestion log: folded'),
    ready: () =>
      waitFor('the worker to start', async () => {
        if (child.exitCode !== null) throw new Error(`the worker exited (${child.exitCode}): ${stderr}\n${lines.join('\n')}`);
        return lines.some((line) => line.includes('folding stream'));
      }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

describe.runIf(testDatabaseKind() === 'postgres')('worker processes (usage-gateway worker)', () => {
  const databaseUrl = () => (db.target as { url: string }).url;

  it('killed mid-batch (fetched, not acknowledged) lose nothing and count nothing twice', async () => {
    const log = await openLog({ ackWaitMs: 2000 });
    const app = appWith(log);
    const hour = '2026-03-10T08:10:00Z';
    // The bucket exists: a lock on it holds the worker's fold inside its transaction.
    await ingestBatch(db.prisma, { realmId: a.realm.id, workspaceId: null }, [event('kill-seed', { timestamp: hour })], { now: NOW });
    const before = await totals(a.realm.id);
    expect((await post(app, ndjson(range(300).map((i) => event(`kill-${i}`, { timestamp: hour }))))).body).toMatchObject({ accepted: 300 });

    const locker = new pg.Client({ connectionString: databaseUrl() });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query(`SELECT 1 FROM "UsageHourly" WHERE "realmId" = $1 AND "featureId" = $2 AND "hour" = $3 FOR UPDATE`, [a.realm.id, a.features.tx.id, '2026-03-10T08:00:00Z']);
    const first = startWorkerProcess(log, databaseUrl(), ['--batch', '500']);
    try {
      await first.ready();
      await waitFor('the batch to be delivered', async () => (await log.stats()).ackPending === 300);
      // Inside its fold's transaction, waiting for the lock: killed there.
      await waitFor('the fold to wait for the lock', async () => {
        const { rows } = await locker.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`);
        return rows[0].n > 0;
      });
      first.child.kill('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
    expect(await eventsWithPrefix('kill-')).toBe(1);
    expect((await log.stats()).messages).toBe(300);

    const second = startWorkerProcess(log, databaseUrl());
    try {
      await second.ready();
      await drained(log);
    } finally {
      expect(await second.stop()).toBe(0);
    }
    const folds = second.folded();
    expect(folds.reduce((sum, e) => sum + e.events, 0)).toBe(300);
    expect(folds.reduce((sum, e) => sum + e.redelivered, 0)).toBe(300);
    expect(folds.reduce((sum, e) => sum + e.accepted, 0)).toBe(300);
    const after = await totals(a.realm.id);
    expect(after.events - before.events).toBe(300);
    expect(new Prisma.Decimal(after.quantity).minus(before.quantity).toFixed()).toBe('300.0000003');
  });

  it('two sharing the consumer split the work, and the totals are exact', async () => {
    const log = await openLog();
    const app = appWith(log);
    const workers = [startWorkerProcess(log, databaseUrl(), ['--batch', '200']), startWorkerProcess(log, databaseUrl(), ['--batch', '200'])];
    const before = await totals(a.realm.id);
    try {
      await Promise.all(workers.map((w) => w.ready()));
      for (const batch of range(8)) {
        clock = new Date(NOW.getTime() + batch * 1000);
        expect((await post(app, ndjson(range(500).map((i) => event(`split-${batch}-${i}`))))).body).toMatchObject({ accepted: 500 });
      }
      await drained(log);
    } finally {
      for (const w of workers) expect(await w.stop()).toBe(0);
    }
    const perWorker = workers.map((w) => w.folded().reduce((sum, e) => sum + e.events, 0));
    expect(perWorker[0]! + perWorker[1]!).toBe(4000);
    expect(perWorker[0]).toBeGreaterThan(0);
    expect(perWorker[1]).toBeGreaterThan(0);
    const after = await totals(a.realm.id);
    expect(after.events - before.events).toBe(4000);
    expect(new Prisma.Decimal(after.quantity).minus(before.quantity).toFixed()).toBe('4000.000004');
  });
});

/** A nats-server of this test's own (the shared one is never restarted). */
function startNats(dir: string, port: number): Promise<ChildProcess> {
  const child = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' });
  return waitFor('nats-server to listen', () =>
    new Promise<boolean>((resolve) => {
      if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode})`);
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    }),
  ).then(() => child);
}

// The worker resumes within its pull request's expiry; events whose acks were lost come back after the ack wait.
describe('a NATS restart during a load', { timeout: 180_000 }, () => {
  it('keeps every acknowledged event, and a worker folding through it resumes', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ugw-nats-'));
    const port = await freePort();
    let nats = await startNats(dir, port);
    try {
      // Acks sent while the server is down are lost: those events come back after the ack wait.
      const log = await openLog({ url: `nats://127.0.0.1:${port}`, ackWaitMs: 3000 });
      const app = appWith(log);
      const before = await totals(a.realm.id);
      // Folding all along: it lives through the restart.
      const worker = startIngestWorker({ prisma: db.prisma, log });
      const requests = range(30).map((r) => ndjson(range(100).map((i) => event(`restart-${r}-${i}`))));
      const statuses: number[] = [];
      let restarted: Promise<void> | undefined;
      let answered = 0;
      let next = 0;
      // Three senders at once: the server dies while publishes are in flight.
      const sender = async () => {
        while (next < requests.length) {
          const r = next++;
          const answer = await post(app, requests[r]!);
          statuses[r] = answer.status;
          if (answer.status !== 200) {
            expect(answer.status).toBe(503);
            expect(answer.body.errors[0].extensions.code).toBe('INGEST_LOG_UNAVAILABLE');
            expect(answer.headers.get('retry-after')).toBe('5');
          }
          if (++answered === 10) {
            nats.kill('SIGKILL');
            restarted = new Promise((resolve) => nats.once('close', resolve))
              .then(() => new Promise((resolve) => setTimeout(resolve, 1000)))
              .then(async () => {
                nats = await startNats(dir, port);
              });
          }
        }
      };
      await Promise.all([sender(), sender(), sender()]);
      await restarted;
      expect(statuses).toContain(503);
      // A client re-sends what was refused (the log dedups what had been stored of it).
      for (const [r, body] of requests.entries()) {
        if (statuses[r] === 200) continue;
        await waitFor(`request ${r} to be stored`, async () => (await post(app, body)).status === 200);
      }
      try {
        await drained(log);
      } finally {
        await worker.stop();
      }
      expect(await eventsWithPrefix('restart-')).toBe(3000);
      const after = await totals(a.realm.id);
      expect(after.events - before.events).toBe(3000);
      expect(new Prisma.Decimal(after.quantity).minus(before.quantity).toFixed()).toBe('3000.000003');
    } finally {
      for (const log of opened.splice(0)) {
        await log.manager.streams.delete(log.settings.stream).catch(() => {});
        await log.close();
      }
      nats.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The spawned gateway opens a PGlite directory prepared here from the run's migrated template with
// one small realm (SEED_DEMO=false): neither the demo nor its 13 months of usage is what these tests
// are about, only that a real `npm start` with these settings answers from the log and folds it.
describe.runIf(testDatabaseKind() === 'pglite')('a gateway with NATS_URL and INGEST_WORKERS (spawned)', { timeout: 300_000 }, () => {
  let dir: string;
  let adminKey: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ugw-log-gateway-'));
    const templateFile = inject('pgliteTemplate');
    const prepared = await openDatabase({ kind: 'pglite', dir }, templateFile ? { pgliteTemplate: readPGliteTemplate(templateFile) } : {});
    try {
      adminKey = (await createUsageRealm(prepared.prisma, 'UTC')).admin.key;
    } finally {
      await prepared.close();
    }
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers from the log, folds in its own workers, and shows the log in /metrics and /healthz', async () => {
    const log = await openLog();
    const port = await freePort();
    const server = startServer({
      PGLITE_DIR: dir,
      PORT: String(port),
      HOST: '127.0.0.1',
      SEED_DEMO: 'false',
      NATS_URL: log.settings.url,
      INGEST_STREAM: log.settings.stream,
      INGEST_SUBJECT_PREFIX: log.settings.subjectPrefix,
      INGEST_CONSUMER: log.settings.consumer,
      INGEST_WORKERS: '2',
    });
    try {
      await server.waitForLine(/^Console: /);
      const base = `http://127.0.0.1:${port}`;
      const at = new Date().toISOString();
      const body = ndjson(range(3).map((i) => ({ idempotencyKey: `spawned-${Date.now()}-${i}`, feature: 'tx', timestamp: at, quantity: '2.5' })));
      const response = await fetch(`${base}/ingest`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': NDJSON }, body });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ accepted: 3, duplicates: 0, rejected: 0 });
      await waitFor(`the gateway's workers to fold\n${server.stdout.join('\n')}`, async () => /^ingest_log_folded_events_total\{outcome="accepted"\} 3$/m.test(await (await fetch(`${base}/metrics`)).text()));
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/^ingest_log_consumer_pending_messages 0$/m);
      expect(metrics).toMatch(/^ingest_log_fold_lag_seconds_count 3$/m);
      const health = await (await fetch(`${base}/healthz`)).json();
      expect(health).toMatchObject({ status: 'ok', ingestLog: { status: 'ok', stream: log.settings.stream, pending: 0, ackPending: 0 } });
      expect(server.stdout.join('\n')).toContain(`ingestion log: NATS JetStream stream ${log.settings.stream}`);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  // `main` of bin/usage-gateway in this process (test/helpers/cli-in-process.ts): the spawned
  // `usage-gateway worker` is what the worker-process tests on PostgreSQL run.
  it('usage-gateway worker: its help, and one line for what it cannot work without', async () => {
    const help = await runCliInProcess(['worker', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: usage-gateway worker \[options\]/);
    expect(help.stdout).toContain('NATS_URL (required)');
    const noNats = await runCliInProcess(['worker'], { NATS_URL: '', DATABASE_URL: '' });
    expect(noNats).toMatchObject({ code: 2, stderr: expect.stringMatching(/^error: NATS_URL is not set/) });
    const embedded = await runCliInProcess(['worker'], { NATS_URL, DATABASE_URL: '', PGLITE_DIR: dir });
    expect(embedded).toMatchObject({ code: 2, stderr: expect.stringMatching(/^error: DATABASE_URL must be a postgresql:\/\/ URL.*INGEST_WORKERS=n/) });
  });

  it('refuses to start when NATS cannot be reached, in one line', async () => {
    // The log is opened after the database: the database of the test above, not created again.
    const server = startServer({ PGLITE_DIR: dir, PORT: String(await freePort()), HOST: '127.0.0.1', SEED_DEMO: 'false', NATS_URL: `nats://127.0.0.1:${await freePort()}` });
    expect(await server.exited).toBe(1);
    expect(server.stderr.join('\n')).toMatch(/^error: cannot open the ingestion log on NATS at nats:\/\/127\.0\.0\.1:\d+ .*check NATS_URL/m);
  });
});

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openDatabase, type Database } from '../src/db/database.js';
import { createScratchDatabase, type ScratchDatabase } from '../src/db/scratch-database.js';
import { isDatabaseUnavailable } from '../src/errors.js';
import { useUsageExportEndpoints } from '../src/exports/http.js';
import { useIngestEndpoint } from '../src/ingest/http.js';
import { useHealthCheck } from '../src/observability.js';
import { createMemoryRateLimiter } from '../src/rate-limit/limiter.js';
import { createApp, type App } from '../src/yoga.js';
import { testDatabaseKind } from './helpers/database.js';
import { createKey, createRealm } from './helpers/fixtures.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';

describe('isDatabaseUnavailable', () => {
  it('recognises lost and refused connections, and nothing else', () => {
    const unavailable = [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      Object.assign(new Error('the database system is starting up'), { code: '57P03' }),
      Object.assign(new Error('connection failure'), { code: '08006' }),
      Object.assign(new Error("Can't reach database server"), { code: 'P1001' }),
      Object.assign(new Error('Server has closed the connection.'), { code: 'P1017' }),
      Object.assign(new Error('Timed out fetching a new connection from the connection pool.'), { code: 'P2024' }),
      Object.assign(new Error('Raw query failed'), { code: 'P2010', meta: { driverAdapterError: { name: 'DriverAdapterError', cause: { kind: 'DatabaseNotReachable' } } } }),
      Object.assign(new Error('wrapped'), { cause: { kind: 'postgres', code: '08003' } }),
      new AggregateError([Object.assign(new Error('connect ECONNREFUSED ::1:5432'), { code: 'ECONNREFUSED' })]),
    ];
    for (const error of unavailable) expect(isDatabaseUnavailable(error), String(error)).toBe(true);
    const bugs = [
      new Error('Unexpected error'),
      Object.assign(new Error('duplicate key'), { code: '23505' }),
      Object.assign(new Error('bind message supplies 4 parameters, but prepared statement "" requires 0'), { code: '08P01' }),
      Object.assign(new Error('deadlock detected'), { code: '40P01' }),
      Object.assign(new Error('Unique constraint failed'), { code: 'P2002' }),
      null,
      'a string',
    ];
    for (const error of bugs) expect(isDatabaseUnavailable(error), String(error)).toBe(false);
  });
});

describe.runIf(testDatabaseKind() === 'postgres')('PostgreSQL cut off mid-load (a TCP proxy between the gateway and PostgreSQL)', () => {
  let scratch: ScratchDatabase;
  let proxy: TcpProxy;
  let db: Database;
  let key: string;
  const unexpected: unknown[] = [];
  let apps: App[];

  beforeAll(async () => {
    scratch = await createScratchDatabase(process.env.TEST_DATABASE_URL!);
    const url = new URL(scratch.url);
    proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
    url.port = String(proxy.port);
    db = await openDatabase({ kind: 'postgres', url: url.toString() });
    const realm = await createRealm(db.prisma, 'Faults realm');
    key = (await createKey(db.prisma, realm.id)).key;
    const plugins = () => [
      useHealthCheck({ database: 'postgres', check: () => db.prisma.$queryRawUnsafe('SELECT 1') }),
      useIngestEndpoint({ prisma: db.prisma, onUnexpectedError: (error) => unexpected.push(error) }),
      useUsageExportEndpoints({ prisma: db.prisma, onUnexpectedError: (error) => unexpected.push(error) }),
    ];
    const common = { prisma: db.prisma, rateLimiter: createMemoryRateLimiter(), onUnexpectedError: (error: unknown) => unexpected.push(error) };
    // One app reads the key on every request (authentication fails first), one caches it (resolvers, ingestion and exports fail).
    apps = [createApp({ ...common, plugins: plugins() }), createApp({ ...common, authCacheTtlMs: 600_000, plugins: plugins() })];
  }, 60_000);

  afterAll(async () => {
    await db?.close().catch(() => {});
    await proxy?.close();
    await scratch?.drop();
  });

  let sequence = 0;
  const requests: Array<(app: App) => Promise<Response>> = [
    (app) =>
      app.fetch('http://gateway.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ query: '{ viewer { scopes realm { name workspaces(first: 5) { totalCount } } } }' }),
      }),
    (app) =>
      app.fetch('http://gateway.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ query: 'mutation($name: String!) { createApiKey(input: { name: $name, scopes: ["usage:read"] }) { apiKey { id } userErrors { message } } }', variables: { name: `fault ${++sequence}` } }),
      }),
    (app) =>
      app.fetch('http://gateway.test/ingest', {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${key}` },
        body: `${JSON.stringify({ feature: 'faults.feature', idempotencyKey: `fault-${++sequence}`, quantity: '1', timestamp: new Date().toISOString() })}\n`,
      }),
    (app) => app.fetch('http://gateway.test/exports/usage/daily.csv', { headers: { authorization: `Bearer ${key}` } }),
    (app) => app.fetch('http://gateway.test/healthz'),
  ];

  interface Answer {
    route: number;
    status: number;
    retryAfter: string | null;
    code?: string;
  }

  async function send(app: App, route: number): Promise<Answer> {
    const response = await requests[route]!(app);
    const text = await response.text();
    let code: string | undefined;
    try {
      const body = JSON.parse(text);
      code = body.errors?.[0]?.extensions?.code;
    } catch {
      // CSV
    }
    return { route, status: response.status, retryAfter: response.headers.get('retry-after'), code };
  }

  it('answers 200 or 503 SERVICE_UNAVAILABLE with Retry-After, never 500, and recovers when the database is back', async () => {
    const phases: Record<'before' | 'cut' | 'restored', Answer[]> = { before: [], cut: [], restored: [] };
    let phase: keyof typeof phases = 'before';
    let stop = false;
    const worker = async (index: number) => {
      for (let i = index; !stop; i++) {
        const route = i % requests.length;
        const current = phase;
        phases[current].push(await send(apps[i % apps.length]!, route));
      }
    };
    const workers = [0, 1, 2, 3].map(worker);
    const summary = () =>
      Object.fromEntries(
        Object.entries(phases).map(([name, answers]) => [name, answers.map((answer) => `${answer.route}:${answer.status}${answer.code ? `:${answer.code}` : ''}`).join(' ')]),
      );
    try {
      await vi.waitFor(() => expect(phases.before.length).toBeGreaterThanOrEqual(20), { timeout: 30_000, interval: 20 });
      phase = 'cut';
      await proxy.cut();
      await vi.waitFor(() => expect(phases.cut.length).toBeGreaterThanOrEqual(40), { timeout: 30_000, interval: 20 });
      await proxy.restore();
      phase = 'restored';
      // The pool reconnects on next use: every route answers 200 again.
      await vi.waitFor(
        () => {
          const recent = phases.restored.slice(-requests.length * 2);
          expect(recent.length).toBe(requests.length * 2);
          expect(recent.map((answer) => answer.status), JSON.stringify(summary())).toEqual(recent.map(() => 200));
        },
        { timeout: 30_000, interval: 50 },
      );
    } finally {
      stop = true;
      await Promise.all(workers);
    }

    const all = [...phases.before, ...phases.cut, ...phases.restored];
    const statuses = new Set(all.map((answer) => answer.status));
    expect([...statuses].sort()).toEqual([200, 503]);
    for (const answer of all.filter((a) => a.status === 503)) {
      expect(answer.retryAfter, `route ${answer.route}`).toMatch(/^\d+$/);
      // /healthz keeps its own body ({ status: 'error', database: 'unavailable' }).
      if (answer.route !== requests.length - 1) expect(answer.code, `route ${answer.route}`).toBe('SERVICE_UNAVAILABLE');
    }
    // While cut, every route that needs the database said so.
    const cutRoutes = new Set(phases.cut.filter((answer) => answer.status === 503).map((answer) => answer.route));
    expect([...cutRoutes].sort()).toEqual(requests.map((_, route) => route));
    expect(unexpected).toEqual([]);
  }, 120_000);
});

import { createScratchDatabase } from '../src/db/scratch-database.js';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { DEMO, DEMO_API_KEY } from '../src/db/seed.js';
import type { PrismaClient } from '../src/generated/prisma/client.js';
import { createLogger, createMetrics, logUnexpectedError, useHealthCheck, useRequestLogging } from '../src/observability.js';
import { createApp } from '../src/yoga.js';
import { testDatabaseKind } from './helpers/database.js';
import { freePort, runUntilExit, startServer, type ServerProcess } from './server/server-process.js';

// The server is a real child process (`node scripts/start.mjs`, what `npm start` runs),
// spoken to over real HTTP: these tests prove the curl, not an in-process shortcut.

const LONG = { timeout: 120_000 };
const kind = testDatabaseKind();
const demoRealmName = DEMO.realms.acme.name;

interface HttpAnswer {
  status: number;
  headers: Headers;
  body: any;
}

async function postGraphQL(base: string, query: string, key?: string): Promise<HttpAnswer> {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ query }),
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

/** Starts the server and waits for its `API key:` line; returns the key and the ms from spawn to the first answer. */
async function startAndAsk(env: Record<string, string>, port: number) {
  const server = startServer({ ...env, PORT: String(port) });
  const line = await server.waitForLine(/^API key: /);
  const key = line.slice('API key: '.length).trim();
  const first = await postGraphQL(`http://127.0.0.1:${port}`, '{ viewer { realm { name } } }', key);
  const firstAnswerMs = Math.round(performance.now() - server.spawnedAt);
  return { server, key, first, firstAnswerMs };
}

/**
 * A POST whose body arrives in two halves: the server has the request (headers and half the body)
 * in flight until `finish()` sends the rest.
 */
function startSlowRequest(port: number, key: string, query: string) {
  const body = JSON.stringify({ query });
  const half = Math.floor(body.length / 2);
  let request!: http.ClientRequest;
  const answer = new Promise<{ status: number; body: any }>((resolve, reject) => {
    request = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/graphql',
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${key}` },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
  });
  const sent = new Promise<void>((resolve) => request.write(body.slice(0, half), () => resolve()));
  return { answer, sent, finish: () => request.end(body.slice(half)) };
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

interface DatabaseUnderTest {
  label: string;
  env: Record<string, string>;
  healthKind: string;
  cleanup(): Promise<void>;
}

async function pgliteDatabase(): Promise<DatabaseUnderTest> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ugw-server-'));
  return {
    label: 'a fresh PGlite directory',
    env: { PGLITE_DIR: dir },
    healthKind: 'pglite',
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgresDatabase(): Promise<DatabaseUnderTest> {
  const adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) throw new Error('TEST_DATABASE_URL is required for the postgres test project');
  const scratch = await createScratchDatabase(adminUrl);
  return {
    label: `a fresh PostgreSQL database (${scratch.name})`,
    env: { DATABASE_URL: scratch.url },
    healthKind: 'postgres',
    cleanup: () => scratch.drop(),
  };
}

const SERVER_METRICS_TOKEN = 'server-test-metrics-token';

describe(`npm start on ${kind === 'postgres' ? 'PostgreSQL' : 'the embedded PGlite'}`, LONG, () => {
  let database: DatabaseUnderTest;
  let server: ServerProcess | undefined;
  let port: number;
  let base: string;
  let key: string;
  let first: HttpAnswer;

  beforeAll(async () => {
    database = kind === 'postgres' ? await postgresDatabase() : await pgliteDatabase();
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    // With a token /metrics names operations (an open /metrics labels them all `hidden`).
    const started = await startAndAsk({ ...database.env, METRICS_TOKEN: SERVER_METRICS_TOKEN }, port);
    ({ server, key, first } = started);
    console.log(`start-up on ${database.label} (migrations + demo seed), spawn to first answer: ${started.firstAnswerMs} ms`);
  }, 180_000);

  afterAll(async () => {
    await server?.stop();
    await database?.cleanup();
  }, 60_000);

  it('prints the GraphiQL address and the demo API key', () => {
    expect(server!.stdout).toContain(`GraphiQL: http://localhost:${port}/graphql`);
    expect(key).toBe(DEMO_API_KEY);
  });

  it("answers the issue's curl with the demo realm's name", async () => {
    expect(first.status).toBe(200);
    // The server always rate-limits: every answer carries the key's window.
    expect(first.body).toEqual({ data: { viewer: { realm: { name: demoRealmName } } }, extensions: expect.objectContaining({ rateLimit: expect.objectContaining({ limit: 1000, cost: 1 }) }) });
  });

  it('GET /healthz answers 200 after asking the database', async () => {
    const response = await fetch(`${base}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok', database: database.healthKind });
  });

  it('a request without a key gets 401 UNAUTHENTICATED', async () => {
    const answer = await postGraphQL(base, 'query NoKey { viewer { realm { name } } }');
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toBe('Bearer');
    expect(answer.body.errors.map((error: any) => error.extensions?.code)).toEqual(['UNAUTHENTICATED']);
    expect(answer.body.data ?? null).toBeNull();
  });

  it('GET /metrics counts requests, errors and latency by operation name', async () => {
    const answer = await postGraphQL(base, 'query ServerTestRealm { viewer { realm { name } } }', key);
    expect(answer.status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    const response = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${SERVER_METRICS_TOKEN}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toContain('graphql_envelop_request{operationName="ServerTestRealm",operationType="query"} 1');
    expect(text).toMatch(/graphql_envelop_request_duration_count\{operationName="ServerTestRealm",operationType="query"\} 1/);
    // Requests without a valid key are never parsed: they count as "unauthenticated", their names never show.
    expect(text).toMatch(/graphql_yoga_http_duration_count\{method="POST",statusCode="401",operationType="unknown",operationName="unauthenticated"\} \d+/);
    expect(text).not.toContain('NoKey');
  });

  it('serves GraphiQL on GET /graphql, pre-filled with the demo key in development', async () => {
    const response = await fetch(`${base}/graphql`, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await response.text();
    expect(html).toContain('Usage gateway');
    expect(html).toContain(DEMO_API_KEY);
  });

  it('logs one structured JSON line per GraphQL request', async () => {
    await vi.waitFor(() => {
      const entries = server!.logEntries();
      const named = entries.filter((entry) => entry.operationName === 'ServerTestRealm');
      expect(named).toHaveLength(1);
      expect(named[0]).toMatchObject({
        level: 30,
        operationType: 'query',
        status: 200,
        hasErrors: false,
        errorCodes: [],
        apiKeyPrefix: DEMO_API_KEY.slice(0, 'ugw_'.length + 8),
        apiKeyId: expect.any(String),
        realmId: expect.any(String),
        durationMs: expect.any(Number),
      });
      const anonymous = entries.filter((entry) => entry.operationName === 'anonymous' && entry.status === 200);
      expect(anonymous).toHaveLength(1);
      // Refused before its document was parsed: the log does not know its operation's name.
      expect(entries.find((entry) => entry.status === 401)).toMatchObject({
        operationName: 'anonymous',
        status: 401,
        hasErrors: true,
        errorCodes: ['UNAUTHENTICATED'],
        apiKeyId: null,
      });
      // GraphiQL's page, /healthz and /metrics are not GraphQL requests.
      expect(entries.filter((entry) => 'operationName' in entry)).toHaveLength(3);
    });
    expect(server!.logEntries().some((entry) => /^applied \d+ migration/.test(entry.msg))).toBe(true);
    expect(server!.logEntries().some((entry) => /^seeded the demo in \d+ ms$/.test(entry.msg))).toBe(true);
  });

  it('never writes a secret to its logs: the demo key appears only on its own `API key:` line', async () => {
    // requests with a valid, a wrong and a malformed key, so each path has logged something
    await postGraphQL(base, 'query SecretCheck { viewer { scopes } }', key);
    await postGraphQL(base, 'query SecretCheck { viewer { scopes } }', `${key.slice(0, 13)}wrong-secret-wrong-secret`);
    const secret = key.slice('ugw_00000000_'.length);
    await vi.waitFor(() => expect(server!.logEntries().filter((entry) => entry.operationName === 'SecretCheck').length).toBeGreaterThanOrEqual(1));
    const lines = [...server!.stdout, ...server!.stderr].filter((line) => line.includes(secret));
    expect(lines).toEqual([`API key: ${key}`]);
  });

  it('SIGTERM: stops accepting, lets the in-flight request finish, closes the database and exits 0', async () => {
    const slow = startSlowRequest(port, key, 'query InFlight { viewer { realm { name } } }');
    await slow.sent;
    // The server is idle: half a second is ample for it to accept the connection and read the headers.
    await new Promise((resolve) => setTimeout(resolve, 500));
    server!.child.kill('SIGTERM');
    await server!.waitForLine(/"signal":"SIGTERM"/, 10_000);
    expect(await connects(port)).toBe(false);
    slow.finish();
    const answer = await slow.answer;
    expect(answer).toEqual({ status: 200, body: { data: { viewer: { realm: { name: demoRealmName } } }, extensions: expect.objectContaining({ rateLimit: expect.objectContaining({ limit: 1000, cost: 1 }) }) } });
    expect(await server!.exited).toBe(0);
    expect(server!.stderr.filter((line) => line.trim())).toEqual([]);
    expect(server!.logEntries().at(-1)?.msg).toBe('stopped');
  });

  it('a second start of the same database migrates nothing, seeds nothing and answers quickly', async () => {
    port = await freePort();
    const again = await startAndAsk(database.env, port);
    server = again.server;
    console.log(`start-up on ${database.label} again (already migrated and seeded), spawn to first answer: ${again.firstAnswerMs} ms`);
    expect(again.first.body).toEqual({ data: { viewer: { realm: { name: demoRealmName } } }, extensions: expect.objectContaining({ rateLimit: expect.objectContaining({ limit: 1000, cost: 1 }) }) });
    const messages = server.logEntries().map((entry) => entry.msg as string);
    expect(messages).toContain('database schema is up to date');
    expect(messages.some((message) => message.startsWith('seeded'))).toBe(false);
    expect(await server.stop()).toBe(0);
  });

  it('a production start of that database revokes the public demo key and prints none, serves no GraphiQL, and protects /metrics with METRICS_TOKEN', async () => {
    // The database a development start seeded holds the demo key: a production start must not let it in.
    port = await freePort();
    const token = 'metrics-token-for-the-test-0123';
    server = startServer({ ...database.env, PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'production', METRICS_TOKEN: token });
    await server.waitForLine(/^GraphQL: http:\/\/localhost:\d+\/graphql$/);
    expect(server.stdout.some((line) => line.startsWith('API key:') || line.includes(DEMO_API_KEY))).toBe(false);
    expect(server.logEntries().some((entry) => /^revoked the demo API key/.test(entry.msg))).toBe(true);
    base = `http://127.0.0.1:${port}`;
    const withDemoKey = await postGraphQL(base, '{ viewer { scopes } }', DEMO_API_KEY);
    expect(withDemoKey.status).toBe(401);
    const page = await fetch(`${base}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
    await page.arrayBuffer();
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect(await server.stop()).toBe(0);
  });
});

describe.runIf(kind === 'pglite')('bad input: one line on stderr saying what to fix, exit code 1', LONG, () => {
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'ugw-server-bad-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  async function expectOneLineFailure(env: Record<string, string>, mentions: RegExp) {
    const result = await runUntilExit({ PGLITE_DIR: path.join(scratch, 'db'), PORT: String(await freePort()), ...env });
    expect(result.code).toBe(1);
    expect(result.stderr).toHaveLength(1);
    const [line] = result.stderr;
    expect(line).toMatch(/^error: /);
    expect(line).toMatch(mentions);
    expect(line).not.toContain('    at ');
    return line!;
  }

  it('an unreachable PostgreSQL', async () => {
    const line = await expectOneLineFailure({ DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/x' }, /DATABASE_URL/);
    expect(line).toContain('127.0.0.1:1');
  });

  it('a PGlite directory that cannot be created (under /proc)', async () => {
    await expectOneLineFailure({ PGLITE_DIR: '/proc/nope' }, /PGLITE_DIR "\/proc\/nope".*cannot create/);
  });

  it('a PGlite directory under a regular file', async () => {
    await expectOneLineFailure({ PGLITE_DIR: '/etc/hostname/x' }, /PGLITE_DIR .*\/etc\/hostname is not a directory/);
  });

  it('a port in use', async () => {
    const holder = net.createServer();
    const port = await new Promise<number>((resolve) =>
      holder.listen(0, '0.0.0.0', () => resolve((holder.address() as net.AddressInfo).port)),
    );
    try {
      const line = await expectOneLineFailure({ PORT: String(port) }, /PORT/);
      expect(line).toBe(`error: port ${port} is in use; set PORT to a free port`);
    } finally {
      holder.close();
    }
  });

  // Every setting loadConfig refuses takes this way out (a ConfigError, e.g. a malformed DATABASE_URL):
  // what each one says is checked in process, below ('rejects %o with a one-line ConfigError').
  it('a PORT that is not a port', async () => {
    await expectOneLineFailure({ PORT: '70000' }, /PORT must be a whole number from 0 to 65535 \(got "70000"\)/);
  });
});

describe.runIf(kind === 'pglite')('loadConfig', () => {
  it('has defaults for everything', () => {
    expect(loadConfig({})).toMatchObject({
      port: 4000,
      host: '127.0.0.1',
      databaseTarget: { kind: 'pglite', dir: './data/pglite' },
      exposeQueryStats: false,
      logLevel: 'info',
      development: true,
      seedDemo: true,
      graphiql: true,
      introspection: true,
      metricsToken: undefined,
      graphqlMaxBodyBytes: 1024 ** 2,
      redisUrl: undefined,
      ingestMaxBytes: 1024 ** 3,
    });
  });

  it('production defaults: no demo seed (nor demo key), no GraphiQL, no introspection, unless asked for', () => {
    expect(loadConfig({ NODE_ENV: 'production' })).toMatchObject({ development: false, seedDemo: false, graphiql: false, introspection: false });
    expect(loadConfig({ NODE_ENV: 'production', SEED_DEMO: 'true', GRAPHIQL: 'true', GRAPHQL_INTROSPECTION: 'true' })).toMatchObject({
      seedDemo: true,
      graphiql: true,
      introspection: true,
    });
    expect(loadConfig({ SEED_DEMO: 'false', GRAPHIQL: 'off', GRAPHQL_INTROSPECTION: '0' })).toMatchObject({ seedDemo: false, graphiql: false, introspection: false });
  });

  it('listens on loopback only in development, on every address in production, unless HOST says otherwise', () => {
    expect(loadConfig({}).host).toBe('127.0.0.1');
    expect(loadConfig({ NODE_ENV: 'production' }).host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
  });

  it('reads every setting', () => {
    expect(
      loadConfig({
        PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_URL: 'postgresql://u:p@db:5432/gw',
        EXPOSE_QUERY_STATS: 'true',
        LOG_LEVEL: 'DEBUG',
        NODE_ENV: 'production',
        SEED_DEMO: 'false',
        REDIS_URL: 'redis://cache:6379',
        INGEST_MAX_BYTES: '512MiB',
        METRICS_TOKEN: 'a-metrics-token-of-32-characters',
        GRAPHQL_MAX_BODY_BYTES: '256KiB',
      }),
    ).toMatchObject({
      port: 0,
      host: '127.0.0.1',
      databaseTarget: { kind: 'postgres', url: 'postgresql://u:p@db:5432/gw', schema: undefined },
      exposeQueryStats: true,
      logLevel: 'debug',
      development: false,
      seedDemo: false,
      graphiql: false,
      introspection: false,
      metricsToken: 'a-metrics-token-of-32-characters',
      graphqlMaxBodyBytes: 256 * 1024,
      redisUrl: 'redis://cache:6379',
      ingestMaxBytes: 512 * 1024 ** 2,
    });
  });

  it.each([
    [{ PORT: '65536' }, /^PORT must be a whole number from 0 to 65535 \(got "65536"\); set PORT=4000 or unset it$/],
    [{ PORT: '-1' }, /^PORT must be/],
    [{ PORT: '80.5' }, /^PORT must be/],
    [{ EXPOSE_QUERY_STATS: 'sometimes' }, /^EXPOSE_QUERY_STATS must be true or false \(got "sometimes"\)/],
    [{ SEED_DEMO: 'maybe' }, /^SEED_DEMO must be true or false/],
    [{ GRAPHIQL: 'maybe' }, /^GRAPHIQL must be true or false/],
    [{ GRAPHQL_INTROSPECTION: 'maybe' }, /^GRAPHQL_INTROSPECTION must be true or false/],
    [{ METRICS_TOKEN: 'short' }, /^METRICS_TOKEN must be at least 16 characters/],
    [{ GRAPHQL_MAX_BODY_BYTES: '100' }, /^GRAPHQL_MAX_BODY_BYTES must be from 1KiB to 64MiB/],
    [{ GRAPHQL_MAX_BODY_BYTES: '1GiB' }, /^GRAPHQL_MAX_BODY_BYTES must be from 1KiB to 64MiB/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent/],
    [{ V8_HEAP_GROWING_PERCENT: '500' }, /^V8_HEAP_GROWING_PERCENT must be a whole number from 0/],
    [{ V8_HEAP_GROWING_PERCENT: 'half' }, /^V8_HEAP_GROWING_PERCENT must be a whole number from 0/],
    [{ REDIS_URL: 'localhost:6379' }, /^REDIS_URL must look like redis:\/\/host:6379/],
    [{ DATABASE_URL: 'not a url' }, /^DATABASE_URL is not a valid URL/],
    [{ DATABASE_URL: 'postgres//localhost:5432' }, /^DATABASE_URL is not a valid URL; expected postgresql:\/\//],
    [{ DATABASE_URL: 'mysql://db/x' }, /^DATABASE_URL must start with postgresql:\/\//],
  ])('rejects %o with a one-line ConfigError', (env, message) => {
    let thrown: unknown;
    try {
      loadConfig(env);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as Error).message).toMatch(message);
    expect((thrown as Error).message).not.toContain('\n');
  });
});

describe.runIf(kind === 'pglite')('observability plugins, in process', () => {
  function capturedLogger() {
    const entries: Array<Record<string, any>> = [];
    const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void entries.push(JSON.parse(line)) } });
    return { logger, entries };
  }

  /** An app whose database fails every query: key lookups throw, the health check fails. */
  function brokenApp() {
    const { logger, entries } = capturedLogger();
    const failing = async () => {
      throw new Error('connection to the database was lost');
    };
    const prisma = { apiKey: { findUnique: failing } } as unknown as PrismaClient;
    const metrics = createMetrics();
    const app = createApp({
      prisma,
      plugins: [useHealthCheck({ database: 'pglite', check: failing, logger }), metrics.plugin, useRequestLogging(logger)],
      onUnexpectedError: logUnexpectedError(logger),
    });
    return { app, entries, metrics };
  }

  const broken = (app: ReturnType<typeof brokenApp>['app']) =>
    app.fetch('http://gateway.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${DEMO_API_KEY}` },
      body: JSON.stringify({ query: 'query Broken { viewer { realm { name } } }' }),
    });

  it('logs an unexpected error once, at error level, with its stack; the client sees only "Unexpected error."', async () => {
    const { app, entries } = brokenApp();
    const response = await broken(app);
    const body = await response.json();
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0].message).toBe('Unexpected error.');
    expect(JSON.stringify(body)).not.toContain('connection to the database was lost');
    const errors = entries.filter((entry) => entry.level >= 50 && entry.err);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toBe('unexpected error: connection to the database was lost');
    expect(errors[0]!.err.stack).toContain('connection to the database was lost');
    // The key lookup failed before the document was parsed: the line has no operation name.
    expect(entries.filter((entry) => 'operationName' in entry)).toEqual([
      expect.objectContaining({ operationName: 'anonymous', hasErrors: true, errorCount: 1, status: response.status, apiKeyPrefix: 'ugw_acde2024', apiKeyId: null }),
    ]);
  });

  it('GET /healthz answers 503 when the database does not answer', async () => {
    const { app, entries } = brokenApp();
    const response = await app.fetch('http://gateway.test/healthz');
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ status: 'error', database: 'pglite', error: 'database unavailable', errors: [{ extensions: { code: 'SERVICE_UNAVAILABLE' } }] });
    expect(entries.some((entry) => entry.level === 40 && /^health check failed/.test(entry.msg))).toBe(true);
  });

  it('each app has its own metrics registry', async () => {
    const first = brokenApp();
    const second = brokenApp();
    await broken(first.app);
    const firstMetrics = await (await first.app.fetch('http://gateway.test/metrics')).text();
    const secondMetrics = await (await second.app.fetch('http://gateway.test/metrics')).text();
    expect(firstMetrics).toContain('statusCode="500",operationType="unknown",operationName="unauthenticated"');
    expect(secondMetrics).not.toContain('statusCode="500"');
    expect(first.metrics.registry).not.toBe(second.metrics.registry);
  });
});

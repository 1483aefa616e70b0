import { SCOPES } from '../src/auth/scopes.js';
import net from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useUsageExportEndpoints } from '../src/exports/http.js';
import { encodeId } from '../src/global-id.js';
import { useIngestEndpoint } from '../src/ingest/http.js';
import { createLogger, createMetrics, useHealthCheck, useRequestLogging } from '../src/observability.js';
import { ROUTES } from '../src/plugins/http-errors.js';
import { createMemoryRateLimiter } from '../src/rate-limit/limiter.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { demoServerDatabase } from './helpers/demo-database.js';
import { createKey, createRealm } from './helpers/fixtures.js';
import { freePort, startServer, type ServerProcess } from './server/server-process.js';

let db: TestDatabase;
let key: string;
let readOnlyKey: string;
let app: App;
const logLines: Array<Record<string, any>> = [];

beforeAll(async () => {
  db = await createTestDatabase();
  const realm = await createRealm(db.prisma, 'Error contract realm');
  key = (await createKey(db.prisma, realm.id)).key;
  readOnlyKey = (await createKey(db.prisma, realm.id, { scopes: ['usage:read'] })).key;
  const logger = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
        done();
      },
    }),
  });
  app = createApp({
    prisma: db.prisma,
    plugins: [
      useHealthCheck({ database: 'test', check: () => db.prisma.$queryRawUnsafe('SELECT 1') }),
      useIngestEndpoint({ prisma: db.prisma, logger }),
      useUsageExportEndpoints({ prisma: db.prisma, logger }),
      createMetrics().plugin,
      useRequestLogging(logger),
    ],
  });
});
afterAll(() => db?.destroy());

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

async function send(target: App, pathname: string, init: RequestInit = {}): Promise<Answer> {
  const response = await target.fetch(`http://gateway.test${pathname}`, init);
  const text = await response.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, text, body };
}

function postGraphQL(query: string, options: { key?: string | null; accept?: string; variables?: Record<string, unknown>; headers?: Record<string, string>; target?: App } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  if (options.key !== null) headers.authorization = `Bearer ${options.key ?? key}`;
  if (options.accept) headers.accept = options.accept;
  return send(options.target ?? app, '/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables: options.variables }) });
}

/** The one error shape: JSON, a message, a code, and the request id of the `X-Request-Id` header. */
function expectError(answer: Answer, status: number, code: string) {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/(graphql-response\+)?json/);
  expect(answer.body.errors[0]).toMatchObject({ message: expect.stringMatching(/\S/), extensions: { code } });
  expect(answer.body.extensions.requestId).toBe(answer.headers.get('x-request-id'));
  return answer.body.errors[0] as { message: string; path?: unknown; locations?: unknown; extensions: Record<string, unknown> };
}

describe('/graphql answers the statuses of the GraphQL-over-HTTP spec', () => {
  const curlBody = '{"query":"{ viewer { scopes } }"}';

  it('a non-JSON POST (curl -d without a content type) is 415 saying to send application/json, not 200 "Must provide query string."', async () => {
    for (const contentType of ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x', null]) {
      const headers: Record<string, string> = { authorization: `Bearer ${key}` };
      if (contentType) headers['content-type'] = contentType;
      const answer = await send(app, '/graphql', { method: 'POST', headers, body: curlBody });
      const error = expectError(answer, 415, 'UNSUPPORTED_MEDIA_TYPE');
      expect(error.message).toContain('Content-Type: application/json');
    }
    // The same body as JSON is answered.
    const answer = await send(app, '/graphql', { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: curlBody });
    expect(answer.status).toBe(200);
    expect(answer.body.data.viewer.scopes).toHaveLength(SCOPES.length);
  });

  it('request errors (parse, validation, variables) are 400 without Accept, with */* (curl) and with graphql-response+json; 200 only for a client that asks for application/json', async () => {
    const cases: Array<[string, string, Record<string, unknown> | undefined, string]> = [
      ['{ viewer {', 'parse', undefined, 'GRAPHQL_PARSE_FAILED'],
      ['{ nope }', 'validation', undefined, 'GRAPHQL_VALIDATION_FAILED'],
      ['query ($id: ID!) { node(id: $id) { id } }', 'variables', {}, 'BAD_USER_INPUT'],
    ];
    for (const [query, , variables, code] of cases) {
      for (const accept of [undefined, '*/*', 'application/graphql-response+json', 'application/graphql-response+json, application/json;q=0.9']) {
        const answer = await postGraphQL(query, { accept, variables });
        expectError(answer, 400, code);
        expect(answer.headers.get('content-type')).toMatch(/^application\/graphql-response\+json/);
        expect(answer.body.data).toBeUndefined();
      }
      const legacy = await postGraphQL(query, { accept: 'application/json', variables });
      expectError(legacy, 200, code);
      expect(legacy.headers.get('content-type')).toMatch(/^application\/json/);
    }
  });

  it('variable coercion errors have BAD_USER_INPUT with a reason and point at the variable', async () => {
    const missing = expectError(await postGraphQL('query ($id: ID!) { node(id: $id) { id } }', { variables: {} }), 400, 'BAD_USER_INPUT');
    expect(missing.extensions.reason).toBe('INVALID_VARIABLE');
    expect(missing.locations).toEqual([{ line: 1, column: 8 }]);
    const wrongType = expectError(await postGraphQL('query ($first: Int) { realm { workspaces(first: $first) { totalCount } } }', { variables: { first: 'ten' } }), 400, 'BAD_USER_INPUT');
    expect(wrongType.extensions.reason).toBe('INVALID_VARIABLE');
  });

  it('401 without a key, 429 past the failed-authentication limit, 200 with partial data for a FORBIDDEN field', async () => {
    expectError(await postGraphQL('{ viewer { scopes } }', { key: null }), 401, 'UNAUTHENTICATED');

    const limited = createApp({ prisma: db.prisma, rateLimiter: createMemoryRateLimiter() });
    let answer: Answer | undefined;
    for (let attempt = 0; attempt < 30; attempt++) {
      answer = await postGraphQL('{ viewer { scopes } }', { key: 'ugw_00000000_wrong', target: limited, headers: { 'x-forwarded-for': '203.0.113.7' } });
      if (answer.status === 429) break;
      expectError(answer, 401, 'UNAUTHENTICATED');
    }
    expectError(answer!, 429, 'RATE_LIMITED');
    expect(answer!.headers.get('retry-after')).toMatch(/^\d+$/);

    const partial = await postGraphQL('{ viewer { scopes } realm { name contracts(first: 1) { totalCount } } }', { key: readOnlyKey });
    const forbidden = expectError(partial, 200, 'FORBIDDEN');
    expect(forbidden.path).toEqual(['realm', 'contracts']);
    expect(partial.body.data.viewer.scopes).toEqual(['usage:read']);
  });

  it('a query over the cost limit is 400 QUERY_TOO_COMPLEX (200 under application/json); a too-large page is 400 BAD_USER_INPUT', async () => {
    const expensive = '{ realm { workspaces(first: 100) { edges { node { datastreams(first: 100) { edges { node { name } } } } } } } }';
    expectError(await postGraphQL(expensive), 400, 'QUERY_TOO_COMPLEX');
    expectError(await postGraphQL(expensive, { accept: 'application/json' }), 200, 'QUERY_TOO_COMPLEX');
    const page = expectError(await postGraphQL('{ realm { workspaces(first: 1000) { totalCount } } }'), 400, 'BAD_USER_INPUT');
    expect(page.extensions.reason).toBe('PAGE_SIZE_TOO_LARGE');
  });

  it('a body that is not JSON is 400 MALFORMED_JSON, one without a query 400 BAD_REQUEST, whatever the client accepts', async () => {
    for (const accept of [undefined, 'application/json']) {
      const headers: Record<string, string> = { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...(accept ? { accept } : {}) };
      const malformed = expectError(await send(app, '/graphql', { method: 'POST', headers, body: '{"query":' }), 400, 'MALFORMED_JSON');
      expect(malformed.message).toMatch(/not valid JSON.*send \{"query"/);
      expect(malformed.extensions.originalError).toBeUndefined();
      const empty = expectError(await send(app, '/graphql', { method: 'POST', headers, body: '{}' }), 400, 'BAD_REQUEST');
      expect(empty.message).toMatch(/no `query`/);
    }
  });

  it('405 METHOD_NOT_ALLOWED with Allow for PUT /graphql and a mutation over GET; 406 for an Accept it cannot serve', async () => {
    const put = await send(app, '/graphql', { method: 'PUT', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{}' });
    expectError(put, 405, 'METHOD_NOT_ALLOWED');
    expect(put.headers.get('allow')).toBe('GET, POST');
    const mutation = await send(app, `/graphql?query=${encodeURIComponent('mutation { finalizeUsage(feature: "x", through: "2026-01-01T00:00:00Z") { __typename } }')}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expectError(mutation, 405, 'METHOD_NOT_ALLOWED');
    expect(mutation.headers.get('allow')).toBe('POST');
    const html = await send(app, '/graphql', { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'text/html' }, body: curlBody });
    expectError(html, 406, 'NOT_ACCEPTABLE');
  });

  it('a body over the limit is 413 in the same shape', async () => {
    const small = createApp({ prisma: db.prisma, maxBodyBytes: 1024 });
    const answer = await postGraphQL(`{ viewer { scopes } } # ${'x'.repeat(2048)}`, { target: small });
    const error = expectError(answer, 413, 'PAYLOAD_TOO_LARGE');
    expect(error.message).toMatch(/GRAPHQL_MAX_BODY_BYTES/);
  });
});

describe('every error has a code and says what to do', () => {
  it('an id of an unknown type is BAD_USER_INPUT / INVALID_ID at its path, not "Nope has not been implemented"', async () => {
    const unknownType = encodeId('Nope', '00000000-0000-0000-0000-000000000000');
    const answer = await postGraphQL(`{ node(id: "${unknownType}") { id } }`);
    const error = expectError(answer, 200, 'BAD_USER_INPUT');
    expect(error).toMatchObject({ path: ['node'], extensions: { reason: 'INVALID_ID' } });
    expect(error.message).not.toMatch(/not been implemented/);
    expect(error.message).toMatch(/use the `id` of an object/);
    const malformed = expectError(await postGraphQL('{ node(id: "not-an-id") { id } }'), 200, 'BAD_USER_INPUT');
    expect(malformed).toMatchObject({ path: ['node'], extensions: { reason: 'INVALID_ID' } });
  });

  it('an unknown time zone literal points at the literal, as other document errors do', async () => {
    const error = expectError(await postGraphQL('{ realm { usage(timeframe: LAST_7_DAYS, timeZone: "Mars/Olympus") { __typename } } }'), 400, 'BAD_USER_INPUT');
    expect(error).toMatchObject({ extensions: { reason: 'INVALID_TIME_ZONE' }, locations: [{ line: 1, column: 51 }] });
  });

  it('several operations without operationName say to send one', async () => {
    const error = expectError(await postGraphQL('query A { viewer { scopes } } query B { viewer { scopes } }'), 400, 'OPERATION_RESOLUTION_FAILURE');
    expect(error.message).toMatch(/operationName/);
  });

  it('an unknown route is 404 NOT_FOUND listing the routes; POST /healthz and /metrics are 405 with Allow', async () => {
    const missing = await send(app, '/graphq');
    const error = expectError(missing, 404, 'NOT_FOUND');
    for (const route of ROUTES) expect(error.message).toContain(route);
    for (const pathname of ['/healthz', '/metrics']) {
      const answer = await send(app, pathname, { method: 'POST' });
      expectError(answer, 405, 'METHOD_NOT_ALLOWED');
      expect(answer.headers.get('allow')).toBe('GET, HEAD');
    }
  });
});

describe('every response carries a request id', () => {
  it('on every route: X-Request-Id, and the same id in GraphQL extensions and in error bodies', async () => {
    const auth = { authorization: `Bearer ${key}` };
    const answers: Array<[string, Answer]> = [
      ['graphql', await postGraphQL('{ viewer { scopes } }')],
      ['graphql error', await postGraphQL('{ nope }')],
      ['ingest', await send(app, '/ingest', { method: 'POST', headers: { ...auth, 'content-type': 'application/x-ndjson' }, body: '{"nope"\n' })],
      ['ingest error', await send(app, '/ingest', { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: 'x' })],
      ['export', await send(app, '/exports/usage/monthly.csv', { headers: auth })],
      ['export error', await send(app, '/exports/usage/monthly.csv?month=2026-13', { headers: auth })],
      ['healthz', await send(app, '/healthz')],
      ['metrics', await send(app, '/metrics')],
      ['404', await send(app, '/nope')],
    ];
    const ids = new Set<string>();
    for (const [route, answer] of answers) {
      const id = answer.headers.get('x-request-id');
      expect(id, route).toMatch(/^[0-9a-f-]{36}$/);
      ids.add(id!);
      if (route.startsWith('graphql') || answer.status >= 400) expect(answer.body?.extensions?.requestId, route).toBe(id);
    }
    expect(ids.size).toBe(answers.length);
    expect(answers.map(([route, answer]) => [route, answer.status])).toEqual([
      ['graphql', 200],
      ['graphql error', 400],
      ['ingest', 200],
      ['ingest error', 415],
      ['export', 200],
      ['export error', 400],
      ['healthz', 200],
      ['metrics', 200],
      ['404', 404],
    ]);
  });

  it("keeps a client's sane X-Request-Id (≤ 64 of [A-Za-z0-9._-]) and replaces any other", async () => {
    const sane = 'client-trace_01.ABC';
    const kept = await postGraphQL('{ viewer { scopes } }', { headers: { 'x-request-id': sane } });
    expect(kept.headers.get('x-request-id')).toBe(sane);
    expect(kept.body.extensions.requestId).toBe(sane);
    const keptOnRoute = await send(app, '/nope', { headers: { 'x-request-id': sane } });
    expect(keptOnRoute.body.extensions.requestId).toBe(sane);
    for (const insane of ['x'.repeat(65), 'has space', 'a\u00e9b', 'semi;colon', '']) {
      const answer = await postGraphQL('{ viewer { scopes } }', { headers: { 'x-request-id': insane } });
      expect(answer.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(answer.body.extensions.requestId).toBe(answer.headers.get('x-request-id'));
    }
  });

  it("is in the request's JSON log line, for GraphQL and for the plain routes", async () => {
    const graphql = await postGraphQL('query LoggedWithId { viewer { scopes } }');
    const ingest = await send(app, '/ingest', { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-ndjson' }, body: '\n' });
    const graphqlLine = logLines.find((line) => line.operationName === 'LoggedWithId');
    expect(graphqlLine?.requestId).toBe(graphql.headers.get('x-request-id'));
    const ingestLine = logLines.find((line) => line.path === '/ingest' && line.requestId === ingest.headers.get('x-request-id'));
    expect(ingestLine).toMatchObject({ status: ingest.status });
  });
});

describe('a listening server', { timeout: 180_000 }, () => {
  let server: ServerProcess;
  let port: number;
  let demoKey: string;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    // A database already holding the demo: the server starts without seeding one.
    const database = await demoServerDatabase();
    const env = database.env;
    cleanup = database.cleanup;
    port = await freePort();
    server = startServer({ ...env, PORT: String(port), HOST: '127.0.0.1' });
    demoKey = (await server.waitForLine(/^API key: /, 150_000)).slice('API key: '.length).trim();
    // The run's demo may still be seeding for another file: minutes on a busy machine.
  }, 600_000);

  afterAll(async () => {
    await server?.stop();
    await cleanup?.();
  }, 60_000);

  /** Raw bytes to the server, the whole answer back (it closes the connection). */
  function rawRequest(bytes: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      let answer = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (answer += chunk));
      socket.on('end', () => resolve(answer));
      socket.on('error', (error) => (answer ? resolve(answer) : reject(error)));
      socket.write(bytes);
    });
  }

  function parseRaw(answer: string) {
    const [head, body] = answer.split('\r\n\r\n');
    const headers = new Map(
      head!
        .split('\r\n')
        .slice(1)
        .map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()] as const),
    );
    return { statusLine: head!.split('\r\n')[0], headers, body: JSON.parse(body!) };
  }

  it('headers over 16 KiB get 431 REQUEST_HEADER_FIELDS_TOO_LARGE in the JSON shape, with a request id (Node answers before the app)', async () => {
    const answer = parseRaw(await rawRequest(`GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
    expect(answer.statusLine).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    expect(answer.body).toEqual({
      errors: [{ message: expect.stringMatching(/headers are too large/), extensions: { code: 'REQUEST_HEADER_FIELDS_TOO_LARGE' } }],
      extensions: { requestId: answer.headers.get('x-request-id') },
    });
    const malformed = parseRaw(await rawRequest('NOT HTTP AT ALL\r\n\r\n'));
    expect(malformed.statusLine).toMatch(/^HTTP\/1.1 400/);
    expect(malformed.body.errors[0].extensions.code).toBe('BAD_REQUEST');
  });

  it('prints only JSON lines on stdout while answering requests (a coverage report included), each with its request id', async () => {
    const before = server.stdout.length;
    const base = `http://127.0.0.1:${port}`;
    const coverage = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${demoKey}`, 'content-type': 'application/json', 'x-request-id': 'coverage-report-1' },
      body: JSON.stringify({
        query: `query CoverageReport { realm { usage(timeframe: PREVIOUS_MONTH, granularity: DAY, groupBy: [FEATURE]) {
          points { start feature { key } quantity coverage { source quantity credits license { contract { name } } creditGrant { id kind } } } } } }`,
      }),
    });
    const body = (await coverage.json()) as any;
    expect(body.errors).toBeUndefined();
    expect(body.data.realm.usage.points.some((point: any) => point.coverage?.length)).toBe(true);
    expect(coverage.headers.get('x-request-id')).toBe('coverage-report-1');
    const form = await fetch(`${base}/graphql`, { method: 'POST', headers: { authorization: `Bearer ${demoKey}` }, body: '{"query":"{ viewer { scopes } }"}' });
    expect(form.status).toBe(415);
    await form.arrayBuffer();
    await (await fetch(`${base}/nope`)).arrayBuffer();
    await (await fetch(`${base}/ingest`, { method: 'POST', headers: { authorization: `Bearer ${demoKey}`, 'content-type': 'application/x-ndjson' }, body: '{}\n' })).arrayBuffer();

    const deadline = Date.now() + 10_000;
    while (!server.stdout.slice(before).some((line) => line.includes('coverage-report-1')) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const lines = server.stdout.slice(before).filter((line) => line.trim() !== '');
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    const entries = lines.map((line) => JSON.parse(line));
    expect(entries.find((entry) => entry.operationName === 'CoverageReport')).toMatchObject({ requestId: 'coverage-report-1', status: 200 });
    expect(entries.find((entry) => entry.path === '/ingest')).toMatchObject({ requestId: expect.any(String) });
    expect(entries.find((entry) => entry.status === 415)).toMatchObject({ requestId: form.headers.get('x-request-id'), errorCodes: ['UNSUPPORTED_MEDIA_TYPE'] });
  });
});

import { SCOPES } from '../src/auth/scopes.js';
import { Readable } from 'node:stream';
import type { Plugin } from 'graphql-yoga';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useUsageExportEndpoints } from '../src/exports/http.js';
import { useIngestEndpoint } from '../src/ingest/http.js';
import { createMetrics } from '../src/observability.js';
import { MAX_DOCUMENT_FIELDS, MAX_DOCUMENT_NESTING, MAX_DOCUMENT_TOKENS } from '../src/plugins/document-limits.js';
import { createMemoryRateLimiter } from '../src/rate-limit/limiter.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey, createRealm } from './helpers/fixtures.js';

let db: TestDatabase;
let key: string;


beforeAll(async () => {
  db = await createTestDatabase();
  const realm = await createRealm(db.prisma, 'Limits realm');

  key = (await createKey(db.prisma, realm.id)).key;
});
afterAll(() => db?.destroy());

/** Counts how often the app parses and validates documents (a plugin sees every call). */
function phaseCounter() {
  const counts = { parse: 0, validate: 0 };
  const plugin: Plugin = {
    onParse() {
      counts.parse++;
    },
    onValidate() {
      counts.validate++;
    },
  };
  return { counts, plugin };
}

async function post(app: App, body: string | ReadableStream<Uint8Array>, options: { key?: string; address?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  if (options.address) headers['x-forwarded-for'] = options.address;
  const response = await app.fetch('http://gateway.test/graphql', { method: 'POST', headers, body, ...(typeof body === 'string' ? {} : { duplex: 'half' }) } as RequestInit);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: JSON.parse(text) as any, text };
}

const query = (text: string, variables?: Record<string, unknown>) => JSON.stringify({ query: text, variables });

describe('documents are bounded before they are parsed', () => {
  const deepSelections = `{${'a{'.repeat(10_000)}b${'}'.repeat(10_000)}}`;
  const deepList = `{ node(id: ${'['.repeat(100_000)}${']'.repeat(100_000)}) { id } }`;

  it('without a key, even a 10,000-level document is answered 401 and never parsed', async () => {
    const { counts, plugin } = phaseCounter();
    const app = createApp({ prisma: db.prisma, plugins: [plugin] });
    for (const document of [deepSelections, deepList, '{ viewer { scopes } }']) {
      const answer = await post(app, query(document));
      expect(answer.status).toBe(401);
      expect(answer.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    }
    expect(counts).toEqual({ parse: 0, validate: 0 });
  });

  it('selections nested 10,000 deep and a list literal nested 100,000 deep: 400 QUERY_TOO_DEEP, not parsed', async () => {
    const { counts, plugin } = phaseCounter();
    const app = createApp({ prisma: db.prisma, plugins: [plugin] });
    for (const document of [deepSelections, deepList]) {
      const answer = await post(app, query(document), { key });
      expect(answer.status).toBe(400);
      expect(answer.body.errors).toEqual([expect.objectContaining({ extensions: { code: 'QUERY_TOO_DEEP', limit: MAX_DOCUMENT_NESTING } })]);
    }
    expect(counts.parse).toBe(0);
    // Brackets inside strings and comments are not nesting.
    const answer = await post(app, query(`# ${'{'.repeat(1000)}\n{ viewer { scopes } }`), { key });
    expect(answer.status).toBe(200);
    expect(answer.body.data.viewer.scopes).toHaveLength(SCOPES.length);
  });

  it('an alias bomb is refused before parsing: 100,000 aliases on its size (413), 20,000 on its tokens (400 QUERY_TOO_LARGE)', async () => {
    const { counts, plugin } = phaseCounter();
    const app = createApp({ prisma: db.prisma, plugins: [plugin] });
    const bomb = (aliases: number) => `{ ${Array.from({ length: aliases }, (_, i) => `a${i}: __typename`).join(' ')} }`;
    const huge = await post(app, query(bomb(100_000)), { key });
    expect(huge.status).toBe(413);
    expect(huge.body.errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    const large = await post(app, query(bomb(20_000)), { key });
    expect(large.status).toBe(400);
    expect(large.body.errors).toEqual([expect.objectContaining({ extensions: { code: 'QUERY_TOO_LARGE', kind: 'tokens', limit: MAX_DOCUMENT_TOKENS } })]);
    expect(counts.parse).toBe(0);
  });

  it('more field selections than MAX_DOCUMENT_FIELDS within the token limit: 400 QUERY_TOO_LARGE before validation', async () => {
    const { counts, plugin } = phaseCounter();
    const app = createApp({ prisma: db.prisma, plugins: [plugin] });
    const wide = `{ ${Array.from({ length: MAX_DOCUMENT_FIELDS + 1 }, (_, i) => `a${i}: __typename`).join(' ')} }`;
    const answer = await post(app, query(wide), { key });
    expect(answer.body.errors).toEqual([
      expect.objectContaining({ extensions: { code: 'QUERY_TOO_LARGE', kind: 'fields', fields: MAX_DOCUMENT_FIELDS + 1, limit: MAX_DOCUMENT_FIELDS } }),
    ]);
    expect(counts).toEqual({ parse: 1, validate: 0 });
  });

  it('a body over the limit is 413, with or without Content-Length, with or without a key; nothing is parsed', async () => {
    const { counts, plugin } = phaseCounter();
    const app = createApp({ prisma: db.prisma, plugins: [plugin], maxBodyBytes: 64 * 1024 });
    // 100,000 usage events in one ingestUsage (about 6 MB) are refused on their size, before any coercion.
    const events = Array.from({ length: 100_000 }, (_, i) => ({ feature: 'f', idempotencyKey: `k${i}`, quantity: '1', timestamp: '2026-01-01T00:00:00Z' }));
    const big = query('mutation($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted } }', { events });
    for (const withKey of [key, undefined]) {
      const declared = await post(app, big, { key: withKey });
      expect(declared.status).toBe(413);
      expect(declared.body.errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
      // Chunked: no Content-Length, the body is counted while it is read.
      const streamed = await post(app, Readable.toWeb(Readable.from([Buffer.from(big)])) as ReadableStream<Uint8Array>, { key: withKey });
      expect(streamed.status).toBe(413);
    }
    expect(counts.parse).toBe(0);
    expect((await post(app, query('{ viewer { scopes } }'), { key })).status).toBe(200);
  });
});

describe('echoed input is bounded', () => {
  const huge = 'x'.repeat(500_000);

  it('a 500 KB id, enum value or time zone comes back cut to about 100 characters and an ellipsis', async () => {
    const app = createApp({ prisma: db.prisma });
    const answers = [
      await post(app, query('query($id: ID!) { node(id: $id) { id } }', { id: huge }), { key }),
      await post(app, query(`{ node(id: "${huge}") { id } }`), { key }),
      await post(app, query('query($g: Granularity) { realm { usage(timeframe: LAST_24_HOURS, granularity: $g) { warnings } } }', { g: huge }), { key }),
      await post(app, query('query($tz: TimeZone) { realm { usage(timeframe: LAST_24_HOURS, timeZone: $tz) { warnings } } }', { tz: huge }), { key }),
    ];
    for (const answer of answers) {
      expect(answer.body.errors?.length).toBeGreaterThan(0);
      expect(answer.text.length).toBeLessThan(2_000);
      expect(answer.text).toMatch(/x{99}…/);
    }
    expect(answers[0]!.body.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_ID', id: `${'x'.repeat(100)}…` });
  });
});

describe('strings with a NUL character', () => {
  const createKeyMutation = 'mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } userErrors { message } } }';

  it('a mutation with "\\u0000" in a string argument or variable is BAD_USER_INPUT / INVALID_STRING and changes nothing', async () => {
    const app = createApp({ prisma: db.prisma });
    const before = await db.prisma.apiKey.count();
    const viaVariable = await post(app, query(createKeyMutation, { input: { name: 'bad\u0000name', scopes: ['usage:read'] } }), { key });
    expect(viaVariable.status).toBeLessThan(500);
    expect(viaVariable.body.errors).toEqual([
      expect.objectContaining({ extensions: { code: 'BAD_USER_INPUT', reason: 'INVALID_STRING', field: 'createApiKey', argument: 'input' } }),
    ]);
    const viaLiteral = await post(app, query('mutation { createApiKey(input: { name: "bad\\u0000name", scopes: ["usage:read"] }) { apiKey { id } } }'), { key });
    expect(viaLiteral.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_STRING' });
    expect(await db.prisma.apiKey.count()).toBe(before);
    // The same mutation without the NUL works.
    const fine = await post(app, query(createKeyMutation, { input: { name: 'good name', scopes: ['usage:read'] } }), { key });
    expect(fine.body.errors).toBeUndefined();
    expect(fine.body.data.createApiKey.apiKey.id).toEqual(expect.any(String));
  });

  it('a document answered once without a NUL is still checked: a NUL in a later request\'s variables is refused', async () => {
    const app = createApp({ prisma: db.prisma });
    const document = 'mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { userErrors { message } } }';
    // No `apiKey { id }` selected: the first request's key is created, the second one's must not be.
    const fine = await post(app, query(document, { input: { name: 'plain', scopes: ['usage:read'] } }), { key });
    expect(fine.body.errors).toBeUndefined();
    const before = await db.prisma.apiKey.count();
    const bad = await post(app, query(document, { input: { name: 'bad\u0000name', scopes: ['usage:read'] } }), { key });
    expect(bad.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_STRING', field: 'createApiKey', argument: 'input' });
    expect(await db.prisma.apiKey.count()).toBe(before);
  });

  it('leaves ingestUsage events to the pipeline: one event with a NUL does not refuse the call', async () => {
    const app = createApp({ prisma: db.prisma });
    const answer = await post(
      app,
      query('mutation($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted } }', {
        events: [{ feature: 'f', idempotencyKey: 'nul\u0000key', quantity: '1', timestamp: '2026-01-01T00:00:00Z' }],
      }),
      { key },
    );
    expect(JSON.stringify(answer.body.errors ?? [])).not.toContain('INVALID_STRING');
  });
});

describe('one rate limiter for every route', () => {
  async function keyWithLimit(limit: number) {
    const realm = await createRealm(db.prisma);
    await db.prisma.realm.update({ where: { id: realm.id }, data: { tier: 'ENTERPRISE', customRateLimit: limit } });
    return (await createKey(db.prisma, realm.id)).key;
  }

  function gateway(options: { authFailureLimit?: number } = {}) {
    return createApp({
      prisma: db.prisma,
      rateLimiter: createMemoryRateLimiter({ authFailureLimit: options.authFailureLimit }),
      plugins: [useIngestEndpoint({ prisma: db.prisma }), useUsageExportEndpoints({ prisma: db.prisma })],
    });
  }

  const routes = {
    graphql: (app: App, headers: Record<string, string>) =>
      app.fetch('http://gateway.test/graphql', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: query('{ viewer { scopes } }') }),
    ingest: (app: App, headers: Record<string, string>) =>
      app.fetch('http://gateway.test/ingest', {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson', ...headers },
        body: `${JSON.stringify({ feature: 'f', idempotencyKey: `rl-${Math.random()}`, quantity: '1', timestamp: new Date().toISOString() })}\n`,
      }),
    export: (app: App, headers: Record<string, string>) => app.fetch('http://gateway.test/exports/usage/monthly.csv', { headers }),
  };

  it.each(['ingest', 'export'] as const)('/%s counts against the key\'s limit and answers 429 RATE_LIMITED with Retry-After past it', async (route) => {
    const app = gateway();
    const limited = await keyWithLimit(3);
    for (let i = 1; i <= 3; i++) {
      const response = await routes[route](app, { authorization: `Bearer ${limited}` });
      expect(response.status, `request ${i}`).not.toBe(429);
      expect(response.headers.get('ratelimit-remaining'), `request ${i}`).toBe(String(3 - i));
      await response.arrayBuffer();
    }
    const refused = await routes[route](app, { authorization: `Bearer ${limited}` });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await refused.json()) as any).errors).toEqual([{ message: expect.stringMatching(/3 requests per minute/), extensions: { code: 'RATE_LIMITED', retryAfter: expect.any(Number), limit: 3 } }]);
  });

  it('GraphQL, /ingest and the exports share one count per key', async () => {
    const app = gateway();
    const limited = await keyWithLimit(3);
    const auth = { authorization: `Bearer ${limited}` };
    expect((await routes.graphql(app, auth)).headers.get('ratelimit-remaining')).toBe('2');
    expect((await routes.ingest(app, auth)).headers.get('ratelimit-remaining')).toBe('1');
    expect((await routes.export(app, auth)).headers.get('ratelimit-remaining')).toBe('0');
    for (const route of ['graphql', 'ingest', 'export'] as const) expect((await routes[route](app, auth)).status, route).toBe(429);
  });

  it('failed keys count per address on every route; a valid key from a locked address is still served', async () => {
    const app = gateway({ authFailureLimit: 2 });
    const address = { 'x-forwarded-for': '203.0.113.50' };
    const wrong = { ...address, authorization: 'Bearer ugw_00000000_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' };
    expect((await routes.ingest(app, wrong)).status).toBe(401);
    expect((await routes.export(app, wrong)).status).toBe(401);
    for (const route of ['ingest', 'export', 'graphql'] as const) {
      const refused = await routes[route](app, wrong);
      expect(refused.status, route).toBe(429);
      expect(((await refused.json()) as any).errors[0].extensions.code, route).toBe('RATE_LIMITED');
    }
    const valid = { ...address, authorization: `Bearer ${key}` };
    for (const route of ['ingest', 'export', 'graphql'] as const) {
      const served = await routes[route](app, valid);
      expect(served.status, route).not.toBe(429);
      expect(served.status, route).not.toBe(401);
      expect(served.headers.get('ratelimit-limit'), route).toBe('60');
    }
    // Another address is not affected.
    expect((await routes.ingest(app, { 'x-forwarded-for': '198.51.100.9', authorization: wrong.authorization })).status).toBe(401);
  });
});

describe('/metrics', () => {
  it('never shows operation names of unauthenticated requests, and bounds the names it keeps', async () => {
    const token = 'metrics-token-0123456789';
    const metrics = createMetrics({ maxOperationNames: 3, token });
    const app = createApp({ prisma: db.prisma, plugins: [metrics.plugin] });
    for (let i = 0; i < 50; i++) await post(app, query(`query Secret${i} { viewer { scopes } }`));
    for (let i = 0; i < 6; i++) expect((await post(app, query(`query Mine${i} { viewer { scopes } }`), { key })).status).toBe(200);
    const text = await (await app.fetch('http://gateway.test/metrics', { headers: { authorization: `Bearer ${token}` } })).text();
    expect(text).not.toContain('Secret');
    expect(text).toMatch(/graphql_yoga_http_duration_count\{method="POST",statusCode="401",operationType="unknown",operationName="unauthenticated"\} 50/);
    for (const name of ['Mine0', 'Mine1', 'Mine2']) expect(text).toContain(`graphql_envelop_request{operationName="${name}",operationType="query"} 1`);
    expect(text).not.toContain('Mine3');
    expect(text).toContain('graphql_envelop_request{operationName="other",operationType="query"} 3');
  });

  it('an open /metrics (no METRICS_TOKEN) shows no tenant\'s operation names', async () => {
    const app = createApp({ prisma: db.prisma, plugins: [createMetrics().plugin] });
    for (let i = 0; i < 3; i++) expect((await post(app, query(`query Tenant${i} { viewer { scopes } }`), { key })).status).toBe(200);
    const text = await (await app.fetch('http://gateway.test/metrics')).text();
    expect(text).not.toContain('Tenant');
    expect(text).toContain('graphql_envelop_request{operationName="hidden",operationType="query"} 3');
  });

  it('needs "Authorization: Bearer <METRICS_TOKEN>" when a token is set', async () => {
    const token = 'metrics-token-0123456789';
    const app = createApp({ prisma: db.prisma, plugins: [createMetrics({ token }).plugin] });
    for (const authorization of [undefined, 'Bearer wrong', `Bearer ${token}x`, token]) {
      const response = await app.fetch('http://gateway.test/metrics', { headers: authorization ? { authorization } : {} });
      expect(response.status, String(authorization)).toBe(401);
      expect(((await response.json()) as any).errors[0].extensions.code).toBe('UNAUTHENTICATED');
    }
    const allowed = await app.fetch('http://gateway.test/metrics', { headers: { authorization: `Bearer ${token}` } });
    expect(allowed.status).toBe(200);
    expect(await allowed.text()).toContain('graphql_yoga_http_duration');
  });
});

describe('introspection and GraphiQL follow the app options', () => {
  it('introspection: false refuses __schema and __type; GraphiQL false serves no page', async () => {
    const app = createApp({ prisma: db.prisma, introspection: false, graphiql: false });
    for (const document of ['{ __schema { types { name } } }', '{ __type(name: "Query") { name } }']) {
      const answer = await post(app, query(document), { key });
      expect(answer.body.data).toBeUndefined();
      expect(answer.body.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(answer.body.errors[0].message).toMatch(/introspection has been disabled/);
    }
    expect((await post(app, query('{ __typename viewer { scopes } }'), { key })).status).toBe(200);
    const page = await app.fetch('http://gateway.test/graphql', { headers: { accept: 'text/html' } });
    expect(page.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
    await page.arrayBuffer();

    const open = createApp({ prisma: db.prisma, graphiql: {} });
    expect((await post(open, query('{ __schema { queryType { name } } }'), { key })).body.data.__schema.queryType.name).toBe('Query');
    const served = await open.fetch('http://gateway.test/graphql', { headers: { accept: 'text/html' } });
    expect(served.headers.get('content-type')).toMatch(/text\/html/);
    await served.arrayBuffer();
  });
});

describe('page sizes are checked on every request of a document', () => {
  it('a page size within bounds in one request and over them in the next (same document, a variable) is refused the second time', async () => {
    const app = createApp({ prisma: db.prisma });
    const document = 'query($n: Int) { realm { workspaces(first: $n) { totalCount } } }';
    expect((await post(app, query(document, { n: 10 }), { key })).body.errors).toBeUndefined();
    const over = await post(app, query(document, { n: 500 }), { key });
    expect(over.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'PAGE_SIZE_TOO_LARGE' });
  });

  it('a literal page size over the bounds is refused every time, and one within them answered every time', async () => {
    const app = createApp({ prisma: db.prisma });
    for (let i = 0; i < 2; i++) {
      const over = await post(app, query('{ realm { workspaces(first: 500) { totalCount } } }'), { key });
      expect(over.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'PAGE_SIZE_TOO_LARGE' });
      const within = await post(app, query('{ realm { workspaces(first: 5) { totalCount } } }'), { key });
      expect(within.body.errors).toBeUndefined();
    }
  });
});

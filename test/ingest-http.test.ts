import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authenticator } from '../src/auth/authenticate.js';
import type { PrismaClient } from '../src/generated/prisma/client.js';
import { encodeId } from '../src/global-id.js';
import { createLogger } from '../src/observability.js';
import { useIngestEndpoint } from '../src/ingest/http.js';
import { BodyTooLargeError, parseIngestMaxBytes, parseIngestMaxSeconds, readNdjson, type NdjsonItem } from '../src/ingest/ndjson.js';
import { MAX_BATCH } from '../src/ingest/pipeline.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

const NOW = new Date('2026-03-10T12:30:00Z');
const HOUR = '2026-03-10T10:15:00Z';
const NDJSON = 'application/x-ndjson';

type UsageRealm = Awaited<ReturnType<typeof createUsageRealm>>;

let db: TestDatabase;
let app: App;
/** The same gateway with a 1 KiB body limit. */
let smallApp: App;
let a: UsageRealm;
let b: UsageRealm;
let writeOnlyLeft: string;
let keyPrefix = 0;

function event(id: string, extra: Record<string, unknown> = {}) {
  return { idempotencyKey: id, feature: 'tx', timestamp: HOUR, quantity: '1', ...extra };
}

const ndjson = (events: unknown[]) => events.map((e) => JSON.stringify(e)).join('\n') + '\n';

/** A fresh idempotency-key prefix per test: the realm's events accumulate across tests. */
const ids = () => `t${++keyPrefix}`;

async function post(body: BodyInit | null, options: { key?: string | null; contentType?: string | null; headers?: Record<string, string>; target?: App } = {}) {
  const headers: Record<string, string> = { ...options.headers };
  const key = options.key === undefined ? a.admin.key : options.key;
  if (key) headers.authorization = `Bearer ${key}`;
  const contentType = options.contentType === undefined ? NDJSON : options.contentType;
  if (contentType) headers['content-type'] = contentType;
  const init: RequestInit & { duplex?: 'half' } = { method: 'POST', headers, body };
  if (body instanceof ReadableStream) init.duplex = 'half';
  const response = await (options.target ?? app).fetch('http://gateway.test/ingest', init);
  return { status: response.status, headers: response.headers, body: (await response.json()) as any };
}

/** A body delivered in chunks of `size` bytes, with no Content-Length. */
function chunked(text: string | Uint8Array, size: number): ReadableStream<Uint8Array> {
  const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + size));
      offset += size;
    },
  });
}

const eventsOf = (realmId: string, prefix: string) =>
  db.prisma.usageEvent.count({ where: { realmId, idempotencyKey: { startsWith: `${prefix}-` } } });

beforeAll(async () => {
  db = await createTestDatabase();
  a = await createUsageRealm(db.prisma);
  b = await createUsageRealm(db.prisma);
  writeOnlyLeft = (await createKey(db.prisma, a.realm.id, { workspaceId: a.tree.left.id, scopes: ['usage:write'] })).key;
  const now = () => NOW;
  app = createApp({ prisma: db.prisma, now, plugins: [useIngestEndpoint({ prisma: db.prisma, now })] });
  smallApp = createApp({ prisma: db.prisma, now, plugins: [useIngestEndpoint({ prisma: db.prisma, now, maxBytes: 1024 })] });
});

afterAll(async () => {
  await db?.destroy();
});

describe('POST /ingest', () => {
  it('stores the events and counts them; the same body again is all duplicates', async () => {
    const p = ids();
    const body = ndjson([event(`${p}-1`), event(`${p}-2`, { quantity: '2.5' }), event(`${p}-3`, { workspaceId: encodeId('Workspace', a.tree.left.id) })]);
    const first = await post(body);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toMatch(/^application\/json/);
    expect(first.body).toEqual({ accepted: 3, duplicates: 0, rejected: 0, errors: [], lines: 3 });
    expect(await eventsOf(a.realm.id, p)).toBe(3);

    const again = await post(body);
    expect(again.body).toEqual({ accepted: 0, duplicates: 3, rejected: 0, errors: [], lines: 3 });
    expect(await eventsOf(a.realm.id, p)).toBe(3);
  });

  it('reports malformed lines and rejected events by line number and processes the rest', async () => {
    const p = ids();
    const body = [
      JSON.stringify(event(`${p}-1`)),
      '{"idempotencyKey": "broken",',
      '',
      `${JSON.stringify(event(`${p}-2`))}\r`,
      JSON.stringify(event(`${p}-3`, { quantity: '-4' })),
      '   ',
      JSON.stringify(event(`${p}-4`, { feature: 'nope' })),
      '[1, 2]',
      JSON.stringify(event(`${p}-5`)), // the last line, without a newline
    ].join('\n');
    const { status, body: answer } = await post(body);
    expect(status).toBe(200);
    expect(answer).toMatchObject({ accepted: 3, duplicates: 0, rejected: 4, lines: 9 });
    expect(answer.errors.map((e: any) => [e.line, e.code])).toEqual([
      [2, 'MALFORMED_JSON'],
      [5, 'INVALID_QUANTITY'],
      [7, 'UNKNOWN_FEATURE'],
      [8, 'INVALID_EVENT'],
    ]);
    for (const error of answer.errors) expect(error.message).toEqual(expect.any(String));
    expect(await eventsOf(a.realm.id, p)).toBe(3);
  });

  it('maps line numbers across batches and lists at most 1,000 errors (counting them all)', async () => {
    const p = ids();
    const lines: string[] = [];
    for (let i = 1; i <= MAX_BATCH + 1200; i++) {
      if (i === 3 || i > MAX_BATCH) lines.push(`garbage ${i}`);
      else if (i === MAX_BATCH) lines.push(JSON.stringify(event(`${p}-${i}`, { quantity: 'lots' })));
      else lines.push(JSON.stringify(event(`${p}-${i}`, { quantity: String(i % 7) })));
    }
    const { status, body: answer } = await post(chunked(lines.join('\n'), 4096));
    expect(status).toBe(200);
    expect(answer).toMatchObject({ accepted: MAX_BATCH - 2, duplicates: 0, rejected: 1202, lines: MAX_BATCH + 1200 });
    expect(answer.errors).toHaveLength(1000);
    expect(answer.errors.slice(0, 3).map((e: any) => [e.line, e.code])).toEqual([
      [3, 'MALFORMED_JSON'],
      [MAX_BATCH, 'INVALID_QUANTITY'],
      [MAX_BATCH + 1, 'MALFORMED_JSON'],
    ]);
    expect(answer.errors.at(-1).line).toBe(MAX_BATCH + 998);
    expect(await eventsOf(a.realm.id, p)).toBe(MAX_BATCH - 2);
  });

  it('takes a gzip-encoded body and application/jsonl', async () => {
    const p = ids();
    const gzipped = gzipSync(Buffer.from(ndjson([event(`${p}-1`), event(`${p}-2`)])));
    const zipped = await post(gzipped, { headers: { 'content-encoding': 'gzip' } });
    expect(zipped.body).toMatchObject({ accepted: 2, rejected: 0, lines: 2 });
    const jsonl = await post(ndjson([event(`${p}-3`)]), { contentType: 'application/jsonl; charset=utf-8' });
    expect(jsonl.body).toMatchObject({ accepted: 1, rejected: 0 });
    const broken = await post(Buffer.from('not gzip at all'), { headers: { 'content-encoding': 'gzip' } });
    expect(broken.status).toBe(400);
    expect(broken.body.errors[0].extensions.code).toBe('BAD_REQUEST');
  });

  it('answers an empty body (or one of blank lines only) with 400', async () => {
    for (const body of ['', '\n\n   \r\n', null]) {
      const { status, body: answer } = await post(body);
      expect(status, JSON.stringify(body)).toBe(400);
      expect(answer.errors[0].extensions.code).toBe('EMPTY_BODY');
      expect(answer.errors[0].message).toMatch(/empty/);
    }
  });

  it('answers a body over the limit with 413, by Content-Length before reading and while streaming', async () => {
    const p = ids();
    const events = Array.from({ length: 30 }, (_, i) => event(`${p}-${i}`));
    const body = ndjson(events);
    expect(body.length).toBeGreaterThan(1024);

    const declared = await post(body, { target: smallApp });
    expect(declared.status).toBe(413);
    expect(declared.body.errors[0].extensions).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', maxBytes: 1024 });
    expect(declared.body.errors[0].message).toMatch(/1 KiB/);

    const streamed = await post(chunked(body, 100), { target: smallApp });
    expect(streamed.status).toBe(413);
    expect(streamed.body.errors[0].extensions).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', accepted: 0 });
    expect(await eventsOf(a.realm.id, p)).toBe(0);

    const small = await post(ndjson(events.slice(0, 3)), { target: smallApp });
    expect(small.body).toMatchObject({ accepted: 3 });
  });

  it('answers a wrong or missing content type with 415', async () => {
    for (const contentType of ['application/json', 'text/plain', null]) {
      const { status, body } = await post(ndjson([event('never')]), { contentType });
      expect(status, String(contentType)).toBe(415);
      expect(body.errors[0].extensions.code).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(body.errors[0].message).toMatch(/application\/x-ndjson/);
    }
    const deflate = await post(ndjson([event('never')]), { headers: { 'content-encoding': 'br' } });
    expect(deflate.status).toBe(415);
    expect(await db.prisma.usageEvent.count({ where: { idempotencyKey: 'never' } })).toBe(0);
  });

  it('answers a key without usage:write with 403 FORBIDDEN', async () => {
    const { status, body } = await post(ndjson([event('never')]), { key: a.scoped.key });
    expect(status).toBe(403);
    expect(body.errors[0].extensions.code).toBe('FORBIDDEN');
    expect(body.errors[0].message).toMatch(/usage:write/);
  });

  it('answers a missing, malformed or unknown key with 401 UNAUTHENTICATED, like GraphQL', async () => {
    for (const key of [null, 'nonsense', 'ugw_00000000_AAAAAAAAAAAAAAAAAAAAAAAA']) {
      const { status, headers, body } = await post(ndjson([event('never')]), { key });
      expect(status, String(key)).toBe(401);
      expect(headers.get('www-authenticate')).toBe('Bearer');
      expect(body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    }
  });

  it('answers other methods with 405 and leaves /graphql alone', async () => {
    const response = await app.fetch('http://gateway.test/ingest', { method: 'GET', headers: { authorization: `Bearer ${a.admin.key}` } });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
    const graphql = await app.fetch('http://gateway.test/graphql', {
      method: 'POST',
      headers: { authorization: `Bearer ${a.admin.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ viewer { realm { name } } }' }),
    });
    expect(((await graphql.json()) as any).data.viewer.realm.name).toBe('Usage realm');
  });

  it("stores events in the key's realm only; another realm's ids are unknown dimensions", async () => {
    const p = ids();
    const body = ndjson([
      event(`${p}-own`, { workspaceId: encodeId('Workspace', a.tree.leaf.id), datastreamId: encodeId('Datastream', a.streams[0]!.id) }),
      event(`${p}-foreign-ws`, { workspaceId: encodeId('Workspace', b.tree.root.id) }),
      event(`${p}-foreign-app`, { appId: encodeId('App', b.apps[0]!.id) }),
    ]);
    const { body: answer } = await post(body);
    expect(answer).toMatchObject({ accepted: 1, rejected: 2 });
    expect(answer.errors.map((e: any) => [e.line, e.code])).toEqual([
      [2, 'UNKNOWN_DIMENSION'],
      [3, 'UNKNOWN_DIMENSION'],
    ]);
    const stored = await db.prisma.usageEvent.findMany({ where: { idempotencyKey: { startsWith: `${p}-` } }, select: { realmId: true, idempotencyKey: true } });
    expect(stored).toEqual([{ realmId: a.realm.id, idempotencyKey: `${p}-own` }]);

    // The same idempotency key from realm B's key is B's own event, not a duplicate of A's.
    const fromB = await post(ndjson([event(`${p}-own`)]), { key: b.admin.key });
    expect(fromB.body).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(await eventsOf(b.realm.id, p)).toBe(1);
    expect(await eventsOf(a.realm.id, p)).toBe(1);
  });

  it("keeps a workspace-scoped key's events inside its subtree", async () => {
    const p = ids();
    const body = ndjson([
      event(`${p}-inside`, { workspaceId: encodeId('Workspace', a.tree.leaf.id) }),
      event(`${p}-sibling`, { workspaceId: encodeId('Workspace', a.tree.right.id) }),
    ]);
    const { status, body: answer } = await post(body, { key: writeOnlyLeft });
    expect(status).toBe(200);
    expect(answer).toMatchObject({ accepted: 1, rejected: 1 });
    expect(answer.errors[0]).toMatchObject({ line: 2, code: 'UNKNOWN_DIMENSION' });
  });
});

describe('POST /ingest: bad input never loses good data', () => {
  it('rejects a line with a NUL character alone (INVALID_EVENT) and stores the rest of its batch and the later ones', async () => {
    const p = ids();
    const body = [
      JSON.stringify(event(`${p}-1`)),
      JSON.stringify(event(`${p}-2`, { billingTag: 'a\u0000b' })),
      JSON.stringify(event(`${p}-3\u0000`)),
      JSON.stringify(event(`${p}-4`, { resource: 'r\u0000', uniqueKey: '\u0000' })),
      JSON.stringify(event(`${p}-5`, { billingTag: 'z'.repeat(300) })),
      JSON.stringify(event(`${p}-6`)),
    ].join('\n');
    expect(body).toContain('\\u0000');
    const { status, body: answer } = await post(body);
    expect(status).toBe(200);
    expect(answer).toMatchObject({ accepted: 2, duplicates: 0, rejected: 4 });
    expect(answer.errors.map((e: any) => [e.line, e.code])).toEqual([
      [2, 'INVALID_EVENT'],
      [3, 'INVALID_EVENT'],
      [4, 'INVALID_EVENT'],
      [5, 'INVALID_EVENT'],
    ]);
    expect(answer.errors[0].message).toMatch(/U\+0000/);
    expect(await eventsOf(a.realm.id, p)).toBe(2);
  });

  it('inside one body the stored event decides: [K changed, K as stored] is a mismatch and a duplicate', async () => {
    const p = ids();
    const stored = event(`${p}-k`, { quantity: '4' });
    expect((await post(ndjson([stored]))).body).toMatchObject({ accepted: 1 });
    const changed = { ...stored, timestamp: '2026-03-10T10:15:01Z' };
    const { body: answer } = await post(ndjson([changed, stored, event(`${p}-new`), event(`${p}-new`), event(`${p}-new`, { quantity: '5' })]));
    expect(answer).toMatchObject({ accepted: 1, duplicates: 2, rejected: 2 });
    expect(answer.errors.map((e: any) => [e.line, e.code])).toEqual([
      [1, 'DUPLICATE_MISMATCH'],
      [5, 'DUPLICATE_MISMATCH'],
    ]);
  });
});

describe('POST /ingest: a request costs what it is worth', () => {
  /** A body that counts the bytes the server pulled from it. */
  function countingBody(bytes: Uint8Array, chunkSize: number) {
    const seen = { pulled: 0 };
    let offset = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= bytes.length) return controller.close();
        const chunk = bytes.slice(offset, offset + chunkSize);
        offset += chunk.length;
        seen.pulled += chunk.length;
        controller.enqueue(chunk);
      },
    });
    return { stream, seen };
  }

  it('answers a gzip of newlines expanding past the limit with 413 once the limit is passed, without reading the rest', async () => {
    const limited = createApp({ prisma: db.prisma, plugins: [useIngestEndpoint({ prisma: db.prisma, now: () => NOW, maxBytes: 1024 ** 2 })] });
    // 512 MiB of newlines in about 0.5 MB: 32 gzip members of 16 MiB each, one after the other.
    const bomb = Buffer.concat(Array(32).fill(gzipSync(Buffer.alloc(16 * 1024 ** 2, 0x0a), { level: 9 })));
    const { stream, seen } = countingBody(bomb, 1024);
    const { status, body } = await post(stream, { target: limited, headers: { 'content-encoding': 'gzip' } });
    expect(status).toBe(413);
    expect(body.errors[0].extensions).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', maxBytes: 1024 ** 2, accepted: 0 });
    // 1 MiB of newlines is 1/512 of the body (plus what the request's stream buffers ahead): far from all of it was pulled.
    expect(seen.pulled).toBeLessThan(bomb.length / 4);
  });

  it('counts blank lines (and skips them) however many there are', async () => {
    const p = ids();
    const body = Buffer.concat([Buffer.alloc(3 * 1024 ** 2, 0x0a), Buffer.from(' \r\n\t\n'), Buffer.from(ndjson([event(`${p}-1`)]))]);
    const { status, body: answer } = await post(gzipSync(body), { headers: { 'content-encoding': 'gzip' } });
    expect(status).toBe(200);
    expect(answer).toMatchObject({ accepted: 1, rejected: 0, lines: 3 * 1024 ** 2 + 3 });
  });

  it('stops a request that takes longer than INGEST_MAX_SECONDS with 408, even while its client stalls', async () => {
    const slow = createApp({ prisma: db.prisma, plugins: [useIngestEndpoint({ prisma: db.prisma, now: () => NOW, maxSeconds: 0.2 })] });
    const p = ids();
    let sent = false;
    const stalled = new ReadableStream<Uint8Array>({
      pull(controller) {
        // One line, then nothing more: a client that stalls mid-upload.
        if (!sent) controller.enqueue(new TextEncoder().encode(`${JSON.stringify(event(`${p}-1`))}\n`));
        sent = true;
        return new Promise(() => {});
      },
    });
    const { status, body } = await post(stalled, { target: slow });
    expect(status).toBe(408);
    expect(body.errors[0].extensions).toMatchObject({ code: 'REQUEST_TIMEOUT', maxSeconds: 0.2, accepted: 0, lines: 1 });
    expect(body.errors[0].message).toMatch(/INGEST_MAX_SECONDS/);
    expect(await eventsOf(a.realm.id, p)).toBe(0);
  });

  it('stops storing the batches of a client that disconnected, even when its whole (gzip) body had arrived', async () => {
    const lines: any[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
    const now = () => NOW;
    const listening = createApp({ prisma: db.prisma, now, plugins: [useIngestEndpoint({ prisma: db.prisma, now, batchSize: 50, logger })] });
    const server: Server = createServer((req, res) => void listening.handleNodeRequest(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const p = ids();
      const total = 4000;
      const body = gzipSync(Buffer.from(ndjson(Array.from({ length: total }, (_, i) => event(`${p}-${i}`)))));
      const client = httpRequest({
        host: '127.0.0.1',
        port: (server.address() as AddressInfo).port,
        path: '/ingest',
        method: 'POST',
        headers: { authorization: `Bearer ${a.admin.key}`, 'content-type': NDJSON, 'content-encoding': 'gzip', 'content-length': body.length },
      });
      client.on('error', () => {});
      client.end(body);
      while ((await eventsOf(a.realm.id, p)) === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      client.destroy();
      while (!lines.some((line) => line.path === '/ingest')) await new Promise((resolve) => setTimeout(resolve, 10));
      const stored = await eventsOf(a.realm.id, p);
      expect(lines.find((line) => line.path === '/ingest')).toMatchObject({ status: 499 });
      // The batch being stored when the client left (and at most the one read ahead) — not the 80 batches.
      expect(stored).toBeLessThan(total / 4);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await eventsOf(a.realm.id, p)).toBe(stored);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('POST /ingest failures and logs', () => {
  it('answers a database failure with a masked 500, reports it, and logs one line per request', async () => {
    const lines: any[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
    const reported: unknown[] = [];
    const broken = {
      feature: { findMany: () => Promise.reject(new Error('connection to the database lost')) },
    } as unknown as PrismaClient;
    const failing = createApp({
      prisma: db.prisma,
      plugins: [
        useIngestEndpoint({
          prisma: broken,
          authenticator: new Authenticator(db.prisma),
          onUnexpectedError: (error) => reported.push(error),
          logger,
        }),
      ],
    });
    const { status, body } = await post(ndjson([event('never')]), { target: failing });
    expect(status).toBe(500);
    expect(body.errors[0].message).toMatch(/^Unexpected error\./);
    expect(body.errors[0].message).not.toMatch(/connection/);
    expect(body.errors[0].extensions).toMatchObject({ code: 'INTERNAL_SERVER_ERROR', accepted: 0 });
    expect(reported).toEqual([expect.objectContaining({ message: 'connection to the database lost' })]);
    expect(lines).toEqual([expect.objectContaining({ level: 50, path: '/ingest', status: 500, realmId: a.realm.id, apiKeyId: a.admin.record.id })]);

    await post(ndjson([event('never')]), { target: failing, key: null });
    expect(lines[1]).toMatchObject({ level: 30, status: 401, realmId: null });
    expect(lines[1].msg).toMatch(/^ingest 401/);
  });
});

describe('readNdjson', () => {
  const encoder = new TextEncoder();

  async function readAll(stream: ReadableStream<Uint8Array>, options: Parameters<typeof readNdjson>[1] = {}) {
    const batches: NdjsonItem[][] = [];
    for await (const batch of readNdjson(stream, options)) batches.push(batch);
    return batches;
  }

  it('joins UTF-8 characters split across chunks, drops CR and a BOM, skips blank lines, reads a last line without newline', async () => {
    const text = '\uFEFF{"name":"Zürich 🚀"}\r\n\n  \n{"n":2}\r\n"last €"';
    const batches = await readAll(chunked(encoder.encode(text), 1));
    expect(batches.flat()).toEqual([
      { line: 1, value: { name: 'Zürich 🚀' } },
      { line: 4, value: { n: 2 } },
      { line: 5, value: 'last €' },
    ]);
  });

  it('reports invalid JSON, invalid UTF-8 and overlong lines without stopping', async () => {
    const bytes = new Uint8Array([...encoder.encode('{"a":1}\n{oops\n'), 0xff, 0xfe, 0x0a, ...encoder.encode(`"${'x'.repeat(100)}"\n{"b":2}`)]);
    const items = (await readAll(chunked(bytes, 7), { maxLineBytes: 50 })).flat();
    expect(items.map((item) => ('error' in item ? [item.line, item.code] : [item.line, item.value]))).toEqual([
      [1, { a: 1 }],
      [2, 'MALFORMED_JSON'],
      [3, 'INVALID_UTF8'],
      [4, 'LINE_TOO_LONG'],
      [5, { b: 2 }],
    ]);
  });

  it('yields batches of at most batchSize items', async () => {
    const text = Array.from({ length: 25 }, (_, i) => (i % 5 === 4 ? 'bad' : JSON.stringify({ i }))).join('\n');
    const batches = await readAll(chunked(encoder.encode(text), 13), { batchSize: 10 });
    expect(batches.map((batch) => batch.length)).toEqual([10, 10, 5]);
    expect(batches.flat().map((item) => item.line)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
  });

  it('throws BodyTooLargeError once the limit is passed and cancels the stream', async () => {
    let cancelled = false;
    let sent = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent++;
        controller.enqueue(encoder.encode('{"x":1}\n'.repeat(16)));
      },
      cancel() {
        cancelled = true;
      },
    });
    const error = await readAll(endless, { maxBytes: 1000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BodyTooLargeError);
    expect((error as BodyTooLargeError).limit).toBe(1000);
    expect(cancelled).toBe(true);
    expect(sent).toBeLessThan(20);
  });
});

describe('INGEST_MAX_SECONDS', () => {
  it('takes whole seconds, defaults to 900 and explains a bad value', () => {
    expect(parseIngestMaxSeconds(undefined)).toBe(900);
    expect(parseIngestMaxSeconds(' ')).toBe(900);
    expect(parseIngestMaxSeconds('60')).toBe(60);
    for (const bad of ['0', '-5', '1.5', 'soon', '86401']) {
      expect(() => parseIngestMaxSeconds(bad), bad).toThrow(/^INGEST_MAX_SECONDS must be a whole number of seconds from 1 to 86400 .*; set INGEST_MAX_SECONDS=900 or unset it$/);
    }
  });
});

describe('INGEST_MAX_BYTES', () => {
  it('takes bytes or a binary unit, defaults to 1 GiB and explains a bad value', () => {
    expect(parseIngestMaxBytes(undefined)).toBe(1024 ** 3);
    expect(parseIngestMaxBytes('  ')).toBe(1024 ** 3);
    expect(parseIngestMaxBytes('1048576')).toBe(1024 ** 2);
    expect(parseIngestMaxBytes('512MiB')).toBe(512 * 1024 ** 2);
    expect(parseIngestMaxBytes('2 GiB')).toBe(2 * 1024 ** 3);
    for (const bad of ['0', '-5', '1.5GiB', 'lots', '10TB']) {
      expect(() => parseIngestMaxBytes(bad), bad).toThrow(/INGEST_MAX_BYTES must be a positive number of bytes.*; set INGEST_MAX_BYTES=1GiB or unset it/);
    }
    class ConfigLikeError extends Error {}
    expect(() => parseIngestMaxBytes('x', (message) => new ConfigLikeError(message))).toThrow(ConfigLikeError);
  });
});

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openDatabase, type Database } from '../src/db/database.js';
import { encodeId } from '../src/global-id.js';
import { memoryLiveHub, startLiveHub, type LiveHub } from '../src/live/hub.js';
import { liveStream, MAX_QUEUED_EVENTS, useLiveSubscriptions } from '../src/live/subscription.js';
import type { Context } from '../src/context.js';
import { newPortalToken } from '../src/portal/token.js';
import { createMemoryRateLimiter, type RateLimiter } from '../src/rate-limit/limiter.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { createUsageRealm } from './helpers/usage-fixture.js';
import { freePort, startServer } from './server/server-process.js';
import { takeSseEvents, type SseEvent } from './helpers/sse.js';

/*
 * Subscriptions over Server-Sent Events on listening HTTP servers. On PostgreSQL: two gateway
 * instances (two createApp, two Prisma clients, each with its own LISTEN connection, on two ports)
 * share one database: usage ingested through A is pushed to subscribers of B. On PGlite (one
 * process owns the database): one instance, its in-process hub.
 */

const postgres = testDatabaseKind() === 'postgres';
const NOW = new Date('2026-06-15T12:00:00Z');
const KEY_CHECK_MS = 50;

let db: TestDatabase;
let second: Database | undefined;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
const hubs: LiveHub[] = [];
const servers: Server[] = [];
const limiters: RateLimiter[] = [];
let urlA: string;
let urlB: string;
let hubB: LiveHub;

async function serve(app: App): Promise<string> {
  const server = createServer((req, res) => void app.handleNodeRequest(req, res));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
}

function gateway(prisma: Database['prisma'], hub: LiveHub): App {
  const rateLimiter = createMemoryRateLimiter();
  limiters.push(rateLimiter);
  return createApp({ prisma, live: hub, rateLimiter, now: () => NOW, onUnexpectedError: (error) => console.error(error) });
}

beforeAll(async () => {
  db = await createTestDatabase();
  realm = await createUsageRealm(db.prisma, 'UTC');
  await db.prisma.realm.update({ where: { id: realm.realm.id }, data: { tier: 'PROFESSIONAL' } });
  if (postgres) {
    second = await openDatabase(db.target, { migrate: false });
    const hubA = await startLiveHub(db.prisma, db.target, { keyCheckIntervalMs: KEY_CHECK_MS });
    hubB = await startLiveHub(second.prisma, second.target, { keyCheckIntervalMs: KEY_CHECK_MS });
    hubs.push(hubA, hubB);
    urlA = await serve(gateway(db.prisma, hubA));
    urlB = await serve(gateway(second.prisma, hubB));
  } else {
    hubB = memoryLiveHub(db.prisma, { keyCheckIntervalMs: KEY_CHECK_MS });
    hubs.push(hubB);
    urlA = urlB = await serve(gateway(db.prisma, hubB));
  }
});

afterAll(async () => {
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  for (const hub of hubs) await hub.close();
  for (const limiter of limiters) await limiter.close();
  await second?.close();
  await db?.destroy();
});


/** An open `text/event-stream` answer, read event by event. */
class EventStream {
  private buffer = '';
  private readonly events: SseEvent[] = [];
  private waiters: (() => void)[] = [];
  ended = false;
  readonly done: Promise<void>;

  constructor(
    readonly response: Response,
    private readonly abort: AbortController,
  ) {
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    this.done = (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          this.buffer += decoder.decode(value, { stream: true });
          this.parse();
        }
      } catch {
        // closed by us
      } finally {
        this.ended = true;
        this.wake();
      }
    })();
  }

  private parse() {
    const { events, rest } = takeSseEvents(this.buffer);
    this.buffer = rest;
    this.events.push(...events);
    this.wake();
  }

  private wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** The next event (fails after `timeoutMs`, or when the stream ended without one). */
  async next(timeoutMs = 10_000): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const event = this.events.shift();
      if (event) return event;
      if (this.ended) throw new Error('the stream ended');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no event within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Events received and not read yet. */
  get pending(): number {
    return this.events.length;
  }

  /** Aborts the request (the server sees the connection close); does not wait for the body's end. */
  async close() {
    this.abort.abort();
    await Promise.race([this.done, new Promise((resolve) => setTimeout(resolve, 500))]);
  }
}

async function subscribe(url: string, key: string, query: string, variables?: Record<string, unknown>): Promise<EventStream> {
  const abort = new AbortController();
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
    signal: abort.signal,
  });
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  return new EventStream(response, abort);
}

/** Opens a subscription and waits until its stream listens on B's hub (so nothing published after is missed). */
async function listening(url: string, key: string, query: string, variables?: Record<string, unknown>): Promise<EventStream> {
  const before = hubB.listenerCount;
  const stream = await subscribe(url, key, query, variables);
  await vi.waitFor(() => expect(hubB.listenerCount).toBe(before + 1), { timeout: 10_000, interval: 10 });
  return stream;
}

/** Closes the client side; the server ends each stream and stops listening (nothing is left behind). */
async function closeAll(...streams: EventStream[]) {
  for (const stream of streams) await stream.close();
  await vi.waitFor(() => expect(hubB.listenerCount).toBe(0), { timeout: 10_000, interval: 10 });
}

async function request(url: string, key: string, query: string, variables?: Record<string, unknown>) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: any; errors?: any[] };
}

const INGEST = `mutation ($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted rejected { code message } } }`;
const USAGE_CHANGED = `subscription ($features: [ID!], $workspace: ID) {
  usageChanged(features: $features, workspace: $workspace) { hour quantity revision feature { key } workspace { name } } }`;

let sequence = 0;
function event(workspaceId: string, quantity: string, feature = 'tx') {
  return { idempotencyKey: `sub-${++sequence}`, feature, timestamp: '2026-06-15T10:30:00Z', quantity, workspaceId: encodeId('Workspace', workspaceId) };
}

async function ingest(events: ReturnType<typeof event>[]) {
  const result = await request(urlA, realm.admin.key, INGEST, { events });
  expect(result.errors).toBeUndefined();
  expect(result.data.ingestUsage).toMatchObject({ accepted: events.length, rejected: [] });
}

describe(`usageChanged over SSE (${postgres ? 'two gateway instances, PostgreSQL LISTEN/NOTIFY' : 'one instance, PGlite in process'})`, () => {
  it('pushes the buckets an ingestion through A wrote to a subscriber of B, with their value and revision', async () => {
    const stream = await listening(urlB, realm.admin.key, USAGE_CHANGED);
    await ingest([event(realm.tree.left.id, '2'), event(realm.tree.right.id, '3'), event(realm.tree.right.id, '4')]);
    const first = await stream.next();
    expect(first.event).toBe('next');
    expect(first.data.errors).toBeUndefined();
    const buckets = first.data.data.usageChanged as any[];
    expect(buckets.map((b) => [b.workspace.name, b.quantity, b.revision, b.feature.key]).sort()).toEqual([
      ['left', '2', 1, 'tx'],
      ['right', '7', 1, 'tx'],
    ]);
    expect(buckets[0].hour).toBe('2026-06-15T10:00:00.000Z');
    // The same bucket again: its new value and revision.
    await ingest([event(realm.tree.left.id, '5')]);
    const second = await stream.next();
    expect(second.data.data.usageChanged).toEqual([{ hour: '2026-06-15T10:00:00.000Z', quantity: '7', revision: 2, feature: { key: 'tx' }, workspace: { name: 'left' } }]);
    await closeAll(stream);
  });

  it("a workspace-scoped key gets only its subtree's buckets; `features` and `workspace` narrow further", async () => {
    const scoped = await listening(urlB, realm.scoped.key, USAGE_CHANGED); // scoped to `left`
    const onlyReq = await listening(urlB, realm.admin.key, USAGE_CHANGED, { features: [encodeId('Feature', realm.features.req.id)] });
    const onlyRight = await listening(urlB, realm.admin.key, USAGE_CHANGED, { workspace: encodeId('Workspace', realm.tree.right.id) });
    // Another subtree only: nothing for the scoped key (the next event it gets is the one below).
    await ingest([event(realm.tree.right.id, '1')]);
    expect((await onlyRight.next()).data.data.usageChanged.map((b: any) => b.workspace.name)).toEqual(['right']);
    await ingest([event(realm.tree.leaf.id, '1'), event(realm.tree.right.id, '1', 'req')]);
    const seen = await scoped.next();
    expect(seen.data.data.usageChanged.map((b: any) => [b.workspace.name, b.feature.key])).toEqual([['leaf', 'tx']]);
    expect((await onlyReq.next()).data.data.usageChanged.map((b: any) => [b.workspace.name, b.feature.key])).toEqual([['right', 'req']]);
    expect((await onlyRight.next()).data.data.usageChanged.map((b: any) => [b.workspace.name, b.feature.key])).toEqual([['right', 'req']]);
    // Settle: nothing else arrived for the scoped key.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(scoped.pending).toBe(0);
    // A workspace outside the key's subtree cannot be asked for.
    const outside = await subscribe(urlB, realm.scoped.key, USAGE_CHANGED, { workspace: encodeId('Workspace', realm.tree.right.id) });
    const refused = await outside.next();
    expect(refused.data.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_ID' });
    expect((await outside.next()).event).toBe('complete');
    await closeAll(scoped, onlyReq, onlyRight, outside);
  });

  it('needs usage:read, like the queries', async () => {
    const writer = await createKey(db.prisma, realm.realm.id, { scopes: ['usage:write'] });
    const stream = await subscribe(urlB, writer.key, USAGE_CHANGED);
    const refused = await stream.next();
    expect(refused.data.errors[0].extensions.code).toBe('FORBIDDEN');
    expect((await stream.next()).event).toBe('complete');
    await closeAll(stream);
  });

  it('ends with KEY_REVOKED when the key is revoked (through the other instance)', async () => {
    const doomed = await createKey(db.prisma, realm.realm.id, { scopes: ['usage:read'] });
    const stream = await listening(urlB, doomed.key, USAGE_CHANGED);
    const revoked = await request(urlA, realm.admin.key, `mutation ($id: ID!) { revokeApiKey(id: $id) { userErrors { code } } }`, { id: encodeId('ApiKey', doomed.record.id) });
    expect(revoked.data.revokeApiKey.userErrors).toEqual([]);
    const last = await stream.next();
    expect(last.data.errors[0].extensions.code).toBe('KEY_REVOKED');
    expect((await stream.next()).event).toBe('complete');
    await stream.done;
    expect(stream.ended).toBe(true);
    await closeAll();
  });

  it('counts every pushed event against the rate limit and ends with RATE_LIMITED past it', async () => {
    const key = await createKey(db.prisma, realm.realm.id, { scopes: ['usage:read'] });
    // 3 points a window: the subscription request (1) and two events; the third event is over.
    await db.prisma.apiKey.update({ where: { id: key.record.id }, data: { customRateLimit: 3 } });
    const stream = await listening(urlB, key.key, USAGE_CHANGED);
    for (let i = 0; i < 3; i++) await ingest([event(realm.tree.left.id, '1')]);
    expect((await stream.next()).data.data.usageChanged).toHaveLength(1);
    expect((await stream.next()).data.data.usageChanged).toHaveLength(1);
    const last = await stream.next();
    expect(last.data.errors[0].extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 3 });
    expect((await stream.next()).event).toBe('complete');
    await closeAll(stream);
  });
});

describe.runIf(postgres)('usageChanged from another gateway process', () => {
  it('a gateway started as `npm start` pushes to its subscriber the buckets this process ingested', async () => {
    const port = await freePort();
    const server = startServer({ DATABASE_URL: (db.target as { url: string }).url, PORT: String(port), HOST: '127.0.0.1', SEED_DEMO: 'false' });
    try {
      await server.waitForLine(/listening on/, 60_000);
      const stream = await subscribe(`http://127.0.0.1:${port}/graphql`, realm.admin.key, USAGE_CHANGED, { workspace: encodeId('Workspace', realm.tree.leaf.id) });
      // The other process's LISTEN may start a moment after its answer's headers: ingest until it hears one.
      let heard: SseEvent | undefined;
      for (let attempt = 0; attempt < 40 && !heard; attempt++) {
        await ingest([event(realm.tree.leaf.id, '1')]);
        heard = await stream.next(500).catch(() => undefined);
      }
      expect(heard?.event).toBe('next');
      const [bucket] = heard!.data.data.usageChanged;
      const stored = await db.prisma.usageHourly.findFirstOrThrow({ where: { workspaceId: realm.tree.leaf.id, feature: { key: 'tx' }, hour: new Date('2026-06-15T10:00:00Z') } });
      expect(bucket.workspace.name).toBe('leaf');
      expect(Number(bucket.revision)).toBeLessThanOrEqual(stored.revision);
      await stream.close();
    } finally {
      await server.stop();
    }
  }, 120_000);
});

describe('usageChanged for a portal session', () => {
  // Made in the database: the gateways here run on a fixed clock (NOW) while a session's expiry is the wall clock's.
  async function portalSession(featureIds: string[]) {
    const token = newPortalToken();
    const row = await db.prisma.portalSession.create({
      data: {
        realmId: realm.realm.id,
        workspaceId: realm.tree.root.id,
        apiKeyId: realm.admin.record.id,
        prefix: token.prefix,
        secretHash: token.secretHash,
        featureIds,
        sections: ['explorer'],
        scopes: ['usage:read'],
        expiresAt: new Date(Date.now() + 3_600_000),
      },
    });
    return { token: token.token, id: row.id };
  }

  it("gets its features' buckets only, even without `features`, and ends with SESSION_EXPIRED when revoked", async () => {
    const session = await portalSession([realm.features.tx.id]);
    const stream = await listening(urlB, session.token, USAGE_CHANGED);
    await ingest([event(realm.tree.left.id, '1', 'req'), event(realm.tree.left.id, '1', 'tx')]);
    const seen = await stream.next();
    expect(seen.data.data.usageChanged.map((b: any) => b.feature.key)).toEqual(['tx']);
    await ingest([event(realm.tree.left.id, '1', 'req')]);
    await db.prisma.portalSession.update({ where: { id: session.id }, data: { revokedAt: new Date() } });
    const last = await stream.next();
    expect(last.data.errors[0].extensions.code).toBe('SESSION_EXPIRED');
    expect((await stream.next()).event).toBe('complete');
    await closeAll(stream);
  });
});

describe('alertRaised over SSE', () => {
  it('pushes a new alert to a realm-wide billing:read key; a workspace-scoped key is refused', async () => {
    const refused = await subscribe(urlB, realm.scoped.key, `subscription { alertRaised { id } }`);
    expect((await refused.next()).data.errors[0].extensions.code).toBe('FORBIDDEN');
    await closeAll(refused);

    const stream = await listening(urlB, realm.admin.key, `subscription { alertRaised { kind quantity threshold message rule { feature { key } } } }`);
    const created = await request(urlA, realm.admin.key, `mutation ($input: CreateQuotaRuleInput!) { createQuotaRule(input: $input) { userErrors { code } } }`, {
      input: { featureId: encodeId('Feature', realm.features.req.id), period: 'DAY', quantity: '5' },
    });
    expect(created.data.createQuotaRule.userErrors).toEqual([]);
    await ingest([event(realm.tree.left.id, '6', 'req')]);
    const raised = await stream.next();
    expect(raised.data.data.alertRaised).toMatchObject({ kind: 'ACTUAL', threshold: '5', rule: { feature: { key: 'req' } } });
    await closeAll(stream);
  });
});

describe('a client that does not read', () => {
  it(`ends its stream with SLOW_CONSUMER past ${MAX_QUEUED_EVENTS} waiting events`, async () => {
    const hub = memoryLiveHub(db.prisma);
    hubs.push(hub);
    const extension: Record<PropertyKey, unknown> = {};
    (useLiveSubscriptions({ hub, rateLimiter: null }) as { onContextBuilding: (p: unknown) => void }).onContextBuilding({ extendContext: (e: object) => Object.assign(extension, e) });
    const viewer = { kind: 'apiKey', apiKeyId: realm.admin.record.id, keyPrefix: 'test', realmId: realm.realm.id, workspaceId: null, scopes: ['usage:read'], ratePlan: { key: { tier: null, customRateLimit: null }, realm: { tier: 'PROFESSIONAL', customRateLimit: null } } };
    const ctx = { prisma: db.prisma, viewer, requestId: null, now: NOW, memo: new Map(), rateLimit: null, ...extension } as unknown as Context;
    const stream = liveStream(ctx, async (e) => (e.type === 'usage' ? e.bucketIds : null))[Symbol.asyncIterator]();
    const first = stream.next(); // starts the stream: it listens from here on
    for (let i = 0; i <= MAX_QUEUED_EVENTS; i++) hub.deliver({ type: 'usage', realmId: realm.realm.id, bucketIds: [String(i)] });
    const payloads = [await first];
    while (!payloads.at(-1)!.done) payloads.push(await stream.next());
    const ends = payloads.filter((p) => p.value?.end);
    expect(ends.map((p) => p.value!.end!.extensions.code)).toEqual(['SLOW_CONSUMER']);
    expect(payloads.filter((p) => p.value?.value).length).toBeLessThanOrEqual(MAX_QUEUED_EVENTS);
    expect(hub.listenerCount).toBe(0);
  });
});

describe('a stopping gateway', () => {
  it('ends its open streams with SERVICE_UNAVAILABLE (reconnect) instead of holding the shutdown open', async () => {
    const stream = await listening(urlB, realm.admin.key, USAGE_CHANGED);
    await hubB.close();
    const last = await stream.next();
    expect(last.data.errors[0].extensions.code).toBe('SERVICE_UNAVAILABLE');
    expect((await stream.next()).event).toBe('complete');
    await closeAll(stream);
  });
});

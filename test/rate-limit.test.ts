import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Tier } from '../src/generated/prisma/client.js';
import { createMemoryRateLimiter, createRedisRateLimiter, type RateLimiter } from '../src/rate-limit/limiter.js';
import { requestLimit, type RatePlan } from '../src/rate-limit/limits.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from './helpers/database.js';
import { createKey, createRealm } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';

/** Whether something answers on host:port within a short time. */
function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port || 6379) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

// TEST_REDIS_URL (set by CI) makes the Redis tests mandatory; without it they run when a local Redis answers.
const LOCAL_REDIS = 'redis://127.0.0.1:6379';
const redisUrl = process.env.TEST_REDIS_URL || ((await reachable(LOCAL_REDIS)) ? LOCAL_REDIS : undefined);
// Redis does not depend on the database: run its tests in one project only (PostgreSQL's when there is one).
const redisProject = process.env.TEST_DATABASE_URL ? 'postgres' : 'pglite';

const VIEWER = '{ viewer { scopes rateLimit { limit remaining resetAt } } }';
const PING = '{ viewer { scopes } }';

let db: TestDatabase;
let freeKey: string;
let freeRealmId: string;
const keyIds = new Map<string, string>();

/** A key in a realm of `realm.tier`, with the key's own tier and custom limit when given. */
async function keyWithPlan(
  realm: { tier: Tier; customRateLimit?: number | null },
  key: { tier?: Tier | null; customRateLimit?: number | null } = {},
): Promise<string> {
  const created = await createRealm(db.prisma);
  await db.prisma.realm.update({ where: { id: created.id }, data: { tier: realm.tier, customRateLimit: realm.customRateLimit ?? null } });
  const { key: secret, record } = await createKey(db.prisma, created.id);
  await db.prisma.apiKey.update({ where: { id: record.id }, data: { tier: key.tier ?? null, customRateLimit: key.customRateLimit ?? null } });
  keyIds.set(secret, record.id);
  return secret;
}

/** A request over `yoga.fetch` from a client address (X-Forwarded-For: there is no socket in process). */
async function request(app: App, query: string, options: { key?: string; address?: string } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  if (options.address) headers['x-forwarded-for'] = `${options.address}, 10.0.0.1`;
  const response = await app.fetch('http://gateway.test/graphql', { method: 'POST', headers, body: JSON.stringify({ query }) });
  return { status: response.status, headers: response.headers, body: (await response.json()) as any };
}

function rateLimitHeaders(headers: Headers) {
  return {
    limit: headers.get('ratelimit-limit'),
    remaining: headers.get('ratelimit-remaining'),
    reset: headers.get('ratelimit-reset'),
    retryAfter: headers.get('retry-after'),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  db = await createTestDatabase();
  const realm = await createRealm(db.prisma, 'Free realm');
  freeRealmId = realm.id;
  freeKey = (await createKey(db.prisma, realm.id)).key;
});

afterAll(() => db?.destroy());

describe('limits by tier', () => {
  const plan = (realmTier: Tier, realmCustom: number | null, keyTier: Tier | null = null, keyCustom: number | null = null): RatePlan => ({
    key: { tier: keyTier, customRateLimit: keyCustom },
    realm: { tier: realmTier, customRateLimit: realmCustom },
  });

  it('maps tiers to requests per minute; the key overrides its realm; ENTERPRISE is custom', () => {
    expect(requestLimit(plan('FREE', null))).toBe(60);
    expect(requestLimit(plan('STARTER', null))).toBe(300);
    expect(requestLimit(plan('PROFESSIONAL', null))).toBe(1000);
    expect(requestLimit(plan('ENTERPRISE', 5000))).toBe(5000);
    expect(requestLimit(plan('ENTERPRISE', null))).toBe(1000);
    expect(requestLimit(plan('ENTERPRISE', 5000, null, 250))).toBe(250);
    expect(requestLimit(plan('ENTERPRISE', 5000, 'FREE'))).toBe(60);
    expect(requestLimit(plan('FREE', null, 'PROFESSIONAL'))).toBe(1000);
    expect(requestLimit(plan('FREE', 5000, 'ENTERPRISE'))).toBe(5000);
    expect(requestLimit(plan('FREE', null, 'ENTERPRISE', 2500))).toBe(2500);
    // A key with only a custom limit is an ENTERPRISE key; a custom limit of a non-ENTERPRISE realm does not apply.
    expect(requestLimit(plan('FREE', null, null, 2500))).toBe(2500);
    expect(requestLimit(plan('STARTER', 5000))).toBe(300);
  });

  it("applies the key's limit from its own and its realm's plan (one lookup with the key)", async () => {
    const app = createApp({ prisma: db.prisma, rateLimiter: createMemoryRateLimiter() });
    const cases: Array<[string, Promise<string>, number]> = [
      ['FREE realm', keyWithPlan({ tier: 'FREE' }), 60],
      ['STARTER realm', keyWithPlan({ tier: 'STARTER' }), 300],
      ['PROFESSIONAL realm', keyWithPlan({ tier: 'PROFESSIONAL' }), 1000],
      ['ENTERPRISE realm, custom 5000', keyWithPlan({ tier: 'ENTERPRISE', customRateLimit: 5000 }), 5000],
      ['ENTERPRISE realm without a custom limit', keyWithPlan({ tier: 'ENTERPRISE' }), 1000],
      ['ENTERPRISE key, its own custom limit', keyWithPlan({ tier: 'ENTERPRISE', customRateLimit: 5000 }, { customRateLimit: 250 }), 250],
      ['STARTER key in a FREE realm', keyWithPlan({ tier: 'FREE' }, { tier: 'STARTER' }), 300],
      ['FREE key in an ENTERPRISE realm', keyWithPlan({ tier: 'ENTERPRISE', customRateLimit: 5000 }, { tier: 'FREE' }), 60],
    ];
    for (const [name, key, limit] of cases) {
      const response = await graphql(app, VIEWER, { key: await key });
      expect(response.status, name).toBe(200);
      expect(response.headers.get('ratelimit-limit'), name).toBe(String(limit));
      expect(response.body.extensions?.rateLimit?.limit, name).toBe(limit);
      expect(response.body.data.viewer.rateLimit.limit, name).toBe(limit);
      // The key, its plan and its realm's plan come in the one authentication statement; counting is not in the database.
      expect(response.statements, name).toHaveLength(1);
      expect(response.statements[0], name).toMatch(/"ApiKey"[\s\S]*"Realm"/);
    }
  });
});

describe('per key (in memory)', () => {
  it('puts RateLimit-* headers and extensions.rateLimit on a successful response, and the state in viewer.rateLimit', async () => {
    const app = createApp({ prisma: db.prisma, rateLimiter: createMemoryRateLimiter() });
    const before = Date.now();
    const { status, headers, body } = await graphql(app, VIEWER, { key: freeKey });
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    const h = rateLimitHeaders(headers);
    expect(h).toMatchObject({ limit: '60', remaining: '59', retryAfter: null });
    expect(Number(h.reset)).toBeGreaterThanOrEqual(59);
    expect(Number(h.reset)).toBeLessThanOrEqual(60);
    expect(body.extensions?.rateLimit).toEqual({ limit: 60, remaining: 59, resetAt: expect.any(String), cost: 1 });
    const resetAt = Date.parse(body.extensions!.rateLimit.resetAt);
    expect(resetAt).toBeGreaterThanOrEqual(before + 59_000);
    expect(resetAt).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(body.data.viewer.rateLimit).toEqual({ limit: 60, remaining: 59, resetAt: body.extensions!.rateLimit.resetAt });

    const second = await graphql(app, VIEWER, { key: freeKey });
    expect(second.headers.get('ratelimit-remaining')).toBe('58');
    expect(second.body.extensions?.rateLimit).toMatchObject({ remaining: 58 });
    // The same window: it ends when it did (to the clock's jitter).
    expect(Math.abs(Date.parse(second.body.extensions!.rateLimit.resetAt) - resetAt)).toBeLessThan(50);
  });

  it('answers the 61st request of a FREE key within the minute with 429 RATE_LIMITED, retryAfter and Retry-After', async () => {
    const key = (await createKey(db.prisma, freeRealmId)).key;
    const app = createApp({ prisma: db.prisma, rateLimiter: createMemoryRateLimiter() });
    for (let i = 1; i <= 60; i++) {
      const response = await graphql(app, PING, { key });
      expect(response.status, `request ${i}`).toBe(200);
      expect(response.headers.get('ratelimit-remaining'), `request ${i}`).toBe(String(60 - i));
    }
    const refused = await graphql(app, VIEWER, { key });
    expect(refused.status).toBe(429);
    expect(refused.body.data).toBeUndefined();
    expect(refused.body.errors).toHaveLength(1);
    const error = refused.body.errors![0]!;
    expect(error.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfter: expect.any(Number) });
    expect(error.extensions!.http).toBeUndefined();
    expect(error.message).toMatch(/60 requests per minute/);
    expect(error.extensions!.retryAfter).toBeGreaterThanOrEqual(1);
    expect(error.extensions!.retryAfter).toBeLessThanOrEqual(60);
    const h = rateLimitHeaders(refused.headers);
    expect(h).toMatchObject({ limit: '60', remaining: '0', retryAfter: String(error.extensions!.retryAfter), reset: String(error.extensions!.retryAfter) });
    expect(refused.body.extensions?.rateLimit).toMatchObject({ limit: 60, remaining: 0, cost: 1 });

    // Other keys, even of the same realm, have their own counter.
    const other = (await createKey(db.prisma, freeRealmId)).key;
    expect((await graphql(app, PING, { key: other })).status).toBe(200);
  });

  it('starts counting again when the window resets', async () => {
    const key = await keyWithPlan({ tier: 'ENTERPRISE', customRateLimit: 2 });
    const app = createApp({ prisma: db.prisma, rateLimiter: createMemoryRateLimiter({ windowSeconds: 2 }) });
    expect((await graphql(app, PING, { key })).status).toBe(200);
    expect((await graphql(app, PING, { key })).status).toBe(200);
    const refused = await graphql(app, PING, { key });
    expect(refused.status).toBe(429);
    expect(refused.body.errors![0]!.extensions!.retryAfter).toBeLessThanOrEqual(2);
    await sleep(Number(refused.headers.get('retry-after')) * 1000 + 100);
    const again = await graphql(app, PING, { key });
    expect(again.status).toBe(200);
    expect(rateLimitHeaders(again.headers)).toMatchObject({ limit: '2', remaining: '1' });
  });

  it('keeps one count per process: two apps with their own memory limiter do not share it', async () => {
    const key = await keyWithPlan({ tier: 'ENTERPRISE', customRateLimit: 3 });
    const a = createApp({ prisma: db.prisma, rateLimiter: createMemoryRateLimiter() });
    const b = createApp({ prisma: db.prisma, rateLimiter: createMemoryRateLimiter() });
    for (let i = 0; i < 3; i++) expect((await graphql(a, PING, { key })).status).toBe(200);
    expect((await graphql(a, PING, { key })).status).toBe(429);
    const fromB = await graphql(b, PING, { key });
    expect(fromB.status).toBe(200);
    expect(fromB.headers.get('ratelimit-remaining')).toBe('2');
  });

  it('lets a caller charge a cost other than 1 (consume(key, limit, cost))', async () => {
    const limiter = createMemoryRateLimiter({ keyPrefix: 'cost-test' });
    const first = await limiter.consume('k', 10, 4);
    expect(first).toMatchObject({ limit: 10, remaining: 6, cost: 4, allowed: true });
    const second = await limiter.consume('k', 10, 7);
    expect(second).toMatchObject({ remaining: 0, cost: 7, allowed: false });
    expect(await limiter.peek('k', 10)).toMatchObject({ remaining: 0, cost: 0 });
    expect(await limiter.peek('unseen', 10)).toMatchObject({ remaining: 10, allowed: true });
    await expect(limiter.consume('k', 10, 1.5)).rejects.toThrow(RangeError);
  });

  it('counts in memory, per process, while Redis cannot be reached (never refuses because of Redis)', async () => {
    const errors: Error[] = [];
    const limiter = createRedisRateLimiter({ redis: 'redis://127.0.0.1:1', keyPrefix: 'unreachable', onRedisError: (error) => errors.push(error) });
    try {
      const key = await keyWithPlan({ tier: 'ENTERPRISE', customRateLimit: 2 });
      const app = createApp({ prisma: db.prisma, rateLimiter: limiter });
      const first = await graphql(app, PING, { key });
      expect(first.status).toBe(200);
      expect(first.headers.get('ratelimit-remaining')).toBe('1');
      expect((await graphql(app, PING, { key })).status).toBe(200);
      expect((await graphql(app, PING, { key })).status).toBe(429);
      await vi.waitFor(() => expect(errors.length).toBeGreaterThan(0));
    } finally {
      await limiter.close();
    }
  });

  it('changes nothing for an app created without a rate limiter', async () => {
    const app = createApp({ prisma: db.prisma });
    const key = (await createKey(db.prisma, freeRealmId)).key;
    for (let i = 0; i < 65; i++) expect((await graphql(app, PING, { key })).status).toBe(200);
    const { headers, body } = await graphql(app, VIEWER, { key });
    expect(headers.get('ratelimit-limit')).toBeNull();
    expect(body.extensions?.rateLimit).toBeUndefined();
    expect(body.data.viewer.rateLimit).toBeNull();
  });
});

describe('failed authentication per client address', () => {
  it('answers 401 for the first 20 failures of an address in a minute, then 429 RATE_LIMITED', async () => {
    const app = createApp({ prisma: db.prisma, rateLimiter: createMemoryRateLimiter() });
    const attacker = '203.0.113.7';
    const wrongKeys = [undefined, 'ugw_00000000_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'not-a-key', `${freeKey.slice(0, -1)}${freeKey.endsWith('x') ? 'y' : 'x'}`];
    for (let i = 1; i <= 20; i++) {
      const response = await request(app, PING, { key: wrongKeys[i % wrongKeys.length], address: attacker });
      expect(response.status, `failure ${i}`).toBe(401);
      expect(response.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
      expect(rateLimitHeaders(response.headers), `failure ${i}`).toMatchObject({ limit: '20', remaining: String(20 - i) });
    }
    const refused = await request(app, PING, { key: 'ugw_00000000_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', address: attacker });
    expect(refused.status).toBe(429);
    expect(refused.body.errors[0].extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfter: expect.any(Number) });
    expect(refused.headers.get('retry-after')).toBe(String(refused.body.errors[0].extensions.retryAfter));
    expect(refused.body.extensions.rateLimit).toMatchObject({ limit: 20, remaining: 0 });
    // A valid key from the locked address is still checked and served (under its own limit): one
    // tenant guessing keys behind a shared proxy or NAT locks nobody else out.
    const validFromLockedAddress = await request(app, PING, { key: freeKey, address: attacker });
    expect(validFromLockedAddress.status).toBe(200);
    expect(validFromLockedAddress.body.errors).toBeUndefined();
    expect(validFromLockedAddress.headers.get('ratelimit-limit')).toBe('60');
    // ...and further failures from it are still refused.
    expect((await request(app, PING, { key: 'not-a-key', address: attacker })).status).toBe(429);

    // Other addresses are not affected.
    expect((await request(app, PING, { key: 'not-a-key', address: '198.51.100.1' })).status).toBe(401);
    expect((await request(app, PING, { key: freeKey, address: '198.51.100.1' })).status).toBe(200);
    // No header, no socket (in process): one shared 'unknown' address.
    expect((await request(app, PING, { key: 'not-a-key' })).status).toBe(401);
  });

  it('lets the address in again when the window resets', async () => {
    const app = createApp({ prisma: db.prisma, rateLimiter: createMemoryRateLimiter({ windowSeconds: 2, authFailureLimit: 2 }) });
    const address = '203.0.113.8';
    expect((await request(app, PING, { key: 'not-a-key', address })).status).toBe(401);
    expect((await request(app, PING, { key: 'not-a-key', address })).status).toBe(401);
    const refused = await request(app, PING, { key: 'not-a-key', address });
    expect(refused.status).toBe(429);
    expect((await request(app, PING, { key: freeKey, address })).status).toBe(200);
    await sleep(Number(refused.headers.get('retry-after')) * 1000 + 100);
    const afterReset = await request(app, PING, { key: 'not-a-key', address });
    expect(afterReset.status).toBe(401);
    expect(afterReset.headers.get('ratelimit-remaining')).toBe('1');
    expect((await request(app, PING, { key: freeKey, address })).status).toBe(200);
  });

  it('does not count successful requests against the address', async () => {
    const app = createApp({ prisma: db.prisma, rateLimiter: createMemoryRateLimiter({ authFailureLimit: 2 }) });
    const key = await keyWithPlan({ tier: 'PROFESSIONAL' });
    for (let i = 0; i < 5; i++) expect((await request(app, PING, { key, address: '192.0.2.5' })).status).toBe(200);
    expect((await request(app, PING, { key: 'nope', address: '192.0.2.5' })).status).toBe(401);
    expect((await request(app, PING, { key: 'nope', address: '192.0.2.5' })).status).toBe(401);
    expect((await request(app, PING, { key: 'nope', address: '192.0.2.5' })).status).toBe(429);
  });
});

describe.runIf(!!redisUrl && testDatabaseKind() === redisProject)('in Redis (shared by every instance)', () => {
  const prefix = `ugw-test:${randomBytes(6).toString('hex')}`;
  const clients: Redis[] = [];
  const limiters: RateLimiter[] = [];

  /** An app with its own Redis client, as a separate gateway process would have. */
  async function instance(options: { windowSeconds?: number; keyPrefix?: string } = {}): Promise<App> {
    const client = new Redis(redisUrl!, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    await client.connect();
    clients.push(client);
    const rateLimiter = createRedisRateLimiter({ redis: client, keyPrefix: options.keyPrefix ?? prefix, windowSeconds: options.windowSeconds });
    limiters.push(rateLimiter);
    return createApp({ prisma: db.prisma, rateLimiter });
  }

  afterAll(async () => {
    for (const limiter of limiters) await limiter.close();
    const cleanup = clients[0];
    if (cleanup) {
      const keys = await cleanup.keys(`${prefix}*`);
      if (keys.length) await cleanup.del(...keys);
    }
    await Promise.all(clients.map((client) => client.quit()));
  });

  it('shares one limit between two app instances', async () => {
    const key = await keyWithPlan({ tier: 'ENTERPRISE', customRateLimit: 10 });
    const [a, b] = [await instance(), await instance()];
    for (let i = 1; i <= 10; i++) {
      const response = await graphql(i % 2 ? a : b, VIEWER, { key });
      expect(response.status, `request ${i}`).toBe(200);
      expect(response.headers.get('ratelimit-remaining'), `request ${i}`).toBe(String(10 - i));
      expect(response.body.data.viewer.rateLimit.remaining).toBe(10 - i);
    }
    for (const app of [a, b]) {
      const refused = await graphql(app, PING, { key });
      expect(refused.status).toBe(429);
      expect(refused.body.errors![0]!.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfter: expect.any(Number) });
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    // The counter lives in Redis under the prefix.
    expect(await clients[0]!.get(`${prefix}:key:${keyIds.get(key)}`)).toBe('12');
  });

  it('shares the failed-authentication count of an address', async () => {
    const [a, b] = [await instance(), await instance()];
    for (let i = 1; i <= 20; i++) expect((await request(i % 2 ? a : b, PING, { key: 'not-a-key', address: '203.0.113.99' })).status).toBe(401);
    expect((await request(a, PING, { key: 'not-a-key', address: '203.0.113.99' })).status).toBe(429);
    expect((await request(b, PING, { key: 'not-a-key', address: '203.0.113.99' })).status).toBe(429);
    expect((await request(b, PING, { key: freeKey, address: '203.0.113.99' })).status).toBe(200);
  });

  it('resets with the window', async () => {
    const key = await keyWithPlan({ tier: 'ENTERPRISE', customRateLimit: 1 });
    const [a, b] = [await instance({ windowSeconds: 2 }), await instance({ windowSeconds: 2 })];
    expect((await graphql(a, PING, { key })).status).toBe(200);
    const refused = await graphql(b, PING, { key });
    expect(refused.status).toBe(429);
    await sleep(Number(refused.headers.get('retry-after')) * 1000 + 100);
    const again = await graphql(b, PING, { key });
    expect(again.status).toBe(200);
    expect(again.headers.get('ratelimit-remaining')).toBe('0');
  });

  it('keeps separate counts under separate key prefixes (deployments, test runs)', async () => {
    const key = await keyWithPlan({ tier: 'ENTERPRISE', customRateLimit: 1 });
    const a = await instance();
    const b = await instance({ keyPrefix: `${prefix}:other` });
    expect((await graphql(a, PING, { key })).status).toBe(200);
    expect((await graphql(b, PING, { key })).status).toBe(200);
    expect((await graphql(a, PING, { key })).status).toBe(429);
  });
});

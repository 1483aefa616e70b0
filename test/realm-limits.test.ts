import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestBatch } from '../src/ingest/pipeline.js';
import { createMemoryRateLimiter } from '../src/rate-limit/limiter.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

const NOW = new Date('2026-06-11T10:00:00Z');
const LIMITS = `{ realm { limits {
  maxHourlyRangeDays maxBuckets maxPageSize defaultPageSize latenessWindowSeconds defaultArrivalDelaySeconds
  idempotencyWindowSeconds maxIngestBatch rateLimit { requestsPerWindow windowSeconds enforced }
  maxQueryCost maxQueryDepth maxQueryBreadth forecastHistoryWeeks forecastMinElapsedDays forecastMaxPeriodDays
} } }`;

let db: TestDatabase;
let app: App;
let limited: App;
let r: Awaited<ReturnType<typeof createUsageRealm>>;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => NOW });
  limited = createApp({ prisma: db.prisma, now: () => NOW, rateLimiter: createMemoryRateLimiter() });
  r = await createUsageRealm(db.prisma);
});
afterAll(() => db?.destroy());

async function limitsOf(target: App, key: string) {
  const { body } = await graphql(target, LIMITS, { key });
  expect(body.errors).toBeUndefined();
  return body.data.realm.limits;
}

describe('Realm.limits', () => {
  it('states the limits the gateway enforces', async () => {
    expect(await limitsOf(app, r.admin.key)).toEqual({
      maxHourlyRangeDays: 95,
      maxBuckets: 10_000,
      maxPageSize: 100,
      defaultPageSize: 20,
      latenessWindowSeconds: 35 * 86_400,
      defaultArrivalDelaySeconds: 7200,
      idempotencyWindowSeconds: 36 * 86_400,
      maxIngestBatch: 5000,
      rateLimit: { requestsPerWindow: 60, windowSeconds: 60, enforced: false },
      maxQueryCost: 5000,
      maxQueryDepth: 15,
      maxQueryBreadth: 500,
      forecastHistoryWeeks: 4,
      forecastMinElapsedDays: 3,
      forecastMaxPeriodDays: 366,
    });
  });

  it("the rate limit is the calling key's: its own tier or custom limit, else the realm's", async () => {
    const starter = await createKey(db.prisma, r.realm.id);
    await db.prisma.apiKey.update({ where: { id: starter.record.id }, data: { tier: 'STARTER' } });
    const custom = await createKey(db.prisma, r.realm.id);
    await db.prisma.apiKey.update({ where: { id: custom.record.id }, data: { customRateLimit: 4321 } });
    expect((await limitsOf(limited, starter.key)).rateLimit).toEqual({ requestsPerWindow: 300, windowSeconds: 60, enforced: true });
    expect((await limitsOf(limited, custom.key)).rateLimit.requestsPerWindow).toBe(4321);
    expect((await limitsOf(limited, r.admin.key)).rateLimit.requestsPerWindow).toBe(60);
  });

  it('each stated limit is the one enforced: one more is refused', async () => {
    const limits = await limitsOf(app, r.admin.key);
    const hours = (days: number) => `range: { from: "2026-01-01T00:00:00Z", to: "${new Date(Date.UTC(2026, 0, 1) + days * 86_400_000).toISOString()}" }`;
    const atLimit = await graphql(app, `{ realm { usage(${hours(limits.maxHourlyRangeDays)}, granularity: HOUR) { warnings } } }`, { key: r.admin.key });
    expect(atLimit.body.errors).toBeUndefined();
    const over = await graphql(app, `{ realm { usage(${hours(limits.maxHourlyRangeDays + 1)}, granularity: HOUR) { warnings } } }`, { key: r.admin.key });
    expect(over.body.errors?.[0]?.extensions?.reason).toBe('RANGE_TOO_LARGE');
    const page = await graphql(app, `{ realm { workspaces(first: ${limits.maxPageSize + 1}) { totalCount } } }`, { key: r.admin.key });
    expect(page.body.errors?.[0]?.extensions?.reason).toBe('PAGE_SIZE_TOO_LARGE');

    const feature = await db.prisma.feature.create({ data: { realmId: r.realm.id, key: 'fresh', name: 'fresh', service: 't', unit: 'TRANSACTION', aggregation: 'SUM' } });
    expect(feature.arrivalDelaySeconds).toBe(limits.defaultArrivalDelaySeconds);

    const target = { realmId: r.realm.id, workspaceId: null };
    const at = (secondsAgo: number) => new Date(NOW.getTime() - secondsAgo * 1000).toISOString();
    const late = await ingestBatch(
      db.prisma,
      target,
      [
        { feature: 'tx', quantity: '1', timestamp: at(limits.latenessWindowSeconds - 3600), idempotencyKey: 'in-window' },
        { feature: 'tx', quantity: '1', timestamp: at(limits.latenessWindowSeconds + 3600), idempotencyKey: 'too-late' },
      ],
      { now: NOW },
    );
    expect(late.accepted).toBe(1);
    expect(late.rejected.map((x) => x.code)).toEqual(['TOO_LATE']);
  });
});

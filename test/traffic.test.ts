import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../src/global-id.js';
import type { PrismaClient } from '../src/generated/prisma/client.js';
import { createMemoryRateLimiter } from '../src/rate-limit/limiter.js';
import { bucketIndex, bucketValue, percentiles, RELATIVE_ACCURACY } from '../src/traffic/histogram.js';
import { TrafficRecorder, type TrafficSample } from '../src/traffic/recorder.js';
import { operationNameOf, statusClass } from '../src/traffic/status.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey, createRealm } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const NOW = new Date(Date.UTC(2026, 3, 20, 12, 30, 15));
const THIS_HOUR = Date.UTC(2026, 3, 20, 12);

let db: TestDatabase;
let prisma: PrismaClient;
let recorder: TrafficRecorder;
let app: App;

beforeAll(async () => {
  db = await createTestDatabase();
  prisma = db.prisma;
  // A long interval: the tests decide when to flush.
  recorder = new TrafficRecorder(prisma, { flushIntervalMs: 3_600_000, maxBufferedSamples: 1_000_000, onError: (error) => console.error(error) });
  app = createApp({ prisma, now: () => NOW, trafficRecorder: recorder, onUnexpectedError: (error) => console.error(error) });
});

afterAll(async () => {
  await recorder?.close();
  await db?.destroy();
});

/** Deterministic pseudo-random numbers (a linear congruential generator). */
function random(seed: number) {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

/** The exact nearest-rank percentile: the value at rank ⌈q·n⌉ of the sorted values. */
function exactPercentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

const relativeError = (estimate: number, exact: number) => Math.abs(estimate - exact) / exact;

async function newKey(options: { tier?: 'FREE' | 'STARTER' | 'PROFESSIONAL' | 'ENTERPRISE'; customRateLimit?: number; realmId?: string } = {}) {
  const realmId = options.realmId ?? (await createRealm(prisma)).id;
  const key = await createKey(prisma, realmId);
  if (options.tier || options.customRateLimit) {
    await prisma.apiKey.update({ where: { id: key.record.id }, data: { tier: options.tier ?? null, customRateLimit: options.customRateLimit ?? null } });
  }
  return { ...key, realmId, gid: encodeId('ApiKey', key.record.id) };
}

const latencyFields = 'latency { avg p50 p95 p99 max }';
const trafficFields = `range { from to } granularity timeZone approximate warnings
  summary { requests errors errorRate ${latencyFields} }
  series { start end requests errors errorRate ${latencyFields} }
  endpoints { endpoint requests errors errorRate ${latencyFields} }
  errors { status count }
  rateLimit { tier limit peakMinute peakRequests peakUtilization }
  pageInfo { total limit offset hasMore }
  alerts { code severity message }
  recommendations { code message tier endpoints }`;

async function traffic(key: { key: string; gid: string }, args = '', fields = trafficFields) {
  const response = await graphql(app, `{ node(id: "${key.gid}") { ... on ApiKey { traffic${args ? `(${args})` : ''} { ${fields} } } } }`, { key: key.key });
  return { ...response, traffic: response.body.data?.node?.traffic };
}

function sample(apiKeyId: string, minute: number, latencyMs: number, overrides: Partial<TrafficSample> = {}): TrafficSample {
  return { apiKeyId, at: new Date(minute + 7_000), endpoint: 'Query', status: 'OK', latencyMs, ...overrides };
}

describe('recording requests', () => {
  it('records each authenticated request per key, minute, endpoint and status, written only at flush()', async () => {
    const key = await newKey();
    const requests = [
      { query: 'query Dashboard { viewer { scopes } }', times: 3 },
      { query: '{ viewer { scopes } }', times: 1 },
      { query: `query Bad { node(id: "${key.gid}") { ... on ApiKey { traffic(limit: 0) { summary { requests } } } } }`, times: 2 },
      { query: 'query Broken { viewer { nope } }', times: 1 },
    ];
    for (const { query, times } of requests) {
      for (let i = 0; i < times; i++) {
        const { statements } = await graphql(app, query, { key: key.key });
        // The request never waits for (nor runs) its own traffic row.
        expect(statements.filter((sql) => sql.includes('ApiTrafficMinute'))).toEqual([]);
      }
    }
    // Unauthenticated requests belong to no key.
    expect((await graphql(app, '{ viewer { scopes } }', { key: 'ugw_00000000_nope' })).status).toBe(401);
    expect(await prisma.apiTrafficMinute.count({ where: { apiKeyId: key.record.id } })).toBe(0);

    await recorder.flush();
    const rows = await prisma.apiTrafficMinute.findMany({ where: { apiKeyId: key.record.id }, orderBy: [{ endpoint: 'asc' }, { status: 'asc' }] });
    expect(rows.map((r) => ({ minute: r.minute.toISOString(), endpoint: r.endpoint, status: r.status, requests: r.requests, errors: r.errors }))).toEqual([
      { minute: '2026-04-20T12:30:00.000Z', endpoint: 'Bad', status: 'CLIENT_ERROR', requests: 2, errors: 2 },
      { minute: '2026-04-20T12:30:00.000Z', endpoint: 'Broken', status: 'CLIENT_ERROR', requests: 1, errors: 1 },
      { minute: '2026-04-20T12:30:00.000Z', endpoint: 'Dashboard', status: 'OK', requests: 3, errors: 0 },
      { minute: '2026-04-20T12:30:00.000Z', endpoint: 'anonymous', status: 'OK', requests: 1, errors: 0 },
    ]);
    for (const row of rows) {
      expect(row.latencySumMs).toBeGreaterThan(0);
      expect(row.latencyMaxMs).toBeLessThanOrEqual(row.latencySumMs);
      expect(Object.values(row.latencyHistogram as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(row.requests);
    }
  });

  it('records rate-limited requests as RATE_LIMITED', async () => {
    const key = await newKey({ customRateLimit: 2 });
    const limited = createApp({ prisma, now: () => NOW, trafficRecorder: recorder, rateLimiter: createMemoryRateLimiter() });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await graphql(limited, 'query Poll { viewer { scopes } }', { key: key.key })).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
    await recorder.flush();
    const rows = await prisma.apiTrafficMinute.findMany({ where: { apiKeyId: key.record.id }, orderBy: { status: 'asc' } });
    expect(rows.map((r) => [r.endpoint, r.status, r.requests, r.errors])).toEqual([
      ['Poll', 'OK', 2, 0],
      ['Poll', 'RATE_LIMITED', 2, 2],
    ]);
  });

  it('names the endpoint of a request refused before its document is parsed, from the lexer alone', () => {
    expect(operationNameOf('query Poll { viewer { scopes } }')).toBe('Poll');
    expect(operationNameOf('# a comment\nfragment F on Viewer { scopes } mutation Make { x }')).toBe('Make');
    expect(operationNameOf('{ viewer { query } }')).toBeUndefined();
    expect(operationNameOf('query { viewer { scopes } }')).toBeUndefined();
    expect(operationNameOf('query Broken {')).toBe('Broken');
    expect(operationNameOf('"unterminated')).toBeUndefined();
    expect(operationNameOf(undefined)).toBeUndefined();
  });

  it('classifies errors: RATE_LIMITED first, then unexpected (server), then client errors', () => {
    expect(statusClass([])).toBe('OK');
    expect(statusClass(['BAD_USER_INPUT'])).toBe('CLIENT_ERROR');
    expect(statusClass(['FORBIDDEN', 'GRAPHQL_VALIDATION_FAILED'])).toBe('CLIENT_ERROR');
    expect(statusClass(['BAD_USER_INPUT', 'INTERNAL_SERVER_ERROR'])).toBe('SERVER_ERROR');
    expect(statusClass([undefined])).toBe('SERVER_ERROR');
    expect(statusClass(['INTERNAL_SERVER_ERROR', 'RATE_LIMITED'])).toBe('RATE_LIMITED');
    expect(statusClass([], 429)).toBe('RATE_LIMITED');
    expect(statusClass([], 503)).toBe('SERVER_ERROR');
  });

  it('flushes by itself once enough samples wait, and merges repeated flushes of one minute', async () => {
    const key = await newKey();
    const eager = new TrafficRecorder(prisma, { maxBufferedSamples: 3, flushIntervalMs: 3_600_000 });
    for (const latency of [10, 20, 30]) eager.record(sample(key.record.id, THIS_HOUR, latency));
    await expect.poll(() => prisma.apiTrafficMinute.count({ where: { apiKeyId: key.record.id } }), { timeout: 5_000 }).toBe(1);
    eager.record(sample(key.record.id, THIS_HOUR, 40));
    await eager.close();
    eager.record(sample(key.record.id, THIS_HOUR, 50)); // after close: ignored
    await eager.flush();
    const row = await prisma.apiTrafficMinute.findFirstOrThrow({ where: { apiKeyId: key.record.id } });
    expect([row.requests, row.latencySumMs, row.latencyMaxMs]).toEqual([4, 100, 40]);
    expect(row.latencyHistogram).toEqual(Object.fromEntries([10, 20, 30, 40].map((l) => [String(bucketIndex(l)), 1])));
  });

  it('flushes in the timer after flushIntervalMs', async () => {
    const key = await newKey();
    const timed = new TrafficRecorder(prisma, { flushIntervalMs: 50 });
    timed.record(sample(key.record.id, THIS_HOUR, 5));
    await expect.poll(() => prisma.apiTrafficMinute.count({ where: { apiKeyId: key.record.id } }), { timeout: 5_000 }).toBe(1);
    await timed.close();
  });
});

describe('latency percentiles', () => {
  it('bucket values are within 0.5 % of every latency in the bucket', () => {
    for (let latency = 0.01; latency < 120_000; latency *= 1.0173) {
      expect(relativeError(bucketValue(bucketIndex(latency)), latency)).toBeLessThanOrEqual(RELATIVE_ACCURACY + 1e-12);
    }
    expect(percentiles(new Map(), [0.5])).toEqual([0]);
  });

  it('p50/p95/p99 of the summary, each bucket and each endpoint are within 1 % of the exact percentiles', async () => {
    const key = await newKey();
    const next = random(7);
    const latencies: { minute: number; endpoint: string; latencyMs: number }[] = [];
    for (let i = 0; i < 6000; i++) {
      const minute = THIS_HOUR - 3 * HOUR + Math.floor(next() * 180) * MINUTE;
      const endpoint = next() < 0.7 ? 'Dashboard' : 'Export';
      // Log-normal-ish with a long tail: 2 ms … several seconds, microsecond resolution.
      const base = endpoint === 'Dashboard' ? 20 : 150;
      const latencyMs = Math.round(base * Math.exp(1.2 * (next() + next() + next() - 1.5)) * (next() < 0.03 ? 20 : 1) * 1000) / 1000;
      latencies.push({ minute, endpoint, latencyMs });
    }
    // Two flushes over the same minutes: the stored histograms are merged by the upsert.
    for (const [index, l] of latencies.entries()) {
      recorder.record(sample(key.record.id, l.minute, l.latencyMs, { endpoint: l.endpoint }));
      if (index === 2999) await recorder.flush();
    }
    await recorder.flush();

    const { body, traffic: t } = await traffic(key, 'timeframe: LAST_24_HOURS, granularity: HOUR, sortBy: TIMESTAMP, order: ASC');
    expect(body.errors).toBeUndefined();
    const check = (latency: { avg: number; p50: number; p95: number; p99: number; max: number }, values: number[], label: string) => {
      for (const [q, field] of [[0.5, 'p50'], [0.95, 'p95'], [0.99, 'p99']] as const) {
        const exact = exactPercentile(values, q);
        expect(relativeError(latency[field], exact), `${label} ${field}: ${latency[field]} vs ${exact}`).toBeLessThanOrEqual(0.01);
        // The method's bound is tighter than the requirement.
        expect(relativeError(latency[field], exact)).toBeLessThanOrEqual(RELATIVE_ACCURACY + 1e-6);
      }
      expect(latency.avg).toBeCloseTo(values.reduce((a, b) => a + b, 0) / values.length, 2);
      expect(latency.max).toBeCloseTo(Math.max(...values), 3);
    };
    expect(t.summary.requests).toBe(6000);
    check(t.summary.latency, latencies.map((l) => l.latencyMs), 'summary');
    expect(t.series.map((p: { start: string }) => p.start)).toEqual([3, 2, 1].map((h) => new Date(THIS_HOUR - h * HOUR).toISOString()));
    for (const point of t.series) {
      const from = Date.parse(point.start);
      const values = latencies.filter((l) => l.minute >= from && l.minute < from + HOUR).map((l) => l.latencyMs);
      expect(point.requests).toBe(values.length);
      check(point.latency, values, `hour ${point.start}`);
    }
    expect(t.endpoints.map((e: { endpoint: string }) => e.endpoint)).toEqual(['Dashboard', 'Export']);
    for (const endpoint of t.endpoints) {
      check(endpoint.latency, latencies.filter((l) => l.endpoint === endpoint.endpoint).map((l) => l.latencyMs), endpoint.endpoint);
    }
  });
});

describe('series sorting and pagination', () => {
  // Hours (before THIS_HOUR) with [requests, errors, latency].
  const hours: [number, number, number][] = [
    [5, 0, 40],
    [1, 1, 10],
    [4, 3, 80],
    [2, 0, 20],
    [6, 2, 30],
    [3, 1, 60],
  ];
  let key: Awaited<ReturnType<typeof newKey>>;
  const start = (h: number) => new Date(THIS_HOUR - (hours.length - h) * HOUR).toISOString();

  beforeAll(async () => {
    key = await newKey();
    hours.forEach(([requests, errors, latency], h) => {
      for (let i = 0; i < requests; i++) {
        recorder.record(sample(key.record.id, Date.parse(start(h)) + i * MINUTE, latency, { status: i < errors ? 'SERVER_ERROR' : 'OK', endpoint: i % 2 ? 'A' : 'B' }));
      }
    });
    await recorder.flush();
  });

  const order = async (args: string) => {
    const { body, traffic: t } = await traffic(key, args, 'series { start requests errors latency { p95 } } pageInfo { total limit offset hasMore }');
    expect(body.errors).toBeUndefined();
    return { starts: t.series.map((p: { start: string }) => hours.findIndex((_, h) => start(h) === p.start)), pageInfo: t.pageInfo };
  };

  it('defaults to the newest bucket first', async () => {
    expect((await order('')).starts).toEqual([5, 4, 3, 2, 1, 0]);
  });

  it('sorts by requests, errors, latency and time, in both orders', async () => {
    expect((await order('sortBy: REQUESTS')).starts).toEqual([4, 0, 2, 5, 3, 1]);
    expect((await order('sortBy: REQUESTS, order: ASC')).starts).toEqual([1, 3, 5, 2, 0, 4]);
    // Ties (hours 1 and 5 both have one error; 0 and 3 none) keep time order.
    expect((await order('sortBy: ERRORS')).starts).toEqual([2, 4, 1, 5, 0, 3]);
    expect((await order('sortBy: LATENCY')).starts).toEqual([2, 5, 0, 4, 3, 1]);
    expect((await order('sortBy: TIMESTAMP, order: ASC')).starts).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('pages with limit and offset', async () => {
    expect(await order('sortBy: REQUESTS, limit: 2')).toEqual({ starts: [4, 0], pageInfo: { total: 6, limit: 2, offset: 0, hasMore: true } });
    expect(await order('sortBy: REQUESTS, limit: 2, offset: 2')).toEqual({ starts: [2, 5], pageInfo: { total: 6, limit: 2, offset: 2, hasMore: true } });
    expect(await order('sortBy: REQUESTS, limit: 2, offset: 4')).toEqual({ starts: [3, 1], pageInfo: { total: 6, limit: 2, offset: 4, hasMore: false } });
    expect(await order('limit: 1000, offset: 10')).toEqual({ starts: [], pageInfo: { total: 6, limit: 1000, offset: 10, hasMore: false } });
  });

  it('answers minute, day and range questions from the same rows', async () => {
    const minutes = await traffic(key, 'timeframe: LAST_7_DAYS, granularity: MINUTE, limit: 1000', 'series { start end requests } summary { requests errors errorRate } errors { status count }');
    expect(minutes.body.errors).toBeUndefined();
    expect(minutes.traffic.series).toHaveLength(21);
    expect(minutes.traffic.series[0].start).toBe(new Date(Date.parse(start(5)) + 2 * MINUTE).toISOString());
    expect(minutes.traffic.series[0].end).toBe(new Date(Date.parse(start(5)) + 3 * MINUTE).toISOString());
    expect(minutes.traffic.summary).toEqual({ requests: 21, errors: 7, errorRate: 7 / 21 });
    expect(minutes.traffic.errors).toEqual([{ status: 'SERVER_ERROR', count: 7 }]);
    const days = await traffic(key, 'granularity: DAY, timeZone: "America/New_York"', 'series { start end requests } range { from to }');
    expect(days.body.errors).toBeUndefined();
    // 06:00–12:00 UTC on 20 April is 02:00–08:00 in New York: one local day from local midnight, clipped at the range's end.
    expect(days.traffic.series).toEqual([{ start: '2026-04-20T04:00:00.000Z', end: days.traffic.range.to, requests: 21 }]);
    const kolkata = await traffic(key, 'timeZone: "Asia/Kolkata", order: ASC', 'series { start end requests }');
    // Local hours in India start at half past the UTC hour.
    expect(kolkata.traffic.series).toEqual(
      hours.map(([requests], h) => ({ start: new Date(Date.parse(start(h)) - 30 * MINUTE).toISOString(), end: new Date(Date.parse(start(h)) + 30 * MINUTE).toISOString(), requests })),
    );
    const range = await traffic(key, `range: { from: "${start(2)}", to: "${start(4)}" }`, 'series { requests } summary { requests } approximate');
    expect(range.traffic).toEqual({ series: [{ requests: 2 }, { requests: 4 }], summary: { requests: 6 }, approximate: false });
  });
});

describe('alerts and recommendations', () => {
  it('a FREE key near its limit with failing endpoints gets ERROR_RATE_HIGH, RATE_LIMIT_NEAR, an upgrade and the failing endpoints', async () => {
    const key = await newKey();
    const busy = THIS_HOUR - 2 * HOUR;
    for (let i = 0; i < 55; i++) {
      const status = i < 6 ? 'CLIENT_ERROR' : i < 8 ? 'RATE_LIMITED' : 'OK';
      recorder.record(sample(key.record.id, busy, 12, { endpoint: i < 8 ? 'Export' : 'Dashboard', status }));
    }
    recorder.record(sample(key.record.id, busy + 5 * MINUTE, 12, { endpoint: 'Dashboard' }));
    await recorder.flush();
    const { body, traffic: t } = await traffic(key);
    expect(body.errors).toBeUndefined();
    expect(t.rateLimit).toEqual({ tier: 'FREE', limit: 60, peakMinute: new Date(busy).toISOString(), peakRequests: 55, peakUtilization: 55 / 60 });
    expect(t.errors).toEqual([
      { status: 'CLIENT_ERROR', count: 6 },
      { status: 'RATE_LIMITED', count: 2 },
    ]);
    expect(t.alerts.map((a: { code: string; severity: string }) => [a.code, a.severity])).toEqual([
      ['ERROR_RATE_HIGH', 'WARNING'],
      ['RATE_LIMIT_NEAR', 'CRITICAL'],
    ]);
    expect(t.alerts[1].message).toContain('55 requests');
    expect(t.recommendations.map((r: { code: string; tier: string | null; endpoints: string[] }) => [r.code, r.tier, r.endpoints])).toEqual([
      ['UPGRADE_TIER', 'STARTER', []],
      ['FIX_FAILING_ENDPOINTS', null, ['Export']],
    ]);
  });

  it('a PROFESSIONAL key with a small peak is told a smaller tier fits; a healthy key gets no alert', async () => {
    const key = await newKey({ tier: 'PROFESSIONAL' });
    for (let i = 0; i < 40; i++) recorder.record(sample(key.record.id, THIS_HOUR - HOUR, 5));
    await recorder.flush();
    const { traffic: t } = await traffic(key);
    expect(t.rateLimit).toMatchObject({ tier: 'PROFESSIONAL', limit: 1000, peakRequests: 40 });
    expect(t.alerts).toEqual([]);
    expect(t.recommendations.map((r: { code: string; tier: string }) => [r.code, r.tier])).toEqual([['DOWNGRADE_TIER', 'FREE']]);
  });

  it("an ENTERPRISE key's custom limit counts, and a key used only before the range is not UNUSED", async () => {
    const key = await newKey({ tier: 'ENTERPRISE', customRateLimit: 5000 });
    for (let i = 0; i < 4500; i++) recorder.record(sample(key.record.id, THIS_HOUR - 3 * 24 * HOUR, 5));
    await recorder.flush();
    const lastDay = await traffic(key);
    expect(lastDay.traffic.summary.requests).toBe(0);
    expect(lastDay.traffic.alerts).toEqual([]);
    const week = await traffic(key, 'timeframe: LAST_7_DAYS');
    expect(week.traffic.rateLimit).toMatchObject({ tier: 'ENTERPRISE', limit: 5000, peakRequests: 4500 });
    expect(week.traffic.alerts.map((a: { code: string }) => a.code)).toEqual(['RATE_LIMIT_NEAR']);
    expect(week.traffic.recommendations.map((r: { code: string; tier: string }) => [r.code, r.tier])).toEqual([['UPGRADE_TIER', 'ENTERPRISE']]);
    expect(week.traffic.recommendations[0].message).toContain('5700 per minute');
  });
});

describe('no traffic', () => {
  it('is an empty, well-formed answer that says the key is unused', async () => {
    const key = await newKey();
    const { body, traffic: t } = await traffic(key);
    expect(body.errors).toBeUndefined();
    expect(t).toEqual({
      range: { from: new Date(THIS_HOUR + HOUR - 24 * HOUR).toISOString(), to: new Date(THIS_HOUR + HOUR).toISOString() },
      granularity: 'HOUR',
      timeZone: 'UTC',
      approximate: false,
      warnings: [],
      summary: { requests: 0, errors: 0, errorRate: 0, latency: null },
      series: [],
      endpoints: [],
      errors: [],
      rateLimit: { tier: 'FREE', limit: 60, peakMinute: null, peakRequests: 0, peakUtilization: 0 },
      pageInfo: { total: 0, limit: 100, offset: 0, hasMore: false },
      alerts: [{ code: 'UNUSED', severity: 'INFO', message: 'No request in the last 30 days.' }],
      recommendations: [{ code: 'REVOKE_UNUSED_KEY', message: expect.any(String), tier: null, endpoints: [] }],
    });
    const allTime = await traffic(key, 'timeframe: ALL_TIME, granularity: MINUTE', 'summary { requests } series { start }');
    expect(allTime.body.errors).toBeUndefined();
    expect(allTime.traffic).toEqual({ summary: { requests: 0 }, series: [] });
  });

  it('includeEndpoints/includeErrors/includeLatency: false leave those parts out', async () => {
    const key = await newKey();
    recorder.record(sample(key.record.id, THIS_HOUR, 9, { status: 'SERVER_ERROR' }));
    await recorder.flush();
    const { traffic: t } = await traffic(key, 'includeEndpoints: false, includeErrors: false, includeLatency: false', 'summary { requests errors latency { p50 } } series { requests latency { p50 } } endpoints { endpoint } errors { status }');
    expect(t).toEqual({ summary: { requests: 1, errors: 1, latency: null }, series: [{ requests: 1, latency: null }], endpoints: [], errors: [] });
  });
});

describe('batching', () => {
  it('the traffic of 2 or 20 keys costs the same statements: one traffic statement per question', async () => {
    const counts: number[] = [];
    for (const size of [2, 20]) {
      const realm = await createRealm(prisma);
      const keys = [];
      for (let i = 0; i < size; i++) keys.push(await newKey({ realmId: realm.id }));
      keys.forEach((k, i) => recorder.record(sample(k.record.id, THIS_HOUR - HOUR, 10 + i)));
      await recorder.flush();
      const { body, statements } = await graphql(
        app,
        `{ realm { apiKeys(first: ${size}) { edges { node { id
            hourly: traffic { summary { requests latency { p50 } } }
            minutes: traffic(granularity: MINUTE, sortBy: REQUESTS) { series { requests } } } } } } }`,
        { key: keys[0]!.key },
      );
      expect(body.errors).toBeUndefined();
      const latencyOf = new Map(keys.map((k, i) => [k.gid, 10 + i]));
      const nodes = body.data.realm.apiKeys.edges.map((e: { node: unknown }) => e.node);
      expect(nodes).toHaveLength(size);
      for (const node of nodes) {
        expect(node.hourly.summary.requests).toBe(1);
        expect(node.minutes.series).toEqual([{ requests: 1 }]);
        expect(relativeError(node.hourly.summary.latency.p50, latencyOf.get(node.id)!)).toBeLessThanOrEqual(RELATIVE_ACCURACY);
      }
      expect(statements.filter((sql) => sql.includes('"ApiTrafficMinute"'))).toHaveLength(2);
      counts.push(statements.length);
    }
    expect(counts[0]).toBe(counts[1]);
  });
});

describe('bad input', () => {
  let key: Awaited<ReturnType<typeof newKey>>;
  beforeAll(async () => {
    key = await newKey();
  });

  const cases: [string, string, string][] = [
    ['range and timeframe together', `timeframe: LAST_HOUR, range: { from: "2026-04-01T00:00:00Z", to: "2026-04-02T00:00:00Z" }`, 'INVALID_TIMEFRAME'],
    ['SUMMARIZED granularity', 'granularity: SUMMARIZED', 'INVALID_GRANULARITY'],
    ['from after to', 'range: { from: "2026-04-02T00:00:00Z", to: "2026-04-01T00:00:00Z" }', 'INVALID_RANGE'],
    ['an empty range', 'range: { from: "2026-04-02T00:00:00Z", to: "2026-04-02T00:00:00Z" }', 'INVALID_RANGE'],
    ['minute detail over 7 days', 'timeframe: LAST_30_DAYS, granularity: MINUTE', 'RANGE_TOO_LARGE'],
    ['hourly detail over 95 days', 'timeframe: LAST_YEAR, granularity: HOUR', 'RANGE_TOO_LARGE'],
    ['limit 0', 'limit: 0', 'INVALID_PAGINATION'],
    ['limit over 1000', 'limit: 1001', 'INVALID_PAGINATION'],
    ['a negative offset', 'offset: -1', 'INVALID_PAGINATION'],
  ];
  for (const [label, args, reason] of cases) {
    it(`${label} is BAD_USER_INPUT / ${reason}`, async () => {
      const { body } = await traffic(key, args, 'summary { requests }');
      expect(body.data?.node?.traffic ?? null).toBeNull();
      expect(body.errors).toHaveLength(1);
      expect(body.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason });
      expect(body.errors![0]!.path).toEqual(['node', 'traffic']);
    });
  }

  it('an unknown sort field, order, timeframe or granularity fails validation', async () => {
    for (const args of ['sortBy: POPULARITY', 'order: SIDEWAYS', 'timeframe: LAST_DECADE', 'granularity: SECOND']) {
      const { body } = await traffic(key, args, 'summary { requests }');
      expect(body.errors?.[0]?.extensions?.code, args).toBe('GRAPHQL_VALIDATION_FAILED');
    }
  });

  it('an unknown time zone is INVALID_TIME_ZONE (or rejected by the TimeZone scalar)', async () => {
    const { body } = await traffic(key, 'timeZone: "Mars/Olympus"', 'summary { requests }');
    expect(body.errors?.[0]?.extensions?.code).toMatch(/BAD_USER_INPUT|GRAPHQL_VALIDATION_FAILED/);
  });
});

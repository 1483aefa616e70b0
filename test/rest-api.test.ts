import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newStatementLog, recordStatements } from '../src/db/statement-recorder.js';
import type { Feature, PrismaClient } from '../src/generated/prisma/client.js';
import { encodeId } from '../src/global-id.js';
import { createMemoryRateLimiter } from '../src/rate-limit/limiter.js';
import { OPENAPI_PATH, REST_ROUTES, useRestRoutes } from '../src/rest/http.js';
import { TrafficRecorder } from '../src/traffic/recorder.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey, createRealm } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm, insertUsage, type RawUsage } from './helpers/usage-fixture.js';

// The REST routes for partner integrations against GraphQL's answers to the same questions, on a
// small realm (Europe/Berlin) with row usage in three datastreams of a workspace tree, and billable
// usage by project, app and billing tag. The clock is fixed: "yesterday" is 2026-03-09 in Berlin.

const NOW = new Date('2026-03-10T12:00:00Z');
const TZ = 'Europe/Berlin';

let db: TestDatabase;
let prisma: PrismaClient;
let recorder: TrafficRecorder;
let app: App;
let u: Awaited<ReturnType<typeof createUsageRealm>>;
let rowsTotal: Feature;
let readOnly: Awaited<ReturnType<typeof createKey>>;
const gid = encodeId;

beforeAll(async () => {
  db = await createTestDatabase();
  prisma = db.prisma;
  u = await createUsageRealm(prisma, TZ);
  rowsTotal = await prisma.feature.create({ data: { realmId: u.realm.id, key: 'rows_total', name: 'Total rows', service: 'data', unit: 'ROW', aggregation: 'SUM', arrivalDelaySeconds: 7200 } });
  readOnly = await createKey(prisma, u.realm.id, { scopes: ['usage:read'] });
  const usage: RawUsage[] = [];
  const [left, leaf, right] = u.streams;
  for (let d = 1; d <= 10; d++) {
    const hour = new Date(Date.UTC(2026, 2, d, 10));
    const streams = [
      { stream: left!, keys: [`k${d % 3}`, `k${(d + 1) % 3}`] },
      { stream: leaf!, keys: [`a${d}`] },
      { stream: right!, keys: ['r1', 'r2', 'r3'] },
    ];
    streams.forEach(({ stream, keys }, i) => {
      const dims = { workspaceId: stream.workspaceId, datastreamId: stream.id };
      usage.push({ feature: 'rows', hour, keys, ...dims }, { feature: 'rows_total', hour, quantity: String(d * 10 + i), ...dims });
    });
    u.apps.forEach((app, i) => {
      usage.push({ feature: 'tx', hour, quantity: `${d}.5`, projectId: u.project.id, appId: app.id, workspaceId: app.workspaceId, billingTag: i ? 'tag-b' : 'tag-a' });
    });
    usage.push({ feature: 'req', hour, quantity: '7' });
  }
  await insertUsage(prisma, u.realm.id, { ...Object.fromEntries(Object.entries(u.features).map(([k, f]) => [k, f.id])), rows_total: rowsTotal.id }, usage);
  recorder = new TrafficRecorder(prisma, { flushIntervalMs: 3_600_000, maxBufferedSamples: 1_000_000, onError: (error) => console.error(error) });
  app = createApp({
    prisma,
    now: () => NOW,
    trafficRecorder: recorder,
    onUnexpectedError: (error) => console.error(error),
    plugins: [useRestRoutes({ prisma, now: () => NOW, trafficRecorder: recorder, onUnexpectedError: (error) => console.error(error) })],
  });
});

afterAll(async () => {
  await recorder?.close();
  await db?.destroy();
});

interface Answer {
  status: number;
  headers: Headers;
  body: any;
  statements: string[];
}

// Every 200 answer of a REST route is checked against the 200 schema its OpenAPI document states.
// The formats the document states (date, date-time) are checked too.
const ajv = addFormats.default(new Ajv2020({ strict: false, allErrors: true }));
const responseValidators = REST_ROUTES.map((route) => ({ route, validate: ajv.compile(route.responseSchema) }));
let validatedAnswers = 0;

async function get(path: string, key: string | null = u.admin.key): Promise<Answer> {
  const log = newStatementLog();
  const response = await recordStatements(log, () => app.yoga.fetch(`http://gateway.test${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} }));
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  const pathname = new URL(path, 'http://gateway.test').pathname;
  const checker = responseValidators.find(({ route }) => route.match(pathname));
  if (checker && response.status === 200) {
    expect(checker.validate(body), `${path}: ${JSON.stringify(checker.validate.errors)}`).toBe(true);
    // No replica here: the data is as of the request (test/read-replica.test.ts: with one).
    expect(response.headers.get('data-refreshed-at')).toBe(NOW.toISOString());
    validatedAnswers++;
  }
  return { status: response.status, headers: response.headers, body, statements: log.statements };
}

/** Every page of a row-usage question. */
async function allRowPages(query: string, key = u.admin.key) {
  const first = await get(`/api/v1/usage/?${query}`, key);
  expect(first.status, JSON.stringify(first.body)).toBe(200);
  const results = [...first.body.results];
  for (let next = first.body.next; next; ) {
    const page = await get(next, key);
    results.push(...page.body.results);
    next = page.body.next;
  }
  return { ...first.body, results };
}

const localDate = (iso: string) => new Intl.DateTimeFormat('en-CA', { timeZone: TZ }).format(new Date(iso));
const sortedItems = (items: unknown[]) => items.map((i) => JSON.stringify(i)).sort();

/** The row-usage items GraphQL's `Realm.usage` gives for the same question. */
async function graphqlRowItems(key: string, from: string, to: string, granularity: 'DAY' | 'MONTH', filter: { workspaceIds?: string[]; datastreamIds?: string[] } = {}) {
  const response = await graphql(
    app,
    `query($from: DateTime!, $to: DateTime!, $g: Granularity!, $f: [ID!], $ws: [ID!], $ds: [ID!]) { viewer { realm {
      usage(range: { from: $from, to: $to }, granularity: $g, filter: { featureIds: $f, workspaceIds: $ws, datastreamIds: $ds }, groupBy: [WORKSPACE, DATASTREAM], finalizedOnly: true) {
        points { start feature { key } quantity group { workspace { id name } datastream { id } } } warnings
      } } } }`,
    { key, variables: { from, to, g: granularity, f: [gid('Feature', u.features.rows.id), gid('Feature', rowsTotal.id)], ws: filter.workspaceIds, ds: filter.datastreamIds } },
  );
  expect(response.body.errors).toBeUndefined();
  const items = new Map<string, Record<string, unknown>>();
  for (const p of response.body.data.viewer.realm.usage.points) {
    const id = `${p.start}|${p.group.workspace?.id}|${p.group.datastream?.id}`;
    const item = items.get(id) ?? { date: localDate(p.start), workspace_id: p.group.workspace?.id ?? null, workspace_name: p.group.workspace?.name ?? null, datastream_id: p.group.datastream?.id ?? null, unique_rows: '0', total_rows: '0' };
    item[p.feature.key === 'rows' ? 'unique_rows' : 'total_rows'] = p.quantity;
    items.set(id, item);
  }
  return { items: [...items.values()], warnings: response.body.data.viewer.realm.usage.warnings as string[] };
}

describe('GET /api/v1/usage/ (row usage)', () => {
  it('answers the same daily numbers as Realm.usage(granularity: DAY, finalizedOnly: true), and the numbers are the fixture\'s', async () => {
    const rest = await allRowPages('date_from=2026-03-01&date_to=2026-03-09');
    const expected = await graphqlRowItems(u.admin.key, '2026-02-28T23:00:00Z', '2026-03-09T23:00:00Z', 'DAY');
    expect(rest.results.length).toBe(27);
    expect(rest.count).toBe(27);
    expect(sortedItems(rest.results)).toEqual(sortedItems(expected.items));
    const leftStream = gid('Datastream', u.streams[0]!.id);
    const day2 = rest.results.find((r: any) => r.date === '2026-03-02' && r.datastream_id === leftStream);
    expect(day2).toEqual({ date: '2026-03-02', workspace_id: gid('Workspace', u.tree.left.id), workspace_name: 'left', datastream_id: leftStream, unique_rows: '2', total_rows: '20' });
    // Sorted by date, then workspace and datastream.
    expect(rest.results.map((r: any) => r.date)).toEqual([...rest.results.map((r: any) => r.date)].sort());
  });

  it('answers the same monthly numbers as Realm.usage(granularity: MONTH): a month\'s unique rows are not the sum of its days', async () => {
    const rest = await allRowPages('granularity=monthly&date_from=2026-02-01&date_to=2026-03-09');
    const expected = await graphqlRowItems(u.admin.key, '2026-01-31T23:00:00Z', '2026-03-09T23:00:00Z', 'MONTH');
    expect(sortedItems(rest.results)).toEqual(sortedItems(expected.items));
    const left = rest.results.find((r: any) => r.datastream_id === gid('Datastream', u.streams[0]!.id));
    expect(left).toMatchObject({ date: '2026-03-01', unique_rows: '3', total_rows: String([1, 2, 3, 4, 5, 6, 7, 8, 9].reduce((s, d) => s + d * 10, 0)) });
  });

  it('caps date_to to yesterday and says so; today is never reported', async () => {
    const rest = await allRowPages('date_from=2026-03-08&date_to=2026-03-31');
    expect(new Set(rest.results.map((r: any) => r.date))).toEqual(new Set(['2026-03-08', '2026-03-09']));
    expect(rest.warnings.join(' ')).toMatch(/date_to 2026-03-31 is capped to 2026-03-09/);
    const defaults = await allRowPages('');
    expect(new Set(defaults.results.map((r: any) => r.date)).size).toBe(9);
  });

  it('a workspace-scoped key sees its subtree only; ids outside it are ignored and named in warnings', async () => {
    const right = gid('Workspace', u.tree.right.id);
    const left = gid('Workspace', u.tree.left.id);
    const rest = await allRowPages(`date_from=2026-03-01&date_to=2026-03-09&workspace_id=${right}&workspace_id=${left}`, u.scoped.key);
    expect(new Set(rest.results.map((r: any) => r.workspace_id))).toEqual(new Set([left]));
    expect(rest.warnings.join(' ')).toContain(right);
    const all = await allRowPages('date_from=2026-03-01&date_to=2026-03-09', u.scoped.key);
    expect(new Set(all.results.map((r: any) => r.workspace_name))).toEqual(new Set(['left', 'leaf']));
    const expected = await graphqlRowItems(u.scoped.key, '2026-02-28T23:00:00Z', '2026-03-09T23:00:00Z', 'DAY');
    expect(sortedItems(all.results)).toEqual(sortedItems(expected.items));
    // An unknown datastream (well-formed) is ignored too, and the answer is empty rather than everything.
    const unknown = gid('Datastream', '00000000-0000-4000-8000-000000000001');
    const none = await allRowPages(`datastream_id=${unknown}`);
    expect(none.results).toEqual([]);
    expect(none.warnings.join(' ')).toContain(unknown);
  });

  it('pages with page and page_size (≤ 100), with next and previous links', async () => {
    const all = await allRowPages('date_from=2026-03-01&date_to=2026-03-09');
    const first = await get('/api/v1/usage/?date_from=2026-03-01&date_to=2026-03-09&page_size=10');
    expect(first.body).toMatchObject({ count: 27, previous: null, next: '/api/v1/usage/?date_from=2026-03-01&date_to=2026-03-09&page_size=10&page=2' });
    expect(first.body.results).toEqual(all.results.slice(0, 10));
    const third = await get('/api/v1/usage/?date_from=2026-03-01&date_to=2026-03-09&page_size=10&page=3');
    expect(third.body.results).toEqual(all.results.slice(20));
    expect(third.body.next).toBeNull();
    expect(third.body.previous).toBe('/api/v1/usage/?date_from=2026-03-01&date_to=2026-03-09&page_size=10&page=2');
    const beyond = await get('/api/v1/usage/?date_from=2026-03-01&date_to=2026-03-09&page_size=10&page=9');
    expect(beyond.body).toMatchObject({ count: 27, results: [], next: null });
  });

  it('reads a fixed number of statements, whatever the number of items (the filter ids one more)', async () => {
    const few = await get('/api/v1/usage/?date_from=2026-03-09&date_to=2026-03-09');
    const many = await get('/api/v1/usage/?date_from=2026-03-01&date_to=2026-03-09');
    expect(few.body.results.length).toBeLessThan(many.body.results.length);
    expect(many.statements.length).toBe(few.statements.length);
    expect(many.statements.length).toMatchInlineSnapshot(`4`);
    const realm = gid('Realm', u.realm.id);
    const summarized = await get(`/api/v1/billable-usage?realmId=${realm}&startDate=2026-03-01T00:00:00&endDate=2026-03-11T00:00:00`);
    const hourly = await get(`/api/v1/billable-usage?realmId=${realm}&startDate=2026-03-01T00:00:00&endDate=2026-03-11T00:00:00&detailLevel=hour&appId=${gid('App', u.apps[0]!.id)}`);
    expect(hourly.body.items.length).toBeGreaterThan(summarized.body.items.length);
    expect([summarized.statements.length, hourly.statements.length]).toMatchInlineSnapshot(`
      [
        4,
        5,
      ]
    `);
    expect((await get(`/api/v1/keys/${gid('ApiKey', u.admin.record.id)}/usage?timeframe=7d`)).statements.length).toMatchInlineSnapshot(`4`);
  });
});

/** The billable items GraphQL gives for the same question (UTC buckets, grouped by project, app, billing tag). */
async function graphqlBillable(key: string, from: string, to: string, granularity: string, filter: Record<string, unknown> = {}) {
  const response = await graphql(
    app,
    `query($from: DateTime!, $to: DateTime!, $g: Granularity!, $filter: UsageFilter) { viewer { realm {
      usage(range: { from: $from, to: $to }, granularity: $g, timeZone: "UTC", filter: $filter, groupBy: [PROJECT, APP, BILLING_TAG]) {
        points { start end feature { id key name service unit } quantity group { project { id } app { id } billingTag } } warnings
      } } } }`,
    { key, variables: { from, to, g: granularity, filter } },
  );
  expect(response.body.errors).toBeUndefined();
  return response.body.data.viewer.realm.usage.points.map((p: any) => ({
    startTime: new Date(p.start).toISOString(),
    endTime: new Date(p.end).toISOString(),
    featureId: p.feature.id,
    featureKey: p.feature.key,
    featureName: p.feature.name,
    serviceName: p.feature.service,
    unitOfMeasure: p.feature.unit,
    value: p.quantity,
    projectId: p.group.project?.id ?? null,
    appId: p.group.app?.id ?? null,
    billingTag: p.group.billingTag,
  }));
}

describe('GET /api/v1/billable-usage (HERE-style)', () => {
  const realmParam = () => `realmId=${gid('Realm', u.realm.id)}`;

  it('answers the same numbers as Realm.usage at each detail level, with filters', async () => {
    for (const [detailLevel, granularity] of [['summarized', 'SUMMARIZED'], ['day', 'DAY'], ['hour', 'HOUR'], ['month', 'MONTH']] as const) {
      const rest = await get(`/api/v1/billable-usage?${realmParam()}&startDate=2026-03-01T00:00:00&endDate=2026-03-11T00:00:00&detailLevel=${detailLevel}`);
      expect(rest.status, JSON.stringify(rest.body)).toBe(200);
      const expected = await graphqlBillable(u.admin.key, '2026-03-01T00:00:00Z', '2026-03-11T00:00:00Z', granularity);
      expect(rest.body.items.length).toBeGreaterThan(0);
      expect(rest.body.total).toBe(rest.body.items.length);
      expect(sortedItems(rest.body.items)).toEqual(sortedItems(expected));
    }
    const app0 = gid('App', u.apps[0]!.id);
    const tx = gid('Feature', u.features.tx.id);
    const filtered = await get(`/api/v1/billable-usage?${realmParam()}&startDate=2026-03-01T00:00:00&endDate=2026-03-11T00:00:00&appId=${app0}&featureId=${tx}&billingTag=tag-a&projectId=${gid('Project', u.project.id)}`);
    const expected = await graphqlBillable(u.admin.key, '2026-03-01T00:00:00Z', '2026-03-11T00:00:00Z', 'SUMMARIZED', {
      appIds: [app0],
      featureIds: [tx],
      billingTags: ['tag-a'],
      projectIds: [gid('Project', u.project.id)],
    });
    expect(filtered.body.items).toEqual(expected);
    expect(filtered.body.items).toEqual([expect.objectContaining({ featureKey: 'tx', appId: app0, billingTag: 'tag-a', value: String([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].reduce((s, d) => s + d + 0.5, 0)) })]);
  });

  it('a workspace-scoped key gets its subtree\'s usage; an app outside it is ignored, a realm not its own answers nothing', async () => {
    const range = 'startDate=2026-03-01T00:00:00&endDate=2026-03-11T00:00:00';
    const rest = await get(`/api/v1/billable-usage?${realmParam()}&${range}`, u.scoped.key);
    expect(sortedItems(rest.body.items)).toEqual(sortedItems(await graphqlBillable(u.scoped.key, '2026-03-01T00:00:00Z', '2026-03-11T00:00:00Z', 'SUMMARIZED')));
    expect(rest.body.items.filter((i: any) => i.featureKey === 'tx').map((i: any) => i.appId)).toEqual([gid('App', u.apps[0]!.id)]);
    const rightApp = gid('App', u.apps[1]!.id);
    const outside = await get(`/api/v1/billable-usage?${realmParam()}&${range}&appId=${rightApp}`, u.scoped.key);
    expect(outside.body.items).toEqual([]);
    expect(outside.body.warnings.join(' ')).toContain(rightApp);
    expect(outside.body.warnings.join(' ')).toMatch(/`appId` matches nothing/);
    const other = await createRealm(prisma);
    const foreign = await get(`/api/v1/billable-usage?realmId=${gid('Realm', other.id)}&${range}`);
    expect(foreign.status).toBe(200);
    expect(foreign.body).toMatchObject({ realmId: null, total: 0, items: [] });
    expect(foreign.body.warnings[0]).toMatch(/Ignored realmId/);
  });
});

const trafficFields = `range { from to } timeZone warnings
  summary { requests errors errorRate latency { avg p50 p95 p99 max } }
  series { start end requests errors errorRate latency { avg p50 p95 p99 max } }
  endpoints { endpoint requests errors errorRate latency { avg p50 p95 p99 max } }
  errors { status count }
  rateLimit { tier limit peakMinute peakRequests peakUtilization }
  pageInfo { total limit offset hasMore }
  alerts { code severity message } recommendations { code message tier endpoints }`;

describe('GET /api/v1/keys/usage and /api/v1/keys/{id}/usage (API traffic)', () => {
  it('records the REST routes as the key\'s traffic and answers the same numbers as ApiKey.traffic', async () => {
    await recorder.flush();
    const readOnlyId = gid('ApiKey', readOnly.record.id);
    expect((await get('/api/v1/usage/?date_to=2026-03-09', readOnly.key)).status).toBe(200);
    expect((await get('/api/v1/usage/', readOnly.key)).status).toBe(200);
    expect((await get('/api/v1/usage/?granularity=weekly', readOnly.key)).status).toBe(400);
    await recorder.flush();
    for (const [query, args] of [
      ['', 'timeframe: LAST_24_HOURS, granularity: HOUR'],
      ['timeframe=7d&granularity=day&sort=requests&order=asc&limit=1&offset=0', 'timeframe: LAST_7_DAYS, granularity: DAY, sortBy: REQUESTS, order: ASC, limit: 1'],
      ['timeframe=1h&granularity=minute&include_endpoints=false&include_errors=false&include_latency=false', 'timeframe: LAST_HOUR, granularity: MINUTE, includeEndpoints: false, includeErrors: false, includeLatency: false'],
    ]) {
      const expected = await graphql(app, `{ node(id: "${readOnlyId}") { ... on ApiKey { traffic(${args}) { ${trafficFields} } } } }`, { key: u.admin.key });
      expect(expected.body.errors).toBeUndefined();
      const t = expected.body.data.node.traffic;
      const rest = await get(`/api/v1/keys/${readOnlyId}/usage?${query}`);
      expect(rest.status, JSON.stringify(rest.body)).toBe(200);
      const counts = (c: any) => ({ requests: c.requests, errors: c.errors, error_rate: c.errorRate, latency: c.latency });
      expect(rest.body).toEqual({
        key_id: readOnlyId,
        timeframe: expect.any(String),
        granularity: expect.any(String),
        range: { from: new Date(t.range.from).toISOString(), to: new Date(t.range.to).toISOString() },
        time_zone: t.timeZone,
        summary: counts(t.summary),
        series: t.series.map((p: any) => ({ start: new Date(p.start).toISOString(), end: new Date(p.end).toISOString(), ...counts(p) })),
        endpoints: t.endpoints.map((e: any) => ({ endpoint: e.endpoint, ...counts(e) })),
        errors: t.errors,
        rate_limit: {
          tier: t.rateLimit.tier,
          limit: t.rateLimit.limit,
          peak_minute: t.rateLimit.peakMinute && new Date(t.rateLimit.peakMinute).toISOString(),
          peak_requests: t.rateLimit.peakRequests,
          peak_utilization: t.rateLimit.peakUtilization,
        },
        alerts: t.alerts,
        recommendations: t.recommendations,
        pagination: { total: t.pageInfo.total, limit: t.pageInfo.limit, offset: t.pageInfo.offset, has_more: t.pageInfo.hasMore },
        warnings: t.warnings,
      });
    }
    const day = await get(`/api/v1/keys/${readOnlyId}/usage`);
    expect(day.body.summary).toMatchObject({ requests: 3, errors: 1 });
    expect(day.body.endpoints).toEqual([expect.objectContaining({ endpoint: 'GET /api/v1/usage/', requests: 3, errors: 1 })]);
    expect(day.body.errors).toEqual([{ status: 'CLIENT_ERROR', count: 1 }]);
    // The calling key's own traffic, without an id.
    const own = await get('/api/v1/keys/usage', readOnly.key);
    expect(own.body).toMatchObject({ key_id: readOnlyId, summary: { requests: 3, errors: 1 } });
  });

  it('a key outside the caller\'s realm or subtree is not found', async () => {
    const other = await createKey(prisma, (await createRealm(prisma)).id);
    const foreign = await get(`/api/v1/keys/${gid('ApiKey', other.record.id)}/usage`);
    expect(foreign.status).toBe(404);
    expect(foreign.body.errors[0].extensions.code).toBe('NOT_FOUND');
    const realmWide = await get(`/api/v1/keys/${gid('ApiKey', u.admin.record.id)}/usage`, u.scoped.key);
    expect(realmWide.status).toBe(404);
    expect((await get(`/api/v1/keys/${gid('ApiKey', u.scoped.record.id)}/usage`, u.scoped.key)).status).toBe(200);
  });
});

describe('portal sessions', () => {
  it('a session sees its subtree and features only, and /api/v1/keys/usage is not its creator\'s traffic', async () => {
    const created = await graphql(
      app,
      `mutation($ws: ID!, $f: ID!) { createPortalSession(input: { workspaceId: $ws, featureIds: [$f], sections: ["explorer"], expiresInSeconds: 3600 }) { token userErrors { code message } } }`,
      { key: u.admin.key, variables: { ws: gid('Workspace', u.tree.left.id), f: gid('Feature', u.features.rows.id) } },
    );
    const token = created.body.data?.createPortalSession?.token;
    expect(token, JSON.stringify(created.body)).toEqual(expect.any(String));
    // Created at the app's fixed clock; keys (and sessions) are checked against the real one.
    await prisma.portalSession.updateMany({ where: { realmId: u.realm.id }, data: { expiresAt: new Date(Date.now() + 3_600_000) } });
    const rows = await allRowPages('date_from=2026-03-01&date_to=2026-03-09', token);
    expect(new Set(rows.results.map((r: any) => r.workspace_name))).toEqual(new Set(['left', 'leaf']));
    // Its features: unique rows only; total rows is not one of them.
    expect(new Set(rows.results.map((r: any) => r.total_rows))).toEqual(new Set(['0']));
    const billable = await get(`/api/v1/billable-usage?realmId=${gid('Realm', u.realm.id)}&startDate=2026-03-01T00:00:00&endDate=2026-03-11T00:00:00`, token);
    expect(billable.body.items.map((i: any) => i.featureKey)).toEqual(['rows']);
    expect((await get('/api/v1/keys/usage', token)).status).toBe(404);
    expect((await get(`/api/v1/keys/${gid('ApiKey', u.admin.record.id)}/usage`, token)).status).toBe(404);
  });
});

describe('errors', () => {
  const realm = () => gid('Realm', u.realm.id);
  const range = 'startDate=2026-03-01T00:00:00&endDate=2026-03-11T00:00:00';
  const cases: [string, string, string | RegExp, string | null][] = [
    ['/api/v1/usage/?granularity=weekly', 'INVALID_GRANULARITY', /^Invalid granularity "weekly"/, 'granularity'],
    ['/api/v1/usage/?date_from=2026-13-01', 'INVALID_DATE', /YYYY-MM-DD/, 'date_from'],
    ['/api/v1/usage/?date_to=yesterday', 'INVALID_DATE', /YYYY-MM-DD/, 'date_to'],
    ['/api/v1/usage/?date_from=2026-03-05&date_to=2026-03-01', 'INVALID_RANGE', /after date_to/, 'date_from'],
    ['/api/v1/usage/?date_from=2026-03-10', 'INVALID_RANGE', /^date_from 2026-03-10 is after yesterday \(2026-03-09\)/, 'date_from'],
    ['/api/v1/usage/?page=0', 'INVALID_PAGINATION', /page/, 'page'],
    ['/api/v1/usage/?page_size=101', 'INVALID_PAGINATION', /1 to 100/, 'page_size'],
    ['/api/v1/usage/?page_size=ten', 'INVALID_PAGINATION', /page_size/, 'page_size'],
    ['/api/v1/usage/?workspace_id=nope', 'INVALID_ID', /not a valid ID/, 'workspace_id'],
    [`/api/v1/usage/?datastream_id=${gid('Workspace', '00000000-0000-4000-8000-000000000001')}`, 'INVALID_ID', /Datastream ids/, 'datastream_id'],
    ['/api/v1/usage/?granularity=daily&granularity=monthly', 'REPEATED_PARAMETER', /more than once/, 'granularity'],
    ['/api/v1/usage/?dateFrom=2026-03-01', 'UNKNOWN_PARAMETER', /Unknown parameter "dateFrom"/, 'dateFrom'],
    [`/api/v1/billable-usage?${range}`, 'MISSING_PARAMETER', /realmId/, 'realmId'],
    ['/api/v1/billable-usage?realmId=x&' + range, 'INVALID_ID', /not a valid ID/, 'realmId'],
    [`/api/v1/billable-usage?realmId=REALM&endDate=2026-03-11T00:00:00`, 'MISSING_PARAMETER', /startDate/, 'startDate'],
    [`/api/v1/billable-usage?realmId=REALM&startDate=2026-03-01&endDate=2026-03-11T00:00:00`, 'INVALID_DATE', /yyyy-MM-dd'T'HH:mm:ss/, 'startDate'],
    [`/api/v1/billable-usage?realmId=REALM&startDate=2026-02-30T00:00:00&endDate=2026-03-11T00:00:00`, 'INVALID_DATE', /2026-02-30/, 'startDate'],
    [`/api/v1/billable-usage?realmId=REALM&startDate=2026-03-01T00:00:00&endDate=2026-03-01T00:00:00`, 'INVALID_RANGE', /before/, 'endDate'],
    [`/api/v1/billable-usage?realmId=REALM&startDate=2025-11-01T00:00:00&endDate=2026-03-01T00:00:00`, 'RANGE_TOO_LARGE', /95 days/, 'endDate'],
    [`/api/v1/billable-usage?realmId=REALM&${range}&detailLevel=week`, 'INVALID_GRANULARITY', /^Invalid detailLevel "week"/, 'detailLevel'],
    [`/api/v1/billable-usage?realmId=REALM&${range}&appId=${gid('Project', '00000000-0000-4000-8000-000000000001')}`, 'INVALID_ID', /App ids/, 'appId'],
    ['/api/v1/keys/usage?timeframe=2h', 'INVALID_TIMEFRAME', /^Invalid timeframe "2h": use one of 1h, 24h, 7d, 30d, 90d, 1y, all\.$/, 'timeframe'],
    ['/api/v1/keys/usage?granularity=year', 'INVALID_GRANULARITY', /^Invalid granularity "year": use one of minute, hour, day, week, month\.$/, 'granularity'],
    ['/api/v1/keys/usage?limit=1001', 'INVALID_PAGINATION', /1 to 1000/, 'limit'],
    ['/api/v1/keys/usage?limit=0', 'INVALID_PAGINATION', /1 to 1000/, 'limit'],
    ['/api/v1/keys/usage?offset=-1', 'INVALID_PAGINATION', /offset/, 'offset'],
    ['/api/v1/keys/usage?include_latency=yes', 'INVALID_PARAMETER', /true or false/, 'include_latency'],
    ['/api/v1/keys/usage?sort=speed', 'INVALID_PARAMETER', /^Invalid sort/, 'sort'],
    ['/api/v1/keys/usage?order=up', 'INVALID_PARAMETER', /^Invalid order/, 'order'],
    ['/api/v1/keys/usage?timeframe=30d&granularity=minute', 'RANGE_TOO_LARGE', /7 days/, null],
    ['/api/v1/keys/nope/usage', 'INVALID_ID', /not a valid ID/, 'id'],
    ['/api/v1/keys/usage?key_id=x', 'UNKNOWN_PARAMETER', /key_id/, 'key_id'],
  ];
  it.each(cases)('%s → 400 BAD_USER_INPUT %s', async (path, reason, message, parameter) => {
    const answer = await get(path.replace('REALM', realm()));
    expect(answer.status).toBe(400);
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    const [error] = answer.body.errors;
    expect(error.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason });
    expect(error.message).toMatch(message);
    if (parameter) expect(error.extensions.parameter).toBe(parameter);
    expect(answer.body.extensions.requestId).toEqual(expect.any(String));
  });

  it('hostile input (a 1 MB id, a 1 MB parameter name, NUL, non-UTF-8 escapes) is a coded 400 that does not echo it whole', async () => {
    const huge = 'A'.repeat(1_000_000);
    for (const path of [
      `/api/v1/usage/?workspace_id=${huge}`,
      `/api/v1/usage/?${huge}=1`,
      `/api/v1/keys/${huge}/usage`,
      '/api/v1/usage/?granularity=%00',
      '/api/v1/keys/usage?timeframe=%FF%FE',
      '/api/v1/keys/%E0%A4%A/usage',
      `/api/v1/billable-usage?realmId=${realm()}&startDate=%00&endDate=2026-03-11T00:00:00`,
    ]) {
      const answer = await get(path);
      expect(answer.status, path.slice(0, 80)).toBe(400);
      expect(answer.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
      expect(JSON.stringify(answer.body).length).toBeLessThan(2_000);
    }
  });

  it('401 without a valid key, 403 without usage:read, 403 REALM_SUSPENDED for a suspended realm, 405 for another method', async () => {
    for (const route of ['/api/v1/usage/', `/api/v1/billable-usage?realmId=${realm()}&${range}`, '/api/v1/keys/usage']) {
      const none = await get(route, null);
      expect(none.status).toBe(401);
      expect(none.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
      expect(none.headers.get('www-authenticate')).toBe('Bearer');
      const writer = await createKey(prisma, u.realm.id, { scopes: ['usage:write'] });
      const forbidden = await get(route, writer.key);
      expect(forbidden.status).toBe(403);
      expect(forbidden.body.errors[0].extensions).toMatchObject({ code: 'FORBIDDEN', requiredScope: 'usage:read' });
    }
    const suspendedRealm = await createRealm(prisma);
    const suspended = await createKey(prisma, suspendedRealm.id);
    await prisma.realm.update({ where: { id: suspendedRealm.id }, data: { suspendedAt: NOW } });
    const refused = await get('/api/v1/usage/', suspended.key);
    expect(refused.status).toBe(403);
    expect(refused.body.errors[0].extensions.code).toBe('REALM_SUSPENDED');
    const post = await app.fetch('http://gateway.test/api/v1/usage/', { method: 'POST', headers: { authorization: `Bearer ${u.admin.key}` } });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('counts against the key\'s rate limit, with RateLimit headers and 429 past it', async () => {
    const limited = createApp({ prisma, now: () => NOW, rateLimiter: createMemoryRateLimiter(), plugins: [useRestRoutes({ prisma, now: () => NOW })] });
    const key = await createKey(prisma, u.realm.id, { scopes: ['usage:read'] });
    await prisma.apiKey.update({ where: { id: key.record.id }, data: { customRateLimit: 2 } });
    const call = () => limited.fetch('http://gateway.test/api/v1/keys/usage', { headers: { authorization: `Bearer ${key.key}` } });
    const first = await call();
    expect(first.status).toBe(200);
    expect(first.headers.get('ratelimit-limit')).toBe('2');
    expect(first.headers.get('ratelimit-remaining')).toBe('1');
    await call();
    const third = await call();
    expect(third.status).toBe(429);
    expect((await third.json()).errors[0].extensions.code).toBe('RATE_LIMITED');
    expect(third.headers.get('retry-after')).toMatch(/^\d+$/);
  });
});

describe('GET /openapi.json', () => {
  let document: any;
  beforeAll(async () => {
    const answer = await get(OPENAPI_PATH, null);
    expect(answer.status).toBe(200);
    document = answer.body;
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(document);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('names every route the plugin answers, and nothing else', () => {
    expect(Object.keys(document.paths).sort()).toEqual([...REST_ROUTES.map((r) => r.path), OPENAPI_PATH].sort());
    for (const route of REST_ROUTES) expect(Object.keys(document.paths[route.path])).toEqual(['get']);
  });

  it('every documented parameter is one the route takes, and an undocumented one is refused', async () => {
    const paths = (path: string) => path.replace('{id}', gid('ApiKey', u.admin.record.id));
    for (const route of REST_ROUTES) {
      const documented = (document.paths[route.path].get.parameters as { name: string; in: string }[]).filter((p) => p.in === 'query');
      expect(documented.length).toBeGreaterThan(0);
      for (const parameter of documented) {
        const answer = await get(`${paths(route.path)}?${parameter.name}=%01`);
        // A junk value: refused as that parameter's value (or answered), never as an unknown parameter.
        expect(answer.body.errors?.[0]?.extensions?.reason, `${route.path} ${parameter.name}`).not.toBe('UNKNOWN_PARAMETER');
      }
      const unknown = await get(`${paths(route.path)}?undocumented=1`);
      expect(unknown.body.errors[0].extensions).toMatchObject({ reason: 'UNKNOWN_PARAMETER', parameter: 'undocumented' });
    }
  });

  it('says that ids are GraphQL global ids', () => {
    expect(document.info.description).toMatch(/GraphQL global id/);
  });

  it('the 200 answers of this file matched the schemas the document states', () => {
    expect(validatedAnswers).toBeGreaterThan(20);
    expect(document.paths['/api/v1/usage/'].get.responses['200'].content['application/json'].schema).toEqual(REST_ROUTES[0]!.responseSchema);
    expect(document.paths['/api/v1/usage/'].get.responses['200'].headers['Data-Refreshed-At'].schema).toEqual({ type: 'string', format: 'date-time' });
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../src/global-id.js';
import { useIngestEndpoint } from '../src/ingest/http.js';
import { createMemoryRateLimiter } from '../src/rate-limit/limiter.js';
import { TrafficRecorder } from '../src/traffic/recorder.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

const NOW = new Date('2026-06-15T12:00:00Z');
/** 2026-06-15T11:00:00Z in Unix seconds. */
const ELEVEN_UTC = Date.parse('2026-06-15T11:00:00Z') / 1000;

let db: TestDatabase;
let app: App;
let recorder: TrafficRecorder;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
let counter = 0;
const key = () => `s-${++counter}`;

beforeAll(async () => {
  db = await createTestDatabase();
  realm = await createUsageRealm(db.prisma, 'UTC');
  recorder = new TrafficRecorder(db.prisma, { flushIntervalMs: 3_600_000, maxBufferedSamples: 1_000_000 });
  app = createApp({ prisma: db.prisma, now: () => NOW, plugins: [useIngestEndpoint({ prisma: db.prisma, now: () => NOW, trafficRecorder: recorder })] });
});
afterAll(async () => {
  await recorder?.close();
  await db?.destroy();
});

/** Raw NDJSON lines (written by hand, so numbers keep the digits they were sent with). */
async function post(lines: string[], target = app, apiKey = realm.admin.key) {
  const response = await target.fetch('http://gateway.test/ingest', {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/x-ndjson' },
    body: lines.join('\n') + '\n',
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as any };
}

const line = (fields: string) => `{"idempotencyKey":"${key()}","feature":"tx",${fields}}`;

async function stored(idempotencyKey: string) {
  return db.prisma.usageEvent.findFirst({ where: { realmId: realm.realm.id, idempotencyKey } });
}

describe('POST /ingest: Stripe-style values', () => {
  it('accepts a JSON integer quantity up to 2^53 − 1 and a Unix timestamp in seconds, exactly', async () => {
    const lines = [line(`"timestamp":${ELEVEN_UTC},"quantity":12`), line(`"timestamp":"2026-06-15T11:00:00Z","quantity":9007199254740991`)];
    const { status, body } = await post(lines);
    expect(status).toBe(200);
    expect(body).toMatchObject({ accepted: 2, rejected: 0, errors: [] });
    const [first, second] = await Promise.all(lines.map((l) => stored(JSON.parse(l).idempotencyKey)));
    expect(first!.occurredAt.toISOString()).toBe('2026-06-15T11:00:00.000Z');
    expect(first!.quantity.toFixed()).toBe('12');
    expect(second!.quantity.toFixed()).toBe('9007199254740991');
  });

  it('refuses ambiguous numbers per line, saying what to send, and keeps the good lines beside them', async () => {
    const { body } = await post([
      line(`"timestamp":${ELEVEN_UTC},"quantity":1.5`),
      line(`"timestamp":${ELEVEN_UTC},"quantity":9007199254740993`),
      line(`"timestamp":${ELEVEN_UTC * 1000},"quantity":"1"`),
      line(`"timestamp":${ELEVEN_UTC}.5,"quantity":"1"`),
      line(`"timestamp":"${ELEVEN_UTC}","quantity":"1"`),
      line(`"timestamp":${ELEVEN_UTC},"quantity":-3`),
      line(`"timestamp":${ELEVEN_UTC},"quantity":"2.5"`),
    ]);
    expect(body.accepted).toBe(1);
    expect(body.errors.map((e: { line: number; code: string }) => [e.line, e.code])).toEqual([
      [1, 'INVALID_QUANTITY'],
      [2, 'INVALID_QUANTITY'],
      [3, 'INVALID_TIMESTAMP'],
      [4, 'INVALID_TIMESTAMP'],
      [5, 'INVALID_TIMESTAMP'],
      [6, 'INVALID_QUANTITY'],
    ]);
    expect(body.errors[0].message).toContain('send it as a string');
    expect(body.errors[1].message).toContain('2^53 − 1');
    expect(body.errors[1].message).toContain('send it as a string');
    expect(body.errors[2].message).toContain('looks like milliseconds');
    expect(body.errors[3].message).toContain('whole seconds');
  });

  it('refuses an unknown field with UNKNOWN_FIELD (naming the field meant), per line', async () => {
    const project = encodeId('Project', realm.project.id);
    const bad = line(`"timestamp":"2026-06-15T11:00:00Z","quantity":"1","projectID":"${project}"`);
    const good = line(`"timestamp":"2026-06-15T11:00:00Z","quantity":"1","projectId":"${project}"`);
    const { body } = await post([bad, good]);
    expect(body).toMatchObject({ accepted: 1, rejected: 1 });
    expect(body.errors).toEqual([{ line: 1, code: 'UNKNOWN_FIELD', message: expect.stringContaining('`projectID` (did you mean `projectId`?)') }]);
    expect(await stored(JSON.parse(bad).idempotencyKey)).toBeNull();
    expect((await stored(JSON.parse(good).idempotencyKey))!.projectId).toBe(realm.project.id);
  });
});

describe('ingestUsage: the same values', () => {
  const INGEST = `mutation ($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted duplicates rejected { index code message } } }`;

  it('accepts integer quantities and Unix seconds in variables and literals', async () => {
    const [a, b] = [key(), key()];
    const variables = await graphql(app, INGEST, { key: realm.admin.key, variables: { events: [{ idempotencyKey: a, feature: 'tx', timestamp: ELEVEN_UTC, quantity: 7 }] } });
    expect(variables.body.errors).toBeUndefined();
    expect(variables.body.data).toEqual({ ingestUsage: { accepted: 1, duplicates: 0, rejected: [] } });
    const literal = await graphql(app, `mutation { ingestUsage(events: [{ idempotencyKey: "${b}", feature: "tx", timestamp: ${ELEVEN_UTC}, quantity: 9007199254740991 }]) { accepted rejected { code } } }`, {
      key: realm.admin.key,
    });
    expect(literal.body.errors).toBeUndefined();
    expect(literal.body.data).toEqual({ ingestUsage: { accepted: 1, rejected: [] } });
    expect((await stored(a))!.occurredAt.toISOString()).toBe('2026-06-15T11:00:00.000Z');
    expect((await stored(b))!.quantity.toFixed()).toBe('9007199254740991');
  });

  it('rejects fractions, unsafe integers and unknown fields per event; the good events are counted', async () => {
    const good = key();
    const { body } = await graphql(app, INGEST, {
      key: realm.admin.key,
      variables: {
        events: [
          { idempotencyKey: key(), feature: 'tx', timestamp: ELEVEN_UTC, quantity: 1.5 },
          { idempotencyKey: key(), feature: 'tx', timestamp: ELEVEN_UTC, quantity: '1', projectID: encodeId('Project', realm.project.id) },
          { idempotencyKey: good, feature: 'tx', timestamp: '2026-06-15T11:00:00Z', quantity: '1' },
          { idempotencyKey: key(), feature: 'tx', timestamp: ELEVEN_UTC * 1000, quantity: '1' },
          { idempotencyKey: key(), feature: 'tx', timestamp: ELEVEN_UTC, quantity: true },
        ],
      },
    });
    expect(body.errors).toBeUndefined();
    expect(body.data.ingestUsage.accepted).toBe(1);
    expect(body.data.ingestUsage.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([
      [0, 'INVALID_QUANTITY'],
      [1, 'UNKNOWN_FIELD'],
      [3, 'INVALID_TIMESTAMP'],
      [4, 'INVALID_QUANTITY'],
    ]);
    expect(body.data.ingestUsage.rejected[0].message).toContain('send it as a string');
    expect(body.data.ingestUsage.rejected[1].message).toContain('did you mean `projectId`?');
    expect(await stored(good)).not.toBeNull();
  });

  it('an unknown field in an inline literal fails the document (GraphQL validation), naming the field', async () => {
    const { body } = await graphql(app, `mutation { ingestUsage(events: [{ idempotencyKey: "x", feature: "tx", timestamp: 1, projectID: "p" }]) { accepted } }`, { key: realm.admin.key });
    expect(body.errors?.[0]?.message).toContain('projectID');
  });
});

describe('POST /ingest as API traffic', () => {
  it("counts against the key's rate limit (429 past it, nothing stored) and is recorded as the key's traffic", async () => {
    const limited = await createKey(db.prisma, realm.realm.id);
    await db.prisma.apiKey.update({ where: { id: limited.record.id }, data: { tier: 'ENTERPRISE', customRateLimit: 2 } });
    const limitedApp = createApp({
      prisma: db.prisma,
      now: () => NOW,
      rateLimiter: createMemoryRateLimiter(),
      plugins: [useIngestEndpoint({ prisma: db.prisma, now: () => NOW, trafficRecorder: recorder })],
    });
    const lines = [0, 1, 2].map(() => line(`"timestamp":"2026-06-15T11:00:00Z","quantity":"1"`));
    const answers = [];
    for (const l of lines) answers.push(await post([l], limitedApp, limited.key));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 429]);
    expect(answers[0]!.headers.get('ratelimit-limit')).toBe('2');
    expect(answers[2]!.body.code ?? answers[2]!.body.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect(await stored(JSON.parse(lines[2]!).idempotencyKey)).toBeNull();
    // A GraphQL request of the same key shares the limit.
    expect((await graphql(limitedApp, '{ viewer { scopes } }', { key: limited.key })).status).toBe(429);

    await recorder.flush();
    const rows = await db.prisma.apiTrafficMinute.findMany({ where: { apiKeyId: limited.record.id, endpoint: 'POST /ingest' }, orderBy: { status: 'asc' } });
    expect(rows.map((r) => [r.minute.toISOString(), r.status, r.requests])).toEqual([
      ['2026-06-15T12:00:00.000Z', 'OK', 2],
      ['2026-06-15T12:00:00.000Z', 'RATE_LIMITED', 1],
    ]);
  });
});

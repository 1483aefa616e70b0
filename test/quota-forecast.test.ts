import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeId, encodeId } from '../src/global-id.js';
import { ingestBatch } from '../src/ingest/pipeline.js';
import { alertPayload } from '../src/quota/delivery.js';
import { FORECAST_CHECK_INTERVAL_MS } from '../src/quota/forecast.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

/*
 * A synthetic series whose forecast is known: 100 per day, every day, from 1 May; on 10 June at
 * noon (UTC realm) 50 so far today. No trend, no noise: the projection for June is
 *   900 (1–9 June, final) + 100 (today: the 50 used plus the other half of a 100 day) + 20 × 100 = 3000,
 * and the cumulative projection reaches 2350 halfway through 24 June (2300 by the end of the 23rd).
 */

const NOW = new Date('2026-06-10T12:00:00Z');
const DAY_MS = 86_400_000;

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
let sequence = 0;

beforeAll(async () => {
  db = await createTestDatabase();
  realm = await createUsageRealm(db.prisma, 'UTC');
  app = createApp({ prisma: db.prisma, now: () => NOW, onUnexpectedError: (error) => console.error(error) });
});
afterAll(async () => {
  await db?.destroy();
});

const CREATE = `mutation($input: CreateQuotaRuleInput!) { createQuotaRule(input: $input) {
  quotaRule { id period onForecast thresholdQuantity } userErrors { field code message } } }`;

async function createRule(input: Record<string, unknown>) {
  const response = await graphql(app, CREATE, { key: realm.admin.key, variables: { input } });
  expect(response.body.errors).toBeUndefined();
  return response.body.data.createQuotaRule;
}

function txEvent(at: Date, quantity: string) {
  return { idempotencyKey: `fc-${++sequence}`, feature: 'tx', timestamp: at.toISOString(), quantity };
}

async function ingestAt(now: Date, events: ReturnType<typeof txEvent>[]) {
  const result = await ingestBatch(db.prisma, { realmId: realm.realm.id, workspaceId: null }, events, { now, latenessWindowMs: 60 * DAY_MS });
  expect(result).toMatchObject({ accepted: events.length, rejected: [] });
}

const alertsOf = (ruleId: string) => db.prisma.alert.findMany({ where: { ruleId }, include: { rule: { select: { period: true, webhookUrl: true, webhookSecret: true, feature: { select: { key: true } } } } } });

describe('quota rules on the forecast', () => {
  let crossing: string;
  let beyond: string;
  let actual: string;

  it('refuses a forecast rule on a day, or on a feature whose usage cannot be forecast', async () => {
    const tx = encodeId('Feature', realm.features.tx.id);
    const daily = await createRule({ featureId: tx, period: 'DAY', quantity: '10', onForecast: true });
    expect(daily.userErrors).toEqual([expect.objectContaining({ field: ['input', 'onForecast'], code: 'FORECAST_NEEDS_MONTH' })]);
    const max = await createRule({ featureId: encodeId('Feature', realm.features.spaces.id), period: 'MONTH', quantity: '10', onForecast: true });
    expect(max.userErrors).toEqual([expect.objectContaining({ field: ['input', 'onForecast'], code: 'NOT_FORECASTABLE' })]);
    expect(await db.prisma.quotaRule.count({ where: { realmId: realm.realm.id } })).toBe(0);

    crossing = (await createRule({ featureId: tx, period: 'MONTH', quantity: '2350', onForecast: true })).quotaRule.id;
    beyond = (await createRule({ featureId: tx, period: 'MONTH', quantity: '3100', onForecast: true })).quotaRule.id;
    const plain = await createRule({ featureId: tx, period: 'MONTH', quantity: '2350' });
    expect(plain.quotaRule).toMatchObject({ onForecast: false, period: 'MONTH' });
    actual = plain.quotaRule.id;
  });

  it('fires when the month-end projection crosses the threshold, with the day it does', async () => {
    const events = [];
    for (let t = Date.parse('2026-05-01T12:00:00Z'); t < Date.parse('2026-06-10T00:00:00Z'); t += DAY_MS) events.push(txEvent(new Date(t), '100'));
    events.push(txEvent(new Date('2026-06-10T06:00:00Z'), '50'));
    await ingestAt(NOW, events);

    const [alert, ...others] = await alertsOf(decodeRuleId(crossing));
    expect(others).toEqual([]);
    expect(alert).toMatchObject({ kind: 'FORECAST', crossedAt: NOW, late: false, periodStart: new Date('2026-06-01T00:00:00Z'), periodEnd: new Date('2026-07-01T00:00:00Z') });
    expect(alert!.quantity.toFixed()).toBe('950');
    expect(alert!.threshold.toFixed()).toBe('2350');
    expect(alert!.projectedQuantity!.toFixed()).toBe('3000');
    expect(alert!.projectedAt).toEqual(new Date('2026-06-24T12:00:00Z'));
    expect(alert!.message).toBe('At this rate usage of "tx" will cross the monthly quota for 2026-06 (2350) on 2026-06-24: projected 3000 by the end of the month, 950 used so far.');
    // The webhook says what it is: a forecast, not a crossing.
    expect(alertPayload(alert!)).toMatchObject({ type: 'quota.forecast', kind: 'FORECAST', projectedAt: '2026-06-24T12:00:00.000Z', projectedQuantity: '3000', quantity: '950' });

    // A projection short of the threshold, and the same threshold on the actual usage: nothing.
    expect(await alertsOf(decodeRuleId(beyond))).toEqual([]);
    expect(await alertsOf(decodeRuleId(actual))).toEqual([]);

    const listed = await graphql(app, `{ realm { alerts(first: 5) { edges { node { kind projectedAt projectedQuantity quantity rule { onForecast } } } } } }`, { key: realm.admin.key });
    expect(listed.body.data.realm.alerts.edges.map((e: any) => e.node)).toEqual([
      { kind: 'FORECAST', projectedAt: '2026-06-24T12:00:00.000Z', projectedQuantity: '3000', quantity: '950', rule: { onForecast: true } },
    ]);
  });

  it('is evaluated at most once an hour per rule, and fires once per period', async () => {
    // 200 more today at 12:30: the projection is now ≈ 3198, over 3100, but the rule was checked at 12:00.
    const halfPast = new Date(NOW.getTime() + 30 * 60_000);
    await ingestAt(halfPast, [txEvent(new Date('2026-06-10T11:00:00Z'), '200')]);
    expect(await alertsOf(decodeRuleId(beyond))).toEqual([]);
    const checked = await db.prisma.quotaRule.findUniqueOrThrow({ where: { id: decodeRuleId(beyond) } });
    expect(checked.forecastCheckedAt).toEqual(NOW);

    // An hour after the last check, the next batch evaluates it: 900 + (251 + ½·100·(1 − 13:01/24 h)) + 2000 ≥ 3100.
    const later = new Date(NOW.getTime() + FORECAST_CHECK_INTERVAL_MS + 60_000);
    await ingestAt(later, [txEvent(new Date('2026-06-10T12:30:00Z'), '1')]);
    const [alert, ...others] = await alertsOf(decodeRuleId(beyond));
    expect(others).toEqual([]);
    expect(alert).toMatchObject({ kind: 'FORECAST', crossedAt: later });
    expect(alert!.projectedAt!.toISOString().slice(0, 10)).toBe('2026-06-30');
    expect(alert!.projectedQuantity!.greaterThanOrEqualTo(3100)).toBe(true);

    // Still one alert per rule and month, however often it is evaluated.
    await ingestAt(new Date(later.getTime() + 2 * FORECAST_CHECK_INTERVAL_MS), [txEvent(new Date('2026-06-10T13:30:00Z'), '5000')]);
    expect(await alertsOf(decodeRuleId(crossing))).toHaveLength(1);
    expect(await alertsOf(decodeRuleId(beyond))).toHaveLength(1);
    // The actual rule now fires on the usage itself (950 + 200 + 1 + 5000 ≥ 2350), as an ACTUAL alert.
    const [real] = await alertsOf(decodeRuleId(actual));
    expect(real).toMatchObject({ kind: 'ACTUAL', projectedAt: null, projectedQuantity: null });
    expect(alertPayload(real!)).toMatchObject({ type: 'quota.crossed', kind: 'ACTUAL', projectedAt: null });
  });
});

const decodeRuleId = (globalId: string) => decodeId(globalId).id;

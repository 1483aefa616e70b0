import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dec, type Decimal } from '../src/billing/decimal.js';
import { encodeId } from '../src/global-id.js';
import { dayNumber, startOfLocalDay } from '../src/usage/time.js';
import { FORECAST_HISTORY_DAYS, forecastPeriod, isForecastable, weekdayOf, type ForecastInput } from '../src/usage/forecast.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm, insertUsage, type RawUsage } from './helpers/usage-fixture.js';

/** Monday 10 … Sunday 70: the weekday profile every test series follows. */
const PROFILE = [10, 20, 30, 40, 50, 60, 70];
const JUNE_1 = dayNumber(2026, 6, 1); // a Monday
const JULY_1 = dayNumber(2026, 7, 1);
const JUNE_11 = dayNumber(2026, 6, 11); // a Thursday

/** The profile from `from` through June 10, June 11 at 30, optionally + − − + `noise` by block of 7 days from `from` (no trend). */
function series(from: number, noise = 0): Map<number, Decimal> {
  const daily = new Map<number, Decimal>();
  for (let day = from; day < JUNE_11; day++) {
    const sign = [1, -1, -1, 1][Math.floor((day - from) / 7) % 4]!;
    daily.set(day, dec(PROFILE[weekdayOf(day)]! + sign * noise));
  }
  daily.set(JUNE_11, dec(30));
  return daily;
}

function june(daily: Map<number, Decimal>, overrides: Partial<ForecastInput> = {}): ForecastInput {
  return {
    daily,
    periodStartDay: JUNE_1,
    periodEndDay: JULY_1,
    today: JUNE_11,
    todayElapsed: dec('0.5'),
    firstOpenDay: JUNE_11,
    dataStartDay: JUNE_11 - 60,
    ...overrides,
  };
}

describe('the forecast method (pure)', () => {
  it('projects a series that follows its weekday profile exactly to the known month total, with a zero-width interval', () => {
    const result = forecastPeriod(june(series(JUNE_11 - 60)));
    // June 1–10: 280 + 10 + 20 + 30 = 340; today: max(30, 40 × ½) + 40 × ½ = 50; June 12–30: 770.
    expect(result).toMatchObject({ status: 'AVAILABLE' });
    if (result.status !== 'AVAILABLE') throw new Error('withheld');
    expect(result.usedToDate.toFixed()).toBe('370');
    expect(result.projected.toFixed()).toBe('1160');
    expect(result.low.toFixed()).toBe('1160');
    expect(result.high.toFixed()).toBe('1160');
  });

  it('says on which day a license runs out: cumulative projection 950 after 25 June, 50 on Friday 26 June, so 975 is reached at its middle', () => {
    const result = forecastPeriod(june(series(JUNE_11 - 60), { licensed: dec(975) }));
    if (result.status !== 'AVAILABLE') throw new Error('withheld');
    expect(result.exhaustion).toEqual({ day: dayNumber(2026, 6, 26), fraction: dec('0.5') });
    const untouched = forecastPeriod(june(series(JUNE_11 - 60), { licensed: dec(1161) }));
    expect(untouched.status === 'AVAILABLE' && untouched.exhaustion).toBeNull();
  });

  it('widens the interval by the residual deviation: ±5 residuals give s² = 700/21 and weekly totals 315, 245, 245, 315 a variance of 4900/3', () => {
    // History: the 28 days before June 11, each weekday +5, −5, −5, +5 (mean exactly the profile, no trend).
    const daily = series(JUNE_11 - FORECAST_HISTORY_DAYS, 5);
    const result = forecastPeriod(june(daily, { dataStartDay: JUNE_11 - FORECAST_HISTORY_DAYS }));
    if (result.status !== 'AVAILABLE') throw new Error('withheld');
    let used = dec(0);
    for (let day = JUNE_1; day <= JUNE_11; day++) used = used.plus(daily.get(day)!);
    // Projected: used so far (June 11 at 30 beats 40 × ½, so + 20 for its rest) + the profile of June 12–30 (770).
    expect(result.usedToDate.toFixed()).toBe(used.toFixed());
    expect(result.projected.toFixed()).toBe(used.plus(20).plus(770).toFixed());
    // Uncertain days: ½ (today) + 19; per weekday Mon 3, Tue 3, Wed 2, Thu 2.5, Fri 3, Sat 3, Sun 3 over 4 history days each.
    const weeksLeft = dec('19.5').div(7);
    const spread = dec(700).div(21).times(dec('19.5').plus(dec('55.25').div(4))).plus(dec(4900).div(3).times(weeksLeft).times(weeksLeft)).sqrt().times('1.645');
    expect(result.high.minus(result.projected).toFixed(6)).toBe(spread.toFixed(6));
    expect(result.projected.minus(result.low).toFixed(6)).toBe(spread.toFixed(6));
    expect(Number(spread)).toBeCloseTo(193.1416, 3);
  });

  it('follows half the weekly trend: weeks of 10, 20, 30, 40 a day (slope 70 a week on a mean of 175) project 265.714285714 for a week', () => {
    const start = dayNumber(2026, 3, 2);
    const daily = new Map<number, Decimal>();
    for (let day = start; day < start + 28; day++) daily.set(day, dec(10 * (1 + Math.floor((day - start) / 7))));
    const result = forecastPeriod({
      daily,
      periodStartDay: start + 25,
      periodEndDay: start + 32,
      today: start + 28,
      todayElapsed: dec(0),
      firstOpenDay: start + 28,
      dataStartDay: start,
    });
    // 3 days of 40, then 25 × (1 + 0.2/7 × (d − 13.5)) for d = 28…31: 120 + 100 + 320/7.
    expect(result.status === 'AVAILABLE' && result.projected.toFixed()).toBe('265.714285714');
  });

  it('days not final yet count at least their profile', () => {
    // Storage-like delay: June 9 and 10 are not final; June 10 arrived only in part (5 of 30).
    const daily = series(JUNE_11 - 60);
    daily.set(dayNumber(2026, 6, 10), dec(5));
    const result = forecastPeriod(june(daily, { firstOpenDay: dayNumber(2026, 6, 9) }));
    if (result.status !== 'AVAILABLE') throw new Error('withheld');
    expect(result.usedToDate.toFixed()).toBe('345');
    expect(result.projected.toFixed()).toBe('1160');
  });

  it('withholds early in the period, without four weeks of history, after the period and for non-additive aggregations', () => {
    const daily = series(JUNE_11 - 60);
    expect(forecastPeriod(june(daily, { today: JUNE_1 + 2, todayElapsed: dec('0.99') })).status).toBe('TOO_EARLY_IN_PERIOD');
    expect(forecastPeriod(june(daily, { today: JUNE_1 + 3, todayElapsed: dec(0) })).status).toBe('AVAILABLE');
    expect(forecastPeriod(june(daily, { dataStartDay: JUNE_11 - FORECAST_HISTORY_DAYS + 1 })).status).toBe('HISTORY_TOO_SHORT');
    expect(forecastPeriod(june(daily, { dataStartDay: null })).status).toBe('HISTORY_TOO_SHORT');
    expect(forecastPeriod(june(new Map([[JUNE_11, dec(3)]]))).status).toBe('HISTORY_TOO_SHORT');
    expect(forecastPeriod(june(daily, { today: JULY_1 })).status).toBe('PERIOD_OVER');
    expect(forecastPeriod(june(daily, { periodEndDay: JUNE_1 + 400 })).status).toBe('UNSUPPORTED_PERIOD');
    expect(['SUM', 'COUNT', 'MAX', 'LATEST', 'UNIQUE_COUNT'].filter((a) => isForecastable(a as never))).toEqual(['SUM', 'COUNT']);
  });
});

// ─── Through GraphQL, on the database ────────────────────────────────────────────────────────

/** 12:00 in Berlin (CEST) on Thursday 11 June 2026: half of the day has passed. */
const NOW = new Date('2026-06-11T10:00:00Z');
const TZ = 'Europe/Berlin';

let db: TestDatabase;
let app: App;
let r: Awaited<ReturnType<typeof createUsageRealm>>;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => NOW, onUnexpectedError: (error) => console.error(error) });
  r = await createUsageRealm(db.prisma, TZ);
  const usage: RawUsage[] = [];
  // tx (SUM): the profile every day from 60 days back, split over the left and right workspaces (1 : 9); 30 on June 11.
  for (let day = JUNE_11 - 60; day <= JUNE_11; day++) {
    const quantity = day === JUNE_11 ? 30 : PROFILE[weekdayOf(day)]!;
    const hour = new Date(startOfLocalDay(day, TZ).getTime() + 8 * 3_600_000);
    usage.push({ feature: 'tx', hour, quantity: String(quantity / 10), workspaceId: r.tree.left.id });
    usage.push({ feature: 'tx', hour, quantity: String((quantity * 9) / 10), workspaceId: r.tree.right.id });
    usage.push({ feature: 'spaces', hour, quantity: '2', workspaceId: r.tree.left.id });
  }
  await insertUsage(db.prisma, r.realm.id, { tx: r.features.tx.id, spaces: r.features.spaces.id }, usage);
  const contract = await db.prisma.contract.create({
    data: { realmId: r.realm.id, name: 'c', startsAt: new Date('2026-01-01T00:00:00Z'), endsAt: new Date('2027-01-01T00:00:00Z') },
  });
  await db.prisma.license.create({ data: { contractId: contract.id, featureId: r.features.tx.id, quantityPerMonth: '975' } });
});
afterAll(() => db?.destroy());

const FORECAST = `forecast { status reason method period { from to } asOf projections { feature { key } status reason usedToDate projected low high licensed projectedExhaustion group { workspace { name } } } }`;

describe('UsageReport.forecast', () => {
  it('projects MONTH_TO_DATE to the end of the calendar month: the known answer of the pure method', async () => {
    const { body } = await graphql(app, `{ realm { usage(timeframe: MONTH_TO_DATE) { ${FORECAST} } } }`, { key: r.admin.key });
    expect(body.errors).toBeUndefined();
    const forecast = body.data.realm.usage.forecast;
    expect(forecast).toMatchObject({ status: 'AVAILABLE', reason: null, period: { from: '2026-05-31T22:00:00.000Z', to: '2026-06-30T22:00:00.000Z' }, asOf: NOW.toISOString() });
    expect(forecast.method).toMatch(/day-of-week profile/);
    const byKey = Object.fromEntries(forecast.projections.map((p: { feature: { key: string } }) => [p.feature.key, p]));
    expect(byKey.tx).toMatchObject({ status: 'AVAILABLE', usedToDate: '370', projected: '1160', low: '1160', high: '1160', licensed: null, projectedExhaustion: null });
    expect(byKey.spaces).toMatchObject({ status: 'NOT_ADDITIVE', projected: null, usedToDate: null });
    expect(byKey.spaces.reason).toMatch(/not a sum of days/);
  });

  it('projects each group of a grouped report', async () => {
    const { body } = await graphql(app, `{ realm { usage(timeframe: MONTH_TO_DATE, groupBy: [WORKSPACE], filter: { featureIds: ["${encodeId('Feature', r.features.tx.id)}"] }) { ${FORECAST} } } }`, {
      key: r.admin.key,
    });
    expect(body.errors).toBeUndefined();
    const projections = body.data.realm.usage.forecast.projections.map((p: any) => [p.group.workspace.name, p.projected]).sort();
    expect(projections).toEqual([
      ['left', '116'],
      ['right', '1044'],
    ]);
  });

  it('a range spanning now on local midnights is its own period; rolling windows and past periods are withheld with a reason', async () => {
    const query = `{ realm {
      range: usage(range: { from: "2026-05-31T22:00:00Z", to: "2026-06-14T22:00:00Z" }) { forecast { status period { to } projections { feature { key } projected } } }
      rolling: usage(timeframe: LAST_30_DAYS) { forecast { status reason period { to } projections { projected } } }
      previous: usage(timeframe: PREVIOUS_MONTH) { forecast { status reason projections { projected } } }
      unaligned: usage(range: { from: "2026-06-01T00:00:00Z", to: "2026-06-30T00:00:00Z" }) { forecast { status } }
    } }`;
    const { body } = await graphql(app, query, { key: r.admin.key });
    expect(body.errors).toBeUndefined();
    const realm = body.data.realm;
    // June 1–14: 340 + 50 + Fri 50 + Sat 60 + Sun 70.
    expect(realm.range.forecast.projections.find((p: any) => p.feature.key === 'tx').projected).toBe('570');
    expect(realm.rolling.forecast).toEqual({ status: 'ROLLING_WINDOW', reason: expect.stringMatching(/rolling window/), period: null, projections: [] });
    expect(realm.previous.forecast).toMatchObject({ status: 'PERIOD_OVER', projections: [] });
    expect(realm.unaligned.forecast.status).toBe('UNSUPPORTED_PERIOD');
  });

  it('adds one statement per question, not one per feature or per report: four workspaces cost what one does', async () => {
    const one = await graphql(app, `{ realm { usage(timeframe: MONTH_TO_DATE) { forecast { projections { projected } } } } }`, { key: r.admin.key });
    const none = await graphql(app, `{ realm { usage(timeframe: MONTH_TO_DATE) { points { quantity } } } }`, { key: r.admin.key });
    expect(one.body.errors).toBeUndefined();
    // The forecast's daily history (one statement) and the realm's first usage hour (one).
    expect(one.statements.length - none.statements.length).toBeLessThanOrEqual(2);
    const many = await graphql(app, `{ realm { workspaces(first: 4) { edges { node { usage(timeframe: MONTH_TO_DATE) { forecast { projections { projected } } } } } } } }`, { key: r.admin.key });
    const single = await graphql(app, `{ realm { workspaces(first: 1) { edges { node { usage(timeframe: MONTH_TO_DATE) { forecast { projections { projected } } } } } } } }`, { key: r.admin.key });
    expect(many.body.errors).toBeUndefined();
    expect(many.body.data.realm.workspaces.edges).toHaveLength(4);
    expect(many.statements.length).toBe(single.statements.length);
  });

  it('a scoped key forecasts its subtree only', async () => {
    const { body } = await graphql(app, `{ realm { usage(timeframe: MONTH_TO_DATE) { forecast { projections { feature { key } projected } } } } }`, { key: r.scoped.key });
    expect(body.errors).toBeUndefined();
    expect(body.data.realm.usage.forecast.projections.find((p: any) => p.feature.key === 'tx').projected).toBe('116');
  });

  it('prices the forecast in the query cost', async () => {
    const plain = await graphql(app, `{ realm { usage(timeframe: MONTH_TO_DATE) { warnings } } }`, { key: r.admin.key });
    const withForecast = await graphql(app, `{ realm { usage(timeframe: MONTH_TO_DATE) { warnings forecast { status } } } }`, { key: r.admin.key });
    expect(withForecast.body.extensions!.cost.requested - plain.body.extensions!.cost.requested).toBeGreaterThanOrEqual(17);
  });
});

describe('Realm.currentUsage.forecast', () => {
  it('projects licensed products and says when the license runs out (975 reached in the middle of Friday 26 June, Berlin)', async () => {
    const { body } = await graphql(app, `{ realm { currentUsage { month forecast { status projections { feature { key } status projected licensed projectedExhaustion } } } usageHistory(months: 2) { month forecast { status } } } }`, {
      key: r.admin.key,
    });
    expect(body.errors).toBeUndefined();
    const projections = body.data.realm.currentUsage.forecast.projections;
    expect(projections.find((p: any) => p.feature.key === 'tx')).toEqual({
      feature: { key: 'tx' },
      status: 'AVAILABLE',
      projected: '1160',
      licensed: '975',
      projectedExhaustion: '2026-06-26T10:00:00.000Z',
    });
    expect(body.data.realm.usageHistory.map((m: any) => m.forecast.status)).toEqual(['PERIOD_OVER', 'AVAILABLE']);
  });
});

/**
 * `npm run bench:forecast`: how good the usage forecast is, measured rather than claimed.
 *
 * For every daily series (a SUM/COUNT feature of a realm, and of each workspace) and every complete
 * calendar month with four weeks of history before it, the forecast (src/usage/forecast.ts, the
 * same pure function the API answers with) is made as it would have been after d days of the
 * month — with only the days before then visible — and compared with the month's actual total:
 * the median and 90th-percentile absolute percentage error, and how often the interval held the
 * actual total (its nominal coverage is 90 %).
 *
 * Data: the demo (src/db/seed.ts `seedDemo`, 13 months, three realms in three time zones) seeded
 * into an in-memory PGlite at a fixed instant, and synthetic series of four kinds with a seeded
 * generator: stationary noise like the benchmark generator's hash-driven rows (bench/generate.ts),
 * weekly seasonality with growth, a level shift within the month, and sparse bursts.
 * The table goes to BENCHMARKS.md between the forecast markers (--no-write: print only).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dec, type Decimal } from '../src/billing/decimal.js';
import { openDatabase } from '../src/db/database.js';
import { seedDemo } from '../src/db/seed.js';
import { FORECAST_HISTORY_DAYS, FORECAST_METHOD, FORECAST_TREND_DAMPING, forecastPeriod, weekdayOf } from '../src/usage/forecast.js';
import { dayNumber } from '../src/usage/time.js';
import { random } from './random.js';

const SEEDED_AT = new Date('2026-12-01T00:00:00Z');
const DAYS_INTO_MONTH = [3, 7, 14, 21, 28];
const write = !process.argv.includes('--no-write');

interface Series {
  name: string;
  /** Local day number → quantity. */
  daily: Map<number, Decimal>;
}

interface Outcome {
  ape: number;
  covered: boolean;
}

/** Complete months (as [first day, first day of next)) of a series with four weeks of history before them. */
function monthsOf(series: Series, lastDay: number): [number, number][] {
  const days = [...series.daily.keys()];
  const first = Math.min(...days);
  const months: [number, number][] = [];
  const start = new Date(first * 86_400_000);
  for (let y = start.getUTCFullYear(), m = start.getUTCMonth() + 1; ; m++) {
    const from = dayNumber(y, m, 1);
    const to = dayNumber(y, m + 1, 1);
    if (to > lastDay) break;
    if (from - FORECAST_HISTORY_DAYS >= first) months.push([from, to]);
  }
  return months;
}

/** The forecast after `d` whole days of the month, from the days before then only, against the month's actual total. */
function backtest(series: Series, lastDay: number, dataStartDay: number, trendDamping: string): Map<number, Outcome[]> {
  const outcomes = new Map<number, Outcome[]>(DAYS_INTO_MONTH.map((d) => [d, []]));
  for (const [from, to] of monthsOf(series, lastDay)) {
    let actual = dec(0);
    for (let day = from; day < to; day++) actual = actual.plus(series.daily.get(day) ?? 0);
    if (actual.isZero()) continue;
    for (const d of DAYS_INTO_MONTH) {
      const today = from + d;
      if (today >= to) continue;
      const visible = new Map([...series.daily].filter(([day]) => day < today));
      const result = forecastPeriod({ daily: visible, periodStartDay: from, periodEndDay: to, today, todayElapsed: dec(0), firstOpenDay: today, dataStartDay, trendDamping });
      if (result.status !== 'AVAILABLE') continue;
      outcomes.get(d)!.push({
        ape: Number(result.projected.minus(actual).abs().div(actual).times(100)),
        covered: result.low.lessThanOrEqualTo(actual) && actual.lessThanOrEqualTo(result.high),
      });
    }
  }
  return outcomes;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function demoSeries(): Promise<{ series: Series[]; lastDay: number; dataStartDays: Map<string, number> }> {
  const db = await openDatabase({ kind: 'pglite', dir: 'memory://' });
  try {
    await seedDemo(db.prisma, { now: SEEDED_AT });
    const rows = await db.prisma.$queryRawUnsafe<{ realm: string; feature: string; workspace: string | null; day: string; quantity: string }[]>(`
      SELECT r.slug AS realm, f.key AS feature, w.name AS workspace,
             to_char((u.hour AT TIME ZONE r."timeZone")::date, 'YYYY-MM-DD') AS day, SUM(u.quantity)::text AS quantity
      FROM "UsageHourly" u JOIN "Realm" r ON r.id = u."realmId" JOIN "Feature" f ON f.id = u."featureId"
      LEFT JOIN "Workspace" w ON w.id = u."workspaceId"
      WHERE f.aggregation IN ('SUM', 'COUNT')
      GROUP BY GROUPING SETS ((r.slug, f.key, day), (r.slug, f.key, w.name, day))`);
    const byName = new Map<string, Series>();
    const dataStartDays = new Map<string, number>();
    let lastDay = -Infinity;
    for (const row of rows) {
      const name = `demo ${row.realm} ${row.feature}${row.workspace ? ` @ ${row.workspace}` : ''}`;
      const [y, m, d] = row.day.split('-').map(Number) as [number, number, number];
      const day = dayNumber(y, m, d);
      lastDay = Math.max(lastDay, day);
      let series = byName.get(name);
      if (!series) byName.set(name, (series = { name, daily: new Map() }));
      series.daily.set(day, dec(row.quantity));
      dataStartDays.set(row.realm, Math.min(dataStartDays.get(row.realm) ?? Infinity, day));
    }
    // Whole realm series (no workspace) are listed apart from per-workspace ones.
    return { series: [...byName.values()], lastDay, dataStartDays };
  } finally {
    await db.close();
  }
}

const SYNTHETIC_DAYS = 400;
const SYNTHETIC_START = dayNumber(2025, 10, 1);

/** Four kinds of synthetic series, 25 each; quantities with 3 decimals (as the benchmark's rows). */
function syntheticSeries(): Record<string, Series[]> {
  const kinds: Record<string, (rnd: () => number, day: number, i: number) => number> = {
    // bench/generate.ts: every hour a stride picks combinations, each row (hash % 1e6) / 1000: a flat sum of uniform draws.
    'stationary (benchmark generator)': (rnd) => {
      let total = 0;
      for (let row = 0; row < 24 * 8; row++) total += rnd() * 1000;
      return total;
    },
    'weekly + growth + 10 % noise': (rnd, day, i) => {
      const weekly = [1.1, 1.15, 1.2, 1.15, 1.0, 0.55, 0.45][weekdayOf(day)]!;
      return 1000 * weekly * (1 + (0.5 * (day - SYNTHETIC_START)) / 365) * (0.9 + 0.2 * rnd()) * (1 + (i % 5) / 10);
    },
    'level shift (×2 from a random day)': (() => {
      const shifts = new Map<string, number>();
      return (rnd: () => number, day: number, i: number) => {
        const month = Math.floor((day - SYNTHETIC_START) / 30.4);
        const key = `${i}:${month}`;
        if (!shifts.has(key)) shifts.set(key, rnd() < 0.3 ? Math.floor(rnd() * 30) : 99);
        const dayOfMonth = new Date(day * 86_400_000).getUTCDate();
        return 500 * (dayOfMonth >= shifts.get(key)! ? 2 : 1) * (0.9 + 0.2 * rnd());
      };
    })(),
    'sparse bursts (20 % of days)': (rnd) => (rnd() < 0.2 ? 200 + rnd() * 1800 : 0),
  };
  const result: Record<string, Series[]> = {};
  for (const [kind, value] of Object.entries(kinds)) {
    result[kind] = Array.from({ length: 25 }, (_, i) => {
      const rnd = random(i * 7919 + kind.length);
      const daily = new Map<number, Decimal>();
      for (let day = SYNTHETIC_START; day < SYNTHETIC_START + SYNTHETIC_DAYS; day++) daily.set(day, dec(value(rnd, day, i).toFixed(3)));
      return { name: `${kind} #${i}`, daily };
    });
  }
  return result;
}

interface Row {
  data: string;
  series: number;
  byDay: Map<number, Outcome[]>;
}

function measure(data: string, series: Series[], lastDay: number, dataStartDay: (s: Series) => number, trendDamping = FORECAST_TREND_DAMPING): Row {
  const byDay = new Map<number, Outcome[]>(DAYS_INTO_MONTH.map((d) => [d, []]));
  for (const s of series) {
    for (const [d, outcomes] of backtest(s, lastDay, dataStartDay(s), trendDamping)) byDay.get(d)!.push(...outcomes);
  }
  return { data, series: series.length, byDay };
}

/** The damping chosen vs the alternatives: every day of month pooled. */
const DAMPINGS = ['0', '0.5', '1'];
function dampingTable(rows: Row[][]): string {
  const lines = [
    `| Data | ${DAMPINGS.map((d) => `Median / P90 APE, coverage (damping ${d})`).join(' | ')} |`,
    `|---|${DAMPINGS.map(() => '---:').join('|')}|`,
  ];
  for (let i = 0; i < rows[0]!.length; i++) {
    const cells = rows.map((byDamping) => {
      const outcomes = [...byDamping[i]!.byDay.values()].flat();
      const apes = outcomes.map((o) => o.ape);
      const coverage = (100 * outcomes.filter((o) => o.covered).length) / outcomes.length;
      return `${fmt(percentile(apes, 50))} % / ${fmt(percentile(apes, 90))} %, ${fmt(coverage)} %`;
    });
    lines.push(`| ${rows[0]![i]!.data} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

const fmt = (value: number) => (Number.isNaN(value) ? '–' : value < 10 ? value.toFixed(1) : value.toFixed(0));

function table(rows: Row[]): string {
  const lines = [
    '| Data | Series | Day of month | Forecasts | Median APE | P90 APE | Interval coverage |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of rows) {
    for (const d of DAYS_INTO_MONTH) {
      const outcomes = row.byDay.get(d)!;
      const apes = outcomes.map((o) => o.ape);
      const coverage = outcomes.length ? (100 * outcomes.filter((o) => o.covered).length) / outcomes.length : NaN;
      lines.push(`| ${row.data} | ${row.series} | ${d} | ${outcomes.length} | ${fmt(percentile(apes, 50))} % | ${fmt(percentile(apes, 90))} % | ${fmt(coverage)} % |`);
    }
  }
  return lines.join('\n');
}

const started = Date.now();
const demo = await demoSeries();
const synthetic = Object.entries(syntheticSeries());
const realmOf = (s: Series) => s.name.split(' ')[1]!;
function allRows(trendDamping: string): Row[] {
  return [
    measure('demo, realm totals', demo.series.filter((s) => !s.name.includes(' @ ')), demo.lastDay, (s) => demo.dataStartDays.get(realmOf(s))!, trendDamping),
    measure('demo, per workspace', demo.series.filter((s) => s.name.includes(' @ ')), demo.lastDay, (s) => demo.dataStartDays.get(realmOf(s))!, trendDamping),
    ...synthetic.map(([kind, series]) => measure(`synthetic: ${kind}`, series, SYNTHETIC_START + SYNTHETIC_DAYS, () => SYNTHETIC_START, trendDamping)),
  ];
}
const byDamping = DAMPINGS.map((damping) => allRows(damping));
const rows = byDamping[DAMPINGS.indexOf(FORECAST_TREND_DAMPING)]!;
const output = table(rows);
const dampings = dampingTable(byDamping);
console.log(output);
console.log(`\n${dampings}`);
console.log(`\n(${((Date.now() - started) / 1000).toFixed(1)} s)`);

if (write) {
  const START = '<!-- forecast-backtest:start -->';
  const END = '<!-- forecast-backtest:end -->';
  const section = `${START}
## Forecasts (\`npm run bench:forecast\`, measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC)

The forecast of \`UsageReport.forecast\` and \`BillingMonth.forecast\` (src/usage/forecast.ts), made for
every complete month of each daily series as it would have been after *d* whole days of the month (only
the days before visible), against the month's actual total. APE: absolute percentage error of the
projection; coverage: how often the actual total fell inside [low, high] (nominally 90 %). Demo: the
seed at ${SEEDED_AT.toISOString().slice(0, 10)} (13 months, three realms and time zones; SUM/COUNT features,
per realm and per workspace). Synthetic: 25 seeded series of each kind, ${SYNTHETIC_DAYS} days.

Method: ${FORECAST_METHOD}

${output}

The trend damping (${FORECAST_TREND_DAMPING}) was chosen from 0, 0.5 and 1 on this same backtest, so the table above is
in-sample for that one choice. Every day of month pooled:

${dampings}

What the numbers say: on smooth series (the demo, stationary noise, seasonal growth) the projection is
within a few per cent from day 3, and the interval holds the actual total 72–95 % of the time against
its nominal 90 % (short of it in the first week on the demo's growing realm totals);
a level shift inside the month (a customer doubling its traffic) is only seen once it has happened,
and sparse, bursty usage (a fifth of the days) stays hard to project — the median error is large
until late in the month — but the interval widens accordingly and keeps its coverage.
${END}`;
  const file = 'BENCHMARKS.md';
  const current = readFileSync(file, 'utf8');
  const next = current.includes(START)
    ? current.slice(0, current.indexOf(START)) + section + current.slice(current.indexOf(END) + END.length)
    : `${current.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, next);
  console.log(`wrote the forecast section of ${file}`);
}

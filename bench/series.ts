/**
 * `npx tsx bench/series.ts [--scale S|M] [--rounds 3] [--runs 5]`: the same usage reports read as
 * `points` (one GraphQL object per bucket) and as `series` (parallel arrays per feature and group),
 * on the query benchmarks' generated PostgreSQL data (generated here when missing, as `npm run bench`
 * does). The finalized-report cache is off, so both read the database every time; with `--cached`
 * it is on, so after the first request only the GraphQL answer is built (the part series change).
 */
import pg from 'pg';
import { Command } from 'commander';
import { openDatabase } from '../src/db/database.js';
import { configureReportCache } from '../src/usage/report-cache.js';
import { createApp } from '../src/yoga.js';
import { countRows, dataFor, generate, readMarker, SCALE_M, SCALE_S } from './generate.js';
import { median, sequentialLatency, type Latency } from './measure.js';

const program = new Command('bench-series')
  .option('--scale <name>', 'S or M', 'S')
  .option('--rounds <n>', 'interleaved rounds (medians are reported)', '3')
  .option('--runs <n>', 'timed requests per shape per round', '5')
  .option('--cached', 'with the finalized-report cache on: no SQL after the first request, so only the answer is built');
program.parse();
const opts = program.opts<{ scale: string; rounds: string; runs: string; cached?: boolean }>();
const scale = opts.scale === 'M' ? SCALE_M : SCALE_S;
const adminUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const DAY_MS = 86_400_000;

configureReportCache(opts.cached ? { maxBytes: 1024 ** 3, ttlMs: 3_600_000 } : { maxBytes: 0, ttlMs: 1 });

const url = new URL(adminUrl);
url.pathname = `/ugw_bench_${scale.name.toLowerCase()}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
if (!(await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [url.pathname.slice(1)])).rowCount) await admin.query(`CREATE DATABASE "${url.pathname.slice(1)}"`);
await admin.end();
const db = await openDatabase({ kind: 'postgres', url: url.toString() });
let anchor = await readMarker(db.prisma, scale);
if (!anchor) {
  console.log(`generating scale ${scale.name}…`);
  anchor = (await generate(db.prisma, scale, { concurrency: 2 })).anchor;
}
const data = dataFor(scale, anchor, await countRows(db.prisma));
const realm = data.realms[0]!;
const app = createApp({ prisma: db.prisma, exposeQueryStats: true });

const range = (days: number) => ({ from: new Date(anchor!.getTime() - days * DAY_MS).toISOString(), to: anchor!.toISOString() });
const shapes = [
  { label: '12 months, DAY, by feature', args: 'granularity: DAY, groupBy: [FEATURE]', range: range(365) },
  { label: '12 months, DAY, by feature × workspace', args: 'granularity: DAY, groupBy: [WORKSPACE]', range: range(365) },
  { label: '95 days, HOUR, by feature (Q1)', args: 'granularity: HOUR, groupBy: [FEATURE]', range: range(95) },
];
const documents = (args: string) => ({
  points: `query($range: TimeRangeInput!) { realm { usage(range: $range, ${args}) { points { feature { id } group { workspace { id } } start quantity isFinal } } } }`,
  series: `query($range: TimeRangeInput!) { realm { usage(range: $range, ${args}) { series { feature { id } group { workspace { id } } starts quantities isFinal } } } }`,
});

async function send(query: string, variables: Record<string, unknown>) {
  const response = await app.fetch('http://bench/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${realm.apiKey}` },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  const body = JSON.parse(text);
  if (body.errors) throw new Error(JSON.stringify(body.errors).slice(0, 400));
  return { body, bytes: text.length };
}

console.log(`scale ${scale.name}: ${data.hourlyRows.toLocaleString('en')} hourly rows, anchor ${anchor.toISOString()}`);
for (const shape of shapes) {
  const docs = documents(shape.args);
  const variables = { range: shape.range };
  const points = await send(docs.points, variables);
  const series = await send(docs.series, variables);
  // Same numbers: the series flattened are the points.
  const flat = series.body.data.realm.usage.series.flatMap((s: any) => s.starts.map((start: string, i: number) => [s.feature.id, s.group.workspace?.id, start, s.quantities[i], s.isFinal[i]]));
  const direct = points.body.data.realm.usage.points.map((p: any) => [p.feature.id, p.group.workspace?.id, p.start, p.quantity, p.isFinal]);
  if (JSON.stringify(flat) !== JSON.stringify(direct)) throw new Error(`${shape.label}: series and points disagree`);
  const samples = { points: [] as Latency[], series: [] as Latency[], ratios: [] as number[] };
  for (let round = 0; round < Number(opts.rounds); round++) {
    const p = await sequentialLatency(() => send(docs.points, variables), Number(opts.runs));
    const s = await sequentialLatency(() => send(docs.series, variables), Number(opts.runs));
    samples.points.push(p);
    samples.series.push(s);
    samples.ratios.push(p.p50 / s.p50);
  }
  const p50 = (list: Latency[]) => median(list.map((l) => l.p50)).toFixed(1);
  const p95 = (list: Latency[]) => median(list.map((l) => l.p95)).toFixed(1);
  console.log(
    `| ${shape.label} | ${direct.length.toLocaleString('en')} points / ${series.body.data.realm.usage.series.length} series | ` +
      `${points.body.extensions.queryStats.sqlStatements} / ${series.body.extensions.queryStats.sqlStatements} | ` +
      `${p50(samples.points)} / ${p95(samples.points)} | ${p50(samples.series)} / ${p95(samples.series)} | ` +
      `${(points.bytes / 1024).toFixed(0)} / ${(series.bytes / 1024).toFixed(0)} KiB | ${points.body.extensions.cost.actual.toLocaleString('en')} / ${series.body.extensions.cost.actual.toLocaleString('en')} | **${median(samples.ratios).toFixed(2)}×** |`,
  );
}
await db.close();
process.exit(0);

/**
 * `npm run bench`: the hot paths of the gateway against the raw-SQL limit and a peer.
 *
 * For each target (PostgreSQL at scales M and S, PGlite at S) it prepares a database with the
 * deterministic generator (kept between runs; regenerated when the generator or scale changed),
 * proves that the gateway and the hand-written SQL return the same numbers, then measures, in
 * `rounds` interleaved rounds: the gateway in-process (`yoga.fetch`) and over HTTP, and the SQL.
 * On PostgreSQL it then load-tests, with autocannon, the gateway, a bare graphql-yoga "hello" and
 * PostGraphile v5 (with pg-aggregates) over the same data. Results go to BENCHMARKS.md.
 */
import http from 'node:http';
import os from 'node:os';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Command } from 'commander';
import pg from 'pg';
import { openDatabase, type Database } from '../src/db/database.js';
import { createMemoryRateLimiter } from '../src/rate-limit/limiter.js';
import { TrafficRecorder } from '../src/traffic/recorder.js';
import { createApp } from '../src/yoga.js';
import { DEFAULT_REPORT_CACHE_MAX_BYTES, DEFAULT_REPORT_CACHE_TTL_MS } from '../src/config.js';
import { countRows, dataFor, generate, readMarker, SCALE_L, SCALE_M, SCALE_S, type GeneratedData, type Scale } from './generate.js';
import { configureReportCache } from '../src/usage/report-cache.js';
import { rollUpUsage } from '../src/usage/rollups.js';
import { freePort, loadTest, median, sequentialLatency, startChildServer, type Latency, type Throughput } from './measure.js';
import { benchQueries, type BenchQuery, type Row } from './queries.js';
import { runPeer, type PeerResult } from './peer-run.js';

const program = new Command('bench')
  .description('Benchmarks the gateway against hand-written SQL and PostGraphile; writes BENCHMARKS.md.')
  .option('--targets <list>', 'comma-separated: pg-M, pg-L, pg-S, pglite-S', 'pg-M,pg-L,pg-S,pglite-S')
  .option('--rounds <n>', 'interleaved measurement rounds (medians are reported)', '3')
  .option('--runs <n>', 'timed requests per query per round', '10')
  .option('--duration <s>', 'seconds of each autocannon load', '8')
  .option('--connections <n>', 'autocannon connections', '10')
  .option('--regenerate', 'generate the data again even if the database has it')
  .option('--prepare-only', 'generate the data (and run the rollup job on it) without measuring')
  .option('--no-peer', 'skip PostGraphile')
  .option('--no-write', 'print the results without writing BENCHMARKS.md');
program.parse();
const opts = program.opts<{ targets: string; rounds: string; runs: string; duration: string; connections: string; regenerate?: boolean; prepareOnly?: boolean; peer: boolean; write: boolean }>();
const rounds = positive('rounds', opts.rounds);
const runs = positive('runs', opts.runs);
const duration = positive('duration', opts.duration);
const connections = positive('connections', opts.connections);

function positive(name: string, raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} must be a positive integer (got "${raw}")`);
    process.exit(2);
  }
  return value;
}

interface Target {
  name: string;
  kind: 'postgres' | 'pglite';
  scale: Scale;
}
const TARGETS: Record<string, Target> = {
  'pg-M': { name: 'pg-M', kind: 'postgres', scale: SCALE_M },
  'pg-L': { name: 'pg-L', kind: 'postgres', scale: SCALE_L },
  'pg-S': { name: 'pg-S', kind: 'postgres', scale: SCALE_S },
  'pglite-S': { name: 'pglite-S', kind: 'pglite', scale: SCALE_S },
};
const targets = opts.targets.split(',').map((name) => {
  const target = TARGETS[name.trim()];
  if (!target) {
    console.error(`unknown target "${name}": use ${Object.keys(TARGETS).join(', ')}`);
    process.exit(2);
  }
  return target;
});

const adminUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface QueryResult {
  query: BenchQuery;
  rowsCompared: number;
  verified: boolean;
  statements: number;
  inProcess: Latency;
  http: Latency;
  sql: Latency;
  /** Median over rounds of (gateway in-process p50 ÷ SQL p50), each measured in the same round. */
  ratio: number;
  /** The same report read as `series` (in-process), verified against the SQL like `points`. */
  series: { verified: boolean; statements: number; latency: Latency; ratio: number } | null;
  /** With the finalized-report cache on (the default), after one request: null when the answer is not cacheable (not all final). */
  cached: Latency | null;
}

export interface TargetResult {
  target: Target;
  data: GeneratedData;
  generatedSeconds: number | null;
  rollup: Prepared['rollup'];
  queries: QueryResult[];
  throughput: { label: string; result: Throughput }[];
  overheadRatio: number | null;
  peakMemoryMiB: number | null;
  cachedPeakMemoryMiB?: number | null;
  peer: PeerResult | null;
  serverVersion: string;
  measuredAt: string;
}

function databaseUrl(target: Target): string {
  const url = new URL(adminUrl);
  url.pathname = `/ugw_bench_${target.scale.name.toLowerCase()}`;
  return url.toString();
}

interface Prepared {
  db: Database;
  data: GeneratedData;
  generatedSeconds: number | null;
  rollup: { seconds: number; days: number; months: number; realms: number } | null;
  url: string | null;
}

async function prepare(target: Target): Promise<Prepared> {
  const prepared = await generated(target);
  // What the gateway's rollup job (every 15 minutes) would have done with this history: days older
  // than the lateness window and the months they complete. Idempotent: later runs add the new days.
  // At L the job over all 200 realms would take about an hour here: only the benchmarked realm is
  // rolled up (the others' rows would only deepen the rollup table's index).
  const onlyRealm = target.scale.name === 'L' ? prepared.data.realms[0]!.id : undefined;
  const started = performance.now();
  const run = await rollUpUsage(prepared.db.prisma, { realmId: onlyRealm });
  const seconds = (performance.now() - started) / 1000;
  console.log(`${target.name}: rollup job ${seconds.toFixed(1)} s (${run.days} days, ${run.months} months rolled up)`);
  return { ...prepared, rollup: run.days || run.months ? { seconds, days: run.days, months: run.months, realms: onlyRealm ? 1 : prepared.data.realms.length } : null };
}

async function generated(target: Target): Promise<Omit<Prepared, 'rollup'>> {
  let url: string | null = null;
  if (target.kind === 'postgres') {
    url = databaseUrl(target);
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    const name = new URL(url).pathname.slice(1);
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!exists.rowCount) await admin.query(`CREATE DATABASE "${name}"`);
    await admin.end();
  }
  const db = await openDatabase(target.kind === 'postgres' ? { kind: 'postgres', url: url! } : { kind: 'pglite', dir: `bench/.data/pglite-${target.scale.name.toLowerCase()}` });
  const anchor = opts.regenerate ? null : await readMarker(db.prisma, target.scale);
  if (anchor) {
    console.log(`${target.name}: reusing generated data (anchor ${anchor.toISOString()})`);
    return { db, data: dataFor(target.scale, anchor, await countRows(db.prisma)), generatedSeconds: null, url };
  }
  console.log(`${target.name}: generating scale ${target.scale.name}…`);
  const started = performance.now();
  const data = await generate(db.prisma, target.scale, { concurrency: target.kind === 'postgres' ? 2 : 1 });
  const generatedSeconds = (performance.now() - started) / 1000;
  console.log(`${target.name}: ${data.hourlyRows.toLocaleString('en')} hourly rows in ${generatedSeconds.toFixed(0)} s`);
  return { db, data, generatedSeconds, url };
}

type Send = (query: BenchQuery['graphql'], key: string) => Promise<any>;

function sender(fetcher: (url: string, init: RequestInit) => Promise<Response>, base: string): Send {
  return async (graphql, key) => {
    const response = await fetcher(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify(graphql),
    });
    const body = (await response.json()) as { data?: unknown; errors?: unknown[]; extensions?: { queryStats?: { sqlStatements: number } } };
    if (body.errors?.length || response.status !== 200) throw new Error(`gateway error (${response.status}): ${JSON.stringify(body.errors ?? body).slice(0, 500)}`);
    return body;
  };
}

function compare(label: string, gateway: Row[], sql: Row[]): boolean {
  const a = JSON.stringify(gateway);
  const b = JSON.stringify(sql);
  if (a === b) return true;
  const firstDiff = gateway.findIndex((row, i) => JSON.stringify(row) !== JSON.stringify(sql[i]));
  console.error(`${label}: the gateway and the SQL disagree (${gateway.length} vs ${sql.length} rows; first difference at ${firstDiff}: ${JSON.stringify(gateway[firstDiff])} vs ${JSON.stringify(sql[firstDiff])})`);
  return false;
}

async function runTarget(target: Target): Promise<TargetResult> {
  const { db, data, generatedSeconds, rollup, url } = await prepare(target);
  const queries = benchQueries(data);
  const realm = data.realms[0]!;
  const recorder = new TrafficRecorder(db.prisma);
  const limiter = createMemoryRateLimiter();
  // Reports are measured reading the database every time; the cached answer is measured on its own below.
  configureReportCache({ maxBytes: 0, ttlMs: 1 });
  const app = createApp({ prisma: db.prisma, exposeQueryStats: true, rateLimiter: limiter, trafficRecorder: recorder });
  const server = http.createServer((req, res) => void app.handleNodeRequest(req, res));
  const port = await freePort();
  // The client's idle keep-alive connections outlive Node's default 5 s between slow rounds.
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const inProcess = sender((u, i) => Promise.resolve(app.fetch(u, i)), 'http://bench');
  const overHttp = sender((u, i) => fetch(u, i), `http://127.0.0.1:${port}`);

  // With the gateway's session settings (JIT off: with JIT on, the same statements were slower), and
  // a plan made for each execution's values like the gateway's unnamed statements get: after five
  // runs a named statement may switch to a generic plan (Q5's took 3.9 s instead of 1.6 s).
  const pool = url ? new pg.Pool({ connectionString: url, max: 2, options: '-c jit=off -c plan_cache_mode=force_custom_plan' }) : null;
  const runSql = async (q: BenchQuery): Promise<Record<string, unknown>[]> =>
    pool
      ? (await pool.query({ name: `bench_${q.id}`, text: q.sql.text, values: q.sql.values })).rows
      : await db.prisma.$queryRawUnsafe<Record<string, unknown>[]>(q.sql.text, ...q.sql.values);
  const serverVersion = (await db.prisma.$queryRawUnsafe<{ version: string }[]>('SELECT version()'))[0]!.version;

  const results: QueryResult[] = [];
  const perRound = new Map<string, { inProcess: Latency[]; http: Latency[]; sql: Latency[]; ratios: number[]; series: Latency[]; seriesRatios: number[] }>();
  for (const q of queries) {
    const answer = await inProcess(q.graphql, realm.apiKey);
    const gatewayRows = q.fromGateway(answer.data);
    const sqlRows = q.fromSql(await runSql(q));
    const verified = compare(`${target.name} ${q.id}`, gatewayRows, sqlRows) && gatewayRows.length > 0;
    const result = { query: q, rowsCompared: gatewayRows.length, verified, statements: answer.extensions?.queryStats?.sqlStatements ?? -1, series: null, cached: null } as QueryResult;
    if (q.series) {
      const seriesAnswer = await inProcess(q.series.graphql, realm.apiKey);
      const seriesVerified = compare(`${target.name} ${q.id} series`, q.series.fromGateway(seriesAnswer.data), sqlRows);
      result.series = { verified: seriesVerified, statements: seriesAnswer.extensions?.queryStats?.sqlStatements ?? -1, latency: { p50: 0, p95: 0, runs: 0 }, ratio: 0 };
    }
    results.push(result);
    perRound.set(q.id, { inProcess: [], http: [], sql: [], ratios: [], series: [], seriesRatios: [] });
    console.log(`${target.name} ${q.id}: ${verified ? 'same numbers' : 'MISMATCH'} (${gatewayRows.length} rows), ${result.statements} SQL statements${result.series ? `; series: ${result.series.verified ? 'same numbers' : 'MISMATCH'}` : ''}`);
  }
  for (let round = 1; round <= rounds; round++) {
    for (const q of queries) {
      const samples = perRound.get(q.id)!;
      const gateway = await sequentialLatency(() => inProcess(q.graphql, realm.apiKey), runs);
      const sql = await sequentialLatency(() => runSql(q), runs);
      const viaHttp = await sequentialLatency(() => overHttp(q.graphql, realm.apiKey), runs);
      samples.inProcess.push(gateway);
      samples.sql.push(sql);
      samples.http.push(viaHttp);
      samples.ratios.push(gateway.p50 / sql.p50);
      let seriesNote = '';
      if (q.series) {
        const series = await sequentialLatency(() => inProcess(q.series!.graphql, realm.apiKey), runs);
        samples.series.push(series);
        samples.seriesRatios.push(series.p50 / sql.p50);
        seriesNote = `, series ${series.p50.toFixed(1)} ms`;
      }
      console.log(`${target.name} round ${round} ${q.id}: gateway ${gateway.p50.toFixed(1)} ms${seriesNote}, http ${viaHttp.p50.toFixed(1)} ms, SQL ${sql.p50.toFixed(1)} ms`);
    }
  }
  const mid = (list: Latency[]): Latency => ({ p50: median(list.map((l) => l.p50)), p95: median(list.map((l) => l.p95)), runs: list.reduce((n, l) => n + l.runs, 0) });
  for (const result of results) {
    const samples = perRound.get(result.query.id)!;
    result.inProcess = mid(samples.inProcess);
    result.http = mid(samples.http);
    result.sql = mid(samples.sql);
    result.ratio = median(samples.ratios);
    if (result.series) {
      result.series.latency = mid(samples.series);
      result.series.ratio = median(samples.seriesRatios);
    }
  }
  // The finalized-report cache as deployed (its defaults): an answer made only of final buckets is
  // served from memory after the first request, until ingestion or a correction changes the realm.
  configureReportCache({ maxBytes: DEFAULT_REPORT_CACHE_MAX_BYTES, ttlMs: DEFAULT_REPORT_CACHE_TTL_MS });
  for (const result of results) {
    const q = result.query;
    const first = await inProcess(q.graphql, realm.apiKey);
    const again = await inProcess(q.graphql, realm.apiKey);
    const statements = (body: any) => body.extensions?.queryStats?.sqlStatements ?? -1;
    if (statements(again) >= statements(first)) continue; // not cached: part of the answer is not final
    result.cached = await sequentialLatency(() => inProcess(q.graphql, realm.apiKey), runs);
    console.log(`${target.name} ${q.id} cached: ${result.cached.p50.toFixed(1)} ms (${statements(again)} statements)`);
  }
  configureReportCache({ maxBytes: 0, ttlMs: 1 });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await recorder.close();
  await limiter.close();

  let throughput: TargetResult['throughput'] = [];
  let overheadRatio: number | null = null;
  let peakMemoryMiB: number | null = null;
  let cachedPeakMemoryMiB: number | null = null;
  let peer: PeerResult | null = null;
  if (url) {
    await db.close();
    ({ throughput, overheadRatio, peakMemoryMiB, cachedPeakMemoryMiB, peer } = await loadTests(url, data, queries));
    await pool!.end();
  } else {
    await db.close();
  }
  return { target, data, generatedSeconds, rollup, queries: results, throughput, overheadRatio, peakMemoryMiB, cachedPeakMemoryMiB, peer, serverVersion, measuredAt: new Date().toISOString() };
}

const TRIVIAL = { query: '{ __typename }', variables: {} };

async function loadTests(url: string, data: GeneratedData, queries: BenchQuery[]) {
  const realm = data.realms[0]!;
  const q2 = queries.find((q) => q.id === 'Q2')!;
  const env = { DATABASE_URL: url, HOST: '127.0.0.1', SEED_DEMO: 'false', NODE_ENV: 'production', LOG_LEVEL: 'info' };
  // Two gateways, each as `npm start` runs it (the compiled bundle): one reading the database for
  // every report, one as deployed (finalized answers cached).
  const gateway = await startChildServer(process.execPath, ['scripts/start.mjs'], { ...env, REPORT_CACHE_MAX_BYTES: '0' }, await freePort());
  const cachedGateway = await startChildServer(process.execPath, ['scripts/start.mjs'], env, await freePort());
  const bare = await startChildServer(process.execPath, ['--import', 'tsx', 'bench/bare-yoga.ts'], {}, await freePort());
  const load = (base: string, body: unknown, auth: boolean) =>
    loadTest(`${base}/graphql`, JSON.stringify(body), auth ? { authorization: `Bearer ${realm.apiKey}` } : {}, { connections, duration });

  const samples = { gatewayTrivial: [] as Throughput[], bare: [] as Throughput[], gatewayQ2: [] as Throughput[], gatewayQ2Series: [] as Throughput[], cachedQ2: [] as Throughput[], ratios: [] as number[] };
  for (let round = 1; round <= rounds; round++) {
    const bareResult = await load(bare.url, { query: '{ hello }' }, false);
    const trivial = await load(gateway.url, TRIVIAL, true);
    samples.bare.push(bareResult);
    samples.gatewayTrivial.push(trivial);
    samples.ratios.push(trivial.requestsPerSecond / bareResult.requestsPerSecond);
    samples.gatewayQ2.push(await load(gateway.url, q2.graphql, true));
    samples.gatewayQ2Series.push(await load(gateway.url, q2.series!.graphql, true));
    samples.cachedQ2.push(await load(cachedGateway.url, q2.graphql, true));
    console.log(
      `load round ${round}: bare ${bareResult.requestsPerSecond.toFixed(0)} req/s, gateway trivial ${trivial.requestsPerSecond.toFixed(0)} req/s, ` +
        `Q2 ${samples.gatewayQ2.at(-1)!.requestsPerSecond.toFixed(1)}, series ${samples.gatewayQ2Series.at(-1)!.requestsPerSecond.toFixed(1)}, cached ${samples.cachedQ2.at(-1)!.requestsPerSecond.toFixed(1)} req/s`,
    );
  }
  const peakMemoryMiB = gateway.peakMemoryMiB();
  const cachedPeakMemoryMiB = cachedGateway.peakMemoryMiB();
  await gateway.stop();
  await cachedGateway.stop();
  await bare.stop();

  let peer: PeerResult | null = null;
  if (opts.peer) {
    try {
      peer = await runPeer({ databaseUrl: url, data, queries, runs, rounds, load: (base, body) => load(base, body, false) });
    } catch (error) {
      console.error(`PostGraphile peer failed: ${(error as Error).message}`);
    }
  }
  const best = (list: Throughput[]) => list.slice().sort((a, b) => a.requestsPerSecond - b.requestsPerSecond)[Math.floor(list.length / 2)]!;
  return {
    throughput: [
      { label: 'bare graphql-yoga `{ hello }`', result: best(samples.bare) },
      { label: 'gateway `{ __typename }` (auth, rate limit, cost, traffic)', result: best(samples.gatewayTrivial) },
      { label: 'gateway Q2 (dashboard, `points`), report cache off', result: best(samples.gatewayQ2) },
      { label: 'gateway Q2 as `series`, report cache off', result: best(samples.gatewayQ2Series) },
      { label: 'gateway Q2 (`points`), finalized-report cache on (the default)', result: best(samples.cachedQ2) },
      ...(peer?.throughput ?? []),
    ],
    overheadRatio: median(samples.ratios),
    peakMemoryMiB,
    cachedPeakMemoryMiB,
    peer,
  };
}

/** Each target's results are kept, so a failed or partial run still reports the targets measured before. */
const RESULTS_DIR = 'bench/.data/results';
mkdirSync(RESULTS_DIR, { recursive: true });
let failed = false;
if (opts.prepareOnly) {
  for (const target of targets) await (await prepare(target)).db.close();
  process.exit(0);
}
for (const target of targets) {
  try {
    const result = await runTarget(target);
    const stored = { ...result, queries: result.queries.map((q) => ({ ...q, query: { id: q.query.id, title: q.query.title } })) };
    writeFileSync(`${RESULTS_DIR}/${target.name}.json`, JSON.stringify(stored));
  } catch (error) {
    failed = true;
    console.error(`${target.name} failed: ${(error as Error).stack ?? error}`);
  }
}
const results: TargetResult[] = Object.keys(TARGETS)
  .filter((name) => existsSync(`${RESULTS_DIR}/${name}.json`))
  .map((name) => {
    const stored = JSON.parse(readFileSync(`${RESULTS_DIR}/${name}.json`, 'utf8'), (key, value) => (key === 'anchor' ? new Date(value) : value));
    return stored as TargetResult;
  });
const markdown = report(results);
console.log(`\n${markdown}`);
if (opts.write) {
  const file = 'BENCHMARKS.md';
  const current = readFileSync(file, 'utf8');
  const start = '<!-- npm run bench: start -->';
  const end = '<!-- npm run bench: end -->';
  const section = `${start}\n${markdown}\n${end}`;
  const next = current.includes(start)
    ? current.slice(0, current.indexOf(start)) + section + current.slice(current.indexOf(end) + end.length)
    : current.replace(/^# Benchmarks\n/, `# Benchmarks\n\n${section}\n`);
  writeFileSync(file, next);
  console.log(`wrote ${file}`);
}
process.exit(!failed && results.every((r) => r.queries.every((q) => q.verified)) ? 0 : 1);

function report(all: TargetResult[]): string {
  const ms = (n: number) => n.toFixed(n < 10 ? 2 : 1);
  const lines: string[] = [];
  const cpus = os.cpus();
  lines.push(`## Query benchmarks (\`npm run bench\`)`, '');
  lines.push(
    `Written ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpus.length} × ${cpus[0]?.model.trim()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ` +
      `Node ${process.version}, load average ${os.loadavg()[0]!.toFixed(2)} when the report was written. Client, gateway and database share the machine.`,
    '',
  );
  for (const r of all) {
    const d = r.data;
    lines.push(`### ${r.target.kind === 'postgres' ? 'PostgreSQL' : 'PGlite'}, scale ${r.target.scale.name} (measured ${r.measuredAt.slice(0, 16).replace('T', ' ')} UTC)`, '');
    lines.push(
      `${r.serverVersion.split(' on ')[0]}. Data: ${d.realms.length} realms, ${d.realms.reduce((n, x) => n + x.workspaceIds.length, 0)} workspaces (4-ary trees), ` +
        `${d.realms.reduce((n, x) => n + x.datastreams, 0).toLocaleString('en')} datastreams, 12 features, ${r.target.scale.days} days ending ${d.anchor.toISOString().slice(0, 10)}: ` +
        `**${d.hourlyRows.toLocaleString('en')} hourly rows**, ${d.uniqueKeyRows.toLocaleString('en')} unique keys, ${d.trafficRows.toLocaleString('en')} traffic minutes. ` +
        (r.generatedSeconds !== null ? `Generated in ${r.generatedSeconds.toFixed(0)} s.` : 'Generated by an earlier run (same generator version).') +
        ` The benchmarked realm has ${d.realms[0]!.workspaceIds.length} workspaces.`,
      '',
    );
    if (r.rollup) lines.push(`The rollup job (\`npm run rollup\`, what the gateway runs every 15 minutes) then rolled up ${r.rollup.days.toLocaleString('en')} feature-days and ${r.rollup.months.toLocaleString('en')} feature-months of ${r.rollup.realms === r.data.realms.length ? 'every realm' : `${r.rollup.realms} realm (the benchmarked one)`} in ${r.rollup.seconds.toFixed(0)} s.`, '');
    lines.push('| query | same numbers as SQL | SQL statements | gateway `points` p50 / p95 ms | gateway `series` p50 / p95 ms | `points` over HTTP p50 / p95 ms | raw SQL p50 / p95 ms | `points` ÷ SQL | `series` ÷ SQL | cached answer p50 ms |');
    lines.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const q of r.queries) {
      const series = q.series;
      lines.push(
        `| **${q.query.id}** ${q.query.title} | ${q.verified && (!series || series.verified) ? `yes (${q.rowsCompared.toLocaleString('en')} rows)` : '**NO**'} | ${q.statements} | ${ms(q.inProcess.p50)} / ${ms(q.inProcess.p95)} | ` +
          `${series ? `${ms(series.latency.p50)} / ${ms(series.latency.p95)}` : '—'} | ${ms(q.http.p50)} / ${ms(q.http.p95)} | ${ms(q.sql.p50)} / ${ms(q.sql.p95)} | **${q.ratio.toFixed(2)}×** | ${series ? `**${series.ratio.toFixed(2)}×**` : '—'} | ${q.cached ? ms(q.cached.p50) : 'not cacheable'} |`,
      );
    }
    lines.push('');
    if (r.peer) {
      lines.push(`PostGraphile v5 + pg-aggregates over the same database (${Object.entries(r.peer.versions).map(([k, v]) => `${k} ${v}`).join(', ')}), sequential requests over HTTP:`, '');
      lines.push('| query | same numbers | peer p50 / p95 ms | gateway over HTTP p50 ms |', '| --- | --- | ---: | ---: |');
      for (const p of r.peer.latency) {
        const ours = r.queries.find((q) => q.query.id === p.id);
        lines.push(`| ${p.id} | ${p.verified ? `yes (${p.rows.toLocaleString('en')} rows)` : `**NO** ${p.note ?? ''}`} | ${ms(p.latency.p50)} / ${ms(p.latency.p95)} | ${ours ? ms(ours.http.p50) : '—'} |`);
      }
      lines.push('');
    }
    if (r.throughput.length) {
      lines.push(`Throughput over HTTP (autocannon, ${connections} connections, ${duration} s, median of ${rounds} rounds; each server a separate process):`, '');
      lines.push('| server and query | requests/s | latency p50 / p99 ms | errors |', '| --- | ---: | ---: | ---: |');
      for (const t of r.throughput) {
        lines.push(`| ${t.label} | ${t.result.requestsPerSecond.toFixed(t.result.requestsPerSecond < 100 ? 1 : 0)} | ${t.result.latencyP50} / ${t.result.latencyP99} | ${t.result.errors + t.result.non2xx} |`);
      }
      lines.push('');
      if (r.overheadRatio !== null) {
        lines.push(
          `Gateway trivial-query throughput = **${(r.overheadRatio * 100).toFixed(0)} %** of bare graphql-yoga (overhead ${((1 / r.overheadRatio - 1) * 100).toFixed(0)} % per request). ` +
            `Peak memory (VmHWM) of the gateway process under the load: **${r.peakMemoryMiB?.toFixed(0)} MiB** (report cache off)${r.cachedPeakMemoryMiB ? `, **${r.cachedPeakMemoryMiB.toFixed(0)} MiB** (cache on)` : ''}.`,
          '',
        );
      }
    }
  }
  const m = all.find((r) => r.target.name === 'pg-M');
  const l = all.find((r) => r.target.name === 'pg-L');
  if (m && l) {
    lines.push('**Cost growth, L over M** (PostgreSQL, the same realm and questions over a table ten times larger; p50 of L ÷ p50 of M):', '');
    lines.push('| query | `points` | `series` | raw SQL |', '| --- | ---: | ---: | ---: |');
    for (const q of l.queries) {
      const base = m.queries.find((x) => x.query.id === q.query.id);
      if (!base) continue;
      const ratio = (a?: number, b?: number) => (a && b ? `${(a / b).toFixed(2)}×` : '—');
      lines.push(`| ${q.query.id} | ${ratio(q.inProcess.p50, base.inProcess.p50)} | ${ratio(q.series?.latency.p50, base.series?.latency.p50)} | ${ratio(q.sql.p50, base.sql.p50)} |`);
    }
    lines.push('');
  }
  lines.push(
    '**Method.** Each query is first run once through the gateway and once as hand-written SQL, and both answers are turned into the same canonical rows (ids, ISO bucket starts, decimals without trailing zeros) and compared: "same numbers" means every row is equal. ' +
      'Usage reports are also read as compact `series` (parallel arrays per feature and group) and checked against the same SQL. ' +
      `Then ${rounds} rounds, each running every query ${runs} times in-process (\`yoga.fetch\`, with authentication, in-memory rate limit, traffic recording and query cost on; the finalized-report cache off, so every request reads the database), ${runs} times as \`series\` where it is a usage report, ${runs} times as raw SQL (PostgreSQL: a prepared statement through node-postgres; PGlite: the same Prisma connection), and ${runs} times over HTTP (a node:http server in the benchmark process), after two warm-up requests each. ` +
      'The tables give the median over rounds of each p50 and p95, and the median of the per-round ratios. "SQL statements" is what the gateway sent to the database for one request, authentication included. The raw SQL is the best hand-written statement over the hourly tables (the layout before rollups: the physical limit without new tables or indexes); it does not authenticate. "Cached answer": the same request with the finalized-report cache as deployed (64 MiB, 60 s), after one request; only answers made entirely of final buckets are cached. ' +
      'The queries (bench/queries.ts): Q1 realm usage over 95 days by hour and feature; Q2 the first 50 workspaces each with its own daily usage per feature over 30 days (additive features), Q2S the same over each workspace\'s subtree; Q3 monthly total and unique rows per workspace × datastream over 3 whole months, finalized only; Q4 the realm key\'s traffic over 24 h with p95 latency per endpoint; Q5 `usageHistory(months: 12)` (raw SQL: the monthly usage per product behind it).',
    '',
  );
  return lines.join('\n');
}

/**
 * `npm run bench:overhead`: what the gateway's per-request machinery (authentication, rate limit,
 * traffic recording, query cost) costs on a trivial query, against a bare graphql-yoga "hello".
 * In-process (`yoga.fetch`), sequential requests, p50/p95 of N requests after a warm-up; on PGlite
 * (in memory) and, when reachable, PostgreSQL. Prints a Markdown table.
 */
import { percentile } from './measure.js';
import { createSchema, createYoga } from 'graphql-yoga';
import { createScratchDatabase } from '../src/db/scratch-database.js';
import { openDatabase, type Database } from '../src/db/database.js';
import { createMemoryRateLimiter, createRedisRateLimiter } from '../src/rate-limit/limiter.js';
import { DEMO_API_KEY, seedDemo } from '../src/db/seed.js';
import { TrafficRecorder } from '../src/traffic/recorder.js';
import { createApp } from '../src/yoga.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000);
const WARMUP = 200;


async function measure(send: () => Promise<Response>) {
  for (let i = 0; i < WARMUP; i++) await (await send()).text();
  const times: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const started = performance.now();
    const response = await send();
    await response.text();
    if (response.status !== 200) throw new Error(`status ${response.status}`);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 0.5), p95: percentile(times, 0.95) };
}

const body = JSON.stringify({ query: '{ viewer { scopes } }' });
const post = (fetcher: (url: string, init: RequestInit) => Promise<Response> | Response, auth = true) => () =>
  Promise.resolve(
    fetcher('http://bench/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${DEMO_API_KEY}` } : {}) },
      body: auth ? body : JSON.stringify({ query: '{ hello }' }),
    }),
  );

async function run(label: string, db: Database) {
  await seedDemo(db.prisma);
  const bare = createYoga({ schema: createSchema({ typeDefs: 'type Query { hello: String! }', resolvers: { Query: { hello: () => 'world' } } }), logging: false });
  const rows: [string, { p50: number; p95: number }][] = [];
  rows.push(['bare graphql-yoga, `{ hello }`', await measure(post((u, i) => bare.fetch(u, i), false))]);
  const plain = createApp({ prisma: db.prisma });
  rows.push(['gateway: auth + query cost', await measure(post((u, i) => plain.fetch(u, i)))]);
  const recorder = new TrafficRecorder(db.prisma);
  const limiter = createMemoryRateLimiter();
  const full = createApp({ prisma: db.prisma, rateLimiter: limiter, trafficRecorder: recorder });
  // The demo key's realm allows 1,000 requests a minute; the benchmark is about cost, not limits.
  await db.prisma.apiKey.updateMany({ data: { tier: 'ENTERPRISE', customRateLimit: 1_000_000 } });
  rows.push(['gateway: + rate limit (memory) + traffic recording', await measure(post((u, i) => full.fetch(u, i)))]);
  if (process.env.REDIS_URL) {
    const redis = createRedisRateLimiter({ redis: process.env.REDIS_URL, keyPrefix: `bench-${Date.now()}` });
    const withRedis = createApp({ prisma: db.prisma, rateLimiter: redis, trafficRecorder: recorder });
    rows.push(['gateway: + rate limit (Redis) + traffic recording', await measure(post((u, i) => withRedis.fetch(u, i)))]);
    await redis.close();
  }
  await recorder.close();
  await limiter.close();
  console.log(`\n### ${label} (${REQUESTS} sequential requests after ${WARMUP} warm-up, in-process yoga.fetch)\n`);
  console.log('| configuration | p50 ms | p95 ms |\n| --- | ---: | ---: |');
  for (const [name, t] of rows) console.log(`| ${name} | ${t.p50.toFixed(3)} | ${t.p95.toFixed(3)} |`);
}

const pglite = await openDatabase({ kind: 'pglite', dir: 'memory://' });
try {
  await run('PGlite (in memory)', pglite);
} finally {
  await pglite.close();
}
const adminUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const scratch = await createScratchDatabase(adminUrl, 'ugw_bench').catch(() => null);
if (scratch) {
  const postgres = await openDatabase({ kind: 'postgres', url: scratch.url });
  try {
    await run('PostgreSQL', postgres);
  } finally {
    await postgres.close();
    await scratch.drop();
  }
}
process.exit(0);

/**
 * `tsx bench/peer-check.ts`: proves the PostGraphile peer answers Q1 and Q2 with the numbers of plain
 * SQL on the same database (DATABASE_URL), then times a few sequential requests of each.
 *
 *   DATABASE_URL=postgresql://… tsx bench/peer-check.ts [--realm <id>] [--requests 20]
 *
 * Realm: --realm, else the one named "Acme Analytics" (the demo seed), else the first by id.
 * Ranges end at the realm's last usage hour: Q1 the 95 days before the hour after it, Q2 the 30 UTC
 * days before the midnight after it. Exits 1 on a mismatch.
 */
import { percentile } from './measure.js';
import { deepStrictEqual } from 'node:assert';
import pg from 'pg';
import {
  canonicalDecimal,
  canonicalInstant,
  compareBucketRows,
  ensurePeerInstalled,
  normalizePeerQ1,
  normalizePeerQ2,
  peerQueries,
  queryPeer,
  startPeer,
  type UsageBucketRow,
} from './peer.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function arg(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : undefined;
}


async function time(n: number, run: () => Promise<unknown>): Promise<{ p50: number; p95: number; min: number }> {
  for (let i = 0; i < 3; i++) await run();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    await run();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 0.5), p95: percentile(times, 0.95), min: times[0]! };
}

function firstDifference(a: UsageBucketRow[], b: UsageBucketRow[]): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (JSON.stringify(a[i]) !== JSON.stringify(b[i])) return `row ${i}: peer ${JSON.stringify(a[i])} vs SQL ${JSON.stringify(b[i])}`;
  }
  return 'none';
}

function compare(name: string, peer: UsageBucketRow[], sql: UsageBucketRow[]): boolean {
  try {
    deepStrictEqual(peer, sql);
    console.log(`${name}: OK (${peer.length} buckets equal)`);
    return true;
  } catch {
    console.log(`${name}: MISMATCH (peer ${peer.length} buckets, SQL ${sql.length}); first difference ${firstDifference(peer, sql)}`);
    return false;
  }
}

const Q1_SQL = `
  SELECT "featureId", date_trunc('hour', "hour") AS bucket, sum(quantity)::text AS quantity
  FROM "UsageHourly"
  WHERE "realmId" = $1 AND "hour" >= $2 AND "hour" < $3
  GROUP BY 1, 2`;

/** Q1 as the gateway means it: SUMs of the non-UNIQUE_COUNT features, distinct keys of the others. */
const Q1_UNIQUE_SQL = `
  SELECT "featureId", "hour" AS bucket, sum(quantity)::text AS quantity
  FROM "UsageHourly"
  WHERE "realmId" = $1 AND "hour" >= $2 AND "hour" < $3 AND "featureId" = ANY($4::uuid[])
  GROUP BY 1, 2
  UNION ALL
  SELECT "featureId", "hour", count(DISTINCT key)::text
  FROM "UsageUniqueKey"
  WHERE "realmId" = $1 AND "hour" >= $2 AND "hour" < $3
  GROUP BY 1, 2`;

const Q2_SQL = `
  WITH ws AS (SELECT id FROM "Workspace" WHERE "realmId" = $1 ORDER BY id LIMIT $4)
  SELECT u."workspaceId", u."featureId",
         date_trunc('day', u."hour" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket,
         sum(u.quantity)::text AS quantity
  FROM ws JOIN "UsageHourly" u ON u."workspaceId" = ws.id
  WHERE u."hour" >= $2 AND u."hour" < $3
  GROUP BY 1, 2, 3`;

interface SqlRow {
  workspaceId?: string;
  featureId: string;
  bucket: Date;
  quantity: string;
}

const toRows = (rows: SqlRow[]): UsageBucketRow[] =>
  rows
    .map((row) => ({
      ...(row.workspaceId === undefined ? {} : { workspaceId: row.workspaceId }),
      featureId: row.featureId,
      bucketStart: canonicalInstant(row.bucket),
      quantity: canonicalDecimal(row.quantity),
    }))
    .sort(compareBucketRows);

async function main(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error('DATABASE_URL is required');
  const requests = Number(arg('requests') ?? 20);

  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  await ensurePeerInstalled();
  const startedAt = performance.now();
  const peer = await startPeer({ databaseUrl });
  console.log(`peer ${peer.url} (pid ${peer.pid}) ready in ${Math.round(performance.now() - startedAt)} ms`);
  let ok = true;
  try {
    const realmId =
      arg('realm') ??
      ((await pool.query<{ id: string }>(`SELECT id FROM "Realm" ORDER BY (name = 'Acme Analytics') DESC, id LIMIT 1`)).rows[0]?.id as string);
    if (!realmId) throw new Error('no realm in the database: seed it first (npm run seed)');
    const last = (await pool.query<{ last: Date | null }>(`SELECT max("hour") AS last FROM "UsageHourly" WHERE "realmId" = $1`, [realmId])).rows[0]
      ?.last;
    if (!last) throw new Error(`realm ${realmId} has no usage`);
    const q1To = new Date(Math.floor(last.getTime() / HOUR) * HOUR + HOUR);
    const q1From = new Date(q1To.getTime() - 95 * DAY);
    const q2To = new Date(Math.floor(last.getTime() / DAY) * DAY + DAY);
    const q2From = new Date(q2To.getTime() - 30 * DAY);
    console.log(`realm ${realmId}; Q1 [${q1From.toISOString()}, ${q1To.toISOString()}); Q2 [${q2From.toISOString()}, ${q2To.toISOString()})`);

    const v1 = peerQueries.q1.variables({ realmId, from: q1From, to: q1To });
    const v2 = peerQueries.q2.variables({ realmId, from: q2From, to: q2To, first: 50 });

    const peerQ1 = normalizePeerQ1(await queryPeer(peer.url, peerQueries.q1, v1));
    const sqlQ1 = toRows((await pool.query<SqlRow>(Q1_SQL, [realmId, q1From, q1To])).rows);
    ok = compare('Q1 realm usage, 95 days, HOUR, by feature', peerQ1, sqlQ1) && ok;

    const peerQ2 = normalizePeerQ2(await queryPeer(peer.url, peerQueries.q2, v2));
    const sqlQ2 = toRows((await pool.query<SqlRow>(Q2_SQL, [realmId, q2From, q2To, 50])).rows);
    ok = compare('Q2 50 workspaces, own usage, 30 days, DAY, by feature', peerQ2, sqlQ2) && ok;

    // The feature-restricted documents: Q1 without UNIQUE_COUNT features, Q2 additive features only.
    const features = (await pool.query<{ id: string; aggregation: string }>(`SELECT id, aggregation::text FROM "Feature" WHERE "realmId" = $1`, [realmId])).rows;
    const notUnique = features.filter((f) => f.aggregation !== 'UNIQUE_COUNT').map((f) => f.id);
    const additive = features.filter((f) => f.aggregation === 'SUM' || f.aggregation === 'COUNT').map((f) => f.id);
    const only = (rows: UsageBucketRow[], ids: string[]) => rows.filter((row) => ids.includes(row.featureId));
    const v1f = peerQueries.q1ForFeatures.variables({ realmId, from: q1From, to: q1To, featureIds: notUnique });
    const v2f = peerQueries.q2ForFeatures.variables({ realmId, from: q2From, to: q2To, featureIds: additive });
    const peerQ1f = normalizePeerQ1(await queryPeer(peer.url, peerQueries.q1ForFeatures, v1f));
    ok = compare(`Q1 for ${notUnique.length} non-UNIQUE_COUNT features`, peerQ1f, only(sqlQ1, notUnique)) && ok;
    const v1u = peerQueries.q1WithUniqueCounts.variables({ realmId, from: q1From, to: q1To, featureIds: notUnique });
    const peerQ1u = normalizePeerQ1(await queryPeer(peer.url, peerQueries.q1WithUniqueCounts, v1u));
    const sqlQ1u = toRows((await pool.query<SqlRow>(Q1_UNIQUE_SQL, [realmId, q1From, q1To, notUnique])).rows);
    ok = compare('Q1 with UNIQUE_COUNT as distinct keys (the gateway\'s Q1)', peerQ1u, sqlQ1u) && ok;
    const peerQ2f = normalizePeerQ2(await queryPeer(peer.url, peerQueries.q2ForFeatures, v2f));
    ok = compare(`Q2 for ${additive.length} SUM/COUNT features`, peerQ2f, only(sqlQ2, additive)) && ok;

    console.log(`\nsequential timings, ${requests} requests after 3 warm-ups (ms):`);
    const rows = [
      ['peer Q1 (HTTP)', await time(requests, () => queryPeer(peer.url, peerQueries.q1, v1))],
      ['raw SQL Q1', await time(requests, () => pool.query(Q1_SQL, [realmId, q1From, q1To]))],
      ['peer Q1 exact', await time(requests, () => queryPeer(peer.url, peerQueries.q1WithUniqueCounts, v1u))],
      ['raw SQL Q1 exact', await time(requests, () => pool.query(Q1_UNIQUE_SQL, [realmId, q1From, q1To, notUnique]))],
      ['peer Q2 (HTTP)', await time(requests, () => queryPeer(peer.url, peerQueries.q2, v2))],
      ['raw SQL Q2', await time(requests, () => pool.query(Q2_SQL, [realmId, q2From, q2To, 50]))],
      ['peer Q2 additive', await time(requests, () => queryPeer(peer.url, peerQueries.q2ForFeatures, v2f))],
    ] as const;
    for (const [name, t] of rows) console.log(`  ${name.padEnd(17)} p50 ${t.p50.toFixed(1).padStart(7)}  p95 ${t.p95.toFixed(1).padStart(7)}  min ${t.min.toFixed(1).padStart(7)}`);
  } finally {
    await peer.stop();
    await pool.end();
  }
  console.log(ok ? '\nOK' : '\nMISMATCH');
  if (!ok) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});

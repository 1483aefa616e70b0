import pg from 'pg';
import type { Aggregation } from '../src/generated/prisma/enums.js';
import { buildUsageSql, type UsageQuery } from '../src/usage/usage-sql.js';
import { buildMonthlyUsageSql } from '../src/billing/monthly-usage-sql.js';

/**
 * `npx tsx bench/rollups-ab.ts [Q2 Q3 Q3-12mo Q5]`: the usage statements behind bench queries, with and
 * without rollups, alternated 7 times on the pg-S bench database (run `npm run rollup` on it first).
 */
const client = new pg.Client({ connectionString: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/ugw_bench_s' });
await client.connect();
const realm = (await client.query(`SELECT id, "timeZone" FROM "Realm" WHERE slug = 'bench-realm-0'`)).rows[0];
const features: { id: string; key: string; aggregation: Aggregation }[] = (await client.query(`SELECT id, key, aggregation FROM "Feature" WHERE "realmId" = $1 ORDER BY key`, [realm.id])).rows;
const workspaces = (await client.query(`SELECT id FROM "Workspace" WHERE "realmId" = $1 ORDER BY id LIMIT 50`, [realm.id])).rows.map((r: { id: string }) => r.id);
const anchor = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate()));
const DAY = 86_400_000;
const base = { realmId: realm.id, scopeWorkspaceId: null, timeZone: 'UTC', filter: {}, totals: false } as const;
const byKey = (k: string) => features.find((f) => f.key === k)!;
const q3From = new Date(Date.UTC(anchor.getUTCFullYear(), anchor.getUTCMonth() - 3, 1));
const q3To = new Date(Date.UTC(anchor.getUTCFullYear(), anchor.getUTCMonth(), 1));
const queries: Record<string, (on: boolean) => { sql: string; params: unknown[] }> = {
  Q2: (on) => buildUsageSql({ ...base, parentKind: 'WORKSPACE_SELF', parentIds: workspaces, range: { from: new Date(anchor.getTime() - 30 * DAY), to: anchor }, granularity: 'DAY', groupBy: [], features: features.filter((f) => ['SUM', 'COUNT'].includes(f.aggregation)), rollupTimeZone: on ? 'UTC' : null } as UsageQuery),
  Q3: (on) => buildUsageSql({ ...base, parentKind: 'REALM', parentIds: [realm.id], range: { from: q3From, to: q3To }, granularity: 'MONTH', groupBy: ['WORKSPACE', 'DATASTREAM'], features: [byKey('rows.total'), byKey('rows.unique')], rollupTimeZone: on ? 'UTC' : null } as UsageQuery),
  'Q3-12mo': (on) => buildUsageSql({ ...base, parentKind: 'REALM', parentIds: [realm.id], range: { from: new Date(Date.UTC(anchor.getUTCFullYear(), anchor.getUTCMonth() - 12, 1)), to: q3To }, granularity: 'MONTH', groupBy: ['WORKSPACE', 'DATASTREAM'], features: [byKey('rows.total'), byKey('rows.unique')], rollupTimeZone: on ? 'UTC' : null } as UsageQuery),
  Q5: (on) => {
    const months = Array.from({ length: 12 }, (_, i) => ({ from: new Date(Date.UTC(anchor.getUTCFullYear(), anchor.getUTCMonth() - 11 + i, 1)), to: new Date(Date.UTC(anchor.getUTCFullYear(), anchor.getUTCMonth() - 10 + i, 1)) }));
    return buildMonthlyUsageSql({ realmId: realm.id, months, to: anchor, features, rollupTimeZone: on ? 'UTC' : null });
  },
};
const only = process.argv.slice(2);
for (const [name, build] of Object.entries(queries)) {
  if (only.length && !only.includes(name)) continue;
  const times: Record<string, number[]> = { off: [], on: [] };
  let rows: Record<string, string> = {};
  for (let i = 0; i < 7; i++) {
    for (const mode of ['off', 'on'] as const) {
      const { sql, params } = build(mode === 'on');
      const t = performance.now();
      const r = await client.query(sql, params);
      times[mode]!.push(performance.now() - t);
      rows[mode] = JSON.stringify(r.rows.map((x) => JSON.stringify(x)).sort());
    }
  }
  const med = (a: number[]) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)]!.toFixed(1);
  console.log(`${name}: off p50 ${med(times.off!)} ms, on p50 ${med(times.on!)} ms, same rows: ${rows.off === rows.on}`);
}
await client.end();

/** The PostGraphile side of `npm run bench`: Q1 and Q2 latency and Q2 throughput, numbers checked. */
import pg from 'pg';
import { FEATURE_DEFS, type GeneratedData } from './generate.js';
import { sequentialLatency, median, type Latency, type Throughput } from './measure.js';
import { ensurePeerInstalled, normalizePeerQ1, normalizePeerQ2, peerQueries, peerVersions, queryPeer, startPeer, type UsageBucketRow } from './peer.js';
import { sortRows, type BenchQuery, type Row } from './queries.js';

export interface PeerResult {
  versions: Record<string, string>;
  latency: { id: string; verified: boolean; rows: number; note?: string; latency: Latency }[];
  throughput: { label: string; result: Throughput }[];
}

export interface PeerRunOptions {
  databaseUrl: string;
  data: GeneratedData;
  queries: BenchQuery[];
  runs: number;
  rounds: number;
  load(base: string, body: unknown): Promise<Throughput>;
}

const asRows = (rows: UsageBucketRow[], withWorkspace: boolean): Row[] =>
  sortRows(rows.map((r) => ({ ...(withWorkspace ? { workspace: r.workspaceId ?? null } : {}), feature: r.featureId, start: r.bucketStart, quantity: r.quantity })));

/**
 * Q1 and Q2 through PostGraphile v5 + pg-aggregates (on the Node 22 of bench/peer), each first
 * checked against the same hand-written SQL as the gateway, then timed sequentially over HTTP
 * and, for Q2 and a trivial query, load-tested by the caller's autocannon.
 */
export async function runPeer(options: PeerRunOptions): Promise<PeerResult> {
  await ensurePeerInstalled();
  const realm = options.data.realms[0]!;
  const pick = (aggregations: string[]) => realm.featureIds.filter((_, i) => aggregations.includes(FEATURE_DEFS[i]!.aggregation));
  const byId = (id: string) => options.queries.find((q) => q.id === id)!;
  const peer = await startPeer({ databaseUrl: options.databaseUrl });
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: 1 });
  try {
    const q1 = byId('Q1');
    const q2 = byId('Q2');
    const cases = [
      {
        id: 'Q1',
        document: peerQueries.q1WithUniqueCounts,
        variables: peerQueries.q1WithUniqueCounts.variables({ realmId: realm.id, from: String(q1.sql.values[1]), to: String(q1.sql.values[2]), featureIds: pick(['SUM', 'COUNT', 'MAX', 'LATEST']) }),
        normalize: (result: unknown) => asRows(normalizePeerQ1(result), false),
        expected: q1,
      },
      {
        id: 'Q2',
        document: peerQueries.q2ForFeatures,
        variables: peerQueries.q2ForFeatures.variables({ realmId: realm.id, from: String(q2.sql.values[1]), to: String(q2.sql.values[2]), first: 50, featureIds: pick(['SUM', 'COUNT']) }),
        normalize: (result: unknown) => asRows(normalizePeerQ2(result), true),
        expected: q2,
      },
    ];
    const latency: PeerResult['latency'] = [];
    for (const c of cases) {
      const rows = c.normalize(await queryPeer(peer.url, c.document, c.variables));
      const expected = c.expected.fromSql((await pool.query(c.expected.sql.text, c.expected.sql.values)).rows);
      const verified = JSON.stringify(rows) === JSON.stringify(expected) && rows.length > 0;
      if (!verified) console.error(`peer ${c.id}: numbers differ from the SQL (${rows.length} vs ${expected.length} rows)`);
      const samples: Latency[] = [];
      for (let round = 0; round < options.rounds; round++) samples.push(await sequentialLatency(() => queryPeer(peer.url, c.document, c.variables), options.runs));
      const p50 = median(samples.map((s) => s.p50));
      console.log(`peer ${c.id}: ${verified ? 'same numbers' : 'MISMATCH'}, p50 ${p50.toFixed(1)} ms`);
      latency.push({ id: c.id, verified, rows: rows.length, latency: { p50, p95: median(samples.map((s) => s.p95)), runs: options.runs * options.rounds } });
    }
    const base = peer.url.replace(/\/graphql$/, '');
    const q2Case = cases[1]!;
    const throughputs = { trivial: [] as Throughput[], q2: [] as Throughput[] };
    for (let round = 0; round < options.rounds; round++) {
      throughputs.trivial.push(await options.load(base, { query: '{ __typename }' }));
      throughputs.q2.push(await options.load(base, { query: q2Case.document.query, operationName: q2Case.document.operationName, variables: q2Case.variables }));
    }
    const mid = (list: Throughput[]) => list.slice().sort((a, b) => a.requestsPerSecond - b.requestsPerSecond)[Math.floor(list.length / 2)]!;
    return {
      versions: peerVersions(),
      latency,
      throughput: [
        { label: 'PostGraphile `{ __typename }`', result: mid(throughputs.trivial) },
        { label: 'PostGraphile Q2 (dashboard, pg-aggregates)', result: mid(throughputs.q2) },
      ],
    };
  } finally {
    await pool.end();
    await peer.stop();
  }
}

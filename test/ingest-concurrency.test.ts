import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../src/global-id.js';
import { useIngestEndpoint } from '../src/ingest/http.js';
import { reconcile } from '../src/ingest/reconcile.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from './helpers/database.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

/**
 * Overlapping NDJSON uploads at the same time, each in its own order: every one answers 200, and
 * the buckets hold each event once. PGlite has one connection (transactions cannot interleave),
 * so the race only exists on PostgreSQL.
 */

const NOW = new Date('2026-06-15T12:00:00Z');
const UPLOADS = 8;
const POOL = 2400;

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;

beforeAll(async () => {
  db = await createTestDatabase();
  realm = await createUsageRealm(db.prisma, 'UTC');
  const now = () => NOW;
  // Small batches: more transactions per upload, more chances to interleave.
  app = createApp({ prisma: db.prisma, now, plugins: [useIngestEndpoint({ prisma: db.prisma, now, batchSize: 400 })] });
});
afterAll(() => db?.destroy());

/** A seeded shuffle (mulberry32): each upload has its own, reproducible order. */
function shuffled<T>(items: T[], seed: number): T[] {
  let state = seed;
  const random = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

describe.runIf(testDatabaseKind() === 'postgres')('overlapping uploads', () => {
  it(`${UPLOADS} parallel uploads of overlapping events in different orders all answer 200 and count every event once`, async () => {
    const workspaces = [realm.tree.root, realm.tree.left, realm.tree.right, realm.tree.leaf].map((w) => encodeId('Workspace', w.id));
    const pool = Array.from({ length: POOL }, (_, i) => {
      const feature = ['tx', 'rows', 'spaces'][i % 3]!;
      return {
        idempotencyKey: `o-${i}`,
        feature,
        timestamp: new Date(Date.UTC(2026, 5, 15, 2 + (i % 6), i % 60)).toISOString(),
        quantity: feature === 'rows' ? undefined : `${i % 97}.${String(i % 1000).padStart(3, '0')}`,
        uniqueKey: feature === 'rows' ? `row-${i % 50}` : undefined,
        workspaceId: workspaces[i % 4],
        billingTag: `tag-${i % 5}`,
      };
    });
    // Every upload holds three quarters of the pool (each event is in six of the eight), shuffled.
    const uploads = Array.from({ length: UPLOADS }, (_, u) =>
      shuffled(
        pool.filter((_, i) => (i + u) % 4 !== 0),
        u + 1,
      ),
    );
    const responses = await Promise.all(
      uploads.map(async (events) => {
        const response = await app.fetch('http://gateway.test/ingest', {
          method: 'POST',
          headers: { authorization: `Bearer ${realm.admin.key}`, 'content-type': 'application/x-ndjson' },
          body: events.map((e) => JSON.stringify(e)).join('\n'),
        });
        return { status: response.status, body: (await response.json()) as { accepted: number; duplicates: number; rejected: number } };
      }),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(UPLOADS).fill(200));
    expect(responses.reduce((sum, r) => sum + r.body.accepted, 0)).toBe(POOL);
    expect(responses.reduce((sum, r) => sum + r.body.duplicates, 0)).toBe(uploads.reduce((sum, u) => sum + u.length, 0) - POOL);
    expect(responses.every((r) => r.body.rejected === 0)).toBe(true);

    expect(await db.prisma.usageEvent.count({ where: { realmId: realm.realm.id } })).toBe(POOL);
    const report = await reconcile(db.prisma, { realmId: realm.realm.id });
    expect(report.differences).toEqual([]);
    expect(report.uniqueKeyDifferences).toEqual([]);
    // The SUM feature's total, exact: in thousandths.
    const expected = pool.filter((e) => e.feature === 'tx').reduce((sum, e) => sum + BigInt(e.quantity!.replace('.', '')), 0n);
    const [stored] = await db.prisma.$queryRawUnsafe<{ total: string }[]>(
      `SELECT (sum(quantity) * 1000)::bigint::text AS total FROM "UsageHourly" WHERE "realmId" = $1::uuid AND "featureId" = $2::uuid`,
      realm.realm.id,
      realm.features.tx.id,
    );
    expect(BigInt(stored!.total)).toBe(expected);
  });
});

/**
 * DATABASE_READ_URL against a real streaming replica: a test-owned primary (initdb, wal_level
 * replica) and a replica made from it with `pg_basebackup -R`, both on free ports of 127.0.0.1 in a
 * temporary directory, torn down in afterAll. The shared PostgreSQL at :5432 is never touched.
 *
 * Reads that went to the replica are told apart by pausing its replay (`pg_wal_replay_pause()`):
 * what the primary wrote meanwhile is on the primary only.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, appendFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { openDatabase, type Database } from '../src/db/database.js';
import { replicaFreshness, replicaHealth } from '../src/db/read-replica.js';
import { useUsageExportEndpoints } from '../src/exports/http.js';
import { useRestRoutes } from '../src/rest/http.js';
import { encodeId } from '../src/global-id.js';
import { useHealthCheck } from '../src/observability.js';
import { createApp, type App } from '../src/yoga.js';
import { testDatabaseKind } from './helpers/database.js';
import { createKey } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';
import { runUntilExit, startServer } from './server/server-process.js';

/** The newest installed PostgreSQL's binaries (Debian layout), or why they cannot be used. */
function postgresBinaries(): { bin: string } | { reason: string } {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'pg_basebackup'))) : [];
  if (versions.length === 0) return { reason: `no PostgreSQL server binaries under ${root}` };
  const version = versions.sort((a, b) => Number(b) - Number(a))[0]!;
  const uid = process.getuid?.();
  if (uid !== 0 && os.userInfo().username !== 'postgres') return { reason: 'PostgreSQL refuses to run as this user, and only root can switch to postgres' };
  return { bin: path.join(root, version, 'bin') };
}

const binaries = postgresBinaries();
const skipReason = testDatabaseKind() !== 'postgres' ? 'runs in the postgres project only' : 'reason' in binaries ? binaries.reason : null;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Two test-owned clusters: a primary and its streaming replica. */
class ReplicatedCluster {
  private constructor(
    readonly dir: string,
    private readonly bin: string,
    readonly primaryPort: number,
    readonly replicaPort: number,
  ) {}

  private static run(bin: string, tool: string, args: string[]) {
    const command = path.join(bin, tool);
    const asRoot = process.getuid?.() === 0;
    execFileSync(asRoot ? 'runuser' : command, asRoot ? ['-u', 'postgres', '--', command, ...args] : args, { stdio: 'pipe', timeout: 60_000 });
  }

  static async create(bin: string): Promise<ReplicatedCluster> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ugw-replica-'));
    if (process.getuid?.() === 0) execFileSync('chown', ['postgres', dir]);
    const cluster = new ReplicatedCluster(dir, bin, await freePort(), await freePort());
    try {
      const primary = path.join(dir, 'primary');
      ReplicatedCluster.run(bin, 'initdb', ['-D', primary, '-A', 'trust', '-U', 'postgres', '--no-sync']);
      // initdb's pg_hba.conf already trusts replication connections from 127.0.0.1.
      appendFileSync(
        path.join(primary, 'postgresql.conf'),
        [
          `port = ${cluster.primaryPort}`,
          "listen_addresses = '127.0.0.1'",
          `unix_socket_directories = '${dir}'`,
          'wal_level = replica',
          'max_wal_senders = 4',
          // A throwaway cluster: no durability needed, and it starts faster.
          'fsync = off',
          'full_page_writes = off',
          'shared_buffers = 32MB',
          '',
        ].join('\n'),
      );
      cluster.pgCtl('primary', 'start');
      ReplicatedCluster.run(bin, 'pg_basebackup', ['-h', '127.0.0.1', '-p', String(cluster.primaryPort), '-U', 'postgres', '-D', path.join(dir, 'replica'), '-R', '-X', 'stream', '-c', 'fast']);
      cluster.pgCtl('replica', 'start');
      return cluster;
    } catch (error) {
      cluster.destroy();
      throw error;
    }
  }

  pgCtl(which: 'primary' | 'replica', action: 'start' | 'stop') {
    const dataDir = path.join(this.dir, which);
    const args =
      action === 'start'
        ? ['-D', dataDir, '-l', path.join(this.dir, `${which}.log`), '-o', `-p ${which === 'primary' ? this.primaryPort : this.replicaPort}`, '-w', 'start']
        : ['-D', dataDir, '-m', 'immediate', '-w', 'stop'];
    ReplicatedCluster.run(this.bin, 'pg_ctl', args);
  }

  url(which: 'primary' | 'replica') {
    return `postgresql://postgres@127.0.0.1:${which === 'primary' ? this.primaryPort : this.replicaPort}/postgres`;
  }

  destroy() {
    for (const which of ['replica', 'primary'] as const) {
      try {
        if (existsSync(path.join(this.dir, which, 'postmaster.pid'))) this.pgCtl(which, 'stop');
      } catch {
        // Already stopped.
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const NOW = new Date('2026-06-10T12:00:00Z');
const RANGE = 'range: { from: "2026-06-10T00:00:00Z", to: "2026-06-11T00:00:00Z" }';
const REPORT = `query ($id: ID!) { node(id: $id) { ... on Feature { usage(${RANGE}) { totals { quantity } dataRefreshedAt } } } }`;
const INGEST = `mutation ($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted rejected { code } } }`;
const FINALIZE = `mutation ($id: ID!) { finalizeUsage(feature: $id, through: "2026-06-10T11:00:00Z") { usage(${RANGE}) { totals { quantity } dataRefreshedAt } } }`;

describe.skipIf(skipReason !== null)(`read replica (DATABASE_READ_URL)${skipReason ? ` — skipped: ${skipReason}` : ''}`, () => {
  let cluster: ReplicatedCluster;
  let primary: Database;
  let replica: Database;
  let app: App;
  let primaryOnly: App;
  let realm: Awaited<ReturnType<typeof createUsageRealm>>;
  let featureId: string;
  const replicaErrors: unknown[] = [];
  let counter = 0;

  /** Waits until the replica has replayed everything the primary has written so far. */
  async function caughtUp() {
    const [current] = await primary.prisma.$queryRawUnsafe<{ lsn: string }[]>('SELECT pg_current_wal_lsn()::text AS lsn');
    const lsn = current!.lsn;
    for (let attempt = 0; attempt < 500; attempt++) {
      const [row] = await replica.prisma.$queryRawUnsafe<{ done: boolean }[]>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done', lsn);
      if (row?.done) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`the replica did not replay up to ${lsn}`);
  }

  async function primaryClock(): Promise<Date> {
    const [row] = await primary.prisma.$queryRawUnsafe<{ at: Date }[]>('SELECT clock_timestamp() AS at');
    return row!.at;
  }

  async function ingest(quantity: string) {
    const { body } = await graphql(app, INGEST, {
      key: realm.admin.key,
      variables: { events: [{ idempotencyKey: `replica-${++counter}`, feature: 'tx', timestamp: '2026-06-10T09:30:00Z', quantity }] },
    });
    expect(body.data?.ingestUsage).toEqual({ accepted: 1, rejected: [] });
  }

  async function report(on: App = app, key = realm.admin.key) {
    const response = await graphql(on, REPORT, { key, variables: { id: featureId } });
    expect(response.body.errors).toBeUndefined();
    const usage = response.body.data.node.usage;
    return {
      total: usage.totals.map((t: { quantity: string }) => t.quantity).join(',') || '0',
      dataRefreshedAt: new Date(usage.dataRefreshedAt),
      freshnessChecks: response.statements.filter((sql) => sql.includes('pg_last_wal_replay_lsn')).length,
    };
  }

  async function withReplayPaused<T>(work: () => Promise<T>): Promise<T> {
    await replica.prisma.$queryRawUnsafe('SELECT pg_wal_replay_pause()::text');
    try {
      return await work();
    } finally {
      await replica.prisma.$queryRawUnsafe('SELECT pg_wal_replay_resume()::text');
    }
  }

  beforeAll(async () => {
    cluster = await ReplicatedCluster.create((binaries as { bin: string }).bin);
    primary = await openDatabase({ kind: 'postgres', url: cluster.url('primary') });
    replica = await openDatabase({ kind: 'postgres', url: cluster.url('replica') }, { migrate: false });
    realm = await createUsageRealm(primary.prisma, 'UTC');
    featureId = encodeId('Feature', realm.features.tx.id);
    const readPrisma = replica.prisma;
    app = createApp({ prisma: primary.prisma, readPrisma, now: () => NOW, onReplicaError: (error) => replicaErrors.push(error) });
    primaryOnly = createApp({ prisma: primary.prisma, now: () => NOW });
    await ingest('5');
    await caughtUp();
  });

  afterAll(async () => {
    await replica?.close().catch(() => {});
    await primary?.close().catch(() => {});
    cluster?.destroy();
  });

  it('is a real streaming replica', async () => {
    const [row] = await replica.prisma.$queryRawUnsafe<{ inRecovery: boolean; status: string }[]>(
      'SELECT pg_is_in_recovery() AS "inRecovery", (SELECT status FROM pg_stat_wal_receiver) AS status',
    );
    expect(row).toEqual({ inRecovery: true, status: 'streaming' });
  });

  it('reads a report from the replica: while its replay is paused, a write on the primary is not in it yet, and dataRefreshedAt is older than the write', async () => {
    const before = await report();
    expect(before.total).toBe('5');
    expect(before.freshnessChecks).toBe(1);
    const { during, writtenAfter } = await withReplayPaused(async () => {
      const writtenAfter = await primaryClock();
      await ingest('7');
      return { during: await report(), writtenAfter };
    });
    expect(during.total).toBe('5');
    expect(during.dataRefreshedAt.getTime()).toBeLessThanOrEqual(writtenAfter.getTime());
    await caughtUp();
    const after = await report();
    expect(after.total).toBe('12');
    expect(after.dataRefreshedAt.getTime()).toBeGreaterThan(writtenAfter.getTime());
  });

  it('answers a mutation from the primary: its payload sees its own write while the replica lags', async () => {
    await withReplayPaused(async () => {
      await ingest('100');
      const query = await report();
      const { body, statements } = await graphql(app, FINALIZE, { key: realm.admin.key, variables: { id: featureId } });
      expect(body.errors).toBeUndefined();
      expect(query.total).not.toBe(body.data.finalizeUsage.usage.totals[0].quantity);
      expect(body.data.finalizeUsage.usage.totals).toEqual([{ quantity: String(Number(query.total) + 100) }]);
      // On the primary the data is as of the request.
      expect(body.data.finalizeUsage.usage.dataRefreshedAt).toBe(NOW.toISOString());
      expect(statements.filter((sql) => sql.includes('pg_last_wal_replay_lsn'))).toEqual([]);
    });
    await caughtUp();
  });

  it('authenticates on the primary: a key created and revoked while the replica lags works, then fails at once', async () => {
    await withReplayPaused(async () => {
      const created = await createKey(primary.prisma, realm.realm.id);
      expect((await report(app, created.key)).total).toMatch(/^\d+$/);
      const revoke = await graphql(app, `mutation ($id: ID!) { revokeApiKey(id: $id) { userErrors { code } } }`, {
        key: realm.admin.key,
        variables: { id: encodeId('ApiKey', created.record.id) },
      });
      expect(revoke.body.data.revokeApiKey.userErrors).toEqual([]);
      const after = await graphql(app, REPORT, { key: created.key, variables: { id: featureId } });
      expect(after.status).toBe(401);
      expect(after.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    });
    await caughtUp();
  });

  it('reads everything from the primary without DATABASE_READ_URL: no freshness check, data as of the request', async () => {
    await withReplayPaused(async () => {
      await ingest('1000');
      const viaReplica = await report();
      const viaPrimary = await report(primaryOnly);
      expect(Number(viaPrimary.total)).toBe(Number(viaReplica.total) + 1000);
      expect(viaPrimary.freshnessChecks).toBe(0);
      expect(viaPrimary.dataRefreshedAt).toEqual(NOW);
    });
    await caughtUp();
    expect(loadConfig({ DATABASE_URL: cluster.url('primary') }).databaseReadTarget).toBeUndefined();
  });

  it('the REST routes read the replica and say how fresh in Data-Refreshed-At; exports too', async () => {
    const plugins = [
      useRestRoutes({ prisma: primary.prisma, readPrisma: replica.prisma, now: () => NOW, onReplicaError: (error) => replicaErrors.push(error) }),
      useUsageExportEndpoints({ prisma: primary.prisma, readPrisma: replica.prisma, now: () => NOW, onReplicaError: (error) => replicaErrors.push(error) }),
    ];
    const routes = createApp({ prisma: primary.prisma, now: () => NOW, plugins });
    const realmId = encodeId('Realm', realm.realm.id);
    const get = async (path: string) => {
      const response = await routes.fetch(`http://gateway.test${path}`, { headers: { authorization: `Bearer ${realm.admin.key}` } });
      expect(response.status).toBe(200);
      return { text: await response.text(), refreshedAt: new Date(response.headers.get('data-refreshed-at')!) };
    };
    const both = async () => ({
      rest: await get(`/api/v1/billable-usage?realmId=${realmId}&startDate=2026-06-10T00:00:00&endDate=2026-06-11T00:00:00`),
      csv: await get('/exports/usage/daily.csv?start=2026-06-10&end=2026-06-10'),
    });
    await caughtUp();
    const before = await both();
    expect(before.rest.text).toContain('"items"');
    const { during, writtenAfter } = await withReplayPaused(async () => {
      const writtenAfter = await primaryClock();
      await ingest('20000');
      return { during: await both(), writtenAfter };
    });
    for (const answer of ['rest', 'csv'] as const) {
      expect(during[answer].text).toBe(before[answer].text);
      expect(during[answer].refreshedAt.getTime()).toBeLessThanOrEqual(writtenAfter.getTime());
    }
    await caughtUp();
    const after = await both();
    for (const answer of ['rest', 'csv'] as const) {
      expect(after[answer].text).not.toBe(before[answer].text);
      expect(after[answer].refreshedAt.getTime()).toBeGreaterThan(writtenAfter.getTime());
    }
    // Without a replica: the primary, as of the request.
    const onPrimary = createApp({ prisma: primary.prisma, now: () => NOW, plugins: [useRestRoutes({ prisma: primary.prisma, now: () => NOW })] });
    const direct = await onPrimary.fetch(`http://gateway.test/api/v1/billable-usage?realmId=${realmId}&startDate=2026-06-10T00:00:00&endDate=2026-06-11T00:00:00`, {
      headers: { authorization: `Bearer ${realm.admin.key}` },
    });
    expect(direct.headers.get('data-refreshed-at')).toBe(NOW.toISOString());
    expect(await direct.text()).toBe(after.rest.text);
    expect(replicaErrors).toEqual([]);
  });

  it('reports the replica lag on /healthz', async () => {
    const health = createApp({ prisma: primary.prisma, plugins: [useHealthCheck({ database: 'postgres', check: () => primary.prisma.$queryRawUnsafe('SELECT 1'), replica: () => replicaHealth(replica.prisma) })] });
    const body = async () => (await health.fetch('http://gateway.test/healthz')).json();
    // Caught up with all it received while streaming: no lag (background WAL of the primary, such as a
    // checkpoint's, may arrive between the two reads: then it is caught up again a moment later).
    await caughtUp();
    let answer = await body();
    for (let attempt = 0; attempt < 100 && answer.replica?.lagSeconds !== 0; attempt++) answer = await body();
    expect(answer).toEqual({ status: 'ok', database: 'postgres', replica: { status: 'ok', lagSeconds: 0 } });
    const lagging = await withReplayPaused(async () => {
      await ingest('1');
      // The replica has received the write (it is streaming) but not replayed it.
      for (let attempt = 0; attempt < 200; attempt++) {
        const [row] = await replica.prisma.$queryRawUnsafe<{ behind: boolean }[]>('SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn() AS behind');
        if (row?.behind) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return body();
    });
    expect(lagging.status).toBe('ok');
    expect(lagging.replica.status).toBe('ok');
    expect(lagging.replica.lagSeconds).toBeGreaterThan(0);
    await caughtUp();
  });

  it('the server: DATABASE_READ_URL wired in; a malformed or unreachable one stops the start with one line and exit code 1', async () => {
    const settings = async (readUrl: string) => ({ DATABASE_URL: cluster.url('primary'), DATABASE_READ_URL: readUrl, PORT: String(await freePort()), SEED_DEMO: 'false', LOG_LEVEL: 'info' });
    const malformed = await runUntilExit(await settings('postgres//127.0.0.1/postgres'));
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toEqual([expect.stringMatching(/^error: DATABASE_READ_URL is not a valid URL; expected postgresql:\/\//)]);
    const unreachable = await runUntilExit(await settings(`postgresql://postgres@127.0.0.1:${await freePort()}/postgres`));
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toEqual([expect.stringMatching(/^error: cannot connect to the read replica at 127\.0\.0\.1:\d+\/postgres \(.*\); check DATABASE_READ_URL or unset it$/)]);

    const env = await settings(cluster.url('replica'));
    const server = startServer(env);
    try {
      await server.waitForLine(/listening on/);
      expect(server.logEntries().map((entry) => entry.msg)).toContain(`reports read the replica at 127.0.0.1:${cluster.replicaPort}/postgres`);
      const health = await (await fetch(`http://127.0.0.1:${env.PORT}/healthz`)).json();
      expect(health).toEqual({ status: 'ok', database: 'postgres', replica: { status: 'ok', lagSeconds: expect.any(Number) } });
      const response = await fetch(`http://127.0.0.1:${env.PORT}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${realm.admin.key}` },
        body: JSON.stringify({ query: REPORT, variables: { id: featureId } }),
      });
      const body = await response.json();
      expect(body.errors).toBeUndefined();
      expect(body.data.node.usage.totals).toHaveLength(1);
    } finally {
      await server.stop();
    }
  });

  it('falls back to the primary when the replica does not answer', async () => {
    expect(replicaErrors).toEqual([]);
    cluster.pgCtl('replica', 'stop');
    await ingest('3');
    const fallback = await report();
    const direct = await report(primaryOnly);
    expect(fallback.total).toBe(direct.total);
    expect(fallback.dataRefreshedAt).toEqual(NOW);
    const errorsBefore = replicaErrors.length;
    const rest = createApp({ prisma: primary.prisma, now: () => NOW, plugins: [useRestRoutes({ prisma: primary.prisma, readPrisma: replica.prisma, now: () => NOW, onReplicaError: (error) => replicaErrors.push(error) })] });
    const restAnswer = await rest.fetch(`http://gateway.test/api/v1/billable-usage?realmId=${encodeId('Realm', realm.realm.id)}&startDate=2026-06-10T00:00:00&endDate=2026-06-11T00:00:00`, {
      headers: { authorization: `Bearer ${realm.admin.key}` },
    });
    expect(restAnswer.status).toBe(200);
    expect(restAnswer.headers.get('data-refreshed-at')).toBe(NOW.toISOString());
    expect(replicaErrors.length).toBe(errorsBefore + 1);
    expect(replicaErrors.length).toBeGreaterThan(0);
    expect(await replicaHealth(replica.prisma)).toEqual({ status: 'error', error: 'replica unavailable' });
    // A DATABASE_READ_URL that names a primary: complete up to now.
    expect((await replicaFreshness(primary.prisma))?.lagSeconds).toBe(0);
  });
});

describe.runIf(testDatabaseKind() === 'pglite')('DATABASE_READ_URL settings', () => {
  it.each([
    [{ DATABASE_URL: 'postgresql://db/x', DATABASE_READ_URL: 'not a url' }, /^DATABASE_READ_URL is not a valid URL; expected postgresql:\/\/.*unset it to read everything from DATABASE_URL$/],
    [{ DATABASE_URL: 'postgresql://db/x', DATABASE_READ_URL: 'mysql://replica/x' }, /^DATABASE_READ_URL must start with postgresql:\/\/ \(got mysql:\/\/\)/],
    [{ DATABASE_URL: 'postgresql://db/x', DATABASE_READ_URL: 'pglite:./data' }, /^DATABASE_READ_URL must be a postgresql:\/\/ URL of a streaming replica/],
    [{ DATABASE_READ_URL: 'postgresql://replica/x' }, /^DATABASE_READ_URL needs DATABASE_URL to be a PostgreSQL URL too/],
  ])('rejects %o with a one-line ConfigError', (env, message) => {
    let thrown: unknown;
    try {
      loadConfig(env);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as Error).message).toMatch(message);
    expect((thrown as Error).message).not.toContain('\n');
  });

  it('accepts a replica URL beside a PostgreSQL DATABASE_URL', () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://db/x', DATABASE_READ_URL: 'postgresql://reader@replica:5433/x?schema=s' });
    expect(config.databaseReadTarget).toEqual({ kind: 'postgres', url: 'postgresql://reader@replica:5433/x?schema=s', schema: 's' });
    expect(loadConfig({ DATABASE_URL: 'postgresql://db/x' }).databaseReadTarget).toBeUndefined();
  });
});

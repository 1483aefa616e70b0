/**
 * DATABASE_READ_URL: report reads (usage reports, billing history, traffic, REST routes, exports) go to a
 * streaming replica; writes, authentication and everything a mutation answers stay on the primary.
 *
 * A query operation asks the replica, before anything else, up to when its data is complete
 * (`dataRefreshedAt`): replay only moves forward, so the report's rows, read after, are at least
 * that fresh. A replica that does not answer, or cannot say how fresh it is, is not used: that
 * request reads the primary.
 */
import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Context } from '../context.js';
import type { PrismaClient } from '../generated/prisma/client.js';

export interface ReplicaFreshness {
  /** Every transaction committed on the primary by then is visible on the replica. */
  dataRefreshedAt: Date;
  /** The replica's clock minus `dataRefreshedAt`, in seconds (0 when it has replayed all it received while streaming). */
  lagSeconds: number;
}

/**
 * Caught up (replayed all it received) while its WAL receiver streams: complete up to now. Behind
 * (replay paused or slow, the primary unreachable): complete up to the commit time of the last
 * transaction it replayed. pg_stat_wal_receiver hides `status` from roles without
 * pg_read_all_stats: then a running receiver counts as streaming.
 */
export const FRESHNESS_SQL = `
SELECT CASE
         WHEN NOT pg_is_in_recovery() THEN now()
         WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn()
              AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE coalesce(status, 'streaming') = 'streaming') THEN now()
         ELSE pg_last_xact_replay_timestamp()
       END AS "refreshedAt",
       now() AS "now"`;

/** How fresh the data `prisma` reads is; null when the replica cannot say (nothing replayed since it started, while behind). */
export async function replicaFreshness(prisma: PrismaClient): Promise<ReplicaFreshness | null> {
  const [row] = await prisma.$queryRawUnsafe<{ refreshedAt: Date | null; now: Date }[]>(FRESHNESS_SQL);
  if (!row?.refreshedAt) return null;
  const lagMs = Math.max(0, row.now.getTime() - row.refreshedAt.getTime());
  return { dataRefreshedAt: row.refreshedAt, lagSeconds: lagMs / 1000 };
}

export interface ReadReplicaOptions {
  primary: PrismaClient;
  replica: PrismaClient;
  /** A replica that failed a request's freshness check (the request then read the primary). */
  onReplicaError?: (error: unknown) => void;
}

/** On REST and export answers: usage committed before this instant is in the answer (GraphQL's `UsageReport.dataRefreshedAt`). */
export const DATA_REFRESHED_AT_HEADER = 'data-refreshed-at';

/** Where one request's report reads go: the replica and how fresh it is, or the primary when the replica cannot say. */
export async function readTarget(options: ReadReplicaOptions): Promise<Pick<Context, 'readPrisma' | 'dataRefreshedAt'>> {
  const freshness = await replicaFreshness(options.replica).catch((error: unknown) => {
    options.onReplicaError?.(error);
    return null;
  });
  return freshness ? { readPrisma: options.replica, dataRefreshedAt: freshness.dataRefreshedAt } : { readPrisma: options.primary };
}

/** For the plain routes (REST, CSV exports): `readTarget` when a replica is configured; otherwise reports read the primary. */
export async function routeReadTarget(options: { prisma: PrismaClient; readPrisma?: PrismaClient; onReplicaError?: (error: unknown) => void }): Promise<Pick<Context, 'readPrisma' | 'dataRefreshedAt'>> {
  return options.readPrisma ? readTarget({ primary: options.prisma, replica: options.readPrisma, onReplicaError: options.onReplicaError }) : {};
}

/**
 * Sets `readPrisma` and `dataRefreshedAt` on the context of each operation: a query reads reports
 * from the replica; a mutation's payload must see its own write, so it reads the primary; a
 * subscription's events are read where they were written (the primary).
 */
export function useReadReplica(options: ReadReplicaOptions): Plugin<Context> {
  return {
    async onExecute({ args, extendContext }) {
      const operation = getOperationAST(args.document, args.operationName);
      extendContext(operation?.operation === 'query' ? await readTarget(options) : { readPrisma: options.primary });
    },
  };
}

/** `/healthz`'s `replica` member: its lag, or why it is not used. */
export async function replicaHealth(replica: PrismaClient, timeoutMs = 2_000): Promise<{ status: 'ok'; lagSeconds: number } | { status: 'error'; error: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const freshness = await Promise.race([
      replicaFreshness(replica),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
      }),
    ]);
    return freshness ? { status: 'ok', lagSeconds: Math.round(freshness.lagSeconds * 1000) / 1000 } : { status: 'error', error: 'replica freshness unknown' };
  } catch {
    return { status: 'error', error: 'replica unavailable' };
  } finally {
    clearTimeout(timer);
  }
}

import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import type { SqlMigrationAwareDriverAdapterFactory, Transaction } from '@prisma/driver-adapter-utils';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';

export type DatabaseTarget =
  | { kind: 'pglite'; dir: string }
  | { kind: 'postgres'; url: string; schema?: string };

export interface OpenAdapter {
  target: DatabaseTarget;
  factory: SqlMigrationAwareDriverAdapterFactory;
  close(): Promise<void>;
}

export class DatabaseConfigError extends Error {}

/** `pglite:<dir>` (or `memory://`) selects the embedded database; anything else must be a PostgreSQL URL. */
export function parseDatabaseTarget(databaseUrl: string | undefined, pgliteDir: string | undefined): DatabaseTarget {
  if (!databaseUrl) return { kind: 'pglite', dir: pgliteDir || './data/pglite' };
  if (databaseUrl.startsWith('pglite:')) return { kind: 'pglite', dir: databaseUrl.slice('pglite:'.length) };
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new DatabaseConfigError(
      'DATABASE_URL is not a valid URL; expected postgresql://user:password@host:5432/database (or unset it to use the embedded database)',
    );
  }
  if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:') {
    throw new DatabaseConfigError(
      `DATABASE_URL must start with postgresql:// (got ${url.protocol}//); unset it to use the embedded database`,
    );
  }
  const schema = url.searchParams.get('schema') ?? undefined;
  return { kind: 'postgres', url: databaseUrl, schema };
}

export function describeTarget(target: DatabaseTarget): string {
  if (target.kind === 'pglite') return `PGlite (${target.dir})`;
  const url = new URL(target.url);
  return `PostgreSQL (${url.hostname}:${url.port || 5432}${url.pathname}${target.schema ? `, schema ${target.schema}` : ''})`;
}

/** `template`: a data directory tarball for a fresh `dir` (see src/db/pglite-template.ts). */
export async function openPGlite(dir: string, template?: Blob): Promise<PGlite> {
  if (dir !== 'memory://') mkdirSync(dir, { recursive: true });
  const pglite = new PGlite(dir, template ? { loadDataDir: template } : {});
  await pglite.waitReady;
  return pglite;
}

/** pg's `search_path` for a `?schema=` URL parameter, which pg itself ignores. */
function poolConfig(target: Extract<DatabaseTarget, { kind: 'postgres' }>, poolSize: number): pg.PoolConfig {
  const url = new URL(target.url);
  url.searchParams.delete('schema');
  return {
    connectionString: url.toString(),
    max: poolSize,
    connectionTimeoutMillis: 5_000,
    // JIT off: compiling a report's plan took longer than running it (a 12-month history: 2–8 s of
    // JIT under load for a statement that runs in ≈ 1.5 s without it; BENCHMARKS.md).
    options: `-c jit=off${target.schema ? ` -c search_path="${target.schema}"` : ''}`,
  };
}

export async function openAdapter(
  target: DatabaseTarget,
  options: { poolSize?: number } = {},
): Promise<OpenAdapter> {
  if (target.kind === 'pglite') {
    const pglite = await openPGlite(target.dir);
    return { target, factory: new PrismaPGlite(pglite), close: () => pglite.close() };
  }
  const pool = new pg.Pool(poolConfig(target, options.poolSize ?? Number(process.env.DATABASE_POOL_SIZE ?? 10)));
  // An idle connection that the server ends (a restart, a terminated backend) is an 'error' event on
  // the pool; unheard, it would crash the process. The pool opens a new connection on next use.
  pool.on('error', () => {});
  return {
    target,
    factory: withWholeScripts(new PrismaPg(pool, target.schema ? { schema: target.schema } : undefined)),
    close: () => pool.end(),
  };
}

/**
 * PrismaPg runs a script (a migration) by splitting it at every `;`, which cuts dollar-quoted
 * function bodies (a PL/pgSQL trigger) apart. A script without parameters goes to PostgreSQL whole
 * instead: the simple query protocol runs its statements in order.
 */
export function withWholeScripts(factory: PrismaPg): PrismaPg {
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    const driver = adapter.underlyingDriver() as pg.Pool;
    const onError = (adapter as unknown as { onError(error: unknown): never }).onError.bind(adapter);
    adapter.executeScript = async (script: string) => {
      try {
        await driver.query(script);
      } catch (error) {
        onError(error);
      }
    };
    return adapter;
  };
  return factory;
}

/** Where `withDriverTransaction` receives the driver adapter's transaction that Prisma opens inside it. */
const transactionSlots = new AsyncLocalStorage<{ transaction?: Transaction }>();

/**
 * Hands the driver adapter's Transaction (the one connection of a Prisma interactive transaction) to
 * the `withDriverTransaction` scope that opened it, so hot statements can go to it directly (without
 * Prisma's JSON round trip of raw parameters and results) inside the same transaction.
 */
export function exposeTransactions(factory: SqlMigrationAwareDriverAdapterFactory): SqlMigrationAwareDriverAdapterFactory {
  return {
    provider: factory.provider,
    adapterName: factory.adapterName,
    async connect() {
      const adapter = await factory.connect();
      const startTransaction = adapter.startTransaction.bind(adapter);
      adapter.startTransaction = async (...args) => {
        const transaction = await startTransaction(...args);
        const slot = transactionSlots.getStore();
        if (slot && !slot.transaction) slot.transaction = transaction;
        return transaction;
      };
      return adapter;
    },
    connectToShadowDb: () => factory.connectToShadowDb(),
  };
}

/**
 * Runs `work` (which opens one Prisma interactive transaction) with a slot that receives that
 * transaction's driver adapter Transaction once it has begun; undefined when the client was not
 * built with `exposeTransactions`.
 */
export function withDriverTransaction<T>(work: (slot: { transaction?: Transaction }) => Promise<T>): Promise<T> {
  const slot: { transaction?: Transaction } = {};
  return transactionSlots.run(slot, () => work(slot));
}

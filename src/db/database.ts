import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaClient } from '../generated/prisma/client.js';
import { describeTarget, exposeTransactions, openAdapter, type DatabaseTarget, type OpenAdapter } from './adapters.js';
import { isFreshPGliteDir, readPGliteTemplate } from './pglite-template.js';
import { applyMigrations, readMigrationsList } from './schema-engine.js';
import { instrumentAdapterFactory } from './statement-recorder.js';

export interface Database {
  prisma: PrismaClient;
  target: DatabaseTarget;
  description: string;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  migrate?: boolean;
  onMigrated?: (applied: string[]) => void;
  /**
   * A new PGlite (`memory://` or an empty directory) starts from this migrated data directory
   * (pglite-template.ts) instead of initdb and the migrations. Default: the tarball built for the
   * current migrations, when there is one; null: never.
   */
  pgliteTemplate?: Blob | null;
}

/** PGlite's own initdb plus the migrations take ≈ 12 s; a migrated template loads in about one. */
async function openFromTemplate(dir: string, template: Blob): Promise<OpenAdapter> {
  if (dir !== 'memory://') mkdirSync(dir, { recursive: true });
  const pglite = new PGlite(dir, { loadDataDir: template });
  await pglite.waitReady;
  return { target: { kind: 'pglite', dir }, factory: new PrismaPGlite(pglite), close: () => pglite.close() };
}

/**
 * Applies pending migrations over a single connection: the engine's advisory lock (which keeps
 * gateways that start together from migrating twice) is per session, and a pool could release it
 * on another connection than the one that took it, leaving it held.
 */
export async function migrateDatabase(target: DatabaseTarget): Promise<string[]> {
  const migrator = await openAdapter(target, { poolSize: 1 });
  try {
    return await applyMigrations(migrator.factory);
  } finally {
    await migrator.close();
  }
}

export async function openDatabase(target: DatabaseTarget, options: OpenDatabaseOptions = {}): Promise<Database> {
  if (options.migrate !== false && target.kind === 'postgres') {
    const applied = await migrateDatabase(target);
    options.onMigrated?.(applied);
  }
  const template =
    target.kind === 'pglite' && options.migrate !== false && options.pgliteTemplate !== null && isFreshPGliteDir(target.dir)
      ? (options.pgliteTemplate ?? readPGliteTemplate())
      : undefined;
  const adapter = template && target.kind === 'pglite' ? await openFromTemplate(target.dir, template) : await openAdapter(target);
  try {
    if (template) {
      // The template holds every current migration (its name is derived from them).
      options.onMigrated?.(readMigrationsList().migrationDirectories.map((m) => m.path));
    } else if (options.migrate !== false && target.kind === 'pglite') {
      // One PGlite directory is one process's: it is migrated through the connection it is opened with.
      const applied = await applyMigrations(adapter.factory);
      options.onMigrated?.(applied);
    }
    // exposeTransactions outermost: statements sent to an exposed transaction are still recorded.
    const prisma = new PrismaClient({ adapter: exposeTransactions(instrumentAdapterFactory(adapter.factory)) });
    await prisma.$queryRawUnsafe('SELECT 1');
    return {
      prisma,
      target,
      description: describeTarget(target),
      async close() {
        await prisma.$disconnect();
        await adapter.close();
      },
    };
  } catch (error) {
    await adapter.close().catch(() => {});
    throw error;
  }
}

import { PrismaClient } from '../generated/prisma/client.js';
import { describeTarget, openAdapter, type DatabaseTarget } from './adapters.js';
import { applyMigrations } from './schema-engine.js';
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
  const adapter = await openAdapter(target);
  try {
    if (options.migrate !== false && target.kind === 'pglite') {
      // One PGlite directory is one process's: it is migrated through the connection it is opened with.
      const applied = await applyMigrations(adapter.factory);
      options.onMigrated?.(applied);
    }
    const prisma = new PrismaClient({ adapter: instrumentAdapterFactory(adapter.factory) });
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

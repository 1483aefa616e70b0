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

export async function openDatabase(target: DatabaseTarget, options: OpenDatabaseOptions = {}): Promise<Database> {
  const adapter = await openAdapter(target);
  try {
    if (options.migrate !== false) {
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

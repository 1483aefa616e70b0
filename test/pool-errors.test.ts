import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openAdapter } from '../src/db/adapters.js';
import { migrateDatabase } from '../src/db/database.js';
import { createScratchDatabase } from '../src/db/scratch-database.js';
import { testDatabaseKind } from './helpers/database.js';

describe.runIf(testDatabaseKind() === 'postgres')('PostgreSQL connections', () => {
  it('an idle connection ended by the server is no crash, even with no Prisma client attached (as while closing)', async () => {
    const scratch = await createScratchDatabase(process.env.TEST_DATABASE_URL!);
    await migrateDatabase({ kind: 'postgres', url: scratch.url });
    const adapter = await openAdapter({ kind: 'postgres', url: scratch.url });
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.prependListener('uncaughtException', onUncaught);
    try {
      // A Prisma connection listens for pool errors only while it is open: leave an idle connection behind.
      const connection = await adapter.factory.connect();
      await connection.queryRaw({ sql: 'SELECT 1', args: [], argTypes: [] });
      await connection.dispose();
      const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
      await admin.connect();
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [scratch.name]);
      await admin.end();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      await adapter.close();
      await scratch.drop();
    }
  });
});

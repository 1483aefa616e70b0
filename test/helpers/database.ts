import { inject } from 'vitest';
import { openDatabase, type Database } from '../../src/db/database.js';
import type { DatabaseTarget } from '../../src/db/adapters.js';
import { readPGliteTemplate } from '../../src/db/pglite-template.js';
import { createScratchDatabase } from '../../src/db/scratch-database.js';

export type TestDatabaseKind = 'pglite' | 'postgres';

/** Set per vitest project (vitest.config.ts): which database this run of the suite uses. */
export function testDatabaseKind(): TestDatabaseKind {
  return process.env.TEST_DB === 'postgres' ? 'postgres' : 'pglite';
}

export interface TestDatabase extends Database {
  /** Closes the connection and drops what the test created. */
  destroy(): Promise<void>;
}

function adminUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is required for the postgres test project');
  return url;
}

// The files a worker runs one after another share its modules (vitest.config.ts `isolate: false`):
// the run's template is read from disk once per worker, not once per file (≈ 46 MB).
let pgliteTemplate: { file: string; blob: Blob | undefined } | undefined;
function migratedTemplate(): Blob | undefined {
  const file = inject('pgliteTemplate');
  if (!file) return undefined;
  if (pgliteTemplate?.file !== file) pgliteTemplate = { file, blob: readPGliteTemplate(file) };
  return pgliteTemplate.blob;
}

/**
 * A fresh, migrated database of this run's kind, owned by one test file: a copy of the run's
 * migrated template (test/global-setup.ts), or migrated here when there is none.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (testDatabaseKind() === 'pglite') {
    const template = migratedTemplate();
    const db = await openDatabase({ kind: 'pglite', dir: 'memory://' }, template ? { pgliteTemplate: template } : {});
    return { ...db, destroy: () => db.close() };
  }
  const template = inject('postgresTemplate');
  const scratch = await createScratchDatabase(adminUrl(), 'ugw_test', template);
  const target: DatabaseTarget = { kind: 'postgres', url: scratch.url };
  const db = await openDatabase(target, { migrate: !template });
  return {
    ...db,
    async destroy() {
      await db.close();
      await scratch.drop();
    },
  };
}

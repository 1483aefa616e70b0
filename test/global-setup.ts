/**
 * Once per test run and database kind: a migrated template that every test file's database is
 * copied from (a PGlite data-directory tarball; a PostgreSQL template database), instead of each
 * file running initdb and the migrations. See test/helpers/database.ts.
 */
import type { TestProject } from 'vitest/node';
import { migrateDatabase } from '../src/db/database.js';
import { buildPGliteTemplate } from '../src/db/pglite-template.js';
import { createScratchDatabase } from '../src/db/scratch-database.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The migrated PGlite data directory (a tarball) of this run. */
    pgliteTemplate: string | undefined;
    /** The migrated PostgreSQL database of this run, next to TEST_DATABASE_URL's. */
    postgresTemplate: string | undefined;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | void> {
  if (project.config.env?.TEST_DB !== 'postgres') {
    project.provide('pgliteTemplate', await buildPGliteTemplate());
    return;
  }
  const adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) throw new Error('TEST_DATABASE_URL is required for the postgres test project');
  const template = await createScratchDatabase(adminUrl, 'ugw_template');
  try {
    await migrateDatabase({ kind: 'postgres', url: template.url });
  } catch (error) {
    await template.drop();
    throw error;
  }
  project.provide('postgresTemplate', template.name);
  return () => template.drop();
}

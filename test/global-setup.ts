/**
 * Once per test run and database kind: a migrated template that every test file's database is
 * copied from (a PGlite data-directory tarball; a PostgreSQL template database), instead of each
 * file running initdb and the migrations. See test/helpers/database.ts.
 */
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { migrateDatabase } from '../src/db/database.js';
import { buildPGliteTemplate, readPGliteTemplate } from '../src/db/pglite-template.js';
import { createScratchDatabase } from '../src/db/scratch-database.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The migrated PGlite data directory (a tarball) of this run. */
    pgliteTemplate: string | undefined;
    /** The migrated PostgreSQL database of this run, next to TEST_DATABASE_URL's. */
    postgresTemplate: string | undefined;
    /**
     * Where test/seed.test.ts on PGlite leaves the checksums of its seeded demo, for the same file
     * on PostgreSQL to compare with instead of seeding a PGlite again; undefined on PostgreSQL when
     * the pglite project is not part of the run.
     */
    pgliteSeedChecksums: string | undefined;
    /** Where this project's seeded demo is built, once, by the first file that asks (test/helpers/demo-database.ts). */
    demoTemplate: { pgliteDir: string; postgresName: string; claimFile: string; failedFile: string } | undefined;
  }
}

// The main process runs every project's global setup: one file name per run, shared by both.
process.env.UGW_TEST_RUN_ID ??= randomBytes(6).toString('hex');
const seedChecksumsFile = path.join(tmpdir(), `ugw-seed-checksums-${process.env.UGW_TEST_RUN_ID}.json`);
const removeSeedChecksums = async () => {
  for (const suffix of ['', '.started', '.partial']) rmSync(seedChecksumsFile + suffix, { force: true });
};

function demoTemplateNames(kind: 'pglite' | 'postgres') {
  const base = path.join(tmpdir(), `ugw-demo-${process.env.UGW_TEST_RUN_ID}-${kind}`);
  return {
    pgliteDir: `${base}.pgdata`,
    postgresName: `ugw_demo_${process.env.UGW_TEST_RUN_ID}`,
    claimFile: `${base}.claimed`,
    failedFile: `${base}.failed`,
  };
}

function removeDemoFiles(names: ReturnType<typeof demoTemplateNames>): void {
  for (const file of [names.pgliteDir, `${names.pgliteDir}.partial`, names.claimFile, names.failedFile]) rmSync(file, { recursive: true, force: true });
}

/**
 * The run's PGlite template: the migrated one (src/db/pglite-template.ts) less the template0 and
 * template1 databases, which a PGlite never uses (it serves one database): a third smaller, and each
 * test file's in-memory copy opens with ≈ 23 % less CPU (≈ 0.45 instead of ≈ 0.58 s).
 */
async function runTemplate(file: string): Promise<string> {
  const pglite = new PGlite('memory://', { loadDataDir: readPGliteTemplate(await buildPGliteTemplate()) });
  try {
    // One statement each: DROP DATABASE runs outside a transaction block, which a multi-statement string is.
    for (const sql of [`UPDATE pg_database SET datistemplate = false WHERE datname IN ('template0', 'template1')`, 'DROP DATABASE template0', 'DROP DATABASE template1', 'CHECKPOINT']) {
      await pglite.exec(sql);
    }
    writeFileSync(file, Buffer.from(await (await pglite.dumpDataDir('none')).arrayBuffer()));
  } finally {
    await pglite.close();
  }
  return file;
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | void> {
  if (project.config.env?.TEST_DB !== 'postgres') {
    project.provide('pgliteSeedChecksums', seedChecksumsFile);
    const template = path.join(tmpdir(), `ugw-template-${process.env.UGW_TEST_RUN_ID}.tar`);
    project.provide('pgliteTemplate', await runTemplate(template));
    const demo = demoTemplateNames('pglite');
    project.provide('demoTemplate', demo);
    return async () => {
      await removeSeedChecksums();
      removeDemoFiles(demo);
      rmSync(template, { force: true });
    };
  }
  const pgliteRuns = project.vitest.projects.some((other) => other.config.env?.TEST_DB === 'pglite');
  project.provide('pgliteSeedChecksums', pgliteRuns ? seedChecksumsFile : undefined);
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
  const demo = demoTemplateNames('postgres');
  project.provide('demoTemplate', demo);
  return async () => {
    await removeSeedChecksums();
    removeDemoFiles(demo);
    await dropDemoDatabases(adminUrl, demo.postgresName);
    await template.drop();
  };
}

/** Drops the run's demo, and the half-seeded one a builder that died may have left under its building name. */
async function dropDemoDatabases(adminUrl: string, demoName: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>(`SELECT datname AS name FROM pg_database WHERE starts_with(datname, $1)`, [demoName]);
    for (const { name } of rows) await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

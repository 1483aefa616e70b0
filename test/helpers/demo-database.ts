/**
 * The demo (seedDemo at the current time, or on PGlite the demo prebuilt at install topped up to
 * the current time), made once per test run and database kind and copied
 * for each test file that needs it (README examples, a listening server), instead of each seeding
 * its own 13 months of usage. The first file to ask builds it, the others wait for it: a run that
 * needs no demo never seeds one. Names come from test/global-setup.ts, which removes them at the end.
 */
import { closeSync, cpSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { inject } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { copyDemoTemplate, readPGliteTemplate } from '../../src/db/pglite-template.js';
import { createScratchDatabase } from '../../src/db/scratch-database.js';
import { seedDemo, topUpDemo } from '../../src/db/seed.js';
import { testDatabaseKind, type TestDatabase } from './database.js';

/** Seeding on a busy 2-core machine can take minutes; waiting longer means the builder is gone. */
const BUILD_TIMEOUT_MS = 600_000;

interface DemoTemplate {
  /** The run's seeded PGlite data directory. */
  pgliteDir: string;
  /** The run's seeded PostgreSQL database, next to TEST_DATABASE_URL's. */
  postgresName: string;
  /** Files that say who builds it and how that ended. */
  claimFile: string;
  failedFile: string;
}

function demoTemplate(): DemoTemplate {
  const names = inject('demoTemplate');
  if (!names) throw new Error('test/global-setup.ts provides no demo template names');
  return names;
}

function adminUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is required for the postgres test project');
  return url;
}

/** True for the one caller that gets to build the template (an exclusive create of the claim file). */
function claim(file: string): boolean {
  try {
    closeSync(openSync(file, 'wx'));
    return true;
  } catch {
    return false;
  }
}

async function waitForBuild(isBuilt: () => Promise<boolean>, failedFile: string): Promise<void> {
  const deadline = performance.now() + BUILD_TIMEOUT_MS;
  for (;;) {
    if (await isBuilt()) return;
    if (existsSync(failedFile)) throw new Error(`building the demo template failed: ${readFileSync(failedFile, 'utf8')}`);
    if (performance.now() > deadline) throw new Error(`the demo template was not built within ${BUILD_TIMEOUT_MS} ms`);
    await sleep(250);
  }
}

async function building(template: DemoTemplate, build: () => Promise<void>): Promise<void> {
  try {
    await build();
  } catch (error) {
    writeFileSync(template.failedFile, String(error instanceof Error ? (error.stack ?? error.message) : error));
    throw error;
  }
}

/**
 * The run's demo as a PGlite data directory (built here by the first caller): the demo prebuilt at
 * `npm install` copied and topped up to now, as a first `npm start` does; a stale or missing one is
 * seeded instead. Copies of a directory cost a file copy; PGlite then reads only the pages a test
 * touches (a tarball would be loaded whole, ≈ 0.5 GB, into each test's memory).
 */
async function pgliteDemoDir(): Promise<string> {
  const template = demoTemplate();
  const done = path.join(template.pgliteDir, 'demo-ready');
  if (claim(template.claimFile)) {
    await building(template, async () => {
      const now = new Date();
      const staging = `${template.pgliteDir}.partial`;
      rmSync(staging, { recursive: true, force: true });
      try {
        const prebuilt = copyDemoTemplate(staging, now);
        const db = await openDatabase({ kind: 'pglite', dir: staging }, prebuilt ? { migrate: false } : { pgliteTemplate: readPGliteTemplate(inject('pgliteTemplate')) });
        try {
          if (prebuilt) await topUpDemo(db.prisma, { seededAt: prebuilt.seededAt, now });
          else await seedDemo(db.prisma, { now });
        } finally {
          await db.close();
        }
        // Renamed into place whole, then marked: waiters never copy half a directory.
        renameSync(staging, template.pgliteDir);
        writeFileSync(done, '');
      } finally {
        rmSync(staging, { recursive: true, force: true });
      }
    });
  } else {
    await waitForBuild(async () => existsSync(done), template.failedFile);
  }
  return template.pgliteDir;
}

/** A copy of the run's PGlite demo in a new directory of its own, and how to remove it. */
async function copyOfPGliteDemo(): Promise<{ dir: string; remove(): void }> {
  const source = await pgliteDemoDir();
  const dir = mkdtempSync(path.join(tmpdir(), 'ugw-demo-copy-'));
  for (const entry of readdirSync(source)) if (entry !== 'demo-ready') cpSync(path.join(source, entry), path.join(dir, entry), { recursive: true });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

async function postgresDatabaseExists(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

/** The name of the run's seeded PostgreSQL database (built here by the first caller). */
async function postgresDemoTemplate(): Promise<string> {
  const template = demoTemplate();
  if (claim(template.claimFile)) {
    await building(template, async () => {
      // Seeded under another name and renamed when done and disconnected: a copy never starts from half a demo.
      const scratch = await createScratchDatabase(adminUrl(), `${template.postgresName}_building`, inject('postgresTemplate'));
      try {
        const db = await openDatabase({ kind: 'postgres', url: scratch.url }, { migrate: !inject('postgresTemplate') });
        try {
          await seedDemo(db.prisma);
        } finally {
          await db.close();
        }
        const client = new pg.Client({ connectionString: adminUrl() });
        await client.connect();
        try {
          await client.query(`ALTER DATABASE "${scratch.name}" RENAME TO "${template.postgresName}"`);
        } finally {
          await client.end();
        }
      } catch (error) {
        await scratch.drop();
        throw error;
      }
    });
  } else {
    await waitForBuild(() => postgresDatabaseExists(template.postgresName), template.failedFile);
  }
  return template.postgresName;
}

/** A database of this run's kind holding the demo (seedDemo at about the run's start), owned by one test file. */
export async function createDemoTestDatabase(): Promise<TestDatabase> {
  if (testDatabaseKind() === 'pglite') {
    const copy = await copyOfPGliteDemo();
    const db = await openDatabase({ kind: 'pglite', dir: copy.dir }, { migrate: false });
    return {
      ...db,
      async destroy() {
        await db.close();
        copy.remove();
      },
    };
  }
  const scratch = await createScratchDatabase(adminUrl(), 'ugw_test', await postgresDemoTemplate());
  const db = await openDatabase({ kind: 'postgres', url: scratch.url }, { migrate: false });
  return {
    ...db,
    async destroy() {
      await db.close();
      await scratch.drop();
    },
  };
}

/**
 * Settings for a spawned server whose database holds the demo: a PGlite directory or a PostgreSQL
 * database of its own, and how to remove it.
 */
export async function demoServerDatabase(): Promise<{ env: Record<string, string>; cleanup(): Promise<void> }> {
  if (testDatabaseKind() === 'pglite') {
    const copy = await copyOfPGliteDemo();
    return { env: { PGLITE_DIR: copy.dir }, cleanup: async () => copy.remove() };
  }
  const scratch = await createScratchDatabase(adminUrl(), 'ugw_test', await postgresDemoTemplate());
  return { env: { DATABASE_URL: scratch.url }, cleanup: () => scratch.drop() };
}

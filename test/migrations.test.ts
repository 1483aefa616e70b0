import { execFile } from 'node:child_process';
import { createScratchDatabase } from '../src/db/scratch-database.js';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { afterAll, describe, expect, it } from 'vitest';
import { migrateDatabase } from '../src/db/database.js';
import { migrationDrift, projectRoot, schemaPath } from '../src/db/schema-engine.js';
import { readPGliteEmptyTemplate } from '../src/db/pglite-empty-template.js';
import { testDatabaseKind } from './helpers/database.js';

const run = promisify(execFile);
const prismaCli = path.join(projectRoot, 'node_modules/prisma/build/index.js');
const scratch = path.join(projectRoot, 'node_modules/.cache', `ugw-migrations-${randomBytes(4).toString('hex')}`);

async function prisma(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [prismaCli, ...args], {
      cwd: options.cwd ?? projectRoot,
      // No PRISMA_SCHEMA_ENGINE_BINARY here: prisma.config.ts must set it up by itself.
      env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', CI: '1', ...options.env },
      timeout: 120_000,
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: failed.stdout + failed.stderr };
  }
}

/** A database URL of this run's kind that no one else uses, and how to get rid of it. */
async function scratchDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  if (testDatabaseKind() === 'pglite') {
    const dir = path.join(scratch, `pglite-${randomBytes(4).toString('hex')}`);
    return { url: `pglite:${dir}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const database = await createScratchDatabase(process.env.TEST_DATABASE_URL!);
  return { url: database.url, drop: database.drop };
}

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// These compare files with files: one database kind is enough.
// Each test migrates an in-memory PGlite from scratch (the partitioning migration alone makes ~60 tables).
describe.runIf(testDatabaseKind() === 'pglite')('schema.prisma and prisma/migrations', { timeout: 180_000 }, () => {
  it('agree: the migrations produce exactly the schema', async () => {
    const shadow = new PGlite('memory://', { loadDataDir: readPGliteEmptyTemplate() });
    try {
      expect(await migrationDrift(new PrismaPGlite(shadow))).toBeNull();
    } finally {
      await shadow.close();
    }
  });

  it('a model added to schema.prisma without a migration is reported as drift', async () => {
    const shadow = new PGlite('memory://', { loadDataDir: readPGliteEmptyTemplate() });
    try {
      const changed = `${readFileSync(schemaPath, 'utf8')}\nmodel Unmigrated {\n  id Int @id\n}\n`;
      expect(await migrationDrift(new PrismaPGlite(shadow), changed)).toContain('CREATE TABLE "Unmigrated"');
    } finally {
      await shadow.close();
    }
  });
});

// Each test spawns the Prisma CLI once or twice; `migrate dev` alone takes a minute on a busy 2-core machine.
describe('the prisma CLI works offline through the wasm schema engine', { timeout: 180_000 }, () => {
  it.runIf(testDatabaseKind() === 'pglite')('`migrate diff` finds no difference between the migrations and the schema', async () => {
    const result = await prisma(['migrate', 'diff', '--from-migrations', 'prisma/migrations', '--to-schema', 'prisma/schema.prisma', '--exit-code']);
    expect(result.output).toContain('No difference detected');
    expect(result.code).toBe(0);
  });

  it('`migrate deploy` then `migrate status` on a new database', async () => {
    const database = await scratchDatabase();
    try {
      const env = { DATABASE_URL: database.url };
      const deploy = await prisma(['migrate', 'deploy'], { env });
      expect(deploy.output).toContain('All migrations have been successfully applied');
      expect(deploy.code).toBe(0);
      const status = await prisma(['migrate', 'status'], { env });
      expect(status.output).toContain('Database schema is up to date');
      expect(status.code).toBe(0);
    } finally {
      await database.drop();
    }
  });

  // The default set-up (PGlite) only: `deploy` and `status` above show the engine drives both kinds.
  it.runIf(testDatabaseKind() === 'pglite')('`migrate dev` writes a new migration for a schema change', async () => {
    const project = path.join(scratch, 'project');
    mkdirSync(project, { recursive: true });
    cpSync(path.join(projectRoot, 'prisma'), path.join(project, 'prisma'), { recursive: true });
    cpSync(path.join(projectRoot, 'prisma.config.ts'), path.join(project, 'prisma.config.ts'));
    const schemaCopy = path.join(project, 'prisma/schema.prisma');
    writeFileSync(schemaCopy, `${readFileSync(schemaCopy, 'utf8')}\nmodel Added {\n  id Int @id\n}\n`);
    const database = await scratchDatabase();
    try {
      const result = await prisma(['migrate', 'dev', '--name', 'add_model'], {
        cwd: project,
        env: { DATABASE_URL: database.url, PRISMA_SCHEMA_ENGINE_BINARY: path.join(projectRoot, 'scripts/schema-engine') },
      });
      expect(result.code, result.output).toBe(0);
      const created = readdirSync(path.join(project, 'prisma/migrations')).find((name) => name.endsWith('_add_model'));
      expect(created).toBeDefined();
      expect(readFileSync(path.join(project, 'prisma/migrations', created!, 'migration.sql'), 'utf8')).toContain('CREATE TABLE "Added"');
    } finally {
      await database.drop();
    }
  });
});

describe.runIf(testDatabaseKind() === 'postgres')('gateways starting together', () => {
  it('apply each migration once when two processes migrate one PostgreSQL at the same time', async () => {
    const database = await scratchDatabase();
    try {
      const applied = await Promise.all([1, 2].map(() => migrateDatabase({ kind: 'postgres', url: database.url })));
      const migrations = readdirSync(path.join(projectRoot, 'prisma/migrations')).filter((name) => !name.endsWith('.toml'));
      expect(applied.flat().sort()).toEqual(migrations.sort());
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      const { rows } = await client.query('SELECT migration_name, finished_at FROM _prisma_migrations');
      await client.end();
      expect(rows).toHaveLength(migrations.length);
      expect(rows.every((row) => row.finished_at !== null)).toBe(true);
    } finally {
      await database.drop();
    }
  });
});

import { execFile } from 'node:child_process';
import { createScratchDatabase } from '../src/db/scratch-database.js';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { migrateDatabase } from '../src/db/database.js';
import { projectRoot } from '../src/db/schema-engine.js';
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
    return { code: 0, stdout, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, output: failed.stdout + failed.stderr };
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

/** What `prisma migrate diff`/`dev` must write for the one model the project copy below adds: nothing else. */
const ADDED_MODEL_SQL = `-- CreateTable
CREATE TABLE "Added" (
    "id" INTEGER NOT NULL,

    CONSTRAINT "Added_pkey" PRIMARY KEY ("id")
);
`;

/**
 * A copy of the project's prisma/ folder and config whose schema.prisma adds one model, `Added`.
 * The committed migrations and schema agree exactly when the SQL from the migrations to this schema
 * is the CREATE TABLE of `Added` and nothing else; a schema change without its migration would add
 * its own statements (and an engine that saw no difference would write none).
 */
function projectWithAddedModel(): string {
  const project = path.join(scratch, 'project');
  mkdirSync(project, { recursive: true });
  cpSync(path.join(projectRoot, 'prisma'), path.join(project, 'prisma'), { recursive: true });
  cpSync(path.join(projectRoot, 'prisma.config.ts'), path.join(project, 'prisma.config.ts'));
  const schemaCopy = path.join(project, 'prisma/schema.prisma');
  writeFileSync(schemaCopy, `${readFileSync(schemaCopy, 'utf8')}\nmodel Added {\n  id Int @id\n}\n`);
  return project;
}

// Every `prisma migrate` command the README promises, spawned as a user runs it. Each spawn starts the
// CLI and the shim (a cold wasm engine) and replays the migrations on a shadow database (the
// partitioning migration alone makes ~60 tables): a few seconds of CPU each, so one database serves
// deploy, status and dev, and one diff checks that the migrations and the schema agree.
describe('the prisma CLI works offline through the wasm schema engine', { timeout: 300_000 }, () => {
  it('`migrate deploy` then `migrate status` on a new database; on PGlite then `migrate diff` and `migrate dev` of a schema change', async () => {
    const database = await scratchDatabase();
    try {
      const env = { DATABASE_URL: database.url };
      const deploy = await prisma(['migrate', 'deploy'], { env });
      expect(deploy.output).toContain('All migrations have been successfully applied');
      expect(deploy.code).toBe(0);
      const status = await prisma(['migrate', 'status'], { env });
      expect(status.output).toContain('Database schema is up to date');
      expect(status.code).toBe(0);
      // The rest compares files with files and needs the shim on one database kind only:
      // `deploy` and `status` above show the engine drives both kinds.
      if (testDatabaseKind() !== 'pglite') return;

      const project = projectWithAddedModel();
      // The copy's prisma.config.ts would look for the shim beside itself.
      const projectEnv = { ...env, PRISMA_SCHEMA_ENGINE_BINARY: path.join(projectRoot, 'scripts/schema-engine') };
      // The committed migrations produce exactly the committed schema: the only difference is `Added`
      // (the check README "Prisma offline" names: it fails when schema.prisma and prisma/migrations
      // disagree). On an in-memory database: on exit code 2 the CLI does not wait for the shim, which
      // must not still hold the directory `migrate dev` opens next.
      const diff = await prisma(['migrate', 'diff', '--from-migrations', 'prisma/migrations', '--to-schema', 'prisma/schema.prisma', '--script', '--exit-code'], {
        cwd: project,
        env: { ...projectEnv, DATABASE_URL: 'pglite:memory://' },
      });
      expect(diff.stdout.trim(), diff.output).toBe(ADDED_MODEL_SQL.trim());
      expect(diff.code, diff.output).toBe(2);

      // `migrate dev` on the deployed database: writes the new migration (again only `Added`) and applies it.
      const dev = await prisma(['migrate', 'dev', '--name', 'add_model'], { cwd: project, env: projectEnv });
      expect(dev.code, dev.output).toBe(0);
      expect(dev.output).toContain('Your database is now in sync with your schema');
      const created = readdirSync(path.join(project, 'prisma/migrations')).filter((name) => name.endsWith('_add_model'));
      expect(created).toHaveLength(1);
      expect(readFileSync(path.join(project, 'prisma/migrations', created[0]!, 'migration.sql'), 'utf8').trim()).toBe(ADDED_MODEL_SQL.trim());
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

/**
 * A migrated PGlite data directory, as a tarball. A new PGlite runs initdb in WebAssembly and then
 * the migrations (≈ 12 s on two cores); loading this tarball instead takes about a second. Built at
 * `npm install` (postinstall) and by the tests' global setup, under node_modules/.cache. Its name
 * carries a hash of the PGlite version and of every migration, so a new migration or PGlite
 * release never loads a stale one: it is simply not found and rebuilt (or the slow path runs).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { applyMigrations, projectRoot, readMigrationsList } from './schema-engine.js';

const cacheDir = path.join(projectRoot, 'node_modules/.cache/usage-gateway');

function templateKey(): string {
  const pglitePackage = path.join(projectRoot, 'node_modules/@electric-sql/pglite/package.json');
  const pgliteVersion = existsSync(pglitePackage) ? (JSON.parse(readFileSync(pglitePackage, 'utf8')) as { version: string }).version : 'unknown';
  return createHash('sha256')
    .update(pgliteVersion)
    .update(JSON.stringify(readMigrationsList().migrationDirectories))
    .digest('hex')
    .slice(0, 16);
}

/** Where the tarball for the current migrations lives (whether or not it was built). */
export function pgliteTemplatePath(): string {
  return path.join(cacheDir, `pglite-migrated-${templateKey()}.tar`);
}

/** The migrated data directory for `new PGlite(dir, { loadDataDir })`, or undefined when not built yet. */
export function readPGliteTemplate(file: string = pgliteTemplatePath()): Blob | undefined {
  try {
    return new Blob([readFileSync(file)]);
  } catch {
    return undefined;
  }
}

/** Builds the tarball (unless it exists) and removes those of older migrations; returns its path. */
export async function buildPGliteTemplate(): Promise<string> {
  const file = pgliteTemplatePath();
  if (existsSync(file)) return file;
  const pglite = new PGlite('memory://');
  try {
    await pglite.waitReady;
    await applyMigrations(new PrismaPGlite(pglite));
    // Uncompressed: gzip saves disk but makes every load slower.
    const tarball = await pglite.dumpDataDir('none');
    mkdirSync(cacheDir, { recursive: true });
    // Written aside and renamed: test runs and starts that run at the same time never read half a file.
    const partial = `${file}.${randomBytes(4).toString('hex')}.partial`;
    writeFileSync(partial, Buffer.from(await tarball.arrayBuffer()));
    renameSync(partial, file);
  } finally {
    await pglite.close();
  }
  for (const name of readdirSync(cacheDir)) {
    if (name.startsWith('pglite-migrated-') && name.endsWith('.tar') && path.join(cacheDir, name) !== file) {
      rmSync(path.join(cacheDir, name), { force: true });
    }
  }
  return file;
}

/** True when `dir` holds no PGlite data directory yet (a first start); `memory://` always starts empty. */
export function isFreshPGliteDir(dir: string): boolean {
  return dir === 'memory://' || !existsSync(path.join(dir, 'PG_VERSION'));
}

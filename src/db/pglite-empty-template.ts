/**
 * An initialized, empty PGlite data directory (initdb only), for databases that must start empty:
 * the shadow databases of `prisma migrate dev`/`diff` and a first `prisma migrate deploy` into a new
 * directory (≈ 0.5 s of CPU to load instead of ≈ 2 s of initdb each). Built with the migrated
 * template (src/db/pglite-template.ts); kept apart from it so the schema engine's shim loads no seed.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const cacheDir = path.join(projectRoot, 'node_modules/.cache/usage-gateway');

export function pgliteVersion(): string {
  const pglitePackage = path.join(projectRoot, 'node_modules/@electric-sql/pglite/package.json');
  return existsSync(pglitePackage) ? (JSON.parse(readFileSync(pglitePackage, 'utf8')) as { version: string }).version : 'unknown';
}

export function pgliteEmptyTemplatePath(): string {
  return path.join(cacheDir, `pglite-empty-${pgliteVersion()}.tar`);
}

/** A data directory tarball for `new PGlite(dir, { loadDataDir })`, or undefined when not built. */
export function readTarball(file: string): Blob | undefined {
  try {
    return new Blob([readFileSync(file)]);
  } catch {
    return undefined;
  }
}

export function readPGliteEmptyTemplate(): Blob | undefined {
  return readTarball(pgliteEmptyTemplatePath());
}

/** True when `dir` holds no PGlite data directory yet (a first start); `memory://` always starts empty. */
export function isFreshPGliteDir(dir: string): boolean {
  return dir === 'memory://' || !existsSync(path.join(dir, 'PG_VERSION'));
}

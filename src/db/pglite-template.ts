/**
 * A migrated PGlite data directory, as a tarball. A new PGlite runs initdb in WebAssembly and then
 * the migrations (≈ 12 s on two cores); loading this tarball instead takes about a second. Built at
 * `npm install` (postinstall) and by the tests' global setup, under node_modules/.cache. Its name
 * carries a hash of the PGlite version and of every migration, so a new migration or PGlite
 * release never loads a stale one: it is simply not found and rebuilt (or the slow path runs).
 */
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { applyMigrations, projectRoot, readMigrationsList } from './schema-engine.js';
import { cacheDir, pgliteEmptyTemplatePath, pgliteVersion, readTarball } from './pglite-empty-template.js';
import { canTopUpDemo, demoFingerprint, seedDemo } from './seed.js';
import { rollUpUsage } from '../usage/rollups.js';


function templateKey(): string {
  return createHash('sha256')
    .update(pgliteVersion())
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
  return readTarball(file);
}

/** Written aside and renamed: test runs and starts that run at the same time never read half a file. */
async function writeTarball(file: string, tarball: Blob) {
  mkdirSync(cacheDir, { recursive: true });
  const partial = `${file}.${randomBytes(4).toString('hex')}.partial`;
  writeFileSync(partial, Buffer.from(await tarball.arrayBuffer()));
  renameSync(partial, file);
}

/** Builds the tarballs (unless they exist) and removes those of older migrations; returns the migrated one's path. */
export async function buildPGliteTemplate(): Promise<string> {
  const file = pgliteTemplatePath();
  const emptyFile = pgliteEmptyTemplatePath();
  if (existsSync(file) && existsSync(emptyFile)) return file;
  const pglite = new PGlite('memory://');
  try {
    await pglite.waitReady;
    // Uncompressed: gzip saves disk but makes every load slower.
    if (!existsSync(emptyFile)) await writeTarball(emptyFile, await pglite.dumpDataDir('none'));
    await applyMigrations(new PrismaPGlite(pglite));
    await writeTarball(file, await pglite.dumpDataDir('none'));
  } finally {
    await pglite.close();
  }
  for (const name of readdirSync(cacheDir)) {
    const stale = (name.startsWith('pglite-migrated-') || name.startsWith('pglite-empty-')) && name.endsWith('.tar');
    if (stale && ![file, emptyFile].includes(path.join(cacheDir, name))) rmSync(path.join(cacheDir, name), { force: true });
  }
  return file;
}

export { isFreshPGliteDir } from './pglite-empty-template.js';

// ---------------------------------------------------------------------------------------------
// The prebuilt demo
// ---------------------------------------------------------------------------------------------

/**
 * Seeding 13 months of demo usage costs ≈ 20 s of CPU on PGlite; a first start instead copies a
 * data directory seeded at `npm install` (≈ 400 MB, under a second) and tops it up with the hours
 * since (src/db/seed.ts topUpDemo). It is used only when it gives exactly what a fresh seed would:
 * same migrations and PGlite (the directory's name), same seed code (a digest of seed.ts and the
 * modules it imports) and same plan for this month (demoFingerprint); otherwise the start seeds.
 */
interface DemoTemplateMeta {
  seededAt: string;
  fingerprint: string;
  sources: string;
}

function demoTemplateDir(): string {
  return path.join(cacheDir, `pglite-demo-${templateKey()}`);
}

/** Digest of src/db/seed.ts, this builder and every local module they import, transitively (the generated client follows the migrations). */
function seedSourcesDigest(): string {
  const hash = createHash('sha256');
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file) || file.includes(`${path.sep}generated${path.sep}`)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    hash.update(path.relative(projectRoot, file)).update('\0').update(source).update('\0');
    for (const match of source.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)) {
      const target = path.resolve(path.dirname(file), match[1]!.replace(/\.js$/, '.ts'));
      if (existsSync(target)) visit(target);
    }
  };
  visit(path.join(projectRoot, 'src/db/seed.ts'));
  // The builder too: what it does after the seed (the rollups) is part of the demo.
  visit(path.join(projectRoot, 'src/db/pglite-template.ts'));
  return hash.digest('hex').slice(0, 16);
}

function readDemoTemplateMeta(dir: string): DemoTemplateMeta | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'demo.json'), 'utf8')) as DemoTemplateMeta;
  } catch {
    return undefined;
  }
}

/** When the prebuilt demo can become the demo of `now`: the clock it was seeded at; else undefined. */
function usableDemoTemplate(dir: string, now: Date): Date | undefined {
  const meta = readDemoTemplateMeta(dir);
  if (!meta || !existsSync(path.join(dir, 'pgdata', 'PG_VERSION'))) return undefined;
  const seededAt = new Date(meta.seededAt);
  if (Number.isNaN(seededAt.getTime()) || !canTopUpDemo(seededAt, now)) return undefined;
  return meta.fingerprint === demoFingerprint(now) && meta.sources === seedSourcesDigest() ? seededAt : undefined;
}

/**
 * Builds the prebuilt demo for `now` unless one usable at `now` exists, and removes older ones.
 * Seeds with wal_level=minimal: the bulk load then writes no WAL, and the directory stays ≈ 400 MB
 * instead of twice that.
 */
export async function buildDemoTemplate(now: Date = new Date()): Promise<{ dir: string; built: boolean }> {
  const dir = demoTemplateDir();
  if (usableDemoTemplate(dir, now)) return { dir, built: false };
  const migrated = readPGliteTemplate(await buildPGliteTemplate())!;
  const partial = `${dir}.${randomBytes(4).toString('hex')}.partial`;
  try {
    mkdirSync(partial, { recursive: true });
    const pglite = new PGlite(path.join(partial, 'pgdata'), {
      loadDataDir: migrated,
      // wal_recycle=off: the checkpoint deletes the WAL segments the load filled instead of keeping
      // them for reuse (≈ 400 MB that every copy of the demo would carry).
      startParams: [...PGlite.defaultStartParams, '-c', 'wal_level=minimal', '-c', 'max_wal_senders=0', '-c', 'wal_recycle=off'],
    });
    await pglite.waitReady;
    const { PrismaClient } = await import('../generated/prisma/client.js');
    const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) });
    try {
      await seedDemo(prisma, { now });
      // Rolled up here, not by the first start's rollup job: that would hold PGlite's one connection
      // for seconds per feature in the user's first minute.
      await rollUpUsage(prisma, { now });
      await pglite.query('CHECKPOINT');
    } finally {
      await prisma.$disconnect();
      await pglite.close();
    }
    const meta: DemoTemplateMeta = { seededAt: now.toISOString(), fingerprint: demoFingerprint(now), sources: seedSourcesDigest() };
    writeFileSync(path.join(partial, 'demo.json'), JSON.stringify(meta));
    rmSync(dir, { recursive: true, force: true });
    renameSync(partial, dir);
  } finally {
    rmSync(partial, { recursive: true, force: true });
  }
  for (const name of readdirSync(cacheDir)) {
    if (name.startsWith('pglite-demo-') && path.join(cacheDir, name) !== dir && !name.endsWith('.partial')) {
      rmSync(path.join(cacheDir, name), { recursive: true, force: true });
    }
  }
  return { dir, built: true };
}

/**
 * A first start with the demo: copies the prebuilt demo into the empty directory `dir` when it can
 * become the demo of `now`, and returns the clock it was seeded at (for topUpDemo). Undefined when
 * there is none or it is stale (the start then seeds); `dir` is left empty then.
 */
export function copyDemoTemplate(dir: string, now: Date): { seededAt: Date } | undefined {
  const template = demoTemplateDir();
  const seededAt = usableDemoTemplate(template, now);
  if (!seededAt) return undefined;
  const pgdata = path.join(template, 'pgdata');
  const copied: string[] = [];
  try {
    mkdirSync(dir, { recursive: true });
    // PG_VERSION last: a copy cut short leaves a directory that still counts as fresh.
    const entries = readdirSync(pgdata).sort((a, b) => Number(a === 'PG_VERSION') - Number(b === 'PG_VERSION'));
    for (const entry of entries) {
      copied.push(entry);
      cpSync(path.join(pgdata, entry), path.join(dir, entry), { recursive: true });
    }
    return { seededAt };
  } catch {
    // Removed or rebuilt under our feet (an `npm install` at the same time): seed instead.
    for (const entry of copied) rmSync(path.join(dir, entry), { recursive: true, force: true });
    return undefined;
  }
}

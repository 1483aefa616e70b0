/**
 * Runs a TypeScript entry (the server, the CLI) compiled into one JavaScript file instead of through
 * tsx, which transpiles and resolves every module at each start (≈ 1.5 s of CPU for the server,
 * ≈ 0.6 s for the CLI on this 2-core machine). The bundle is built by esbuild (the one tsx itself
 * runs on) at `npm install` and again at the first run after a source file changed: every file it
 * was built from is checked by size and mtime at each run (a few ms), so it never runs stale code.
 * When it cannot be built, the entry runs through tsx as before.
 */
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const stamp = (file) => {
  const stats = statSync(path.join(root, file));
  return `${stats.size}:${stats.mtimeMs}`;
};

function isFresh(inputsFile) {
  try {
    const inputs = JSON.parse(readFileSync(inputsFile, 'utf8'));
    return Object.entries(inputs).every(([file, recorded]) => stamp(file) === recorded);
  } catch {
    return false;
  }
}

async function build(entry, bundle, inputsFile) {
  const started = Date.now();
  const esbuild = createRequire(createRequire(import.meta.url).resolve('tsx/package.json'))('esbuild');
  const partial = `${bundle}.${process.pid}.partial`;
  const { metafile } = await esbuild.build({
    absWorkingDir: root,
    entryPoints: [entry],
    outfile: partial,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'inline',
    metafile: true,
    logLevel: 'silent',
  });
  const inputs = Object.fromEntries(Object.keys(metafile.inputs).map((file) => [file, stamp(file)]));
  renameSync(partial, bundle);
  // A file saved while esbuild read it may not be in the bundle: leave it to be rebuilt next time.
  if (Object.keys(inputs).every((file) => statSync(path.join(root, file)).mtimeMs < started)) {
    writeFileSync(`${inputsFile}.${process.pid}.partial`, JSON.stringify(inputs));
    renameSync(`${inputsFile}.${process.pid}.partial`, inputsFile);
  }
}

/**
 * Builds `entry` (relative to the project) into node_modules/.cache/<name>.mjs when stale, then
 * runs it unless `compileOnly`. The bundle sits two directories below the root, like src/db/*.ts:
 * modules that find the project from their own URL (`new URL('../..', import.meta.url)`) find it
 * from the bundle too.
 */
export async function runCompiled({ entry, name, compileOnly = false }) {
  const source = path.join(root, entry);
  const bundle = path.join(root, 'node_modules/.cache', `${name}.mjs`);
  const inputsFile = `${bundle}.inputs.json`;
  let compiled = isFresh(inputsFile);
  if (!compiled) {
    try {
      await build(source, bundle, inputsFile);
      compiled = true;
    } catch {
      // A syntax error, or no esbuild: tsx reports the first and needs no bundle.
    }
  }
  if (compileOnly) return;
  if (compiled) {
    process.setSourceMapsEnabled(true);
    await import(pathToFileURL(bundle).href);
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    await import(pathToFileURL(source).href);
  }
}

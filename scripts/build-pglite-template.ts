/**
 * postinstall: builds the migrated PGlite data directory (src/db/pglite-template.ts) that a first
 * start and the tests load instead of running initdb and the migrations. Never fails the install:
 * without it, a first start only takes longer.
 */
import { existsSync } from 'node:fs';
import { buildPGliteTemplate, pgliteTemplatePath } from '../src/db/pglite-template.js';

const started = performance.now();
try {
  const existed = existsSync(pgliteTemplatePath());
  const file = await buildPGliteTemplate();
  const took = existed ? 'was up to date' : `built in ${Math.round((performance.now() - started) / 1000)} s`;
  console.log(`The migrated embedded-database template ${took} (${file})`);
} catch (error) {
  console.log(`Skipped the embedded-database template (${error instanceof Error ? error.message : String(error)}); the first start will create the database itself`);
}

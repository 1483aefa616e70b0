/**
 * postinstall: builds the migrated PGlite data directory (src/db/pglite-template.ts) that a first
 * start and the tests load instead of running initdb and the migrations, and the prebuilt demo a
 * first start copies instead of seeding. Never fails the install: without them, a first start
 * only takes longer.
 */
import { existsSync } from 'node:fs';
import { buildDemoTemplate, buildPGliteTemplate, pgliteTemplatePath } from '../src/db/pglite-template.js';

const seconds = (since: number) => `${Math.round((performance.now() - since) / 1000)} s`;
const started = performance.now();
try {
  const existed = existsSync(pgliteTemplatePath());
  await buildPGliteTemplate();
  const migrated = existed ? 'up to date' : `built in ${seconds(started)}`;
  const demoStarted = performance.now();
  const demo = await buildDemoTemplate();
  console.log(`Embedded-database templates: migrated ${migrated}, demo ${demo.built ? `seeded in ${seconds(demoStarted)}` : 'up to date'} (${demo.dir})`);
} catch (error) {
  console.log(`Skipped the embedded-database templates (${error instanceof Error ? error.message : String(error)}); the first start will create the database itself`);
}

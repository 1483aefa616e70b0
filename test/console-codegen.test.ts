import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { consoleGeneratedFile, generateConsoleTypes } from '../scripts/console-codegen.js';
import { testDatabaseKind } from './helpers/database.js';

// Pure file comparison: once per run is enough.
describe.runIf(testDatabaseKind() === 'pglite')('console/src/generated.ts', () => {
  it('is the typed documents of console/src/documents.graphql against schema.graphql (run `npm run console:codegen`)', async () => {
    expect(readFileSync(consoleGeneratedFile, 'utf8')).toBe(await generateConsoleTypes());
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { printedSchema, schemaFile } from '../scripts/print-schema.js';

describe('schema.graphql', () => {
  it('is the printed schema of the code (run `npm run schema` after a schema change)', () => {
    expect(readFileSync(schemaFile, 'utf8')).toBe(printedSchema());
  });
});

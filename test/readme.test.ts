import { readFileSync } from 'node:fs';
import { parse, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import { schema } from '../src/schema/index.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const blocks = [...readme.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((block) => /^\s*(\{|query|mutation)/.test(block));

describe('README', () => {
  it.each(blocks.map((block, i) => [i + 1, block]))('GraphQL example %i is valid against the schema', (_i, block) => {
    expect(validate(schema, parse(block as string)).map((e) => e.message)).toEqual([]);
  });
});

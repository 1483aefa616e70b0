import { Kind, visit, type DocumentNode, type ValueNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { badUserInput } from '../errors.js';
import { argumentsUseVariables } from './document-variables.js';

/**
 * Arguments checked elsewhere: `ingestUsage(events:)` rejects an event with a NUL character on its
 * own (`INVALID_EVENT`) and stores the others, as `POST /ingest` does per line.
 */
const EXEMPT = new Set(['ingestUsage.events']);

function hasNul(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const current = pending.pop();
    if (typeof current === 'string') {
      if (current.includes('\u0000')) return true;
    } else if (Array.isArray(current)) {
      pending.push(...current);
    } else if (current && typeof current === 'object') {
      for (const [key, item] of Object.entries(current)) pending.push(key, item);
    }
  }
  return false;
}

function literalHasNul(node: ValueNode, variables: Record<string, unknown>): boolean {
  const pending: ValueNode[] = [node];
  while (pending.length > 0) {
    const current = pending.pop()!;
    switch (current.kind) {
      case Kind.STRING:
        if (current.value.includes('\u0000')) return true;
        break;
      case Kind.VARIABLE:
        if (hasNul(variables[current.name.value])) return true;
        break;
      case Kind.LIST:
        pending.push(...current.values);
        break;
      case Kind.OBJECT:
        for (const field of current.fields) pending.push(field.value);
        break;
    }
  }
  return false;
}

/** The first field argument (by field and argument name) whose strings hold a NUL character. */
export function argumentWithNul(document: DocumentNode, variables: Record<string, unknown>): { field: string; argument: string } | null {
  let found: { field: string; argument: string } | null = null;
  visit(document, {
    [Kind.FIELD](node) {
      if (found) return false;
      for (const argument of node.arguments ?? []) {
        if (EXEMPT.has(`${node.name.value}.${argument.name.value}`)) continue;
        if (literalHasNul(argument.value, variables)) {
          found = { field: node.name.value, argument: argument.name.value };
          return false;
        }
      }
      return undefined;
    },
  });
  return found;
}

/**
 * PostgreSQL cannot store the NUL character (U+0000) in text: a string argument holding one would
 * fail the whole statement (and transaction) as a 500. Such requests are refused up front as
 * `BAD_USER_INPUT` / `INVALID_STRING`, before anything runs.
 */
export function useNulStringGuard(): Plugin {
  // Documents without a NUL in their literals and without variables in checked arguments: nothing
  // to check again (yoga's parser cache hands the same DocumentNode to every request with the same text).
  const clean = new WeakSet<DocumentNode>();
  return {
    onExecute({ args, setResultAndStopExecution }) {
      if (clean.has(args.document)) return;
      const found = argumentWithNul(args.document, (args.variableValues ?? {}) as Record<string, unknown>);
      if (!found && !argumentsUseVariables(args.document, (field, argument) => !EXEMPT.has(`${field}.${argument}`))) clean.add(args.document);
      if (!found) return;
      setResultAndStopExecution({
        errors: [
          badUserInput(
            `\`${found.argument}\` of \`${found.field}\` contains the NUL character (\\u0000), which strings cannot hold; remove it.`,
            'INVALID_STRING',
            { field: found.field, argument: found.argument },
          ),
        ],
      });
    },
  };
}

import {
  getNamedType,
  getNullableType,
  GraphQLObjectType,
  Kind,
  TypeInfo,
  valueFromAST,
  visit,
  visitWithTypeInfo,
  type DocumentNode,
  type GraphQLSchema,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { MAX_PAGE_SIZE } from '../pagination.js';
import { badUserInput } from '../errors.js';
import { argumentsUseVariables } from './document-variables.js';

/**
 * `first`/`last` above the maximum are an error, as on GitHub's API, rather than silently clamped:
 * a client that asked for 500 rows must not believe it got all of them.
 */
export function pageSizeErrors(schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown>) {
  const typeInfo = new TypeInfo(schema);
  const errors: ReturnType<typeof badUserInput>[] = [];
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      [Kind.ARGUMENT](node) {
        if (node.name.value !== 'first' && node.name.value !== 'last') return;
        const field = typeInfo.getFieldDef();
        const argument = typeInfo.getArgument();
        if (!field || !argument) return;
        const returned = getNamedType(getNullableType(field.type));
        if (!(returned instanceof GraphQLObjectType) || !returned.name.endsWith('Connection')) return;
        const value = valueFromAST(node.value, argument.type, variables);
        if (typeof value === 'number' && (value < 0 || value > MAX_PAGE_SIZE)) {
          errors.push(
            badUserInput(`\`${node.name.value}\` on \`${field.name}\` must be between 0 and ${MAX_PAGE_SIZE} (got ${value}).`, 'PAGE_SIZE_TOO_LARGE', {
              argument: node.name.value,
              max: MAX_PAGE_SIZE,
            }),
          );
        }
      },
    }),
  );
  return errors;
}

export function usePageSizeLimit(): Plugin {
  // Documents whose page sizes are all written in them and within bounds: nothing to check again.
  // (yoga's parser cache hands the same DocumentNode to every request with the same query text.)
  const fine = new WeakSet<DocumentNode>();
  return {
    onExecute({ args, setResultAndStopExecution }) {
      if (fine.has(args.document)) return;
      const errors = pageSizeErrors(args.schema, args.document, (args.variableValues ?? {}) as Record<string, unknown>);
      if (errors.length) setResultAndStopExecution({ errors });
      else if (!argumentsUseVariables(args.document, (_field, argument) => argument === 'first' || argument === 'last')) fine.add(args.document);
    },
  };
}

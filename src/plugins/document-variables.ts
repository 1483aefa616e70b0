import { BREAK, Kind, visit, type DocumentNode } from 'graphql';

/**
 * Whether a field argument that `checked(fieldName, argumentName)` picks has a variable in its
 * value: what it holds is then known per request only, so a check of the document cannot be
 * remembered for the next request with the same text.
 */
export function argumentsUseVariables(document: DocumentNode, checked: (field: string, argument: string) => boolean): boolean {
  let uses = false;
  visit(document, {
    [Kind.FIELD](node) {
      for (const argument of node.arguments ?? []) {
        if (!checked(node.name.value, argument.name.value)) continue;
        visit(argument.value, {
          [Kind.VARIABLE]() {
            uses = true;
            return BREAK;
          },
        });
        if (uses) return BREAK;
      }
      return undefined;
    },
  });
  return uses;
}

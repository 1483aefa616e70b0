import { Kind, type DocumentNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { badUserInput } from '../errors.js';

/** Events per `ingestUsage` call; larger volumes go to `POST /ingest`. */
export const MAX_GRAPHQL_EVENTS = 1000;

export function tooManyEvents(count: number) {
  return badUserInput(`At most ${MAX_GRAPHQL_EVENTS} events per call (got ${count}); send larger volumes to POST /ingest as NDJSON.`, 'TOO_MANY_EVENTS', {
    max: MAX_GRAPHQL_EVENTS,
  });
}

/** The largest `events` list of any `ingestUsage` in the document, counted from the literal or the raw variable. */
export function largestEventList(document: DocumentNode, variables: Record<string, unknown> | undefined): number {
  let largest = 0;
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION || definition.operation !== 'mutation') continue;
    for (const selection of definition.selectionSet.selections) {
      if (selection.kind !== Kind.FIELD || selection.name.value !== 'ingestUsage') continue;
      const events = selection.arguments?.find((argument) => argument.name.value === 'events')?.value;
      const count =
        events?.kind === Kind.LIST
          ? events.values.length
          : events?.kind === Kind.VARIABLE && Array.isArray(variables?.[events.name.value])
            ? (variables[events.name.value] as unknown[]).length
            : 0;
      largest = Math.max(largest, count);
    }
  }
  return largest;
}

/**
 * Refuses an `ingestUsage` of more than MAX_GRAPHQL_EVENTS events before its variables are coerced
 * (an object per event: 100,000 events took seconds and 100 MB). Not in `onValidate`: validation
 * results are cached per document, and this depends on the variables. Registered before the other
 * `onExecute` plugins (the query cost coerces arguments too).
 */
export function useIngestEventLimit(): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const count = largestEventList(args.document, args.variableValues as Record<string, unknown> | undefined);
      if (count > MAX_GRAPHQL_EVENTS) setResultAndStopExecution({ errors: [tooManyEvents(count)] });
    },
  };
}

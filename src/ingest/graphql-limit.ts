import { Kind, type DocumentNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { badUserInput } from '../errors.js';
import { EVENT_FIELDS } from './event.js';

/** Events per `ingestUsage` call; larger volumes go to `POST /ingest`. */
export const MAX_GRAPHQL_EVENTS = 1000;

export function tooManyEvents(count: number) {
  return badUserInput(`At most ${MAX_GRAPHQL_EVENTS} events per call (got ${count}); send larger volumes to POST /ingest as NDJSON.`, 'TOO_MANY_EVENTS', {
    max: MAX_GRAPHQL_EVENTS,
  });
}

/** The mutations that take a list of `UsageEventInput` as `events`. */
const EVENT_LIST_FIELDS = new Set(['ingestUsage', 'backfillUsage']);

/** The largest `events` list of any `ingestUsage` (or `backfillUsage`) in the document, counted from the literal or the raw variable. */
export function largestEventList(document: DocumentNode, variables: Record<string, unknown> | undefined): number {
  let largest = 0;
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION || definition.operation !== 'mutation') continue;
    for (const selection of definition.selectionSet.selections) {
      if (selection.kind !== Kind.FIELD || !EVENT_LIST_FIELDS.has(selection.name.value)) continue;
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

/** Where the unknown fields taken out of `events` variables are kept for the resolver: variable → index → fields. */
export const UNKNOWN_EVENT_FIELDS = 'ingest.unknownEventFields';
export type UnknownEventFields = Map<string, Map<number, string[]>>;

/**
 * Takes the unknown fields out of the events in `events` variables (GraphQL would refuse the whole
 * call for one misspelled field), so that the pipeline rejects only those events, with UNKNOWN_FIELD.
 */
function takeUnknownFields(document: DocumentNode, variables: Record<string, unknown> | undefined): { variables: Record<string, unknown>; unknown: UnknownEventFields } | null {
  if (!variables) return null;
  const unknown: UnknownEventFields = new Map();
  let copy: Record<string, unknown> | null = null;
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION || definition.operation !== 'mutation') continue;
    for (const selection of definition.selectionSet.selections) {
      if (selection.kind !== Kind.FIELD || !EVENT_LIST_FIELDS.has(selection.name.value)) continue;
      const events = selection.arguments?.find((argument) => argument.name.value === 'events')?.value;
      if (events?.kind !== Kind.VARIABLE || unknown.has(events.name.value)) continue;
      const list = variables[events.name.value];
      if (!Array.isArray(list)) continue;
      const byIndex = new Map<number, string[]>();
      const cleaned = list.map((event: unknown, index) => {
        if (typeof event !== 'object' || event === null || Array.isArray(event)) return event;
        const extra = Object.keys(event).filter((field) => !EVENT_FIELDS.includes(field));
        if (!extra.length) return event;
        byIndex.set(index, extra);
        return Object.fromEntries(Object.entries(event).filter(([field]) => EVENT_FIELDS.includes(field)));
      });
      unknown.set(events.name.value, byIndex);
      if (byIndex.size) {
        copy ??= { ...variables };
        copy[events.name.value] = cleaned;
      }
    }
  }
  return copy ? { variables: copy, unknown } : null;
}

/** The events as coerced, with the unknown fields the variables had put back (the pipeline rejects them per event). */
export function withUnknownFields<T extends object>(events: readonly T[], memo: Map<string, unknown>, variableName: string | undefined): (T | Record<string, unknown>)[] {
  const byIndex = variableName ? (memo.get(UNKNOWN_EVENT_FIELDS) as UnknownEventFields | undefined)?.get(variableName) : undefined;
  if (!byIndex?.size) return [...events];
  return events.map((event, index) => {
    const extra = byIndex.get(index);
    return extra ? { ...event, ...Object.fromEntries(extra.map((field) => [field, null])) } : event;
  });
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
      if (count > MAX_GRAPHQL_EVENTS) {
        setResultAndStopExecution({ errors: [tooManyEvents(count)] });
        return;
      }
      const taken = takeUnknownFields(args.document, args.variableValues as Record<string, unknown> | undefined);
      const memo = (args.contextValue as { memo?: Map<string, unknown> } | undefined)?.memo;
      if (taken && memo) {
        args.variableValues = taken.variables;
        memo.set(UNKNOWN_EVENT_FIELDS, taken.unknown);
      }
    },
  };
}

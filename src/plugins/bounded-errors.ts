import type { ExecutionResult, GraphQLError } from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { echo, MAX_ECHO_LENGTH } from '../errors.js';

/** The longest error message answered; longer ones are cut (their echoed input was cut first). */
export const MAX_ERROR_MESSAGE_LENGTH = 1000;

/** Any run of non-blank characters (an echoed id, cursor, name or value) is cut to MAX_ECHO_LENGTH. */
export function boundMessage(message: string): string {
  if (message.length <= MAX_ECHO_LENGTH) return message;
  const bounded = message.replace(new RegExp(`[^\\s]{${MAX_ECHO_LENGTH + 1},}`, 'g'), (word) => echo(word));
  return echo(bounded, MAX_ERROR_MESSAGE_LENGTH);
}

function boundExtensions(extensions: Record<string, unknown>): Record<string, unknown> {
  const bounded: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(extensions)) bounded[name] = typeof value === 'string' ? echo(value, MAX_ECHO_LENGTH * 2) : value;
  return bounded;
}

function boundError(error: GraphQLError): GraphQLError {
  const message = boundMessage(error.message);
  const extensions = boundExtensions(error.extensions ?? {});
  const changed = message !== error.message || Object.entries(extensions).some(([name, value]) => value !== error.extensions?.[name]);
  if (!changed) return error;
  return createGraphQLError(message, { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path, originalError: error.originalError, extensions });
}

const isSingleResult = (result: unknown): result is ExecutionResult =>
  !!result && typeof result === 'object' && !Array.isArray(result) && !(Symbol.asyncIterator in result);

/**
 * Errors repeat what the client sent (an id, an enum value, a time zone); a 1 MB value must not
 * come back whole. Every answered error message is bounded, whichever code produced it.
 */
export function useBoundedErrorMessages(): Plugin {
  return {
    onExecutionResult({ result, setResult }) {
      if (!isSingleResult(result) || !result.errors?.length) return;
      const errors = result.errors.map(boundError);
      if (errors.some((error, index) => error !== result.errors![index])) setResult({ ...result, errors });
    },
  };
}

import { GraphQLError } from 'graphql';
import { echo, echoJson } from '../errors.js';

/**
 * Query parameters of the REST routes: each route declares its parameters once (they are its
 * OpenAPI `parameters` too); a parameter a route does not declare is refused, so the document
 * names everything a route answers to.
 */

export type RestInputReason =
  | 'UNKNOWN_PARAMETER'
  | 'MISSING_PARAMETER'
  | 'REPEATED_PARAMETER'
  | 'INVALID_PARAMETER'
  | 'INVALID_DATE'
  | 'INVALID_TIMEFRAME'
  | 'INVALID_GRANULARITY'
  | 'INVALID_PAGINATION'
  | 'INVALID_RANGE'
  | 'RANGE_TOO_LARGE'
  | 'INVALID_ID';

/** Bad input of a REST route: answered 400 BAD_USER_INPUT with `reason` and the parameter it is about. */
export class RestInputError extends Error {
  constructor(
    message: string,
    readonly reason: RestInputReason | string,
    readonly parameter: string | null,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** The loaders' own bad-input errors (GraphQL's `BAD_USER_INPUT`), as a route's. */
export function restInputErrorFrom(error: unknown): RestInputError | null {
  if (error instanceof RestInputError) return error;
  if (!(error instanceof GraphQLError) || error.extensions.code !== 'BAD_USER_INPUT') return null;
  const { code: _code, http: _http, reason, ...extra } = error.extensions as Record<string, unknown>;
  return new RestInputError(error.message, typeof reason === 'string' ? reason : 'INVALID_PARAMETER', null, extra);
}

/** An OpenAPI 3.1 Parameter Object (the subset these routes use). */
export interface ParameterDoc {
  name: string;
  in: 'query' | 'path';
  description: string;
  required?: boolean;
  schema: Record<string, unknown>;
  style?: 'form';
  explode?: boolean;
  example?: unknown;
}

/** A query parameter that may be given several times (`workspace_id=a&workspace_id=b`). */
export function repeatable(doc: Omit<ParameterDoc, 'in' | 'schema' | 'style' | 'explode'> & { items: Record<string, unknown> }): ParameterDoc {
  const { items, ...rest } = doc;
  return { ...rest, in: 'query', schema: { type: 'array', items }, style: 'form', explode: true };
}

export function query(doc: Omit<ParameterDoc, 'in'>): ParameterDoc {
  return { ...doc, in: 'query' };
}

/** The request's query parameters, checked against the route's: unknown names and repeats of single ones are refused. */
export class QueryParams {
  constructor(
    private readonly search: URLSearchParams,
    parameters: readonly ParameterDoc[],
  ) {
    const declared = new Map(parameters.filter((p) => p.in === 'query').map((p) => [p.name, p]));
    const seen = new Set<string>();
    for (const name of search.keys()) {
      const parameter = declared.get(name);
      if (!parameter) {
        const known = [...declared.keys()].join(', ') || 'none';
        throw new RestInputError(`Unknown parameter ${echoJson(name)}; this route takes: ${known}.`, 'UNKNOWN_PARAMETER', echo(name));
      }
      if (seen.has(name) && parameter.schema.type !== 'array') {
        throw new RestInputError(`\`${name}\` is given more than once; it takes one value.`, 'REPEATED_PARAMETER', name);
      }
      seen.add(name);
    }
  }

  /** One value; an empty value counts as given (and is then checked like any other). */
  get(name: string): string | undefined {
    return this.search.get(name) ?? undefined;
  }

  required(name: string): string {
    const value = this.get(name);
    if (value === undefined) throw new RestInputError(`\`${name}\` is required.`, 'MISSING_PARAMETER', name);
    return value;
  }

  all(name: string): string[] | undefined {
    const values = this.search.getAll(name);
    return values.length ? values : undefined;
  }

  /** One of `values` (as written in the URL); `reason` and `label` make the seed APIs' own messages ("Invalid timeframe"). */
  oneOf<T extends string>(name: string, values: readonly T[], fallback: T, options: { reason?: RestInputReason; label?: string } = {}): T {
    const value = this.get(name);
    if (value === undefined) return fallback;
    if ((values as readonly string[]).includes(value)) return value as T;
    throw new RestInputError(
      `Invalid ${options.label ?? name} ${echoJson(value)}: use one of ${values.join(', ')}.`,
      options.reason ?? 'INVALID_PARAMETER',
      name,
      { allowed: [...values] },
    );
  }

  integer(name: string, fallback: number, bounds: { min: number; max?: number }, reason: RestInputReason = 'INVALID_PARAMETER'): number {
    const value = this.get(name);
    if (value === undefined) return fallback;
    const n = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isInteger(n) || n < bounds.min || (bounds.max !== undefined && n > bounds.max)) {
      const range = bounds.max === undefined ? `${bounds.min} or more` : `${bounds.min} to ${bounds.max}`;
      throw new RestInputError(`\`${name}\` must be a whole number, ${range} (got ${echoJson(value)}).`, reason, name, { min: bounds.min, ...(bounds.max === undefined ? {} : { max: bounds.max }) });
    }
    return n;
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.get(name);
    if (value === undefined) return fallback;
    if (value === 'true') return true;
    if (value === 'false') return false;
    throw new RestInputError(`\`${name}\` must be true or false (got ${echoJson(value)}).`, 'INVALID_PARAMETER', name);
  }
}

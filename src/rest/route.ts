import type { Context } from '../context.js';
import type { ParameterDoc, QueryParams } from './params.js';

/** One REST route: what it answers, its parameters and its OpenAPI description, side by side. */
export interface RestRoute {
  operationId: string;
  /** The OpenAPI path template (`/api/v1/keys/{id}/usage`). */
  path: string;
  /** The path parameters when the URL's path is this route's, else undefined. */
  match(pathname: string): Record<string, string> | undefined;
  scope: 'usage:read';
  parameters: ParameterDoc[];
  summary: string;
  description: string;
  /** The 200 answer's JSON Schema. */
  responseSchema: Record<string, unknown>;
  /** The 200 answer's body; throws RestInputError (or the loaders' BAD_USER_INPUT) for bad input. */
  handle(ctx: Context, params: QueryParams, pathParams: Record<string, string>, url: URL): Promise<RestAnswer>;
}

export type RestAnswer = { status?: 200; body: unknown } | { status: 404; message: string };

/** A path without parameters: matched as written. */
export function exactPath(...paths: string[]): (pathname: string) => Record<string, string> | undefined {
  return (pathname) => (paths.includes(pathname) ? {} : undefined);
}

import { createGraphQLError } from 'graphql-yoga';
import type { Viewer } from '../context.js';

export const SCOPES = ['usage:read', 'usage:write', 'keys:manage', 'billing:read'] as const;
export type Scope = (typeof SCOPES)[number];

export function hasScope(viewer: Viewer, scope: Scope): boolean {
  return viewer.scopes.includes(scope);
}

export function forbidden(scope: Scope) {
  return createGraphQLError(`This needs an API key with the \`${scope}\` scope.`, {
    extensions: { code: 'FORBIDDEN', requiredScope: scope, http: { status: 403 } },
  });
}

export function requireScope(viewer: Viewer, scope: Scope): void {
  if (!hasScope(viewer, scope)) throw forbidden(scope);
}

/** The scopes a realm's API key can hold. */
export const SCOPES = ['usage:read', 'usage:write', 'keys:manage', 'billing:read', 'admin:write', 'billing:write'] as const;

/** The operators' scope: held only by operator keys, never by a realm's key. */
export const OPERATOR_SCOPE = 'realms:manage';
export type Scope = (typeof SCOPES)[number];

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

/** The scopes a key may not hand out: the ones it does not hold itself. */
export function escalatedScopes(granted: readonly string[], requested: readonly string[]): string[] {
  return requested.filter((scope) => !granted.includes(scope));
}

export function hasScope(viewer: { scopes: readonly string[] }, scope: Scope): boolean {
  return viewer.scopes.includes(scope);
}

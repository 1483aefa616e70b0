/**
 * The console sections a portal session may show, and the scopes each needs. A session is always
 * limited to a workspace's subtree, and billing (plan, current usage, history, alerts) describes the
 * whole realm; the API keys section lists keys, which needs keys:manage, never a session's. Those
 * sections are not available to a portal.
 */
export const PORTAL_SECTIONS = {
  explorer: ['usage:read'],
  download: ['usage:read'],
} as const satisfies Record<string, readonly string[]>;

export type PortalSection = keyof typeof PORTAL_SECTIONS;

/** The console's other sections: never a portal's. */
export const UNAVAILABLE_SECTIONS = ['plan', 'current', 'history', 'alerts', 'keys'] as const;

export function isPortalSection(value: string): value is PortalSection {
  return Object.hasOwn(PORTAL_SECTIONS, value);
}

/** The scopes a session with these sections gets: what they need, and never more than its creator holds. */
export function portalScopes(sections: readonly PortalSection[], creatorScopes: readonly string[]): string[] {
  const needed = new Set(['usage:read', ...sections.flatMap((section) => PORTAL_SECTIONS[section])]);
  return [...needed].filter((scope) => creatorScopes.includes(scope)).sort();
}

/** The longest a session lives. */
export const MAX_PORTAL_SESSION_SECONDS = 86_400;

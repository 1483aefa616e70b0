import { decodeInputId } from '../admin/admin-request.js';
import type { PrismaClient } from '../generated/prisma/client.js';

/** The most origins a realm may allow to embed its portal. */
export const MAX_PORTAL_ORIGINS = 20;

/**
 * An origin a realm allows to frame its portal (`frame-ancestors`): `https://host[:port]`, or
 * `http://localhost[:port]` for development. Written into a CSP header: nothing but scheme, host
 * and port gets through (no paths, wildcards, spaces or semicolons). Null when it is not one.
 */
export function normalizedOrigin(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return null;
  }
  const local = url.hostname === 'localhost' || url.hostname === '127.0.0.1';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && local)) return null;
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) return null;
  if (!/^[a-z0-9.-]+$/.test(url.hostname) && !/^\[[0-9a-f:]+\]$/.test(url.hostname)) return null;
  return url.origin;
}

/** The `frame-ancestors` source list for a realm's portal: its origins, or `'none'`. */
export function frameAncestors(origins: readonly string[]): string[] {
  return origins.map(normalizedOrigin).filter((origin): origin is string => origin !== null);
}

/**
 * The origins that may frame the console page of a session (`/portal/<id>`): its realm's, whatever
 * the session's state (an expired session's page still loads, to say so). Null: no such session.
 * The id is not a secret; the page holds no data until the token in its fragment is used.
 */
export async function portalPageOrigins(prisma: PrismaClient, sessionGlobalId: string): Promise<string[] | null> {
  const id = decodeInputId(sessionGlobalId, 'PortalSession');
  if (!id) return null;
  const session = await prisma.portalSession.findUnique({ where: { id }, select: { realm: { select: { portalOrigins: true } } } });
  return session ? frameAncestors(session.realm.portalOrigins) : null;
}

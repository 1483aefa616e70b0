import { randomBytes } from 'node:crypto';
import { hashSecret } from '../auth/api-key-secret.js';

/**
 * `ugwps_<8 hex: the visible prefix id>_<secret>`: a portal session's token. Its own prefix, so that
 * it can never be mistaken for (or turned into) an API key; stored hashed like a key's secret.
 */
const TOKEN_PATTERN = /^(ugwps_[0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$/;

export interface NewPortalToken {
  token: string;
  prefix: string;
  secretHash: string;
}

export function newPortalToken(): NewPortalToken {
  const prefix = `ugwps_${randomBytes(4).toString('hex')}`;
  const token = `${prefix}_${randomBytes(24).toString('base64url')}`;
  return { token, prefix, secretHash: hashSecret(token) };
}

/** The token's prefix, or null when it is not a portal session token. */
export function parsePortalToken(token: string): { prefix: string } | null {
  const match = TOKEN_PATTERN.exec(token);
  return match ? { prefix: match[1]! } : null;
}

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * `ugw_<8 hex: the visible prefix id>_<secret>` for a realm's keys, `ugwop_<8 hex>_<secret>` for
 * operators' keys; only the prefix is ever shown again.
 */
const KEY_PATTERN = /^(ugw(?:op)?_[0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$/;

export interface NewApiKeySecret {
  key: string;
  prefix: string;
  secretHash: string;
}

export function hashSecret(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function newApiKeySecret(kind: 'apiKey' | 'operator' = 'apiKey'): NewApiKeySecret {
  const prefix = `${kind === 'operator' ? 'ugwop' : 'ugw'}_${randomBytes(4).toString('hex')}`;
  const key = `${prefix}_${randomBytes(24).toString('base64url')}`;
  return { key, prefix, secretHash: hashSecret(key) };
}

/** A fixed key for the demo realm, so every fresh demo prints the same working key. */
export function demoApiKeySecret(prefixId: string, secret: string): NewApiKeySecret {
  const key = `ugw_${prefixId}_${secret}`;
  const parsed = parseApiKey(key);
  if (!parsed) throw new Error(`invalid demo key ${key}`);
  return { key, prefix: parsed.prefix, secretHash: hashSecret(key) };
}

export function parseApiKey(key: string): { prefix: string; kind: 'apiKey' | 'operator' } | null {
  const match = KEY_PATTERN.exec(key);
  return match ? { prefix: match[1]!, kind: match[1]!.startsWith('ugwop_') ? 'operator' : 'apiKey' } : null;
}

/** `Authorization: Bearer <key>` or `Token <key>`; anything else is no key. */
export function keyFromAuthorizationHeader(header: string | null | undefined): string | null {
  if (!header) return null;
  const match = /^(?:Bearer|Token)\s+(\S+)\s*$/i.exec(header.trim());
  return match ? match[1]! : null;
}

export function secretMatches(key: string, storedHash: string): boolean {
  const actual = Buffer.from(hashSecret(key), 'hex');
  const expected = Buffer.from(storedHash, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

import { ALL_SCOPES } from '../helpers/fixtures.js';

/** The matrix's callers, by name (seedWorld builds one of each; the names are known before it runs). */
export const CALLER_NAMES = [
  'realm-wide key, all scopes',
  'workspace-scoped key, all scopes',
  'workspace-scoped key, usage:read',
  'portal session of a workspace',
  ...ALL_SCOPES.map((scope) => `realm-wide key, ${scope} only`),
  'key of another realm, all scopes',
  'key of a suspended realm, all scopes',
  'operator key',
  'revoked key',
  'rotated-out previous secret',
  'no key',
] as const;

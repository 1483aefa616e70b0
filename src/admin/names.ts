import type { UserError } from '../schema/user-error.js';

export const MAX_NAME_LENGTH = 200;

/**
 * A display name (realm, workspace, datastream, project, app, feature, contract): trimmed, 1 to
 * MAX_NAME_LENGTH characters, no control characters. Returns the name to store, or the problem.
 */
export function checkName(value: string, field: string[]): { name: string } | { error: UserError } {
  const name = value.trim();
  if (name.length === 0) return { error: { field, code: 'BLANK', message: 'A name cannot be empty.' } };
  if (name.length > MAX_NAME_LENGTH) return { error: { field, code: 'TOO_LONG', message: `A name is at most ${MAX_NAME_LENGTH} characters (this one has ${name.length}).` } };
  if (/[\u0000-\u001f\u007f]/.test(name)) return { error: { field, code: 'INVALID_STRING', message: 'A name cannot contain control characters.' } };
  return { name };
}

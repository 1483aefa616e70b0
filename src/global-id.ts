import { badUserInput } from './errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Opaque Relay ids: base64url of `<Type>:<uuid>`. */
export function encodeId(typename: string, id: string | number | bigint): string {
  return Buffer.from(`${typename}:${id}`).toString('base64url');
}

export function decodeId(globalId: string): { typename: string; id: string } {
  const decoded = Buffer.from(globalId, 'base64url').toString('utf8');
  const separator = decoded.indexOf(':');
  const typename = decoded.slice(0, separator);
  const id = decoded.slice(separator + 1);
  if (separator < 1 || !/^[A-Z][A-Za-z]*$/.test(typename) || !UUID.test(id) || encodeId(typename, id) !== globalId.replace(/=+$/, '')) {
    throw badUserInput(`"${globalId}" is not a valid ID.`, 'INVALID_ID', { id: globalId });
  }
  return { typename, id };
}

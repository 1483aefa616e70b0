import { badUserInput, echo } from './errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The schema's node types (`registerNodeTypes`); an id of another type is not an id of this API. */
let nodeTypes: ReadonlySet<string> | null = null;

export function registerNodeTypes(typenames: Iterable<string>): void {
  nodeTypes = new Set(typenames);
}

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
    throw badUserInput(`"${echo(globalId)}" is not a valid ID: use the \`id\` of an object the API returned.`, 'INVALID_ID', { id: echo(globalId) });
  }
  if (nodeTypes && !nodeTypes.has(typename)) {
    throw badUserInput(`"${echo(globalId)}" is not an ID of this API (its type "${echo(typename, 40)}" is unknown): use the \`id\` of an object the API returned.`, 'INVALID_ID', {
      id: echo(globalId),
    });
  }
  return { typename, id };
}

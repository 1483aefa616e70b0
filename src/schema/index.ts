import { GraphQLObjectType, lexicographicSortSchema, type GraphQLSchema } from 'graphql';
import { encodeId, registerNodeTypes } from '../global-id.js';
import { builder } from '../builder.js';
import './enums.js';
import './realm.js';
import './workspace.js';
import './datastream.js';
import './project.js';
import './feature.js';
import './api-key.js';
import './viewer.js';
import './contract.js';
import './usage.js';
import './traffic.js';
import './ingest.js';
import './corrections.js';
import './api-key-mutations.js';
import './billing.js';
import './exports.js';
import './quota.js';
import './audit.js';
import './realm-insights.js';
import './realm-admin.js';
import './feature-admin.js';
import './contract-admin.js';
import './workspace-admin.js';
import './catalog-admin.js';
import './portal.js';
import './subscriptions.js';

/**
 * Pothos' relay plugin resolves every node's `id` through an async function: a few promises per
 * node, which on usage reports of tens of thousands of points (each with `feature { id }`) cost
 * more than the rest of the request. For node types without type-level auth scopes whose id is
 * their `id` column, the global id is a pure function of the parent: resolve it synchronously.
 */
function resolveNodeIdsSynchronously(schema: GraphQLSchema): GraphQLSchema {
  const nodeTypes: string[] = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (!(type instanceof GraphQLObjectType) || !type.getInterfaces().some((i) => i.name === 'Node')) continue;
    nodeTypes.push(type.name);
    const options = type.extensions?.pothosOptions as { authScopes?: unknown; id?: { resolve?: (parent: unknown) => unknown } } | undefined;
    const idField = type.getFields().id;
    // Only where the node's own id resolver is plainly "the parent's id column" (prismaNode `id: { field: 'id' }`).
    const probe = { id: 'probe' };
    if (!idField || options?.authScopes || typeof options?.id?.resolve !== 'function' || options.id.resolve(probe) !== probe.id) continue;
    const typename = type.name;
    idField.resolve = (parent: { id: string }) => encodeId(typename, parent.id);
  }
  // `node(id:)` with an id of another type answers INVALID_ID rather than Pothos's "… has not been implemented".
  registerNodeTypes(nodeTypes);
  return schema;
}

export const schema = resolveNodeIdsSynchronously(lexicographicSortSchema(builder.toSchema()));

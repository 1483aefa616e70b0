import SchemaBuilder from '@pothos/core';
import ComplexityPlugin from '@pothos/plugin-complexity';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { createGraphQLError } from 'graphql-yoga';
import { DateTimeResolver, JSONObjectResolver } from 'graphql-scalars';
import type { Context } from './context.js';
import type { Prisma } from './generated/prisma/client.js';
import type PrismaTypes from './generated/pothos-types.js';
import { getDatamodel } from './generated/pothos-types.js';
import { decodeId, encodeId } from './global-id.js';
import { fieldCost } from './plugins/query-cost.js';
import { DecimalScalar, TimeZoneScalar } from './scalars.js';

import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './pagination.js';

const SCOPE_NAMES: Record<string, string> = {
  usageRead: 'usage:read',
  usageWrite: 'usage:write',
  keysManage: 'keys:manage',
  billingRead: 'billing:read',
  adminWrite: 'admin:write',
  billingWrite: 'billing:write',
  realmsManage: 'realms:manage',
};

function failedScopes(failure: unknown): { names: string; realmWide: boolean } {
  const names = new Set<string>();
  let realmWide = false;
  const walk = (node: unknown) => {
    if (!node || typeof node !== 'object') return;
    const { scope, failures } = node as { scope?: string; failures?: unknown[] };
    if (scope === 'realmWide') realmWide = true;
    if (scope && SCOPE_NAMES[scope]) names.add(`\`${SCOPE_NAMES[scope]}\``);
    failures?.forEach(walk);
  };
  walk(failure);
  return { names: [...names].join(' or ') || 'required', realmWide };
}

function unauthorizedMessage(field: string, failure: unknown): string {
  const { names, realmWide } = failedScopes(failure);
  if (realmWide && names === 'required') {
    return `${field} concerns the whole realm: it needs a realm-wide API key (this key is scoped to a workspace).`;
  }
  return `${field} needs an API key with the ${names} scope.`;
}

export const builder = new SchemaBuilder<{
  DefaultFieldNullability: false;
  Context: Context;
  PrismaTypes: PrismaTypes;
  /** One per API-key scope: fields declare the scope they need, and the plugin checks it. */
  AuthScopes: {
    usageRead: boolean;
    usageWrite: boolean;
    keysManage: boolean;
    billingRead: boolean;
    /** The realm's structure: workspaces, datastreams, projects, apps, features. */
    adminWrite: boolean;
    /** Contracts, licenses, credit grants, prices, quota rules. */
    billingWrite: boolean;
    /** Operators only: realms themselves. */
    realmsManage: boolean;
    /** Not a scope a key is given: whether it is realm-wide (not scoped to a workspace). Billing and realm-wide mutations need it. */
    realmWide: boolean;
  };
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    Decimal: { Input: Prisma.Decimal; Output: Prisma.Decimal | string | bigint };
    TimeZone: { Input: string; Output: string };
    JSONObject: { Input: Record<string, unknown>; Output: Record<string, unknown> };
    UsageQuantity: { Input: unknown; Output: string };
    UsageTimestamp: { Input: unknown; Output: string };
  };
}>({
  plugins: [ScopeAuthPlugin, PrismaPlugin, RelayPlugin, DataloaderPlugin, ComplexityPlugin],
  // Only the cost model lives here; src/plugins/query-cost.ts enforces the limits and reports the cost.
  complexity: { fieldComplexity: (args, ctx, field) => fieldCost(args, ctx, field as never) },
  defaultFieldNullability: false,
  scopeAuth: {
    // Subscriptions: scopes are checked when the stream opens (a key without them gets FORBIDDEN, not an empty stream).
    authorizeOnSubscribe: true,
    authScopes: (ctx) => ({
      usageRead: ctx.viewer.scopes.includes('usage:read'),
      usageWrite: ctx.viewer.scopes.includes('usage:write'),
      keysManage: ctx.viewer.scopes.includes('keys:manage'),
      billingRead: ctx.viewer.scopes.includes('billing:read'),
      adminWrite: ctx.viewer.scopes.includes('admin:write'),
      billingWrite: ctx.viewer.scopes.includes('billing:write'),
      realmsManage: ctx.viewer.kind === 'operator' && ctx.viewer.scopes.includes('realms:manage'),
      realmWide: ctx.viewer.workspaceId === null,
    }),
    unauthorizedError: (_parent, _ctx, info, result) =>
      createGraphQLError(unauthorizedMessage(`\`${info.parentType.name}.${info.fieldName}\``, result.failure), {
        extensions: { code: 'FORBIDDEN' },
      }),
  },
  prisma: {
    client: (ctx) => ctx.prisma,
    dmmf: getDatamodel(),
    exposeDescriptions: true,
    filterConnectionTotalCount: true,
    maxConnectionSize: MAX_PAGE_SIZE,
    defaultConnectionSize: DEFAULT_PAGE_SIZE,
    // Off: Pothos's check prints a console line (outside the JSON logs) for every payload whose
    // record is null because the mutation failed and for fields fed from the parent's rows, none
    // of them an extra query. Statement counts are asserted by the tests instead (EXPOSE_QUERY_STATS).
    onUnusedQuery: null,
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    encodeGlobalID: encodeId,
    decodeGlobalID: decodeId,
  },
});

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('TimeZone', TimeZoneScalar);
builder.addScalarType('Decimal', DecimalScalar);
builder.addScalarType('JSONObject', JSONObjectResolver);

builder.queryType({});

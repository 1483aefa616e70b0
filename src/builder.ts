import SchemaBuilder from '@pothos/core';
import ComplexityPlugin from '@pothos/plugin-complexity';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { createGraphQLError } from 'graphql-yoga';
import { DateTimeResolver } from 'graphql-scalars';
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
};

function describeScopes(failure: unknown): string {
  const names = new Set<string>();
  const walk = (node: unknown) => {
    if (!node || typeof node !== 'object') return;
    const { scope, failures } = node as { scope?: string; failures?: unknown[] };
    if (scope && SCOPE_NAMES[scope]) names.add(`\`${SCOPE_NAMES[scope]}\``);
    failures?.forEach(walk);
  };
  walk(failure);
  return [...names].join(' or ') || 'required';
}

export const builder = new SchemaBuilder<{
  DefaultFieldNullability: false;
  Context: Context;
  PrismaTypes: PrismaTypes;
  /** One per API-key scope: fields declare the scope they need, and the plugin checks it. */
  AuthScopes: { usageRead: boolean; usageWrite: boolean; keysManage: boolean; billingRead: boolean };
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    Decimal: { Input: Prisma.Decimal; Output: Prisma.Decimal | string | bigint };
    TimeZone: { Input: string; Output: string };
  };
}>({
  plugins: [ScopeAuthPlugin, PrismaPlugin, RelayPlugin, DataloaderPlugin, ComplexityPlugin],
  // Only the cost model lives here; src/plugins/query-cost.ts enforces the limits and reports the cost.
  complexity: { fieldComplexity: (args, ctx, field) => fieldCost(args, ctx, field as never) },
  defaultFieldNullability: false,
  scopeAuth: {
    authScopes: (ctx) => ({
      usageRead: ctx.viewer.scopes.includes('usage:read'),
      usageWrite: ctx.viewer.scopes.includes('usage:write'),
      keysManage: ctx.viewer.scopes.includes('keys:manage'),
      billingRead: ctx.viewer.scopes.includes('billing:read'),
    }),
    unauthorizedError: (_parent, _ctx, info, result) =>
      createGraphQLError(`\`${info.parentType.name}.${info.fieldName}\` needs an API key with the ${describeScopes(result.failure)} scope.`, {
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
    onUnusedQuery: process.env.NODE_ENV === 'production' ? null : 'warn',
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

builder.queryType({});

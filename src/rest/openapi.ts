import type { RestRoute } from './route.js';

/** The OpenAPI 3.1 document of the REST routes, built from the routes' own declarations (served at `GET /openapi.json`). */

export const OPENAPI_PATH = '/openapi.json';

const errorSchema = {
  type: 'object',
  required: ['errors'],
  description: 'The gateway\'s one error shape, on every route (GraphQL\'s).',
  properties: {
    errors: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['message', 'extensions'],
        properties: {
          message: { type: 'string' },
          extensions: {
            type: 'object',
            required: ['code'],
            properties: {
              code: { type: 'string', description: 'BAD_USER_INPUT, UNAUTHENTICATED, FORBIDDEN, REALM_SUSPENDED, NOT_FOUND, RATE_LIMITED, SERVICE_UNAVAILABLE, …' },
              reason: {
                type: 'string',
                description:
                  'BAD_USER_INPUT only: UNKNOWN_PARAMETER, MISSING_PARAMETER, REPEATED_PARAMETER, INVALID_PARAMETER, INVALID_DATE, INVALID_TIMEFRAME, INVALID_GRANULARITY, INVALID_PAGINATION, INVALID_RANGE, RANGE_TOO_LARGE, INVALID_ID.',
              },
              parameter: { type: 'string', description: 'BAD_USER_INPUT: the parameter the error is about.' },
            },
          },
        },
      },
    },
    extensions: { type: 'object', properties: { requestId: { type: 'string' } } },
  },
};

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

export function openApiDocument(routes: readonly RestRoute[], version: string) {
  const paths: Record<string, unknown> = {};
  for (const route of routes) {
    paths[route.path] = {
      get: {
        operationId: route.operationId,
        summary: route.summary,
        description: route.description,
        parameters: route.parameters,
        responses: {
          '200': {
            description: 'The answer.',
            headers: {
              'Data-Refreshed-At': {
                description: 'Usage committed before this instant is in the answer: the request\'s time, or how far a read replica (DATABASE_READ_URL) has replayed.',
                schema: { type: 'string', format: 'date-time' },
              },
            },
            content: { 'application/json': { schema: route.responseSchema } },
          },
          '400': { $ref: '#/components/responses/BadRequest' },
          '401': { $ref: '#/components/responses/Unauthenticated' },
          '403': { $ref: '#/components/responses/Forbidden' },
          ...(route.path.startsWith('/api/v1/keys/') ? { '404': errorResponse('No such key for this caller (NOT_FOUND).') } : {}),
          '429': { $ref: '#/components/responses/RateLimited' },
          '503': { $ref: '#/components/responses/ServiceUnavailable' },
        },
      },
    };
  }
  paths[OPENAPI_PATH] = {
    get: {
      operationId: 'getOpenApiDocument',
      summary: 'This document',
      security: [],
      responses: { '200': { description: 'The OpenAPI 3.1 document of the REST routes.', content: { 'application/json': { schema: { type: 'object' } } } } },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Usage gateway REST routes',
      version,
      description:
        'REST routes in the shapes of the usage APIs the gateway unifies, for partner integrations that already speak them. They read through the same loaders, visibility rule, scopes and rate limits as the GraphQL API at /graphql, and answer the same numbers. ' +
        'Every id is a GraphQL global id (the `id` of the object in the GraphQL API). Quantities are exact decimal strings. Each route needs an API key with the `usage:read` scope.',
    },
    servers: [{ url: '/' }],
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API key: `Authorization: Bearer <key>` (or `Token <key>`).' } },
      schemas: { Error: errorSchema },
      responses: {
        BadRequest: errorResponse('A bad parameter: code BAD_USER_INPUT, with `reason` and `parameter`.'),
        Unauthenticated: errorResponse('No valid API key (UNAUTHENTICATED).'),
        Forbidden: errorResponse('The key lacks the `usage:read` scope (FORBIDDEN, `requiredScope`), or its realm is suspended (REALM_SUSPENDED).'),
        RateLimited: errorResponse('Over the key\'s rate limit (RATE_LIMITED, `Retry-After`).'),
        ServiceUnavailable: errorResponse('The database cannot be reached (SERVICE_UNAVAILABLE, `Retry-After`).'),
      },
    },
  };
}

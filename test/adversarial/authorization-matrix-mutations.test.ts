import { beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../../src/global-id.js';
import type { App } from '../../src/yoga.js';
import { CALLER_NAMES } from './callers.js';
import type { FixtureObject, World } from './fixture.js';
import { gatewayRoutes, request, routesInSource, type Route } from './gateway.js';
import { matrixTargets, useMatrix } from './matrix.js';
import { assertNoProblems, leaks, ObjectDirectory, serverErrors, suspendedAnswer, unauthenticatedAnswer, visibleTo } from './rules.js';

// The authorization matrix, writes: every mutation × every kind of caller (one by one: each compares
// the realm's state before and after), then every HTTP route and the dimensions of ingested events on
// the realm the mutations left. The queries and subscriptions are in authorization-matrix.test.ts
// (a file of their own, so that the two halves run side by side); matrix.ts holds what both share.

const matrix = useMatrix();
const { caller, admin } = matrix;
let app: App;
let world: World;
let directory: ObjectDirectory;
beforeAll(() => {
  ({ app, world, directory } = matrix);
});

matrix.describeAreas(matrixTargets().filter((t) => t.kind === 'mutation'));

// ─── HTTP routes ──────────────────────────────────────────────────────────────────────────────

const routeSequence = { n: 0 };
const ingestLine = () => JSON.stringify({ feature: 'tx', idempotencyKey: `route-${++routeSequence.n}-${Math.random()}`, timestamp: world.hour.toISOString(), quantity: '1' });
const routes = gatewayRoutes(() => ingestLine());
const routePath = (route: Route) => route.path.split('?')[0]!;

describe('HTTP routes', () => {
  let operationToken: FixtureObject;
  beforeAll(async () => {
    // A tenant's operation name: no other tenant, and nobody unauthenticated, may read it (e.g. in /metrics).
    operationToken = { typename: 'OperationName', id: 'op', realmId: world.a.realm.id, workspaceId: null, sharedWithScopedKeys: false, billing: false, token: 'SecretOperationTok999q' };
    world.objects.push(operationToken);
    await request(app, '/graphql', {
      method: 'POST',
      key: admin().key,
      contentType: 'application/json',
      body: JSON.stringify({ query: 'query SecretOperationTok999q { viewer { scopes } }', operationName: 'SecretOperationTok999q' }),
    });
  });

  it('every route named in src/ is in the matrix', () => {
    const covered = new Set(routes.map(routePath));
    expect(routesInSource().filter((path) => !covered.has(path) && ![...covered].some((c) => c.startsWith(path)))).toEqual([]);
  });

  for (const route of routes) {
    for (const name of CALLER_NAMES) {
      it(`${route.method} ${routePath(route)}${route.path.includes('?') ? '?query' : ''} × ${name}`, async () => {
        const who = caller(name);
        const body = route.body?.();
        const answer = await request(app, route.path, { method: route.method, key: who.key, contentType: body?.contentType, body: body?.body });
        const problems = serverErrors(answer);
        const path = routePath(route);
        if (route.auth && !who.authenticated) {
          problems.push(...unauthenticatedAnswer(answer));
        } else if (route.auth && who.suspended) {
          problems.push(...suspendedAnswer(answer));
        } else if (route.scope && !who.scopes.includes(route.scope)) {
          if (answer.status !== 403 || answer.json?.errors?.[0]?.extensions?.code !== 'FORBIDDEN') problems.push(`HTTP ${answer.status} ${answer.text.slice(0, 200)}, not 403 FORBIDDEN`);
        } else if (name === 'portal session of a workspace' && path === '/api/v1/keys/usage') {
          // "The calling key's usage": a portal session is no key (its creator's traffic is not the session's to read).
          if (answer.status !== 404 || answer.json?.errors?.[0]?.extensions?.code !== 'NOT_FOUND') problems.push(`HTTP ${answer.status} ${answer.text.slice(0, 200)}, not 404 NOT_FOUND`);
        } else if (route.auth || path === '/healthz') {
          if (answer.status !== 200) problems.push(`HTTP ${answer.status}: ${answer.text.slice(0, 300)}`);
        }
        problems.push(...(await leaks(who, answer, directory, world.objects)));
        assertNoProblems(problems, answer.text.slice(0, 2000));
      });
    }
  }
});

describe('ingestion dimensions', () => {
  const variants = [
    { name: 'dimensions of the caller’s own branch', branch: 'left' as const },
    { name: 'dimensions of the sibling branch', branch: 'right' as const },
    { name: 'own workspace, an app of the sibling branch', branch: 'mixed' as const },
    { name: 'own workspace, the realm-wide key as apiKeyId', branch: 'realmKey' as const },
  ];
  for (const variant of variants) {
    for (const name of CALLER_NAMES) {
      it(`POST /ingest, ${variant.name} × ${name}`, async () => {
        const who = caller(name);
        const a = world.a;
        const dims = {
          left: { workspaceId: encodeId('Workspace', a.tree.left.id), appId: encodeId('App', a.apps.left.id), datastreamId: encodeId('Datastream', a.streams.left.id) },
          right: { workspaceId: encodeId('Workspace', a.tree.right.id), appId: encodeId('App', a.apps.right.id), datastreamId: encodeId('Datastream', a.streams.right.id) },
          mixed: { workspaceId: encodeId('Workspace', a.tree.left.id), appId: encodeId('App', a.apps.right.id) },
          realmKey: { workspaceId: encodeId('Workspace', a.tree.left.id), apiKeyId: encodeId('ApiKey', a.admin.record.id) },
        }[variant.branch];
        const line = JSON.stringify({ feature: 'tx', idempotencyKey: `dims-${++routeSequence.n}`, timestamp: world.hour.toISOString(), quantity: '1', ...dims });
        const answer = await request(app, '/ingest', { method: 'POST', key: who.key, contentType: 'application/x-ndjson', body: `${line}\n` });
        const problems = serverErrors(answer);
        if (!who.authenticated) problems.push(...unauthenticatedAnswer(answer));
        else if (who.suspended) problems.push(...suspendedAnswer(answer));
        else if (!who.scopes.includes('usage:write')) {
          if (answer.status !== 403) problems.push(`HTTP ${answer.status}, not 403`);
        } else {
          // Every dimension must be visible to the caller, as node(id) would show it.
          const named = (Object.entries(dims) as [string, string][]).map(([field, id]) => {
            const typename = { workspaceId: 'Workspace', appId: 'App', datastreamId: 'Datastream', apiKeyId: 'ApiKey' }[field]!;
            const raw = Buffer.from(id, 'base64url').toString().split(':')[1]!;
            return world.objects.find((o) => o.typename === typename && o.id === raw)!;
          });
          const allowed = named.every((o) => visibleTo(who, o)) && (who.realmId === a.realm.id);
          if (answer.status !== 200) problems.push(`HTTP ${answer.status}: ${answer.text.slice(0, 300)}`);
          else if (allowed && answer.json.accepted !== 1) problems.push(`a visible event was not accepted: ${answer.text.slice(0, 300)}`);
          else if (!allowed && (answer.json.accepted !== 0 || answer.json.errors?.[0]?.code !== 'UNKNOWN_DIMENSION')) {
            problems.push(`an event naming objects outside the caller's view was not refused with UNKNOWN_DIMENSION: ${answer.text.slice(0, 300)}`);
          }
        }
        assertNoProblems(problems, answer.text.slice(0, 1000));
      });
    }
  }
});


matrix.describeNoUnexpectedErrors();

import { getNamedType, GraphQLInterfaceType, GraphQLObjectType } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../../src/global-id.js';
import type { App } from '../../src/yoga.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertWorkspace } from '../../src/db/workspace-tree.js';
import { ingestBatch } from '../../src/ingest/pipeline.js';
import { createKey } from '../helpers/fixtures.js';
import { memoryLiveHub } from '../../src/live/hub.js';
import { publishAlertRaised } from '../../src/live/publish.js';
import { CALLER_NAMES } from './callers.js';
import { seedWorld, usageHour, type Caller, type FixtureObject, type World } from './fixture.js';
import { createGateway, gatewayRoutes, graphqlRequest, openSubscription, request, routesInSource, type Route, type SubscriptionAnswer } from './gateway.js';
import {
  assertNoProblems,
  forbiddenChanges,
  grantsAll,
  leaks,
  ObjectDirectory,
  reached,
  scopeViolations,
  serverErrors,
  snapshot,
  suspendedAnswer,
  unauthenticatedAnswer,
  visibleTo,
  type Answer,
} from './rules.js';
import {
  argumentsFor,
  isBillingType,
  mutationTargets,
  NoGeneratorError,
  queryTargets,
  schema,
  subscriptionTargets,
  typeScopes,
  type ArgumentSource,
  type IdSource,
  type Target,
} from './schema-walk.js';

// The authorization matrix: every target the schema walk finds × every kind of caller, each cell
// judged by the rules of rules.ts (never by an expectation written for that field).

let db: TestDatabase;
let app: App;
let world: World;
let directory: ObjectDirectory;
let sequence = 0;
const unexpected: unknown[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  world = await seedWorld(db.prisma);
  directory = new ObjectDirectory(db.prisma, world.objects);
  app = createGateway(db.prisma, { onUnexpectedError: (error) => unexpected.push(error) });
});

afterAll(async () => {
  await db?.destroy();
});

const caller = (name: string): Caller => {
  const found = world.callers.find((c) => c.name === name);
  if (!found) throw new Error(`no caller ${name}`);
  return found;
};
const admin = () => caller(CALLER_NAMES[0]);
const operator = () => caller('operator key');

/** The caller whose answer proves a generated document right: the realm's admin key, or for operators' fields the operator. */
function prover(target: Target): Caller {
  return grantsAll(admin(), [...target.pathChecks, ...target.checks]) === false && grantsAll(operator(), [...target.pathChecks, ...target.checks]) !== false ? operator() : admin();
}

const idsOf: IdSource = (typename, mode = 'every') => {
  const scopedSubtree = caller(CALLER_NAMES[1]).subtree;
  const seen = new Set<string>();
  return world.objects
    .filter((o) => o.typename === typename)
    .filter((o) => {
      const inRealmA = o.realmId === world.a.realm.id;
      const kind = !inRealmA ? 'other realm' : mode === 'every' ? `${o.workspaceId}` : o.workspaceId && scopedSubtree.has(o.workspaceId) ? 'inside' : 'outside';
      return !seen.has(kind) && seen.add(kind);
    })
    .map((o) => encodeId(typename, o.id));
};

function argumentSource(kind: Target['kind']): ArgumentSource {
  const realmA = world.a.realm.id;
  return {
    hour: world.hour,
    now: new Date(),
    sequence: ++sequence,
    seenTypes: new Set(),
    idOf(typename) {
      const object = world.objects.find((o) => o.typename === typename && o.realmId === realmA);
      if (!object) throw new NoGeneratorError(`the fixture has no ${typename}: add one to test/adversarial/fixture.ts`);
      return encodeId(typename, object.id);
    },
    // Mutations that consume an object (revoke, rotate, delete) get one of their own, of the most
    // privileged kind: a realm-wide key with every scope, a realm-wide quota rule.
    fresh:
      kind === 'mutation'
        ? async (typename) => {
            if (typename === 'ApiKey') return encodeId('ApiKey', (await createKey(db.prisma, realmA)).record.id);
            if (typename === 'PortalSession') {
              const session = await world.a.portalSession(world.a.tree.root.id, world.a.admin.record.id);
              return encodeId('PortalSession', session.id);
            }
            if (typename === 'UsageEvent') {
              // An event of its own for a correction to amend or void, in the scoped keys' `left` subtree.
              const idempotencyKey = `adv-event-${++sequence}`;
              const workspaceId = encodeId('Workspace', world.a.tree.left.id);
              await ingestBatch(db.prisma, { realmId: realmA, workspaceId: null }, [{ idempotencyKey, feature: 'tx', timestamp: usageHour().toISOString(), quantity: '1', workspaceId }]);
              return idempotencyKey;
            }
            if (typename === 'QuotaRule') {
              const rule = await db.prisma.quotaRule.create({ data: { realmId: realmA, featureId: world.a.features.tx.id, period: 'DAY', thresholdQuantity: '1' } });
              return encodeId('QuotaRule', rule.id);
            }
            // Structure a mutation may rename, move, archive, suspend or amend: new objects, inside the
            // scoped keys' subtree where they have one, so that the fixture's own stay as they are.
            const n = `fresh ${++sequence}`;
            if (typename === 'Realm') return encodeId('Realm', (await db.prisma.realm.create({ data: { name: n, slug: `adv-fresh-${sequence}-${Date.now()}` } })).id);
            if (typename === 'Workspace') {
              const workspace = await db.prisma.$transaction((tx) => insertWorkspace(tx, { realmId: realmA, parentId: world.a.tree.left.id, name: n }));
              // It is in the subtree of every caller that sees `left`.
              for (const c of world.callers) if (c.subtree.has(world.a.tree.left.id)) c.subtree.add(workspace.id);
              return encodeId('Workspace', workspace.id);
            }
            if (typename === 'Datastream') return encodeId('Datastream', (await db.prisma.datastream.create({ data: { realmId: realmA, workspaceId: world.a.tree.left.id, name: n } })).id);
            if (typename === 'App') return encodeId('App', (await db.prisma.app.create({ data: { realmId: realmA, projectId: world.a.project.id, workspaceId: world.a.tree.left.id, name: n } })).id);
            if (typename === 'Project') return encodeId('Project', (await db.prisma.project.create({ data: { realmId: realmA, name: n } })).id);
            if (typename === 'Feature') {
              const feature = await db.prisma.feature.create({ data: { realmId: realmA, key: `fresh_${sequence}`, name: n, service: 'adversarial', unit: 'TRANSACTION', aggregation: 'SUM' } });
              return encodeId('Feature', feature.id);
            }
            if (typename === 'Contract') {
              // Years the generated contracts (from 2100 on) and the fixture's never use.
              const year = 1200 + (sequence % 800);
              const contract = await db.prisma.contract.create({ data: { realmId: realmA, name: n, startsAt: new Date(Date.UTC(year, 0, 1)), endsAt: new Date(Date.UTC(year, 6, 1)) } });
              return encodeId('Contract', contract.id);
            }
            return undefined;
          }
        : undefined,
  };
}

async function judge(target: Target, who: Caller) {
  const source = argumentSource(target.kind);
  if (target.kind === 'mutation' && who.authenticated) source.caller = { scopes: who.scopes, workspaceId: who.workspaceId };
  const document = await target.build(source, idsOf);
  const before = target.kind === 'mutation' ? await snapshot(db.prisma, world.a.realm.id) : null;
  const answer: Answer = await graphqlRequest(app, who.key, document);
  const problems = serverErrors(answer);
  if (!who.authenticated) {
    problems.push(...unauthenticatedAnswer(answer));
  } else if (who.suspended) {
    problems.push(...suspendedAnswer(answer));
  } else {
    const data = answer.json?.data;
    const errors: { message: string; extensions?: { code?: string } }[] = answer.json?.errors ?? [];
    const forbidden = errors.filter((e) => e.extensions?.code === 'FORBIDDEN');
    problems.push(...(await leaks(who, answer, directory, world.objects, { deletedAllowed: target.kind === 'mutation' })));
    problems.push(...scopeViolations(who, data, target.kind === 'mutation' ? 'Mutation' : 'Query'));
    const seen = [...source.seenTypes!].map((t) => typeScopes(schema.getType(t)!));
    const onTheWay = grantsAll(who, target.pathChecks);
    const own = grantsAll(who, target.checks);
    const everything = grantsAll(who, [...target.pathChecks, ...target.checks, ...seen]);
    const realmWideHome = who.home && !who.workspaceId;
    const billing = [...source.seenTypes!].some(isBillingType) || JSON.stringify([...target.pathChecks, ...target.checks]).includes('billingRead');
    // Where the way to the target is open and the target is not, the answer must say FORBIDDEN (a closed
    // way may answer null instead: Pothos hides objects of a type the caller may not see).
    if (onTheWay === true && own === false && realmWideHome && forbidden.length === 0) problems.push(`no FORBIDDEN although the caller lacks the scopes of ${target.name}`);
    if (everything === true && who.home && (realmWideHome || !billing) && forbidden.length) {
      problems.push(`FORBIDDEN although the caller holds every scope the selection declares: ${forbidden[0]!.message}`);
    }
    if (who === prover(target)) {
      // The realm-wide key with every scope (the operator, for operators' fields) proves the generated
      // document is right: no error, the target reached.
      if (errors.length) problems.push(`the ${who.name} got errors (generator or bug): ${errors.map((e) => `${e.extensions?.code}: ${e.message}`).join('; ')}`);
      else if (!reached(data, target.field)) problems.push(`the ${who.name} did not reach ${target.name}: extend the fixture`);
      const payload = target.kind === 'mutation' ? data?.[target.field] : null;
      for (const list of ['userErrors', 'rejected']) {
        if (payload?.[list]?.length) problems.push(`the ${who.name}'s ${target.name} was refused (generator): ${JSON.stringify(payload[list])}`);
      }
    }
  }
  if (before) problems.push(...forbiddenChanges(who, before, await snapshot(db.prisma, world.a.realm.id)));
  assertNoProblems(problems, `${who.name} → ${target.name}\n${document.slice(0, 1500)}\n${answer.text.slice(0, 1500)}`);
}

const targets = [...queryTargets(), ...mutationTargets()];
const areas = [...new Set(targets.map((t) => t.area))];

for (const area of areas) {
  // Queries change nothing the rules look at: their cells may overlap. Mutations run one by one
  // (each compares the realm's state before and after).
  (area === 'mutations' ? describe : describe.concurrent)(area, () => {
    for (const target of targets.filter((t) => t.area === area)) {
      for (const name of CALLER_NAMES) {
        it(`${target.name} × ${name}`, () => judge(target, caller(name)));
      }
    }
  });
}

describe('matrix generator', () => {
  it('builds the arguments of every field of the schema (a new field needs a generator value, not a skip)', async () => {
    const missing: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (!(type instanceof GraphQLObjectType || type instanceof GraphQLInterfaceType) || type.name.startsWith('__')) continue;
      for (const field of Object.values(type.getFields())) {
        if (type === schema.getQueryType() && (field.name === 'node' || field.name === 'nodes')) continue; // built from every type's ids
        try {
          await argumentsFor(field, type.name, argumentSource('query'));
        } catch (error) {
          if (!(error instanceof NoGeneratorError)) throw error;
          missing.push(error.message);
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it('has a target for every root field, node type, connection, mutation and subscription', () => {
    const names = new Set([...targets, ...subscriptionTargets()].map((t) => t.name));
    const expected = [
      ...Object.keys(schema.getQueryType()!.getFields()).map((f) => `Query.${f}`),
      ...Object.keys(schema.getMutationType()!.getFields()).map((f) => `Mutation.${f}`),
      ...Object.keys(schema.getSubscriptionType()?.getFields() ?? {}).map((f) => `Subscription.${f}`),
      ...Object.values(schema.getTypeMap()).flatMap((type) =>
        type instanceof GraphQLObjectType && !type.name.startsWith('__') && type !== schema.getQueryType() && type !== schema.getMutationType()
          ? Object.values(type.getFields())
              .filter((f) => getNamedType(f.type).name.endsWith('Connection') && !type.name.endsWith('Payload'))
              .map((f) => `${type.name}.${f.name}`)
          : [],
      ),
    ];
    expect(expected.filter((name) => !names.has(name))).toEqual([]);
  });
});

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

// ─── Subscriptions ────────────────────────────────────────────────────────────────────────────

/*
 * Every Subscription root field × every caller: the subscription is opened through the gateway (SSE
 * over `yoga.fetch`), then, once it listens, the fixture produces events the caller may not see
 * (usage in the sibling subtree, of a feature outside a portal session's, of the other realm; an
 * alert of the other realm) and, last, events it may see (each with a marker of this cell). A cell
 * reads until the marker of its caller's realm arrived (bounded), then a short settle for stragglers.
 * Each cell has its own hub, so that "listening" is this cell's stream.
 */
const LISTEN_WAIT_MS = 5_000;
const EVENT_WAIT_MS = 5_000;
const SETTLE_MS = 100;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('subscriptions', () => {
  const subscriptionCells = subscriptionTargets();
  let hidden: { id: string; key: string };
  let cellSequence = 0;
  const tokenOf = (what: string) => `sub${what}${++cellSequence}x${Math.random().toString(36).slice(2, 8)}q`;
  /** A text only a caller that sees `workspaceId` may read (a billing tag of its usage). */
  const rememberTag = (realmId: string, workspaceId: string) => {
    const tag = tokenOf('tag');
    world.objects.push({ typename: 'BillingTag', id: tag, realmId, workspaceId, sharedWithScopedKeys: false, billing: false, token: tag });
    return tag;
  };

  beforeAll(async () => {
    // A feature of realm A that the portal session was not given: its usage is in the session's workspace.
    const name = tokenOf('feature');
    const feature = await db.prisma.feature.create({ data: { realmId: world.a.realm.id, key: `hidden_${name}`, name, service: 'adversarial', unit: 'TRANSACTION', aggregation: 'SUM' } });
    world.objects.push({ typename: 'Feature', id: feature.id, realmId: world.a.realm.id, workspaceId: null, sharedWithScopedKeys: true, billing: false, token: name });
    hidden = { id: feature.id, key: feature.key };
  });

  async function ingest(realmId: string, events: { workspaceId: string; feature: string; billingTag?: string }[]) {
    const result = await ingestBatch(
      db.prisma,
      { realmId, workspaceId: null },
      events.map((e) => ({ idempotencyKey: tokenOf('event'), timestamp: world.hour.toISOString(), quantity: '1', ...e, workspaceId: encodeId('Workspace', e.workspaceId) })),
    );
    if (result.rejected.length || result.accepted !== events.length) throw new Error(`the fixture's events were refused: ${JSON.stringify(result.rejected)}`);
  }

  async function raiseAlert(side: World['a']) {
    const token = tokenOf('alert');
    const year = 1000 + cellSequence;
    const alert = await db.prisma.alert.create({
      data: { realmId: side.realm.id, ruleId: side.rule.id, periodStart: new Date(Date.UTC(year, 0, 1)), periodEnd: new Date(Date.UTC(year + 1, 0, 1)), quantity: '2', threshold: '1', crossedAt: new Date(), message: `raised ${token}` },
    });
    world.objects.push({ typename: 'Alert', id: alert.id, realmId: side.realm.id, workspaceId: null, sharedWithScopedKeys: false, billing: true, token });
    publishAlertRaised(db.prisma, side.realm.id, alert.id);
    return token;
  }

  /** The events of one cell, the ones nobody but their own realm's (or subtree's, or features') callers may see first; returns each realm's markers. */
  async function produceEvents(): Promise<Map<string, string[]>> {
    const { a, b } = world;
    await ingest(a.realm.id, [
      { workspaceId: a.tree.right.id, feature: 'tx', billingTag: rememberTag(a.realm.id, a.tree.right.id) },
      { workspaceId: a.tree.left.id, feature: hidden.key },
    ]);
    const bAlert = await raiseAlert(b);
    const bTag = rememberTag(b.realm.id, b.tree.leaf.id);
    await ingest(b.realm.id, [{ workspaceId: b.tree.leaf.id, feature: 'tx', billingTag: bTag }]);
    // One batch, visible and invisible buckets together: the event must carry the visible ones only.
    const aTag = rememberTag(a.realm.id, a.tree.leaf.id);
    await ingest(a.realm.id, [
      { workspaceId: a.tree.right.id, feature: 'tx', billingTag: rememberTag(a.realm.id, a.tree.right.id) },
      { workspaceId: a.tree.left.id, feature: hidden.key },
      { workspaceId: a.tree.leaf.id, feature: 'tx', billingTag: aTag },
    ]);
    const aAlert = await raiseAlert(a);
    return new Map([
      [a.realm.id, [aTag, aAlert]],
      [b.realm.id, [bTag, bAlert]],
    ]);
  }

  /** Rules (c) and (f) on a stream: refused before executing (401/403), or a first event with the code and nothing else. */
  function refusal(answer: SubscriptionAnswer, status: number, code: string, listened: boolean): string[] {
    if (!answer.streaming) return (status === 401 ? unauthenticatedAnswer : suspendedAnswer)(answer);
    const problems: string[] = [];
    const first = answer.payloads[0];
    if (first?.errors?.[0]?.extensions?.code !== code) problems.push(`first event ${JSON.stringify(first ?? null).slice(0, 200)}, not an error ${code}`);
    if (answer.payloads.some((p) => p.data)) problems.push(`data for a caller refused with ${code}`);
    if (listened) problems.push(`the stream of a caller refused with ${code} listened for events`);
    return problems;
  }

  async function judgeSubscription(target: Target, who: Caller) {
    const source = argumentSource('query');
    const document = await target.build(source, idsOf);
    const hub = memoryLiveHub(db.prisma, { keyCheckIntervalMs: 60_000 });
    const gateway = createGateway(db.prisma, { live: hub, onUnexpectedError: (error) => unexpected.push(error) });
    const answer = await openSubscription(gateway, who.key, document);
    let listened = false;
    let markers: string[] = [];
    const problems: string[] = [];
    try {
      await answer.until(() => hub.listenerCount > 0 || answer.events.length > 0, LISTEN_WAIT_MS);
      listened = hub.listenerCount > 0;
      if (listened) {
        markers = (await produceEvents()).get(who.realmId ?? '') ?? [];
        await answer.until(() => markers.some((m) => answer.text.includes(m)), EVENT_WAIT_MS);
        await sleep(SETTLE_MS);
      }
    } finally {
      await answer.close();
      // The client left: its stream stops listening (nothing stays behind for a gone client).
      const deadline = Date.now() + 1_000;
      while (hub.listenerCount > 0 && Date.now() < deadline) await sleep(10);
      if (hub.listenerCount > 0) problems.push('the stream still listens after its client went away');
      await hub.close();
    }
    const payloads = answer.payloads;
    if (answer.status >= 500) problems.push(`HTTP ${answer.status}`);
    for (const payload of payloads) problems.push(...serverErrors({ status: answer.status, text: JSON.stringify(payload), json: payload }));
    if (!who.authenticated) {
      problems.push(...refusal(answer, 401, 'UNAUTHENTICATED', listened));
    } else if (who.suspended) {
      problems.push(...refusal(answer, 403, 'REALM_SUSPENDED', listened));
    } else {
      const errors: { message: string; extensions?: { code?: string } }[] = payloads.flatMap((p) => p.errors ?? []);
      const forbidden = errors.some((e) => e.extensions?.code === 'FORBIDDEN');
      const own = grantsAll(who, target.checks);
      const pushed = payloads.filter((p) => p.data?.[target.field] != null && !(Array.isArray(p.data[target.field]) && !p.data[target.field].length));
      if (own === false) {
        if (!forbidden) problems.push(`no FORBIDDEN although the caller lacks the scopes of ${target.name}`);
        if (listened) problems.push('the stream of a caller without the scopes listened for events');
      } else if (!(own === 'dynamic' && forbidden)) {
        // Allowed: no error, and the events of its realm it may see reached it (else the cell proves nothing).
        if (errors.length) problems.push(`errors for a caller holding the scopes (generator or bug): ${errors.map((e) => `${e.extensions?.code}: ${e.message}`).join('; ')}`);
        else if (!who.realmId) problems.push(`an allowed caller of no realm: teach the subscription cells what it must get`);
        else if (!pushed.length || !markers.some((m) => answer.text.includes(m))) problems.push(`the events of its realm it may see did not reach it within ${EVENT_WAIT_MS} ms (listening: ${listened})`);
      }
      for (const payload of payloads) problems.push(...scopeViolations(who, payload.data, 'Subscription'));
      problems.push(...(await leaks(who, { status: answer.status, text: answer.text, json: null }, directory, world.objects)));
    }
    assertNoProblems(problems, `${who.name} → ${target.name}\n${document.slice(0, 1000)}\nHTTP ${answer.status}\n${answer.text.slice(0, 3000)}`);
  }

  describe.concurrent('cells', () => {
    for (const target of subscriptionCells) {
      for (const name of CALLER_NAMES) {
        it(`${target.name} × ${name}`, () => judgeSubscription(target, caller(name)));
      }
    }
  });
});

describe('no unexpected errors', () => {
  it('the gateway reported no masked (unexpected) error during the matrix', () => {
    expect(unexpected.map((e) => String(e instanceof Error ? e.message : e).slice(0, 300))).toEqual([]);
  });
});

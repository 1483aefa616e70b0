import { getNamedType, GraphQLInterfaceType, GraphQLObjectType } from 'graphql';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../../src/global-id.js';
import { ingestBatch } from '../../src/ingest/pipeline.js';
import { memoryLiveHub } from '../../src/live/hub.js';
import { publishAlertRaised } from '../../src/live/publish.js';
import type { TestDatabase } from '../helpers/database.js';
import { CALLER_NAMES } from './callers.js';
import type { Caller, World } from './fixture.js';
import { createGateway, openSubscription, type SubscriptionAnswer } from './gateway.js';
import { matrixTargets, useMatrix } from './matrix.js';
import { assertNoProblems, grantsAll, leaks, ObjectDirectory, scopeViolations, serverErrors, suspendedAnswer, unauthenticatedAnswer } from './rules.js';
import { argumentsFor, NoGeneratorError, schema, subscriptionTargets, type Target } from './schema-walk.js';

// The authorization matrix, reads: every query target the schema walk finds × every kind of caller,
// each cell judged by the rules of rules.ts (never by an expectation written for that field), and
// every subscription. The mutations, HTTP routes and ingestion are in authorization-matrix-mutations.test.ts
// (a file of their own, so that the two halves run side by side); matrix.ts holds what both share.

const matrix = useMatrix();
const { caller, idsOf, argumentSource, unexpected, describeAreas, describeNoUnexpectedErrors } = matrix;
let db: TestDatabase;
let world: World;
let directory: ObjectDirectory;
beforeAll(() => {
  ({ db, world, directory } = matrix);
});
const targets = matrixTargets();

describeAreas(targets.filter((t) => t.kind !== 'mutation'));

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


describeNoUnexpectedErrors();

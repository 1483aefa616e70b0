import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeId } from '../../src/global-id.js';
import type { App } from '../../src/yoga.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertWorkspace } from '../../src/db/workspace-tree.js';
import { ingestBatch } from '../../src/ingest/pipeline.js';
import { createKey } from '../helpers/fixtures.js';
import { CALLER_NAMES } from './callers.js';
import { seedWorld, usageHour, type Caller, type World } from './fixture.js';
import { createGateway, graphqlRequest } from './gateway.js';
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
  type Answer,
} from './rules.js';
import { isBillingType, mutationTargets, NoGeneratorError, queryTargets, schema, typeScopes, type ArgumentSource, type IdSource, type Target } from './schema-walk.js';

/**
 * The authorization matrix's shared part: every target the schema walk finds × every kind of caller,
 * each cell judged by the rules of rules.ts (never by an expectation written for that field). The
 * matrix is split in two files that run side by side (authorization-matrix.test.ts: the queries and
 * subscriptions; authorization-matrix-mutations.test.ts: the mutations, then HTTP routes and ingestion);
 * each calls `useMatrix()` once, which seeds its own world in its own database (the reliability
 * reporter counts cells by area, whatever the file).
 */

export const matrixTargets = () => [...queryTargets(), ...mutationTargets()];

/** Registers the file's set-up (database, world, gateway) and returns what the cells use. */
export function useMatrix() {
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
    const before = target.kind === 'mutation' ? await snapshot(db.prisma, world.a.realm.id, who) : null;
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
    if (before) problems.push(...forbiddenChanges(who, before, await snapshot(db.prisma, world.a.realm.id, who)));
    assertNoProblems(problems, `${who.name} → ${target.name}\n${document.slice(0, 1500)}\n${answer.text.slice(0, 1500)}`);
  }

  /** The matrix's cells of `areas`: queries may overlap, mutations run one by one (each compares the realm's state before and after). */
  function describeAreas(targets: Target[]) {
    for (const area of [...new Set(targets.map((t) => t.area))]) {
      (area === 'mutations' ? describe : describe.concurrent)(area, () => {
        for (const target of targets.filter((t) => t.area === area)) {
          for (const name of CALLER_NAMES) {
            it(`${target.name} × ${name}`, () => judge(target, caller(name)));
          }
        }
      });
    }
  }

  /** Last in each file: the gateway reported no masked error during the file's cells. */
  function describeNoUnexpectedErrors() {
    describe('no unexpected errors', () => {
      it('the gateway reported no masked (unexpected) error during the matrix', () => {
        expect(unexpected.map((e) => String(e instanceof Error ? e.message : e).slice(0, 300))).toEqual([]);
      });
    });
  }

  return {
    get db() {
      return db;
    },
    get app() {
      return app;
    },
    get world() {
      return world;
    },
    get directory() {
      return directory;
    },
    unexpected,
    caller,
    admin,
    idsOf,
    argumentSource,
    judge,
    describeAreas,
    describeNoUnexpectedErrors,
  };
}

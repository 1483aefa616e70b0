import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { encodeId } from '../../src/global-id.js';
import type { App } from '../../src/yoga.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { seedWorld, type World } from './fixture.js';
import { createGateway, graphqlRequest, request } from './gateway.js';
import { assertNoProblems, serverErrors, type Answer } from './rules.js';
import { mutationTargets, queryTargets, type ArgumentSource, type Target } from './schema-walk.js';

// The bad-input corpus: what an attacker or a careless client sends. Every case expects a clear,
// coded refusal (a 4xx with `extensions.code`, or a user error), never a 5xx, and never data lost.

const INGEST_MAX_BYTES = 8 * 1024 * 1024;

let db: TestDatabase;
let app: App;
let world: World;
let adminKey: string;
let sequence = 1000;
const unexpected: unknown[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  world = await seedWorld(db.prisma);
  adminKey = world.callers[0]!.key!;
  app = createGateway(db.prisma, { onUnexpectedError: (error) => unexpected.push(error), ingestMaxBytes: INGEST_MAX_BYTES });
});

afterAll(async () => {
  await db?.destroy();
});

function source(poison?: string): ArgumentSource {
  const realmA = world.a.realm.id;
  return {
    hour: world.hour,
    now: new Date(),
    sequence: ++sequence,
    poison,
    idOf: (typename) => encodeId(typename, world.objects.find((o) => o.typename === typename && o.realmId === realmA)!.id),
    fresh: async (typename) => (typename === 'ApiKey' ? encodeId('ApiKey', world.a.rightKey.record.id) : undefined),
  };
}
const ids = (typename: string) => world.objects.filter((o) => o.typename === typename && o.realmId === world.a.realm.id).slice(0, 2).map((o) => encodeId(typename, o.id));

/** A coded refusal: a 4xx whose JSON names a code, or a GraphQL error with a code, or a payload's user errors. */
function refusal(answer: Answer, payload?: Record<string, unknown> | null): string[] {
  const codes = (answer.json?.errors ?? []).map((e: { extensions?: { code?: string } }) => e.extensions?.code).filter(Boolean);
  const userErrors = [...((payload?.userErrors as unknown[]) ?? []), ...((payload?.rejected as unknown[]) ?? [])];
  if (codes.length || userErrors.length) return [];
  return [`not refused with a code: HTTP ${answer.status} ${answer.text.slice(0, 200)}`];
}

function coded4xx(answer: Answer): string[] {
  const problems = serverErrors(answer);
  if (answer.status < 400 || answer.status >= 500) problems.push(`HTTP ${answer.status}, not a 4xx`);
  if (!answer.json?.errors?.[0]?.extensions?.code) problems.push(`no extensions.code in ${answer.text.slice(0, 200)}`);
  return problems;
}

describe('NUL in every string argument', () => {
  const targets: Target[] = [...queryTargets(), ...mutationTargets()];
  for (const target of targets) {
    it(`${target.name}: a NUL in every String argument is refused with a code, never a 500`, async (context) => {
      const poisoned = await target.build(source('\u0000'), ids);
      // Only fields with string arguments: the generator put a NUL (printed \u0000) in each.
      if (!poisoned.includes('\\u0000')) return context.skip();
      const answer = await graphqlRequest(app, adminKey, poisoned);
      const payload = target.kind === 'mutation' ? answer.json?.data?.[target.field] : null;
      assertNoProblems([...serverErrors(answer), ...refusal(answer, payload)], `${poisoned.slice(0, 600)}\n${answer.text.slice(0, 600)}`);
    });
  }
  it('/ingest: a line with a NUL is rejected alone, the valid lines of the body are stored', async () => {
    const line = (key: string, tag: string) => JSON.stringify({ feature: 'tx', idempotencyKey: key, timestamp: world.hour.toISOString(), quantity: '1', billingTag: tag });
    const body = `${line(`nul-a-${sequence}`, 'ok')}\n${line(`nul-b-${sequence}`, 'bad\u0000tag')}\n${line(`nul-c-${sequence}`, 'ok')}\n`;
    const answer = await request(app, '/ingest', { method: 'POST', key: adminKey, contentType: 'application/x-ndjson', body });
    const problems = serverErrors(answer);
    if (answer.status !== 200 || answer.json?.accepted !== 2 || answer.json?.rejected !== 1) problems.push(`expected 200 with 2 accepted and 1 rejected: HTTP ${answer.status} ${answer.text.slice(0, 300)}`);
    assertNoProblems(problems, answer.text.slice(0, 500));
  });
});

describe('bad-input corpus', () => {
  const deepSelection = `{${'a{'.repeat(10_000)}b${'}'.repeat(10_000)}}`;
  const deepList = `{ nodes(ids: ${'['.repeat(100_000)}"x"${']'.repeat(100_000)}) { id } }`;
  for (const [name, key] of [
    ['without a key', null],
    ['with a key', 'admin'],
  ] as const) {
    it(`a selection nested 10,000 levels deep ${name}: a coded 400`, async () => {
      const answer = await graphqlRequest(app, key && adminKey, deepSelection);
      assertNoProblems(coded4xx(answer), answer.text.slice(0, 300));
    });
    it(`a list literal nested 100,000 deep ${name}: a coded 400`, async () => {
      const answer = await graphqlRequest(app, key && adminKey, deepList);
      assertNoProblems(coded4xx(answer), answer.text.slice(0, 300));
    });
  }

  it('100,000 aliases: refused with a code, without data', async () => {
    const query = `{ ${Array.from({ length: 100_000 }, (_, i) => `a${i}: viewer { scopes }`).join(' ')} }`;
    const answer = await graphqlRequest(app, adminKey, query);
    const problems = [...serverErrors(answer), ...refusal(answer)];
    if (answer.json?.data) problems.push('data for a query over the limits');
    assertNoProblems(problems, answer.text.slice(0, 300));
  });

  it('a 1 MB id: a coded error that does not echo it whole', async () => {
    const huge = 'A'.repeat(1024 * 1024);
    const answer = await graphqlRequest(app, adminKey, `{ node(id: "${huge}") { id } }`);
    const problems = [...serverErrors(answer), ...refusal(answer)];
    if (answer.text.length > 64 * 1024) problems.push(`the answer is ${answer.text.length} bytes: the id was echoed`);
    assertNoProblems(problems, answer.text.slice(0, 300));
  });

  const usageWith = (filter: string) =>
    `{ realm { usage(range: { from: "${new Date(world.hour.getTime() - 86_400_000).toISOString()}", to: "${new Date(world.hour.getTime() + 3_600_000).toISOString()}" }, filter: ${filter}) { totals { quantity } warnings } } }`;
  it('filter: { featureIds: [] }: an empty report, never a 500', async () => {
    const answer = await graphqlRequest(app, adminKey, usageWith('{ featureIds: [] }'));
    const problems = serverErrors(answer);
    if (answer.json?.errors?.some((e: { extensions?: { code?: string } }) => !e.extensions?.code)) problems.push('an error without a code');
    assertNoProblems(problems, answer.text.slice(0, 300));
  });
  it('filter: { featureIds: [a feature of another realm] }: an empty report with a warning, never a 500', async () => {
    const answer = await graphqlRequest(app, adminKey, usageWith(`{ featureIds: ["${encodeId('Feature', world.b.features.tx.id)}"] }`));
    const problems = serverErrors(answer);
    if (answer.json?.data?.realm?.usage?.totals?.length) problems.push('totals of a feature the realm does not have');
    assertNoProblems(problems, answer.text.slice(0, 300));
  });

  it('a gzip bomb to /ingest (64 MiB of blank lines in 64 KiB): a coded 413', async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, '\n'), { level: 9 });
    const answer = await request(app, '/ingest', { method: 'POST', key: adminKey, contentType: 'application/x-ndjson', headers: { 'content-encoding': 'gzip' }, body: bomb });
    const problems = coded4xx(answer);
    if (answer.status !== 413) problems.push(`HTTP ${answer.status}, not 413`);
    assertNoProblems(problems, answer.text.slice(0, 300));
  });

  for (const [path, contentType] of [
    ['/ingest', 'text/plain'],
    ['/ingest', 'application/xml'],
    ['/graphql', 'application/xml'],
    ['/graphql', 'text/plain'],
  ] as const) {
    it(`POST ${path} as ${contentType}: a coded 4xx`, async () => {
      const answer = await request(app, path, { method: 'POST', key: adminKey, contentType, body: path === '/graphql' ? '{ viewer { scopes } }' : '{"feature":"tx"}' });
      assertNoProblems(coded4xx(answer), answer.text.slice(0, 300));
    });
  }

  it('POST /graphql with malformed JSON: a coded 400', async () => {
    const answer = await request(app, '/graphql', { method: 'POST', key: adminKey, contentType: 'application/json', body: '{"query": "{ viewer { scopes } }"' });
    assertNoProblems(coded4xx(answer), answer.text.slice(0, 300));
  });

  it('ingestUsage with 100,000 events: a coded refusal', async () => {
    const event = `{ feature: "tx", idempotencyKey: "x", timestamp: "${world.hour.toISOString()}", quantity: "1" }`;
    const answer = await graphqlRequest(app, adminKey, `mutation { ingestUsage(events: [${Array(100_000).fill(event).join(',')}]) { accepted } }`);
    assertNoProblems([...serverErrors(answer), ...refusal(answer)], answer.text.slice(0, 300));
  });

  it('the gateway reported no masked (unexpected) error during the corpus', () => {
    assertNoProblems(
      unexpected.map((e) => `unexpected error: ${String(e instanceof Error ? e.message : e).slice(0, 300)}`),
      '',
    );
  });
});

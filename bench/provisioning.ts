/**
 * `npm run bench:provisioning [-- --workspaces 10000 --repeat 5 --database postgres|pglite]`
 *
 * The workspace tree's mutations on a big realm, through the real GraphQL pipeline:
 *
 * 1. Opens a fresh database — a new PostgreSQL database on the server of `DATABASE_URL` (default
 *    postgresql://postgres@127.0.0.1:5432/postgres, used as admin; dropped afterwards), or an
 *    in-memory PGlite — and builds one realm of `--workspaces` workspaces (closure rows included,
 *    bulk-inserted): a root with a subtree of 50 % of them, a subtree of 10 %, and the rest, each
 *    subtree ten children per node.
 * 2. Times, `--repeat` times each, through `createApp` with `exposeQueryStats`: moving the 10 %
 *    subtree (≈ 1,000 workspaces at 10,000) below a deep workspace and back, the same for the 50 %
 *    subtree (≈ 5,000), creating a workspace, renaming one. Each answer's SQL statement count comes
 *    from `extensions.queryStats`; the tree's closure table is checked against the parent links at the end.
 * 3. Prints a Markdown table (median and slowest milliseconds, statements) for BENCHMARKS.md.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { newApiKeySecret } from '../src/auth/api-key-secret.js';
import { openDatabase, type Database } from '../src/db/database.js';
import { createScratchDatabase } from '../src/db/scratch-database.js';
import { encodeId } from '../src/global-id.js';
import { createApp } from '../src/yoga.js';

const DEFAULT_ADMIN_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';
const { values: args } = parseArgs({
  options: {
    workspaces: { type: 'string', default: '10000' },
    repeat: { type: 'string', default: '5' },
    database: { type: 'string', default: 'postgres' },
  },
});
const TOTAL = Number(args.workspaces);
const REPEAT = Number(args.repeat);

interface Node {
  id: string;
  parentId: string | null;
  depth: number;
  name: string;
  ancestors: Array<{ id: string; depth: number }>;
}

/** `count` nodes below `parent` (itself included when it is created here), breadth first, ten children per node. */
function subtree(parent: Node | null, rootName: string, count: number, nodes: Node[]): Node {
  const make = (p: Node | null, name: string): Node => {
    const id = randomUUID();
    const node: Node = {
      id,
      parentId: p?.id ?? null,
      depth: p ? p.depth + 1 : 0,
      name,
      ancestors: [{ id, depth: 0 }, ...(p ? p.ancestors.map((a) => ({ id: a.id, depth: a.depth + 1 })) : [])],
    };
    nodes.push(node);
    return node;
  };
  const top = make(parent, rootName);
  const queue = [top];
  let made = 1;
  while (made < count) {
    const p = queue.shift()!;
    for (let i = 0; i < 10 && made < count; i++, made++) queue.push(make(p, `${rootName}-${made}`));
  }
  return top;
}

async function buildRealm(db: Database) {
  const realm = await db.prisma.realm.create({ data: { name: 'Bench realm', slug: `bench-${Date.now()}` } });
  const nodes: Node[] = [];
  const root = subtree(null, 'root', 1, nodes);
  const big = subtree(root, 'big', Math.round(TOTAL * 0.5), nodes);
  const medium = subtree(root, 'medium', Math.round(TOTAL * 0.1), nodes);
  const rest = subtree(root, 'rest', TOTAL - nodes.length, nodes);
  const deepest = nodes.filter((n) => n.ancestors.some((a) => a.id === rest.id)).reduce((a, b) => (b.depth > a.depth ? b : a));
  for (let i = 0; i < nodes.length; i += 2000) {
    await db.prisma.workspace.createMany({ data: nodes.slice(i, i + 2000).map((n) => ({ id: n.id, realmId: realm.id, parentId: n.parentId, depth: n.depth, name: n.name })) });
  }
  const closure = nodes.flatMap((n) => n.ancestors.map((a) => ({ ancestorId: a.id, descendantId: n.id, depth: a.depth })));
  for (let i = 0; i < closure.length; i += 5000) await db.prisma.workspaceClosure.createMany({ data: closure.slice(i, i + 5000) });
  const secret = newApiKeySecret();
  await db.prisma.apiKey.create({ data: { realmId: realm.id, name: 'bench', prefix: secret.prefix, secretHash: secret.secretHash, scopes: ['admin:write'] } });
  const size = (top: Node) => nodes.filter((n) => n.ancestors.some((a) => a.id === top.id)).length;
  return { realm, key: secret.key, root, big, medium, deepest, closureRows: closure.length, sizes: { big: size(big), medium: size(medium) } };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main() {
  const kind = args.database === 'pglite' ? 'pglite' : 'postgres';
  const scratch = kind === 'postgres' ? await createScratchDatabase(process.env.DATABASE_URL ?? DEFAULT_ADMIN_URL, 'ugw_bench_provisioning') : null;
  const db = await openDatabase(scratch ? { kind: 'postgres', url: scratch.url } : { kind: 'pglite', dir: 'memory://' });
  try {
    const buildStarted = performance.now();
    const tree = await buildRealm(db);
    const buildMs = performance.now() - buildStarted;
    const app = createApp({ prisma: db.prisma, exposeQueryStats: true });
    const request = async (query: string, variables: Record<string, unknown>) => {
      const started = performance.now();
      const response = await app.fetch('http://bench.test/graphql', {
        method: 'POST',
        headers: { authorization: `Bearer ${tree.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as { data?: Record<string, { userErrors: unknown[] }>; errors?: unknown[]; extensions?: { queryStats?: { sqlStatements: number } } };
      const ms = performance.now() - started;
      const payload = body.data && Object.values(body.data)[0];
      if (body.errors || !payload || payload.userErrors.length) throw new Error(`unexpected answer: ${JSON.stringify(body).slice(0, 500)}`);
      return { ms, statements: body.extensions?.queryStats?.sqlStatements ?? NaN };
    };
    const MOVE = 'mutation ($input: MoveWorkspaceInput!) { moveWorkspace(input: $input) { workspace { id depth } userErrors { code } } }';
    const CREATE = 'mutation ($input: CreateWorkspaceInput!) { createWorkspace(input: $input) { workspace { id } userErrors { code } } }';
    const UPDATE = 'mutation ($input: UpdateWorkspaceInput!) { updateWorkspace(input: $input) { workspace { id } userErrors { code } } }';
    const gid = (id: string) => encodeId('Workspace', id);
    const rows: Array<{ what: string; runs: Array<{ ms: number; statements: number }> }> = [];
    const measure = async (what: string, step: (i: number) => Promise<{ ms: number; statements: number }>) => {
      const runs = [];
      for (let i = 0; i < REPEAT; i++) runs.push(await step(i));
      rows.push({ what, runs });
    };
    for (const [top, size] of [
      [tree.medium, tree.sizes.medium],
      [tree.big, tree.sizes.big],
    ] as const) {
      // there and back again, so that every run moves the subtree for real
      const there: Array<{ ms: number; statements: number }> = [];
      const back: Array<{ ms: number; statements: number }> = [];
      for (let i = 0; i < REPEAT; i++) {
        there.push(await request(MOVE, { input: { id: gid(top.id), newParentId: gid(tree.deepest.id) } }));
        back.push(await request(MOVE, { input: { id: gid(top.id), newParentId: gid(tree.root.id) } }));
      }
      const count = size.toLocaleString('en-US');
      rows.push(
        { what: `move a subtree of ${count} workspaces below a workspace at depth ${tree.deepest.depth}`, runs: there },
        { what: `move the ${count} back below the root`, runs: back },
      );
    }
    await measure('create a workspace (below a workspace at the deepest level)', (i) => request(CREATE, { input: { name: `new ${i}`, parentId: gid(tree.deepest.id), idempotencyKey: `bench-${i}` } }));
    await measure('rename a workspace', (i) => request(UPDATE, { input: { id: gid(tree.big.id), name: `big renamed ${i}` } }));

    const [check] = await db.prisma.$queryRaw<{ wrong: bigint }[]>`
      WITH RECURSIVE pairs AS (
        SELECT id AS a, id AS d, 0 AS depth FROM "Workspace" WHERE "realmId" = ${tree.realm.id}::uuid
        UNION ALL SELECT p.a, w.id, p.depth + 1 FROM pairs p JOIN "Workspace" w ON w."parentId" = p.d)
      SELECT count(*) AS wrong FROM (
        (SELECT a, d, depth FROM pairs EXCEPT SELECT "ancestorId", "descendantId", depth FROM "WorkspaceClosure")
        UNION ALL
        (SELECT c."ancestorId", c."descendantId", c.depth FROM "WorkspaceClosure" c JOIN "Workspace" w ON w.id = c."descendantId" AND w."realmId" = ${tree.realm.id}::uuid EXCEPT SELECT a, d, depth FROM pairs)) x`;
    if (Number(check!.wrong) !== 0) throw new Error(`the closure table disagrees with the parent links in ${check!.wrong} rows`);

    const version = (await db.prisma.$queryRawUnsafe<Array<{ server_version: string }>>('SHOW server_version'))[0]?.server_version ?? '?';
    const cpus = os.cpus();
    console.log(`Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`npm run bench:provisioning\` on ${db.description.replace(/\(.*\)/, '').trim()} ${version}, ` +
      `${cpus.length} × ${cpus[0]?.model ?? '?'}, Node ${process.version}; load average (1 min) ${os.loadavg()[0]!.toFixed(2)}.`);
    console.log(`Realm: ${TOTAL.toLocaleString('en-US')} workspaces, ${tree.closureRows.toLocaleString('en-US')} closure rows (built in ${(buildMs / 1000).toFixed(1)} s); each step ${REPEAT} times.\n`);
    console.log('| mutation | median ms | slowest ms | SQL statements |');
    console.log('| --- | ---: | ---: | ---: |');
    for (const row of rows) {
      const statements = [...new Set(row.runs.map((r) => r.statements))].join(' / ');
      console.log(`| ${row.what} | ${median(row.runs.map((r) => r.ms)).toFixed(1)} | ${Math.max(...row.runs.map((r) => r.ms)).toFixed(1)} | ${statements} |`);
    }
    console.log('\nThe closure table matches the parent links after every move.');
  } finally {
    await db.close();
    await scratch?.drop();
  }
}

await main();

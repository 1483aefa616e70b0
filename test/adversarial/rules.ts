import { getNamedType, GraphQLObjectType } from 'graphql';
import { getDatamodel } from '../../src/generated/pothos-types.js';
import type { PrismaClient } from '../../src/generated/prisma/client.js';
import { TIER_RANK, type Caller, type FixtureObject, type Tier } from './fixture.js';
import { fieldOf, fieldScopes, granted, isBillingType, schema, typeScopes, type AuthScopes } from './schema-walk.js';

/**
 * The rules every answer is held to, whatever the field or route:
 *  (a) no object of another realm, nor (scoped keys) outside the key's subtree, nor (without a
 *      realm-wide `billing:read` key) a billing object, by id or by any text that names it;
 *  (b) a field or type whose `authScopes` the caller lacks yields nothing (FORBIDDEN);
 *  (c) unauthenticated callers get 401 UNAUTHENTICATED;
 *  (d) a workspace-scoped key changes no realm-wide state; no key creates or changes a key with
 *      more than it holds;
 *  (e) never a 5xx nor "Unexpected error.";
 *  (f) a key of a suspended realm gets 403 REALM_SUSPENDED and nothing else, on every field and route.
 * Operators' keys belong to no realm: they may see every realm (and what the audit log names), and
 * change no realm's contents.
 */

export interface Answer {
  status: number;
  text: string;
  json: any;
}

const models = getDatamodel().datamodel.models as unknown as Record<string, { fields: { name: string; kind: string; type: string; relationFromFields?: string[] }[] }>;
const hasField = (model: string, field: string) => !!models[model]?.fields.some((f) => f.name === field);

/** Whether `caller` may see `object`. */
export function visibleTo(caller: Caller, object: Pick<FixtureObject, 'realmId' | 'workspaceId' | 'sharedWithScopedKeys' | 'billing'> & Partial<Pick<FixtureObject, 'typename' | 'id'>>): boolean {
  if (caller.operator) return true;
  if (!caller.authenticated || caller.suspended || object.realmId !== caller.realmId) return false;
  if (object.typename === 'Feature' && caller.features && !caller.features.has(object.id ?? '')) return false;
  if (object.billing && (caller.workspaceId || !caller.scopes.includes('billing:read'))) return false;
  if (!caller.workspaceId) return true;
  return object.sharedWithScopedKeys || (!!object.workspaceId && caller.subtree.has(object.workspaceId));
}

/** Looks objects up by global id: the fixture's first, then the database (objects the run created). */
export class ObjectDirectory {
  private readonly byId = new Map<string, FixtureObject>();
  constructor(
    private readonly prisma: PrismaClient,
    objects: FixtureObject[],
  ) {
    for (const o of objects) this.byId.set(`${o.typename}:${o.id}`, o);
  }

  async lookup(typename: string, id: string): Promise<FixtureObject | null> {
    const known = this.byId.get(`${typename}:${id}`);
    if (known) return known;
    if (typename === 'OperatorKey') {
      // Operators' keys belong to no realm: only operators may see them (the audit log names them).
      const row = await this.prisma.operatorKey.findUnique({ where: { id } });
      return row && { typename, id, realmId: '', workspaceId: null, sharedWithScopedKeys: false, billing: false, token: null };
    }
    const model = models[typename];
    if (!model) throw new Error(`global id of type ${typename}, which is no database model: teach test/adversarial/rules.ts where it lives`);
    const delegate = (this.prisma as any)[typename[0]!.toLowerCase() + typename.slice(1)];
    let row = await delegate.findUnique({ where: { id } });
    if (!row) return null;
    let realmId: string | undefined = typename === 'Realm' ? row.id : row.realmId;
    if (!realmId) {
      // A model without its own realm (a contract's license): the realm of the row it belongs to.
      const owner = model.fields.find((f) => f.kind === 'object' && f.relationFromFields?.length && hasField(f.type, 'realmId'));
      if (!owner) throw new Error(`${typename} has no realm: teach test/adversarial/rules.ts`);
      row = await delegate.findUnique({ where: { id }, include: { [owner.name]: true } });
      realmId = row[owner.name].realmId;
    }
    const workspaceId: string | null = typename === 'Workspace' ? row.id : (row.workspaceId ?? null);
    const billing = isBillingType(typename);
    const object: FixtureObject = {
      typename,
      id,
      realmId: realmId!,
      workspaceId,
      sharedWithScopedKeys: !billing && !hasField(typename, 'workspaceId') && typename !== 'Workspace',
      billing,
      token: null,
    };
    this.byId.set(`${typename}:${id}`, object);
    return object;
  }
}

const GLOBAL_ID = /^[A-Za-z0-9_-]{16,}={0,2}$/;

function decodeGlobalId(value: string): { typename: string; id: string } | null {
  if (!GLOBAL_ID.test(value)) return null;
  const decoded = Buffer.from(value, 'base64url').toString('utf8');
  const match = /^([A-Z][A-Za-z]*):([0-9a-f-]{36})$/.exec(decoded);
  return match ? { typename: match[1]!, id: match[2]! } : null;
}

/** Every global id anywhere in a text (JSON answers, CSV bodies, error messages). */
export function globalIdsIn(text: string): { typename: string; id: string }[] {
  const ids = [];
  for (const match of text.matchAll(/[A-Za-z0-9_-]{40,}/g)) {
    const decoded = decodeGlobalId(match[0]);
    if (decoded) ids.push(decoded);
  }
  return ids;
}

/** Rule (a): ids and tokens of objects the caller may not see. */
export async function leaks(caller: Caller, answer: Answer, directory: ObjectDirectory, objects: FixtureObject[], options: { deletedAllowed?: boolean } = {}) {
  const problems: string[] = [];
  for (const { typename, id } of globalIdsIn(answer.text)) {
    const object = await directory.lookup(typename, id);
    if (!object) {
      if (!options.deletedAllowed) problems.push(`answer names ${typename} ${id}, which does not exist`);
      continue;
    }
    if (!visibleTo(caller, object)) problems.push(`leaks ${describe(object)}`);
  }
  for (const object of objects) {
    if (object.token && answer.text.includes(object.token) && !visibleTo(caller, object)) problems.push(`leaks ${describe(object)} (its name/text "${object.token}")`);
  }
  return [...new Set(problems)];
}

function describe(object: FixtureObject): string {
  const where = object.workspaceId ? `workspace ${object.workspaceId.slice(-6)}` : 'realm level';
  return `${object.typename}${object.billing ? ' (billing)' : ''} of realm ${object.realmId.slice(-6)}, ${where}`;
}

/** Rule (e). */
export function serverErrors(answer: Answer): string[] {
  const problems = [];
  if (answer.status >= 500) problems.push(`HTTP ${answer.status}`);
  for (const error of answer.json?.errors ?? []) {
    if (error?.extensions?.code === 'INTERNAL_SERVER_ERROR' || /Unexpected error/.test(error?.message ?? '')) problems.push(`"${error.message}" (${error.extensions?.code ?? 'no code'}) at ${error.path?.join('.') ?? '-'}`);
  }
  return problems;
}

/** Rule (c). */
export function unauthenticatedAnswer(answer: Answer): string[] {
  const code = answer.json?.errors?.[0]?.extensions?.code;
  const problems = [];
  if (answer.status !== 401) problems.push(`HTTP ${answer.status}, not 401`);
  if (code !== 'UNAUTHENTICATED') problems.push(`code ${code ?? 'none'}, not UNAUTHENTICATED`);
  if (answer.json?.data) problems.push('data for an unauthenticated caller');
  return problems;
}

/** Rule (f). */
export function suspendedAnswer(answer: Answer): string[] {
  const code = answer.json?.errors?.[0]?.extensions?.code;
  const problems = [];
  if (answer.status !== 403) problems.push(`HTTP ${answer.status}, not 403`);
  if (code !== 'REALM_SUSPENDED') problems.push(`code ${code ?? 'none'}, not REALM_SUSPENDED`);
  if (answer.json?.data) problems.push('data for a key of a suspended realm');
  return problems;
}

/** Rule (b) on an answer's data: values of fields, and objects of types, whose scopes the caller lacks. */
export function scopeViolations(caller: Caller, data: unknown, root: 'Query' | 'Mutation' | 'Subscription'): string[] {
  const problems: string[] = [];
  const walk = (value: unknown, typename: string | null, path: string) => {
    if (Array.isArray(value)) return value.forEach((v, i) => walk(v, typename, `${path}.${i}`));
    if (!value || typeof value !== 'object') return;
    const record = value as Record<string, unknown>;
    const own = typeof record.__typename === 'string' ? record.__typename : typename;
    if (!own) return;
    const type = schema.getType(own);
    if (type && granted(typeScopes(type), caller) === false) problems.push(`${path}: a ${own} reached a caller without its scopes`);
    for (const [key, child] of Object.entries(record)) {
      if (key === '__typename') continue;
      const field = fieldOf(own, key);
      if (!field) continue;
      if (child !== null && granted(fieldScopes(field), caller) === false && !(Array.isArray(child) && child.length === 0)) {
        problems.push(`${path}.${key}: ${own}.${key} answered a caller without its scopes`);
      }
      const named = getNamedType(field.type);
      walk(child, named instanceof GraphQLObjectType ? named.name : null, `${path}.${key}`);
    }
  };
  walk(data, root, 'data');
  return problems;
}

export function grantsAll(caller: Caller, checks: AuthScopes[]): boolean | 'dynamic' {
  let dynamic = false;
  for (const check of checks) {
    const result = granted(check, caller);
    if (result === false) return false;
    if (result === 'dynamic') dynamic = true;
  }
  return dynamic ? 'dynamic' : true;
}

/** Whether an answer's data holds `field` somewhere (its parent was resolved): the target was reached. */
export function reached(data: unknown, field: string): boolean {
  if (Array.isArray(data)) return data.some((d) => reached(d, field));
  if (!data || typeof data !== 'object') return false;
  for (const [key, value] of Object.entries(data)) {
    if (key === field || /^n\d+$/.test(key) && field === 'node' && value !== null) return true;
    if (reached(value, field)) return true;
  }
  return false;
}

// ─── State ────────────────────────────────────────────────────────────────────────────────────

/**
 * Realm-level models: those with a realm and without a workspace (and what hangs off them), from
 * the Prisma datamodel. Alerts are left out: any key's ingestion may legitimately raise one.
 */
export function realmLevelModels(): { model: string }[] {
  // The audit log is written by every allowed change; workspaces are checked against the caller's subtree.
  const direct = Object.keys(models).filter((m) => hasField(m, 'realmId') && !hasField(m, 'workspaceId') && !['Alert', 'Realm', 'AuditEntry', 'Workspace'].includes(m));
  const owned = Object.keys(models).filter((m) => !hasField(m, 'realmId') && models[m]!.fields.some((f) => f.kind === 'object' && f.relationFromFields?.length && direct.includes(f.type)));
  return [...direct, ...owned].map((model) => ({ model }));
}

const json = (value: unknown) => JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));

export interface KeyRow {
  id: string;
  realmId: string;
  workspaceId: string | null;
  scopes: string[];
  tier: string | null;
  customRateLimit: number | null;
  secretHash: string;
  previousSecretHash: string | null;
  /** Timestamps as the database's JSON text (compared as text between two snapshots). */
  previousSecretExpiresAt: string | null;
  revokedAt: string | null;
}

/** A row that belongs to a workspace: the workspace (for a workspace, itself) and a digest of the whole row. */
interface OwnedRow {
  workspaceId: string | null;
  /** md5 of the row's text (every column): equal digests, unchanged row. */
  text: string;
  /** Workspaces: where the row hangs in the tree and whether it is archived (a scoped key may rename its own root only). */
  parentId?: string | null;
  archivedAt?: string | null;
}

export interface Snapshot {
  realmLevel: Map<string, string>;
  keys: Map<string, KeyRow>;
  /** Workspaces, datastreams and apps of the realm, by `<Model>:<id>`. */
  owned: Map<string, OwnedRow>;
  /** Whether the realm's own rows and its workspaces, datastreams and apps were read (else: the keys only). */
  realm: boolean;
  /** The workspace whose subtree was read (the caller's own workspace; null: none was). */
  subtreeRoot: string | null;
  /** That workspace's subtree (itself included), by workspace id: what "inside the caller's subtree" is judged by. */
  subtrees: Map<string, Set<string>>;
}

/** The caller a snapshot is taken for (its changes are the ones judged). */
export interface SnapshotScope {
  authenticated: boolean;
  home: boolean;
  workspaceId: string | null;
}

/**
 * What rule (d) compares for a caller: the keys always; the realm's own rows and its workspaces,
 * datastreams and apps for callers that may change none of them (outside the realm) or only inside
 * their subtree (workspace-scoped keys), not for a realm-wide key of the realm, which may change them all.
 */
export function judgedState(caller: SnapshotScope): { realm: boolean; subtreeOf: string | null } {
  return { realm: !caller.authenticated || !caller.home || !!caller.workspaceId, subtreeOf: caller.workspaceId };
}

const snapshotStatements = new Map<boolean, string>();

/**
 * The snapshot's one statement, as one JSON text: a digest of each realm-level table's rows of the
 * realm (any changed, added or removed row changes it), the keys' compared columns, each workspace,
 * datastream and app as a digest of its whole row (with its workspace, and a workspace's parent and
 * archival), and the subtree of workspace $2. Without `realm`: the keys and the subtree only.
 */
function snapshotSql(realm: boolean): string {
  const cached = snapshotStatements.get(realm);
  if (cached) return cached;
  const digests = realmLevelModels().map(({ model }) => {
    const owner = ownerRelation(model);
    const where = owner ? `t."${owner.field}" IN (SELECT id FROM "${owner.model}" WHERE "realmId" = $1::uuid)` : `t."realmId" = $1::uuid`;
    // Order-free (no sort): the count and the sum of each row's 64-bit hash of its text (every column).
    return `'${model}', (SELECT count(*) || ':' || coalesce(sum(hashtextextended(t::text, 0)::numeric), 0) FROM "${model}" t WHERE ${where})`;
  });
  const keyColumns = KEY_COLUMNS.map((c) => `k."${c}"`).join(', ');
  const owned = (model: string, columns: string) => `'${model}', (SELECT coalesce(json_object_agg(t.id, json_build_array(${columns})), '{}') FROM "${model}" t WHERE t."realmId" = $1::uuid)`;
  const statement = `SELECT json_build_array(
    ${realm ? `json_build_object(${digests.join(', ')})` : `'{}'::json`},
    (SELECT coalesce(json_agg(json_build_array(${keyColumns})), '[]') FROM "ApiKey" k WHERE k."realmId" = $1::uuid),
    ${realm ? `json_build_object(${owned('Workspace', 't.id, md5(t::text), t."parentId", t."archivedAt"')}, ${owned('Datastream', 't."workspaceId", md5(t::text)')}, ${owned('App', 't."workspaceId", md5(t::text)')})` : `'{}'::json`},
    (SELECT coalesce(json_agg(c."descendantId"), '[]') FROM "WorkspaceClosure" c WHERE c."ancestorId" = $2::uuid)
  )::text AS state`;
  snapshotStatements.set(realm, statement);
  return statement;
}

const KEY_COLUMNS = ['id', 'realmId', 'workspaceId', 'scopes', 'tier', 'customRateLimit', 'secretHash', 'previousSecretHash', 'previousSecretExpiresAt', 'revokedAt'] as const;

/**
 * The realm's state that `forbiddenChanges` compares for `caller` (whose changes are judged), read in
 * one statement: see `judgedState`.
 */
export async function snapshot(prisma: PrismaClient, realmId: string, caller: SnapshotScope): Promise<Snapshot> {
  const { realm, subtreeOf } = judgedState(caller);
  const [row] = await prisma.$queryRawUnsafe<{ state: string }[]>(snapshotSql(realm), realmId, subtreeOf);
  const [realmLevel, keyRows, ownedRows, subtree] = JSON.parse(row!.state) as [Record<string, string>, unknown[][], Record<string, Record<string, (string | null)[]>>, string[]];
  const keys = new Map<string, KeyRow>();
  for (const values of keyRows) {
    const key = Object.fromEntries(KEY_COLUMNS.map((c, i) => [c, values[i]])) as unknown as KeyRow;
    keys.set(key.id, key);
  }
  const owned = new Map<string, OwnedRow>();
  for (const [model, rows] of Object.entries(ownedRows)) {
    for (const [id, [workspaceId, text, parentId, archivedAt]] of Object.entries(rows)) {
      owned.set(`${model}:${id}`, model === 'Workspace' ? { workspaceId: workspaceId!, text: text!, parentId: parentId ?? null, archivedAt: archivedAt ?? null } : { workspaceId: workspaceId ?? null, text: text! });
    }
  }
  const subtrees = new Map<string, Set<string>>(subtreeOf ? [[subtreeOf, new Set(subtree)]] : []);
  return { realmLevel: new Map(Object.entries(realmLevel)), keys, owned, realm, subtreeRoot: subtreeOf, subtrees };
}

/** For a model without a realm of its own: the foreign key to the realm-level model it belongs to. */
function ownerRelation(model: string): { field: string; model: string } | null {
  if (hasField(model, 'realmId')) return null;
  const relation = models[model]!.fields.find((f) => f.kind === 'object' && f.relationFromFields?.length && hasField(f.type, 'realmId'));
  return relation ? { field: relation.relationFromFields![0]!, model: relation.type } : null;
}

/** Rule (d): what a mutation by `caller` changed that it may not. */
export function forbiddenChanges(caller: Caller, before: Snapshot, after: Snapshot): string[] {
  const judged = judgedState(caller);
  for (const snap of [before, after]) {
    if ((judged.realm && !snap.realm) || snap.subtreeRoot !== judged.subtreeOf) throw new Error(`forbiddenChanges: a snapshot of another caller's state than ${caller.name}'s (snapshot(…, caller))`);
  }
  const problems: string[] = [];
  const outsider = !caller.authenticated || !caller.home;
  for (const [model, rows] of after.realmLevel) {
    if (rows !== before.realmLevel.get(model) && (caller.workspaceId || outsider)) {
      problems.push(`${model} rows of the realm changed by ${caller.workspaceId ? 'a workspace-scoped key' : 'a caller outside the realm'}`);
    }
  }
  // Workspaces, datastreams and apps: a scoped key changes them only strictly inside its subtree (never
  // its own root's place), before and after the change; callers outside the realm change none.
  const root = caller.workspaceId;
  const inside = (snap: Snapshot, workspaceId: string | null) => !!root && !!workspaceId && (snap.subtrees.get(root)?.has(workspaceId) ?? false);
  for (const key of new Set([...before.owned.keys(), ...after.owned.keys()])) {
    const old = before.owned.get(key);
    const now = after.owned.get(key);
    if (old?.text === now?.text) continue;
    if (outsider) {
      problems.push(`${key.split(':')[0]} of the realm ${old ? 'changed' : 'created'} by a caller outside the realm`);
      continue;
    }
    if (!root) continue;
    const ownRoot = key === `Workspace:${root}`;
    const allowed = (!old || inside(before, old.workspaceId)) && (!now || inside(after, now.workspaceId)) && !ownRoot;
    const renamedRootOnly = ownRoot && old && now && old.parentId === now.parentId && old.archivedAt === now.archivedAt;
    if (!allowed && !renamedRootOnly) problems.push(`${key.split(':')[0]} ${ownRoot ? "(the key's own root)" : 'outside the subtree'} ${old ? 'changed' : 'created'} by a workspace-scoped key`);
  }
  for (const [id, key] of after.keys) {
    const old = before.keys.get(id);
    const changed =
      !old ||
      old.secretHash !== key.secretHash ||
      old.previousSecretHash !== key.previousSecretHash ||
      String(old.revokedAt) !== String(key.revokedAt) ||
      json(old.scopes) !== json(key.scopes) ||
      old.tier !== key.tier ||
      old.customRateLimit !== key.customRateLimit ||
      old.workspaceId !== key.workspaceId;
    if (!changed) continue;
    const what = old ? 'changed (rotated, revoked or edited)' : 'created';
    if (outsider) {
      problems.push(`a key was ${what} by a caller outside the realm`);
      continue;
    }
    const extra = key.scopes.filter((s) => !caller.scopes.includes(s));
    if (extra.length) problems.push(`a key with ${extra.join(', ')} (which the caller lacks) was ${what}`);
    if (caller.workspaceId && (!key.workspaceId || !caller.subtree.has(key.workspaceId))) problems.push(`a key outside the caller's subtree was ${what}`);
    const keyTier = (key.tier as Tier | null) ?? 'ENTERPRISE';
    if (TIER_RANK[keyTier] > TIER_RANK[caller.tier]) problems.push(`a key of tier ${keyTier} was ${what} by a ${caller.tier} key`);
    if (key.customRateLimit !== null && key.customRateLimit !== old?.customRateLimit && caller.tier !== 'ENTERPRISE') {
      problems.push(`a key with a custom rate limit of ${key.customRateLimit} was ${what} by a ${caller.tier} key`);
    }
  }
  return problems;
}

/** Fails a cell with its problems first (what the report lists), then the request and answer. */
export function assertNoProblems(problems: string[], context: string): void {
  if (problems.length) throw new Error(`${[...new Set(problems)].join('\n')}\n--- ${context}`);
}

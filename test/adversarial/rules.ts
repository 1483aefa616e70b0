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
  previousSecretExpiresAt: Date | null;
  revokedAt: Date | null;
}

/** A row that belongs to a workspace: the workspace (for a workspace, itself) and the row as text. */
interface OwnedRow {
  workspaceId: string | null;
  text: string;
}

export interface Snapshot {
  realmLevel: Map<string, string>;
  keys: Map<string, KeyRow>;
  /** Workspaces, datastreams and apps of the realm, by `<Model>:<id>`. */
  owned: Map<string, OwnedRow>;
  /** Each workspace's subtree (itself included), by workspace id. */
  subtrees: Map<string, Set<string>>;
}

export async function snapshot(prisma: PrismaClient, realmId: string): Promise<Snapshot> {
  // One round trip: a digest of each realm-level table's rows of the realm (table = model name).
  const columns = realmLevelModels().map(({ model }) => {
    const owner = ownerRelation(model);
    const where = owner ? `t."${owner.field}" IN (SELECT id FROM "${owner.model}" WHERE "realmId" = $1::uuid)` : `t."realmId" = $1::uuid`;
    return `(SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM "${model}" t WHERE ${where}) AS "${model}"`;
  });
  const [digests] = await prisma.$queryRawUnsafe<Record<string, string>[]>(`SELECT ${columns.join(', ')}`, realmId);
  const realmLevel = new Map(Object.entries(digests!));
  const keys = new Map<string, KeyRow>();
  for (const key of await prisma.apiKey.findMany({ where: { realmId } })) keys.set(key.id, key as KeyRow);
  const owned = new Map<string, OwnedRow>();
  for (const w of await prisma.workspace.findMany({ where: { realmId } })) owned.set(`Workspace:${w.id}`, { workspaceId: w.id, text: json(w) });
  for (const d of await prisma.datastream.findMany({ where: { realmId } })) owned.set(`Datastream:${d.id}`, { workspaceId: d.workspaceId, text: json(d) });
  for (const a of await prisma.app.findMany({ where: { realmId } })) owned.set(`App:${a.id}`, { workspaceId: a.workspaceId, text: json(a) });
  const subtrees = new Map<string, Set<string>>();
  for (const row of await prisma.workspaceClosure.findMany({ where: { ancestor: { realmId } }, select: { ancestorId: true, descendantId: true } })) {
    const set = subtrees.get(row.ancestorId) ?? new Set<string>();
    set.add(row.descendantId);
    subtrees.set(row.ancestorId, set);
  }
  return { realmLevel, keys, owned, subtrees };
}

/** For a model without a realm of its own: the foreign key to the realm-level model it belongs to. */
function ownerRelation(model: string): { field: string; model: string } | null {
  if (hasField(model, 'realmId')) return null;
  const relation = models[model]!.fields.find((f) => f.kind === 'object' && f.relationFromFields?.length && hasField(f.type, 'realmId'));
  return relation ? { field: relation.relationFromFields![0]!, model: relation.type } : null;
}

/** Rule (d): what a mutation by `caller` changed that it may not. */
export function forbiddenChanges(caller: Caller, before: Snapshot, after: Snapshot): string[] {
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
    const renamedRootOnly = ownRoot && old && now && JSON.parse(old.text).parentId === JSON.parse(now.text).parentId && JSON.parse(old.text).archivedAt === JSON.parse(now.text).archivedAt;
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

import {
  getNamedType,
  getNullableType,
  GraphQLEnumType,
  GraphQLInputObjectType,
  GraphQLInterfaceType,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLScalarType,
  isLeafType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLNamedType,
} from 'graphql';
import { SCOPES } from '../../src/auth/scopes.js';
import { encodeId } from '../../src/global-id.js';
import { schema } from '../../src/schema/index.js';

/**
 * The authorization matrix's view of the schema: every target (root field, node type, field of
 * every object type, mutation) is found by walking `schema`, its selection and arguments are
 * generated, and what a caller may see is read from the Pothos `authScopes` in the extensions.
 * Nothing here names a field of the API, except the argument generator's value table, which
 * throws for an argument it cannot fill: a new field needs a new value there, never a silent skip.
 */

export { schema };

export type AuthScopes = unknown;

/** The flags of `builder.ts`'s `authScopes(ctx)`: scope names, and `realmWide`. */
const SCOPE_FLAGS: Record<string, string> = {
  usageRead: 'usage:read',
  usageWrite: 'usage:write',
  keysManage: 'keys:manage',
  billingRead: 'billing:read',
  adminWrite: 'admin:write',
  billingWrite: 'billing:write',
  realmsManage: 'realms:manage',
};

export interface ScopeHolder {
  scopes: string[];
  workspaceId: string | null;
}

function flagGranted(flag: string, value: unknown, holder: ScopeHolder): boolean {
  if (value !== true) throw new Error(`authScopes flag ${flag}: ${JSON.stringify(value)}: teach test/adversarial/schema-walk.ts what it means`);
  if (flag === 'realmWide') return holder.workspaceId === null;
  const scope = SCOPE_FLAGS[flag];
  if (!scope) throw new Error(`unknown authScopes flag "${flag}": teach test/adversarial/schema-walk.ts what it means`);
  return holder.scopes.includes(scope);
}

/** Pothos scope-auth semantics: the flags of a map are OR'ed, `$all` AND'ed, `$any` OR'ed. Functions: 'dynamic'. */
export function granted(authScopes: AuthScopes, holder: ScopeHolder): boolean | 'dynamic' {
  if (authScopes === undefined || authScopes === null) return true;
  if (typeof authScopes === 'function') return 'dynamic';
  if (typeof authScopes !== 'object') throw new Error(`authScopes ${String(authScopes)}: not understood`);
  const evaluate = (map: Record<string, unknown>, all: boolean): boolean => {
    const results = Object.entries(map).map(([key, value]) => {
      if (key === '$all') return evaluate(value as Record<string, unknown>, true);
      if (key === '$any') return evaluate(value as Record<string, unknown>, false);
      if (key === '$granted') throw new Error('authScopes $granted: teach test/adversarial/schema-walk.ts what it means');
      return flagGranted(key, value, holder);
    });
    return all ? results.every(Boolean) : results.some(Boolean);
  };
  return evaluate(authScopes as Record<string, unknown>, false);
}

export function fieldScopes(field: GraphQLField<unknown, unknown>): AuthScopes {
  return (field.extensions as { pothosOptions?: { authScopes?: unknown } } | undefined)?.pothosOptions?.authScopes;
}

export function typeScopes(type: GraphQLNamedType): AuthScopes {
  return (type.extensions as { pothosOptions?: { authScopes?: unknown } } | undefined)?.pothosOptions?.authScopes;
}

/** Billing types: their `authScopes` need `billing:read`. The README: billing needs a realm-wide key. */
export function isBillingType(typename: string): boolean {
  const type = schema.getType(typename);
  return !!type && JSON.stringify(typeScopes(type) ?? null).includes('billingRead');
}

export function nodeTypes(): GraphQLObjectType[] {
  return schema.getPossibleTypes(schema.getType('Node') as GraphQLInterfaceType) as GraphQLObjectType[];
}

function objectTypes(): GraphQLObjectType[] {
  const mutation = schema.getMutationType();
  const payloadOnly = new Set<string>();
  // Types reachable only through mutations are covered by the mutation targets.
  const reachable = new Set<string>();
  const visit = (type: GraphQLNamedType) => {
    if (!(type instanceof GraphQLObjectType || type instanceof GraphQLInterfaceType) || reachable.has(type.name)) return;
    reachable.add(type.name);
    for (const field of Object.values(type.getFields())) visit(getNamedType(field.type));
    if (type instanceof GraphQLInterfaceType) schema.getPossibleTypes(type).forEach(visit);
  };
  visit(schema.getQueryType()!);
  for (const field of Object.values(mutation?.getFields() ?? {})) {
    const named = getNamedType(field.type);
    if (!reachable.has(named.name)) payloadOnly.add(named.name);
  }
  return Object.values(schema.getTypeMap()).filter(
    (t): t is GraphQLObjectType => t instanceof GraphQLObjectType && !t.name.startsWith('__') && reachable.has(t.name) && t !== schema.getQueryType(),
  );
}

// ─── Arguments ────────────────────────────────────────────────────────────────────────────────

/** What the argument generator draws from: the fixture's ids and a few instants. */
export interface ArgumentSource {
  /** Realm A's object of this type that required id arguments point to. */
  idOf(typename: string): string;
  /** A new object of this type for a mutation that consumes it (revoke, rotate, delete); undefined: use `idOf`. */
  fresh?(typename: string): Promise<string | undefined>;
  hour: Date;
  now: Date;
  /** A number unique to this request: non-overlapping contract dates, unique idempotency keys. */
  sequence: number;
  /** Appended to every generated String (the NUL corpus). */
  poison?: string;
  /** Filled by `selectionOf`: every object type the generated selection reaches. */
  seenTypes?: Set<string>;
  /**
   * The caller of a mutation: a key it creates asks for the caller's own scopes and workspace (and the
   * highest tier and limit), so that only a tier or limit above the caller's own can be refused.
   */
  caller?: { scopes: string[]; workspaceId: string | null };
}

/** Optional input fields and arguments the generator fills: without them, a call is refused for its input, not its caller. */
const OPTIONAL_FILLED = new Set(['credits', 'quantity', 'tier', 'customRateLimit', 'range', 'groupBy', 'first']);

export class NoGeneratorError extends Error {}

/** Values by argument name, whatever their scalar (a decimal may travel as a String or a Decimal). */
const BY_NAME: Record<string, (source: ArgumentSource) => unknown> = {
  quantity: () => '5',
  credits: () => '100',
  unitAmount: () => '0.5',
  quantityPerMonth: () => '10',
  customRateLimit: () => 1_000_000,
  first: () => 3,
  months: () => 1,
  since: () => '2000-01-01T00:00:00.000Z',
  through: (s) => new Date(s.now.getTime() - 3_600_000 + s.sequence * 1000).toISOString(),
  startsAt: (s) => new Date(Date.UTC(2100 + s.sequence, 0, 1)).toISOString(),
  validFrom: (s) => new Date(Date.UTC(2100 + s.sequence, 0, 1)).toISOString(),
  endsAt: (s) => new Date(Date.UTC(2100 + s.sequence, 6, 1)).toISOString(),
  timestamp: (s) => s.hour.toISOString(),
  from: (s) => new Date(s.hour.getTime() - 48 * 3_600_000).toISOString(),
  to: (s) => new Date(s.hour.getTime() + 3_600_000).toISOString(),
};

function typeForId(argName: string, fieldName: string): string {
  const fromArg = argName.replace(/Ids?$/, '');
  const candidates = [fromArg, fieldName.replace(/^[a-z]+(?=[A-Z])/, ''), fieldName];
  for (const candidate of candidates) {
    if (!candidate || candidate === 'id' || candidate === 'ids') continue;
    const name = candidate[0]!.toUpperCase() + candidate.slice(1);
    if (schema.getType(name) instanceof GraphQLObjectType) return name;
  }
  throw new NoGeneratorError(`no type for ID argument "${argName}" of "${fieldName}": name it <type>Id or teach test/adversarial/schema-walk.ts`);
}

async function valueFor(name: string, type: GraphQLInputType, where: string, fieldName: string, source: ArgumentSource): Promise<unknown> {
  const nullable = getNullableType(type);
  if (nullable instanceof GraphQLScalarType && nullable.name !== 'ID' && BY_NAME[name]) {
    const value = BY_NAME[name](source);
    return nullable.name === 'String' && typeof value === 'string' ? value + (source.poison ?? '') : value;
  }
  if (nullable instanceof GraphQLList) {
    const item = nullable.ofType as GraphQLInputType;
    const named = getNamedType(item);
    if (name === 'scopes') return (source.caller?.scopes ?? [...SCOPES]).map((s) => s + (source.poison ?? ''));
    if (named instanceof GraphQLEnumType) return named.getValues().map((v) => v.value);
    return [await valueFor(name.replace(/s$/, ''), item, where, fieldName, source)];
  }
  if (nullable instanceof GraphQLInputObjectType) {
    const value: Record<string, unknown> = {};
    for (const field of Object.values(nullable.getFields())) {
      if (field.name === 'workspaceId' && source.caller?.workspaceId && !(field.type instanceof GraphQLNonNull)) {
        value[field.name] = encodeId('Workspace', source.caller.workspaceId);
        continue;
      }
      if (field.type instanceof GraphQLNonNull || OPTIONAL_FILLED.has(field.name)) {
        if (field.type instanceof GraphQLNonNull && field.defaultValue !== undefined) continue;
        value[field.name] = await valueFor(field.name, field.type, `${where}.${field.name}`, fieldName, source);
      }
    }
    return value;
  }
  if (nullable instanceof GraphQLEnumType) return nullable.getValues()[0]!.value;
  const scalar = (nullable as GraphQLScalarType).name;
  const poison = source.poison ?? '';
  switch (scalar) {
    case 'ID': {
      // The backfill's events are of the fixture's `tx` feature (the generated `feature` key).
      if (fieldName === 'backfillUsage' && name === 'feature') return source.idOf('Feature');
      const typename = typeForId(name, fieldName);
      return (await source.fresh?.(typename)) ?? source.idOf(typename);
    }
    case 'String':
      if (name === 'month') return source.hour.toISOString().slice(0, 7) + poison;
      if (name === 'name') return `adversarial ${source.sequence}${poison}`;
      if (name === 'key') return `adv_${source.sequence}_${Math.random().toString(36).slice(2, 8)}${poison}`;
      if (name === 'slug') return `adv-${source.sequence}-${Math.random().toString(36).slice(2, 8)}${poison}`;
      if (name === 'service') return `adversarial${poison}`;
      if (name === 'currency') return `EUR${poison}`;
      if (name === 'feature') return `tx${poison}`;
      if (name === 'idempotencyKey' && (fieldName === 'amendUsageEvent' || fieldName === 'voidUsageEvent')) {
        // A stored event to correct (a random key would only ever be EVENT_NOT_FOUND).
        const stored = await source.fresh?.('UsageEvent');
        if (stored) return stored + poison;
      }
      if (name === 'idempotencyKey' || name === 'uniqueKey') return `adv-${source.sequence}-${Math.random().toString(36).slice(2)}${poison}`;
      if (name === 'webhookUrl') return `https://hooks.example.com/adv${poison}`;
      if (name === 'billingTag' || name === 'resource') return `adv${poison}`;
      if (name === 'section') return `explorer${poison}`;
      if (name === 'origin') return `https://portal.example.com${poison}`;
      throw new NoGeneratorError(`no value for String ${where}: add one to test/adversarial/schema-walk.ts`);
    case 'DateTime':
      throw new NoGeneratorError(`no value for DateTime ${where}: add one to test/adversarial/schema-walk.ts`);
    case 'Decimal':
      return '5';
    case 'Int':
      return 1;
    case 'Boolean':
      return false;
    case 'TimeZone':
      return 'UTC';
    default:
      throw new NoGeneratorError(`no value for scalar ${scalar} (${where}): add one to test/adversarial/schema-walk.ts`);
  }
}

/** The arguments the generator gives a field: every required one, and the optional ones it knows to fill. */
export async function argumentsFor(field: GraphQLField<unknown, unknown>, owner: string, source: ArgumentSource): Promise<Record<string, unknown>> {
  const args: Record<string, unknown> = {};
  for (const arg of field.args) {
    if ((arg.type instanceof GraphQLNonNull && arg.defaultValue === undefined) || OPTIONAL_FILLED.has(arg.name)) {
      args[arg.name] = await valueFor(arg.name, arg.type, `${owner}.${field.name}(${arg.name})`, field.name, source);
    }
  }
  return args;
}

/** A GraphQL literal of a generated value (strings JSON-escaped: NUL becomes \u0000). */
export function literal(value: unknown, type: GraphQLInputType): string {
  const nullable = getNullableType(type);
  if (value === null || value === undefined) return 'null';
  if (nullable instanceof GraphQLList) return `[${(value as unknown[]).map((v) => literal(v, nullable.ofType as GraphQLInputType)).join(', ')}]`;
  if (nullable instanceof GraphQLInputObjectType) {
    const fields = nullable.getFields();
    return `{ ${Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${k}: ${literal(v, fields[k]!.type)}`)
      .join(', ')} }`;
  }
  if (nullable instanceof GraphQLEnumType) return String(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

function printArgs(field: GraphQLField<unknown, unknown>, args: Record<string, unknown>): string {
  const entries = Object.entries(args);
  if (!entries.length) return '';
  const byName = new Map<string, GraphQLArgument>(field.args.map((a) => [a.name, a]));
  return `(${entries.map(([k, v]) => `${k}: ${literal(v, byName.get(k)!.type)}`).join(', ')})`;
}

// ─── Selections ───────────────────────────────────────────────────────────────────────────────

const MAX_DEPTH = 2;
const isPlumbing = (name: string) => /(Connection|Edge)$/.test(name);
const isNode = (type: GraphQLNamedType) => type instanceof GraphQLObjectType && type.getInterfaces().some((i) => i.name === 'Node');

/**
 * The target's own selection: its scalar leaves, `id` and `__typename`, and its object fields: below
 * the target, nodes give their leaves and `id` only, other objects recurse to MAX_DEPTH (connections'
 * edges and nodes are free at the target, skipped below it: each connection is a target of its own).
 * Fields with their own `authScopes` are left out below the target: each is a target of its own.
 */
export async function selectionOf(type: GraphQLNamedType, source: ArgumentSource, depth = 0): Promise<string> {
  if (!(type instanceof GraphQLObjectType || type instanceof GraphQLInterfaceType)) return '';
  source.seenTypes?.add(type.name);
  const parts = ['__typename'];
  for (const field of Object.values(type.getFields())) {
    if (fieldScopes(field) !== undefined) continue;
    if (isPlumbing(type.name) && (field.name === 'pageInfo' || field.name === 'cursor')) continue;
    const named = getNamedType(field.type);
    const args = printArgs(field, await argumentsFor(field, type.name, source));
    if (isLeafType(named)) {
      parts.push(`${field.name}${args}`);
      continue;
    }
    if (named.name.endsWith('Connection') && depth >= 1) continue;
    const nextDepth = isPlumbing(named.name) ? depth : depth + 1;
    if (isNode(named) && nextDepth >= 1 && !isPlumbing(type.name) && depth >= 1) {
      source.seenTypes?.add(named.name);
      parts.push(`${field.name}${args} { __typename id }`);
    } else if (nextDepth <= MAX_DEPTH) {
      const leavesOnly = isNode(named) && nextDepth >= 1;
      const sub = leavesOnly ? await leavesOf(named as GraphQLObjectType, source) : await selectionOf(named, source, nextDepth);
      parts.push(`${field.name}${args} { ${sub} }`);
    } else if (isNode(named)) {
      source.seenTypes?.add(named.name);
      parts.push(`${field.name}${args} { __typename id }`);
    }
  }
  return parts.join(' ');
}

/** A node below the target: its scalar leaves (with `id`). */
async function leavesOf(type: GraphQLObjectType, source: ArgumentSource): Promise<string> {
  source.seenTypes?.add(type.name);
  const parts = ['__typename'];
  for (const field of Object.values(type.getFields())) {
    if (fieldScopes(field) !== undefined || !isLeafType(getNamedType(field.type))) continue;
    parts.push(`${field.name}${printArgs(field, await argumentsFor(field, type.name, source))}`);
  }
  return parts.join(' ');
}

// ─── Targets ──────────────────────────────────────────────────────────────────────────────────

/**
 * Global ids of a type's fixture objects: 'every' kind of relation to a caller (one per realm and
 * owning workspace), or a 'probe' (one inside the scoped callers' subtree, one outside, one of the
 * other realm) for fields of the type, where the type's own visibility is already tested.
 */
export type IdSource = (typename: string, mode?: 'every' | 'probe') => string[];

export interface Target {
  area: string;
  /** e.g. `Realm.contracts`, `Mutation.createContract`, `node(id) of Contract`. */
  name: string;
  kind: 'query' | 'mutation' | 'subscription';
  /** The scopes on the way to the target (the types and fields of its path). */
  pathChecks: AuthScopes[];
  /** The scopes of the target itself (the field and its type). */
  checks: AuthScopes[];
  /** The document; `source.seenTypes` receives the object types its selection reaches. */
  build(source: ArgumentSource, ids: IdSource): Promise<string>;
  /** The field whose value proves the realm-wide key reached the target. */
  field: string;
}

interface Step {
  parent: GraphQLObjectType;
  field: GraphQLField<unknown, unknown>;
}

/** Shortest way from Query to each object type (node types: `nodes(ids)`). */
function pathsToTypes(): Map<string, Step[] | 'node'> {
  const paths = new Map<string, Step[] | 'node'>();
  for (const node of nodeTypes()) paths.set(node.name, 'node');
  // Through single objects first: a list on the way multiplies the query's cost by 10.
  for (const allowLists of [false, true]) {
    const queue: { type: GraphQLObjectType; path: Step[] }[] = [{ type: schema.getQueryType()!, path: [] }];
    // The realm first: what hangs off it (usage reports, billing) covers every workspace of the realm.
    for (const node of [...nodeTypes()].sort((x, y) => Number(y.name === 'Realm') - Number(x.name === 'Realm'))) queue.push({ type: node, path: [] });
    const visited = new Set<string>();
    while (queue.length) {
      const { type, path } = queue.shift()!;
      for (const field of Object.values(type.getFields())) {
        const named = getNamedType(field.type);
        if (!(named instanceof GraphQLObjectType) || visited.has(named.name) || nodeTypes().includes(named)) continue;
        if (!allowLists && getNullableType(field.type) instanceof GraphQLList) continue;
        visited.add(named.name);
        const next = [...path, { parent: type, field }];
        if (!paths.has(named.name)) paths.set(named.name, next);
        queue.push({ type: named, path: paths.get(named.name) as Step[] });
      }
    }
  }
  return paths;
}

function rootOf(path: Step[]): GraphQLObjectType {
  return path[0]?.parent ?? schema.getQueryType()!;
}

async function wrapInPath(path: Step[], inner: string, source: ArgumentSource, ids: IdSource): Promise<string> {
  let document = inner;
  for (const step of [...path].reverse()) {
    document = `${step.field.name}${printArgs(step.field, await argumentsFor(step.field, step.parent.name, source))} { __typename ${document} }`;
  }
  const root = rootOf(path);
  if (root === schema.getQueryType()) return `{ ${document} }`;
  return nodesQuery(root.name, document, ids, 'probe');
}

/** One aliased `node(id)` per object of the type (aliases add up; a list would multiply the query's cost). */
function nodesQuery(typename: string, inner: string, ids: IdSource, mode: 'every' | 'probe' = 'every'): string {
  return `{ ${ids(typename, mode)
    .map((id, i) => `n${i}: node(id: ${JSON.stringify(id)}) { __typename ... on ${typename} { id ${inner} } }`)
    .join(' ')} }`;
}

function areaOf(parent: string, field: GraphQLField<unknown, unknown>): string {
  const named = getNamedType(field.type).name;
  if (parent === 'UsageGroup' || parent === 'UsageRevision') return 'usage group relations';
  if (named.endsWith('Connection')) return 'connections';
  return 'object fields';
}

/** Every target of the matrix, from the schema alone. */
export function queryTargets(): Target[] {
  const targets: Target[] = [];
  const paths = pathsToTypes();
  const query = schema.getQueryType()!;

  for (const field of Object.values(query.getFields())) {
    targets.push({
      area: 'root query fields',
      name: `Query.${field.name}`,
      kind: 'query',
      pathChecks: [],
      checks: [fieldScopes(field), typeScopes(getNamedType(field.type))],
      field: field.name,
      async build(source, ids) {
        const named = getNamedType(field.type);
        if (named instanceof GraphQLInterfaceType) nodeTypes().forEach((t) => source.seenTypes?.add(t.name));
        const args =
          field.name === 'nodes'
            ? `(ids: ${JSON.stringify(nodeTypes().flatMap((t) => ids(t.name, 'probe')))})`
            : field.name === 'node'
              ? `(id: ${JSON.stringify(ids('App')[0])})`
              : printArgs(field, await argumentsFor(field, 'Query', source));
        const sub = named instanceof GraphQLInterfaceType ? `__typename id ${nodeTypes().map((t) => `... on ${t.name} { id }`).join(' ')}` : await selectionOf(named, source);
        return `{ ${field.name}${args}${sub ? ` { ${sub} }` : ''} }`;
      },
    });
  }

  for (const node of nodeTypes()) {
    targets.push({
      area: 'node types',
      name: `node(id) of ${node.name}`,
      kind: 'query',
      pathChecks: [],
      checks: [typeScopes(node)],
      field: 'node',
      build: async (source, ids) => nodesQuery(node.name, await selectionOf(node, source), ids),
    });
  }

  for (const type of objectTypes()) {
    // Connections and edges are reached through their connection field's target.
    if (isPlumbing(type.name)) continue;
    const path = paths.get(type.name);
    if (!path) throw new Error(`no way from Query to ${type.name}`);
    for (const field of Object.values(type.getFields())) {
      const named = getNamedType(field.type);
      // Targets of their own: fields with scopes or arguments, connections, the relations of usage
      // groups and revisions. Other fields are in the selections of their type's targets.
      const relation = (type.name === 'UsageGroup' || type.name === 'UsageRevision') && !isLeafType(named);
      if (fieldScopes(field) === undefined && !field.args.length && !relation) continue;
      const pathSteps = path === 'node' ? [] : path;
      targets.push({
        area: areaOf(type.name, field),
        name: `${type.name}.${field.name}`,
        kind: 'query',
        pathChecks: path === 'node' ? [typeScopes(type)] : [typeScopes(rootOf(path)), ...pathSteps.flatMap((s) => [fieldScopes(s.field), typeScopes(getNamedType(s.field.type))])],
        checks: [fieldScopes(field), typeScopes(named)],
        field: field.name,
        async build(source, ids) {
          // Below a list, the selection starts one level down: the list multiplies its cost.
          const belowList = path !== 'node' && path.some((s) => getNullableType(s.field.type) instanceof GraphQLList);
          const sub = await selectionOf(named, source, belowList ? 1 : 0);
          const inner = `${field.name}${printArgs(field, await argumentsFor(field, type.name, source))}${sub ? ` { ${sub} }` : ''}`;
          if (path === 'node') return nodesQuery(type.name, inner, ids, 'probe');
          return wrapInPath(path, inner, source, ids);
        },
      });
    }
  }
  return targets;
}

export function mutationTargets(): Target[] {
  const mutation = schema.getMutationType();
  return Object.values(mutation?.getFields() ?? {}).map((field) => ({
    area: 'mutations',
    name: `Mutation.${field.name}`,
    kind: 'mutation' as const,
    pathChecks: [],
    checks: [fieldScopes(field), typeScopes(getNamedType(field.type))],
    field: field.name,
    async build(source: ArgumentSource) {
      const sub = await selectionOf(getNamedType(field.type), source);
      return `mutation { ${field.name}${printArgs(field, await argumentsFor(field, 'Mutation', source))}${sub ? ` { ${sub} }` : ''} }`;
    },
  }));
}

/** Every Subscription root field: the document opens it with the generated arguments and the selection of its type. */
export function subscriptionTargets(): Target[] {
  const subscription = schema.getSubscriptionType();
  return Object.values(subscription?.getFields() ?? {}).map((field) => ({
    area: 'subscriptions',
    name: `Subscription.${field.name}`,
    kind: 'subscription' as const,
    pathChecks: [],
    checks: [fieldScopes(field), typeScopes(getNamedType(field.type))],
    field: field.name,
    async build(source: ArgumentSource) {
      const sub = await selectionOf(getNamedType(field.type), source);
      return `subscription { ${field.name}${printArgs(field, await argumentsFor(field, 'Subscription', source))}${sub ? ` { ${sub} }` : ''} }`;
    },
  }));
}

/** The named type of a field of an object type (for walking answers), or undefined. */
export function fieldOf(typename: string, fieldName: string): GraphQLField<unknown, unknown> | undefined {
  const type = schema.getType(typename);
  return type instanceof GraphQLObjectType || type instanceof GraphQLInterfaceType ? type.getFields()[fieldName] : undefined;
}

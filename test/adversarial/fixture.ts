import { hashSecret, newApiKeySecret } from '../../src/auth/api-key-secret.js';
import { insertWorkspace } from '../../src/db/workspace-tree.js';
import type { PrismaClient } from '../../src/generated/prisma/client.js';
import { ALL_SCOPES, createKey } from '../helpers/fixtures.js';
import { insertUsage } from '../helpers/usage-fixture.js';
import { newPortalToken } from '../../src/portal/token.js';

/**
 * The adversarial suite's own compact world: realm A (the target: a tree root → left → leaf and
 * root → right, usage in every branch, billing objects, a quota rule and an alert, keys of every
 * kind) and realm B (the neighbour). Every object carries a unique token in a text field, so a
 * response can be searched for objects its caller must not see, whatever field they leak through.
 */

export type Tier = 'FREE' | 'STARTER' | 'PROFESSIONAL' | 'ENTERPRISE';
export const TIER_RANK: Record<Tier, number> = { FREE: 0, STARTER: 1, PROFESSIONAL: 2, ENTERPRISE: 3 };

export interface Caller {
  name: string;
  /** The Authorization header's key; null: no header. */
  key: string | null;
  /** Whether the gateway must accept the key (revoked, rotated-out and missing keys: no). */
  authenticated: boolean;
  realmId: string | null;
  workspaceId: string | null;
  /** Workspaces the caller sees (the realm's all for a realm-wide key). */
  subtree: Set<string>;
  scopes: string[];
  tier: Tier;
  /** A key of realm A (the realm every generated argument points into). */
  home: boolean;
  /** An operator's key: it belongs to no realm, sees every realm, and manages realms only. */
  operator?: boolean;
  /** A valid key of a suspended realm: every request is refused with 403 REALM_SUSPENDED. */
  suspended?: boolean;
  /** Features the caller sees when not all of its realm's (a portal session: the session's). */
  features?: Set<string>;
}

/** What an object is, for the visibility rules: its realm, the workspace it belongs to, its token. */
export interface FixtureObject {
  typename: string;
  id: string;
  realmId: string;
  /** The owning workspace (null: realm-level). */
  workspaceId: string | null;
  /** Realm-level objects a workspace-scoped key still sees (realm, projects, features). */
  sharedWithScopedKeys: boolean;
  /** Billing objects: realm-wide keys with `billing:read` only. */
  billing: boolean;
  token: string | null;
}

let tokenCounter = 100;
const token = () => `tok${++tokenCounter}q`;

export type World = Awaited<ReturnType<typeof seedWorld>>;

/** The hour the fixture's usage is in: the current UTC hour, so month-to-date reports and exports include it. */
export function usageHour(now = new Date()): Date {
  return new Date(Math.floor(now.getTime() / 3_600_000) * 3_600_000);
}

export async function seedWorld(prisma: PrismaClient) {
  const objects: FixtureObject[] = [];
  const remember = (o: FixtureObject) => (objects.push(o), o);
  const hour = usageHour();

  async function seedRealm(label: 'A' | 'B') {
    const realmToken = token();
    const realm = await prisma.realm.create({
      data: { name: `realm ${label} ${realmToken}`, slug: `adv-${label.toLowerCase()}-${realmToken}-${Date.now()}`, timeZone: 'UTC', tier: 'ENTERPRISE', customRateLimit: 1_000_000 },
    });
    remember({ typename: 'Realm', id: realm.id, realmId: realm.id, workspaceId: null, sharedWithScopedKeys: true, billing: false, token: realmToken });
    const names = { root: token(), left: token(), leaf: token(), right: token() };
    const tree = await prisma.$transaction(async (tx) => {
      const root = await insertWorkspace(tx, { realmId: realm.id, name: `root ${names.root}` });
      const left = await insertWorkspace(tx, { realmId: realm.id, parentId: root.id, name: `left ${names.left}` });
      const leaf = await insertWorkspace(tx, { realmId: realm.id, parentId: left.id, name: `leaf ${names.leaf}` });
      const right = await insertWorkspace(tx, { realmId: realm.id, parentId: root.id, name: `right ${names.right}` });
      return { root, left, leaf, right };
    });
    for (const [branch, ws] of Object.entries(tree)) {
      remember({ typename: 'Workspace', id: ws.id, realmId: realm.id, workspaceId: ws.id, sharedWithScopedKeys: false, billing: false, token: names[branch as keyof typeof names] });
    }
    const stream = async (ws: { id: string }) => {
      const t = token();
      const s = await prisma.datastream.create({ data: { realmId: realm.id, workspaceId: ws.id, name: `stream ${t}` } });
      remember({ typename: 'Datastream', id: s.id, realmId: realm.id, workspaceId: ws.id, sharedWithScopedKeys: false, billing: false, token: t });
      return s;
    };
    const streams = { left: await stream(tree.left), leaf: await stream(tree.leaf), right: await stream(tree.right) };
    const projectToken = token();
    const project = await prisma.project.create({ data: { realmId: realm.id, name: `project ${projectToken}` } });
    remember({ typename: 'Project', id: project.id, realmId: realm.id, workspaceId: null, sharedWithScopedKeys: true, billing: false, token: projectToken });
    const app = async (ws: { id: string } | null) => {
      const t = token();
      const a = await prisma.app.create({ data: { realmId: realm.id, projectId: project.id, workspaceId: ws?.id ?? null, name: `app ${t}` } });
      remember({ typename: 'App', id: a.id, realmId: realm.id, workspaceId: ws?.id ?? null, sharedWithScopedKeys: false, billing: false, token: t });
      return a;
    };
    const apps = { left: await app(tree.left), right: await app(tree.right), none: await app(null) };
    const feature = async (key: string, aggregation: 'SUM' | 'UNIQUE_COUNT', unit: 'TRANSACTION' | 'ROW') => {
      const f = await prisma.feature.create({ data: { realmId: realm.id, key, name: key, service: 'adversarial', unit, aggregation, arrivalDelaySeconds: 7200 } });
      remember({ typename: 'Feature', id: f.id, realmId: realm.id, workspaceId: null, sharedWithScopedKeys: true, billing: false, token: null });
      return f;
    };
    const features = { tx: await feature('tx', 'SUM', 'TRANSACTION'), rows: await feature('rows', 'UNIQUE_COUNT', 'ROW') };

    const keyRecord = async (options: { scopes?: string[]; workspaceId?: string; tier?: Tier | null; revokedAt?: Date }) => {
      const created = await createKey(prisma, realm.id, { scopes: options.scopes ?? ALL_SCOPES, workspaceId: options.workspaceId, revokedAt: options.revokedAt });
      const t = token();
      await prisma.apiKey.update({ where: { id: created.record.id }, data: { name: `key ${t}`, tier: options.tier ?? null } });
      remember({ typename: 'ApiKey', id: created.record.id, realmId: realm.id, workspaceId: options.workspaceId ?? null, sharedWithScopedKeys: false, billing: false, token: t });
      return { ...created, token: t };
    };
    const admin = await keyRecord({});
    const rightKey = await keyRecord({ workspaceId: tree.right.id, tier: 'FREE' });
    // Portal sessions belong to their workspace, like keys (seen with keys:manage); the prefix is their token.
    const portalSession = async (workspaceId: string, apiKeyId: string) => {
      const fresh = newPortalToken();
      const created = await prisma.portalSession.create({
        data: { realmId: realm.id, workspaceId, apiKeyId, prefix: fresh.prefix, secretHash: fresh.secretHash, featureIds: [features.tx.id, features.rows.id], sections: ['explorer'], scopes: ['usage:read'], expiresAt: new Date(Date.now() + 86_400_000) },
      });
      remember({ typename: 'PortalSession', id: created.id, realmId: realm.id, workspaceId, sharedWithScopedKeys: false, billing: false, token: created.prefix });
      return { ...created, token: fresh.token };
    };
    await portalSession(tree.left.id, admin.record.id);
    await portalSession(tree.right.id, rightKey.record.id);

    // Usage in every branch, with dimensions that cross branches (an app of the right team used in
    // the left one, the realm-wide key's traffic in the left one): what a scoped report must not name.
    const tagOf = (where: string) => `tag-${where}-${token()}`;
    const tags = { left: tagOf('left'), leaf: tagOf('leaf'), right: tagOf('right'), none: tagOf('none'), cross: tagOf('cross') };
    const rows = [
      { workspaceId: tree.left.id, datastreamId: streams.left.id, projectId: project.id, appId: apps.left.id, apiKeyId: null, billingTag: tags.left },
      { workspaceId: tree.leaf.id, datastreamId: streams.leaf.id, projectId: project.id, appId: apps.left.id, apiKeyId: null, billingTag: tags.leaf },
      { workspaceId: tree.right.id, datastreamId: streams.right.id, projectId: project.id, appId: apps.right.id, apiKeyId: rightKey.record.id, billingTag: tags.right },
      { workspaceId: null, datastreamId: null, projectId: project.id, appId: apps.none.id, apiKeyId: admin.record.id, billingTag: tags.none },
      { workspaceId: tree.left.id, datastreamId: null, projectId: project.id, appId: apps.right.id, apiKeyId: admin.record.id, billingTag: tags.cross },
    ];
    await insertUsage(
      prisma,
      realm.id,
      { tx: features.tx.id, rows: features.rows.id },
      rows.flatMap((r) => [
        { feature: 'tx', hour, quantity: '5', ...r, resource: null },
        { feature: 'tx', hour: new Date(hour.getTime() - 3_600_000), quantity: '2', ...r, resource: null },
        { feature: 'rows', hour, keys: ['r1', 'r2'], ...r, resource: null },
      ]) as never,
    );
    // Tags are text, not objects: they are invisible to whoever does not see their row's workspace.
    const tagObjects: FixtureObject[] = [
      { typename: 'BillingTag', id: tags.left, realmId: realm.id, workspaceId: tree.left.id, sharedWithScopedKeys: false, billing: false, token: tags.left },
      { typename: 'BillingTag', id: tags.leaf, realmId: realm.id, workspaceId: tree.leaf.id, sharedWithScopedKeys: false, billing: false, token: tags.leaf },
      { typename: 'BillingTag', id: tags.right, realmId: realm.id, workspaceId: tree.right.id, sharedWithScopedKeys: false, billing: false, token: tags.right },
      { typename: 'BillingTag', id: tags.none, realmId: realm.id, workspaceId: null, sharedWithScopedKeys: false, billing: false, token: tags.none },
    ];
    objects.push(...tagObjects);

    // Billing: a contract with a license, a credit grant, a price, a quota rule with its alert.
    const contractToken = token();
    const monthStart = new Date(Date.UTC(hour.getUTCFullYear(), hour.getUTCMonth(), 1));
    const contract = await prisma.contract.create({
      data: {
        realmId: realm.id,
        name: `contract ${contractToken}`,
        startsAt: new Date(Date.UTC(hour.getUTCFullYear() - 1, 0, 1)),
        endsAt: new Date(Date.UTC(hour.getUTCFullYear() + 1, 0, 1)),
        licenses: { create: [{ featureId: features.tx.id, quantityPerMonth: '3' }] },
      },
      include: { licenses: true },
    });
    remember({ typename: 'Contract', id: contract.id, realmId: realm.id, workspaceId: null, sharedWithScopedKeys: false, billing: true, token: contractToken });
    remember({ typename: 'License', id: contract.licenses[0]!.id, realmId: realm.id, workspaceId: null, sharedWithScopedKeys: false, billing: true, token: null });
    const grant = await prisma.creditGrant.create({ data: { realmId: realm.id, kind: 'GENERAL', credits: '10', startsAt: monthStart } });
    remember({ typename: 'CreditGrant', id: grant.id, realmId: realm.id, workspaceId: null, sharedWithScopedKeys: false, billing: true, token: null });
    const price = await prisma.price.create({ data: { realmId: realm.id, featureId: features.tx.id, unitAmount: '0.25', currency: 'EUR', validFrom: new Date(Date.UTC(2000, 0, 1)) } });
    remember({ typename: 'Price', id: price.id, realmId: realm.id, workspaceId: null, sharedWithScopedKeys: false, billing: true, token: null });
    const ruleToken = token();
    const rule = await prisma.quotaRule.create({
      data: { realmId: realm.id, featureId: features.tx.id, period: 'MONTH', thresholdQuantity: '1', webhookUrl: `https://hooks.example.com/${ruleToken}`, webhookSecret: 'whsec-adversarial' },
    });
    remember({ typename: 'QuotaRule', id: rule.id, realmId: realm.id, workspaceId: null, sharedWithScopedKeys: false, billing: true, token: ruleToken });
    const alertToken = token();
    const alert = await prisma.alert.create({
      data: { realmId: realm.id, ruleId: rule.id, periodStart: monthStart, periodEnd: new Date(Date.UTC(hour.getUTCFullYear(), hour.getUTCMonth() + 1, 1)), quantity: '35', threshold: '1', crossedAt: hour, message: `realm total 35 ${alertToken}` },
    });
    remember({ typename: 'Alert', id: alert.id, realmId: realm.id, workspaceId: null, sharedWithScopedKeys: false, billing: true, token: alertToken });

    return { realm, tree, streams, project, apps, features, admin, rightKey, contract, grant, price, rule, alert, keyRecord, portalSession };
  }

  const a = await seedRealm('A');
  const b = await seedRealm('B');
  const suspendedRealm = await prisma.realm.create({ data: { name: 'suspended realm', slug: `adv-suspended-${Date.now()}`, tier: 'ENTERPRISE', suspendedAt: new Date(Date.now() - 60_000) } });
  const suspendedKey = await createKey(prisma, suspendedRealm.id, { scopes: ALL_SCOPES });
  const operatorSecret = newApiKeySecret('operator');
  const operatorKey = await prisma.operatorKey.create({ data: { name: 'adversarial operator', prefix: operatorSecret.prefix, secretHash: operatorSecret.secretHash } });

  const allWorkspaces = async (realmId: string) => new Set((await prisma.workspace.findMany({ where: { realmId }, select: { id: true } })).map((w) => w.id));
  const callerOf = async (
    name: string,
    record: { key: string; record: { id: string; realmId: string; workspaceId: string | null; scopes: string[]; tier?: string | null } },
    home: boolean,
  ): Promise<Caller> => ({
    name,
    key: record.key,
    authenticated: true,
    realmId: record.record.realmId,
    workspaceId: record.record.workspaceId,
    subtree: record.record.workspaceId ? await subtree(prisma, record.record.workspaceId) : await allWorkspaces(record.record.realmId),
    scopes: record.record.scopes,
    tier: ((await prisma.apiKey.findUniqueOrThrow({ where: { id: record.record.id } })).tier as Tier | null) ?? 'ENTERPRISE',
    home,
  });

  const scopedAll = await a.keyRecord({ workspaceId: a.tree.left.id, tier: 'FREE' });
  const scopedRead = await a.keyRecord({ workspaceId: a.tree.left.id, scopes: ['usage:read'], tier: 'FREE' });
  const single = await Promise.all(ALL_SCOPES.map((scope) => a.keyRecord({ scopes: [scope], tier: 'FREE' })));
  const revoked = await a.keyRecord({ revokedAt: new Date(Date.now() - 60_000) });
  // A key rotated a while ago: its previous secret's grace period is over.
  const rotated = await a.keyRecord({});
  const fresh = newApiKeySecret();
  const newSecret = `${rotated.record.prefix}_${fresh.key.split('_').slice(2).join('_')}`;
  await prisma.apiKey.update({
    where: { id: rotated.record.id },
    data: { secretHash: hashSecret(newSecret), previousSecretHash: rotated.record.secretHash, previousSecretExpiresAt: new Date(Date.now() - 60_000) },
  });

  const unauthenticated = (name: string, key: string | null): Caller => ({
    name,
    key,
    authenticated: false,
    realmId: null,
    workspaceId: null,
    subtree: new Set(),
    scopes: [],
    tier: 'FREE',
    home: false,
  });

  // A portal session of `left` with both features: it must see what a usage:read key of `left` sees, no more.
  const portalCreator = await a.keyRecord({ workspaceId: a.tree.left.id, scopes: ['usage:read', 'keys:manage'] });
  const portal = await a.portalSession(a.tree.left.id, portalCreator.record.id);

  const callers: Caller[] = [
    await callerOf('realm-wide key, all scopes', a.admin, true),
    await callerOf('workspace-scoped key, all scopes', scopedAll, true),
    await callerOf('workspace-scoped key, usage:read', scopedRead, true),
    { ...(await callerOf('portal session of a workspace', { key: portal.token, record: { ...portalCreator.record, scopes: ['usage:read'] } }, true)), features: new Set(portal.featureIds) },
    ...(await Promise.all(single.map((k, i) => callerOf(`realm-wide key, ${ALL_SCOPES[i]} only`, k, true)))),
    await callerOf('key of another realm, all scopes', b.admin, false),
    { ...(await callerOf('key of a suspended realm, all scopes', suspendedKey, false)), suspended: true },
    {
      name: 'operator key',
      key: operatorSecret.key,
      authenticated: true,
      realmId: null,
      workspaceId: null,
      subtree: new Set<string>(),
      scopes: ['realms:manage'],
      tier: 'ENTERPRISE',
      home: false,
      operator: true,
    },
    unauthenticated('revoked key', revoked.key),
    unauthenticated('rotated-out previous secret', rotated.key),
    unauthenticated('no key', null),
  ];

  return { a, b, objects, callers, hour, operatorKey };
}

export async function subtree(prisma: PrismaClient, workspaceId: string): Promise<Set<string>> {
  const rows = await prisma.workspaceClosure.findMany({ where: { ancestorId: workspaceId }, select: { descendantId: true } });
  return new Set(rows.map((r) => r.descendantId));
}

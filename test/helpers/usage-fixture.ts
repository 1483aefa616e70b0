import { insertWorkspace } from '../../src/db/workspace-tree.js';
import type { Feature, PrismaClient } from '../../src/generated/prisma/client.js';
import { dimensionKey, dimensionValuesOf, type UsageDimensions } from '../../src/usage/dimension-key.js';
import { createKey } from './fixtures.js';

/** One hour of usage as a test states it: the truth reports are checked against. */
export interface RawUsage extends UsageDimensions {
  feature: string;
  hour: Date;
  /** SUM/COUNT/MAX/LATEST features: the hour's quantity (a decimal string). */
  quantity?: string;
  /** UNIQUE_COUNT features: the keys seen in the hour. */
  keys?: string[];
}

export const FEATURES = [
  { key: 'tx', unit: 'TRANSACTION', aggregation: 'SUM', arrivalDelaySeconds: 7200 },
  { key: 'req', unit: 'REQUEST', aggregation: 'COUNT', arrivalDelaySeconds: 7200 },
  { key: 'spaces', unit: 'SPACE', aggregation: 'MAX', arrivalDelaySeconds: 172800 },
  { key: 'storage', unit: 'GB_MONTH', aggregation: 'LATEST', arrivalDelaySeconds: 172800 },
  { key: 'rows', unit: 'ROW', aggregation: 'UNIQUE_COUNT', arrivalDelaySeconds: 7200 },
] as const;

/** A realm with a 3-level workspace tree, datastreams, a project with apps, features and keys. */
export async function createUsageRealm(prisma: PrismaClient, timeZone = 'Europe/Berlin') {
  const realm = await prisma.realm.create({ data: { name: 'Usage realm', slug: `usage-${Math.random().toString(36).slice(2)}`, timeZone } });
  const tree = await prisma.$transaction(async (tx) => {
    const root = await insertWorkspace(tx, { realmId: realm.id, name: 'root' });
    const left = await insertWorkspace(tx, { realmId: realm.id, parentId: root.id, name: 'left' });
    const right = await insertWorkspace(tx, { realmId: realm.id, parentId: root.id, name: 'right' });
    const leaf = await insertWorkspace(tx, { realmId: realm.id, parentId: left.id, name: 'leaf' });
    return { root, left, right, leaf };
  });
  const streams = await Promise.all(
    [tree.left, tree.leaf, tree.right].map((w, i) => prisma.datastream.create({ data: { realmId: realm.id, workspaceId: w.id, name: `stream ${i}` } })),
  );
  const project = await prisma.project.create({ data: { realmId: realm.id, name: 'project' } });
  const apps = await Promise.all(
    [tree.left, tree.right].map((w, i) => prisma.app.create({ data: { realmId: realm.id, projectId: project.id, workspaceId: w.id, name: `app ${i}` } })),
  );
  const features = <Record<(typeof FEATURES)[number]['key'], Feature>>Object.fromEntries(
    await Promise.all(
      FEATURES.map(async (f) => [f.key, await prisma.feature.create({ data: { realmId: realm.id, name: f.key, service: 'test', ...f } })] as const),
    ),
  );
  const admin = await createKey(prisma, realm.id);
  const scoped = await createKey(prisma, realm.id, { workspaceId: tree.left.id, scopes: ['usage:read'] });
  return { realm, tree, streams, project, apps, features, admin, scoped };
}

const ROW_COLUMNS = `"realmId" uuid, "featureId" uuid, "hour" timestamptz, "dimensionKey" text, "workspaceId" uuid, "datastreamId" uuid, "projectId" uuid, "appId" uuid, "billingTag" text, "resource" text, "apiKeyId" uuid`;

/** INSERT … SELECT FROM jsonb_to_recordset: `rows` hold ROW_COLUMNS and `columns`; `constants` are SQL literals for every row. */
async function insertJsonRows(prisma: PrismaClient, table: string, rows: object[], columns: string, constants: Record<string, string> = {}) {
  if (rows.length === 0) return;
  const names = [...`${ROW_COLUMNS}, ${columns}`.matchAll(/"(\w+)"/g)].map((m) => `"${m[1]}"`);
  await prisma.$executeRawUnsafe(
    `INSERT INTO "${table}" (${[...names, ...Object.keys(constants).map((c) => `"${c}"`)].join(', ')})
     SELECT ${[...names, ...Object.values(constants)].join(', ')} FROM jsonb_to_recordset($1::jsonb) AS r(${ROW_COLUMNS}, ${columns})`,
    JSON.stringify(rows),
  );
}

export async function insertUsage(prisma: PrismaClient, realmId: string, featureIds: Record<string, string>, usage: RawUsage[]) {
  const hourly = new Map<string, { row: RawUsage; quantity: number; keys: Set<string> }>();
  for (const u of usage) {
    const id = `${u.feature}|${u.hour.toISOString()}|${dimensionKey(u)}`;
    const entry = hourly.get(id) ?? { row: u, quantity: 0, keys: new Set<string>() };
    entry.quantity += Number(u.quantity ?? 0);
    for (const k of u.keys ?? []) entry.keys.add(k);
    hourly.set(id, entry);
  }
  const hourlyRows = [...hourly.values()].map(({ row, quantity, keys }) => ({
    realmId,
    featureId: featureIds[row.feature]!,
    hour: row.hour,
    dimensionKey: dimensionKey(row),
    ...dimensionValuesOf(row),
    quantity: row.keys ? String(keys.size) : String(quantity),
  }));
  const keyRows = [...hourly.values()].flatMap(({ row, keys }) =>
    [...keys].map((key) => ({ realmId, featureId: featureIds[row.feature]!, hour: row.hour, dimensionKey: dimensionKey(row), ...dimensionValuesOf(row), key })),
  );
  // One statement per table with the rows as one JSON parameter: createMany's thousands of bound
  // parameters cost PGlite ≈ 2.5× the CPU for the same rows.
  await insertJsonRows(prisma, 'UsageHourly', hourlyRows, `"quantity" numeric`, { eventCount: '1' });
  await insertJsonRows(prisma, 'UsageUniqueKey', keyRows, `"key" text`);
}

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeId, encodeId } from '../src/global-id.js';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createKey, createRealm } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm, FEATURES, insertUsage, type RawUsage } from './helpers/usage-fixture.js';
import { expectedReport, type OracleQuestion } from './usage-oracle.js';

const HOUR = 3_600_000;
const DATA_FROM = Date.UTC(2026, 2, 1); // 1 March 2026: the data spans the spring DST changes of New York, Berlin and Sydney
const DATA_HOURS = 46 * 24;
const NOW = new Date(Date.UTC(2026, 3, 20, 12));

let db: TestDatabase;
let app: App;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
let usage: RawUsage[];
let subtree: Record<string, Set<string>>;

/** Deterministic pseudo-random numbers (a linear congruential generator) for the data set. */
function random(seed: number) {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

beforeAll(async () => {
  db = await createTestDatabase();
  app = createApp({ prisma: db.prisma, now: () => NOW, onUnexpectedError: (error) => console.error(error) });
  realm = await createUsageRealm(db.prisma, 'Europe/Berlin');
  const { tree, streams, apps, project } = realm;
  subtree = {
    [tree.root.id]: new Set([tree.root.id, tree.left.id, tree.right.id, tree.leaf.id]),
    [tree.left.id]: new Set([tree.left.id, tree.leaf.id]),
    [tree.right.id]: new Set([tree.right.id]),
    [tree.leaf.id]: new Set([tree.leaf.id]),
  };
  const next = random(42);
  const pick = <T>(values: T[]) => values[Math.floor(next() * values.length)]!;
  usage = [];
  for (let h = 0; h < DATA_HOURS; h++) {
    const hour = new Date(DATA_FROM + h * HOUR);
    for (const feature of FEATURES) {
      if (next() < 0.55) continue;
      const workspace = pick([tree.root, tree.left, tree.right, tree.leaf, null]);
      const row: RawUsage = {
        feature: feature.key,
        hour,
        workspaceId: workspace?.id ?? null,
        datastreamId: workspace && next() < 0.6 ? pick(streams).id : null,
        projectId: project.id,
        appId: next() < 0.5 ? pick(apps).id : null,
        billingTag: pick(['blue', 'green', null]),
        resource: pick(['maps', 'search']),
        apiKeyId: next() < 0.5 ? realm.admin.record.id : null,
      };
      if (feature.aggregation === 'UNIQUE_COUNT') row.keys = Array.from({ length: 1 + Math.floor(next() * 4) }, () => `row-${Math.floor(next() * 60)}`);
      else row.quantity = String(Math.floor(next() * 200) / 2);
      usage.push(row);
    }
  }
  const featureIds = Object.fromEntries(Object.entries(realm.features).map(([key, f]) => [key, f.id]));
  await insertUsage(db.prisma, realm.realm.id, featureIds, usage);
});

afterAll(() => db?.destroy());

const aggregation = Object.fromEntries(FEATURES.map((f) => [f.key, f.aggregation])) as OracleQuestion['aggregation'];
const reportFields = `range { from to } granularity timeZone approximate finalizedThrough warnings
  points { start end quantity unit isFinal feature { key }
    group { workspace { id } datastream { id } project { id } app { id } apiKey { id } billingTag resource } }
  totals { quantity feature { key } group { workspace { id } datastream { id } project { id } app { id } apiKey { id } billingTag resource } }`;

type Group = Record<'workspace' | 'datastream' | 'project' | 'app' | 'apiKey', { id: string } | null> & { billingTag: string | null; resource: string | null };
const DIMENSION_FIELD = { WORKSPACE: 'workspace', DATASTREAM: 'datastream', PROJECT: 'project', APP: 'app', API_KEY: 'apiKey', BILLING_TAG: 'billingTag', RESOURCE: 'resource' } as const;

function groupKey(group: Group, groupBy: OracleQuestion['groupBy']) {
  return groupBy
    .map((d) => {
      const value = group[DIMENSION_FIELD[d]];
      if (value === null) return '';
      return typeof value === 'string' ? value : decodeId(value.id).id;
    })
    .join('|');
}

function actualReport(report: { points: any[]; totals: any[] }, groupBy: OracleQuestion['groupBy']) {
  const result = new Map<string, number>();
  for (const p of report.points) result.set(`${p.feature.key}|${groupKey(p.group, groupBy)}|${p.start}`, Number(p.quantity));
  for (const t of report.totals) result.set(`${t.feature.key}|${groupKey(t.group, groupBy)}|total`, Number(t.quantity));
  return result;
}

async function usageOf(parent: { typename: string; id: string } | 'realm', args: string, key = realm.admin.key) {
  const selection = `usage(${args}) { ${reportFields} }`;
  const query =
    parent === 'realm'
      ? `{ realm { ${selection} } }`
      : `{ node(id: "${encodeId(parent.typename, parent.id)}") { ... on ${parent.typename} { ${selection} } } }`;
  const response = await graphql(app, query, { key });
  return { ...response, report: parent === 'realm' ? response.body.data?.realm?.usage : response.body.data?.node?.usage };
}

function rangeArg(from: Date, to: Date) {
  return `range: { from: "${from.toISOString()}", to: "${to.toISOString()}" }`;
}

describe('usage reports equal an independent computation from the raw hours', () => {
  it('over random ranges, granularities, time zones, groupings and parents', async () => {
    const parents = () => [
      { label: 'realm', parent: 'realm' as const, belongs: () => true },
      ...Object.entries(subtree).map(([id, ids]) => ({ label: `subtree ${id}`, parent: { typename: 'Workspace', id }, belongs: (u: RawUsage) => !!u.workspaceId && ids.has(u.workspaceId) })),
      { label: 'datastream', parent: { typename: 'Datastream', id: realm.streams[1]!.id }, belongs: (u: RawUsage) => u.datastreamId === realm.streams[1]!.id },
      { label: 'app', parent: { typename: 'App', id: realm.apps[0]!.id }, belongs: (u: RawUsage) => u.appId === realm.apps[0]!.id },
      { label: 'project', parent: { typename: 'Project', id: realm.project.id }, belongs: (u: RawUsage) => u.projectId === realm.project.id },
      { label: 'api key', parent: { typename: 'ApiKey', id: realm.admin.record.id }, belongs: (u: RawUsage) => u.apiKeyId === realm.admin.record.id },
      { label: 'feature', parent: { typename: 'Feature', id: realm.features.spaces.id }, belongs: (u: RawUsage) => u.feature === 'spaces' },
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: DATA_HOURS - 1 }),
        fc.integer({ min: 1, max: DATA_HOURS }),
        fc.constantFrom('HOUR', 'DAY', 'WEEK', 'MONTH', 'SUMMARIZED' as const),
        fc.constantFrom('UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Sydney', 'Asia/Tokyo', 'America/Havana', 'America/Santiago', 'America/Asuncion'),
        fc.subarray(['WORKSPACE', 'DATASTREAM', 'APP', 'BILLING_TAG', 'RESOURCE', 'API_KEY'] as const),
        fc.nat({ max: 9 }),
        async (start, length, granularity, timeZone, groupBy, parentIndex) => {
          const choice = parents()[parentIndex % parents().length]!;
          const from = new Date(DATA_FROM + start * HOUR);
          const to = new Date(from.getTime() + length * HOUR);
          const { body, report } = await usageOf(choice.parent, `${rangeArg(from, to)}, granularity: ${granularity}, timeZone: "${timeZone}", groupBy: [${['FEATURE', ...groupBy].join(', ')}]`);
          expect(body.errors, choice.label).toBeUndefined();
          const expected = expectedReport(usage, { from, to, granularity, timeZone, groupBy: [...groupBy], belongs: choice.belongs, aggregation });
          if (granularity === 'SUMMARIZED') for (const key of [...expected.keys()]) if (!key.endsWith('total')) expected.set(key, expected.get(key)!);
          expect(actualReport(report, [...groupBy]), `${choice.label} ${from.toISOString()}..${to.toISOString()} ${granularity} ${timeZone} [${groupBy}]`).toEqual(expected);
        },
      ),
      { numRuns: 40, seed: 20261122 },
    );
  });
});

describe('time', () => {
  it('days around DST changes have 23 and 25 hours; buckets start at local midnight', async () => {
    const { report } = await usageOf('realm', `${rangeArg(new Date('2026-03-27T23:00:00Z'), new Date('2026-03-31T22:00:00Z'))}, granularity: DAY, timeZone: "Europe/Berlin", filter: { featureIds: ["${encodeId('Feature', realm.features.tx.id)}"] }`);
    const spans = report.points.map((p: { start: string; end: string }) => [p.start, (Date.parse(p.end) - Date.parse(p.start)) / HOUR]);
    expect(spans).toEqual([
      ['2026-03-27T23:00:00.000Z', 24],
      ['2026-03-28T23:00:00.000Z', 23],
      ['2026-03-29T22:00:00.000Z', 24],
      ['2026-03-30T22:00:00.000Z', 24],
    ]);
    const autumn = await usageOf('realm', `${rangeArg(new Date('2026-03-07T05:00:00Z'), new Date('2026-03-09T04:00:00Z'))}, granularity: DAY, timeZone: "America/New_York", filter: { featureIds: ["${encodeId('Feature', realm.features.tx.id)}"] }`);
    expect(autumn.report.points.map((p: { start: string; end: string }) => (Date.parse(p.end) - Date.parse(p.start)) / HOUR)).toEqual([24, 23]);
    const sydney = await usageOf('realm', `${rangeArg(new Date('2026-04-03T13:00:00Z'), new Date('2026-04-05T14:00:00Z'))}, granularity: DAY, timeZone: "Australia/Sydney", filter: { featureIds: ["${encodeId('Feature', realm.features.tx.id)}"] }`);
    expect(sydney.report.points.map((p: { start: string; end: string }) => (Date.parse(p.end) - Date.parse(p.start)) / HOUR)).toEqual([24, 25]);
  });

  it('weeks start on Monday and months are calendar months, in the realm\'s zone by default', async () => {
    const { report } = await usageOf('realm', `${rangeArg(new Date(DATA_FROM), new Date(DATA_FROM + DATA_HOURS * HOUR))}, granularity: WEEK, filter: { featureIds: ["${encodeId('Feature', realm.features.tx.id)}"] }`);
    expect(report.timeZone).toBe('Europe/Berlin');
    for (const p of report.points.slice(1)) {
      const local = new Date(Date.parse(p.start) + 2 * HOUR); // Berlin is UTC+1 or +2: local midnight is 22:00 or 23:00 UTC
      expect([1, 2]).toContain(local.getUTCDay() === 1 ? 1 : local.getUTCDay() === 2 ? 2 : -1);
    }
    const months = await usageOf('realm', `${rangeArg(new Date(DATA_FROM), new Date(DATA_FROM + DATA_HOURS * HOUR))}, granularity: MONTH, timeZone: "UTC", filter: { featureIds: ["${encodeId('Feature', realm.features.tx.id)}"] }`);
    expect(months.report.points.map((p: { start: string; end: string }) => [p.start, p.end])).toEqual([
      ['2026-03-01T00:00:00.000Z', '2026-04-01T00:00:00.000Z'],
      ['2026-04-01T00:00:00.000Z', '2026-04-16T00:00:00.000Z'],
    ]);
  });

  it('a zone off whole hours from UTC is answered with approximate: true and a warning, never silently', async () => {
    const { report } = await usageOf('realm', `timeframe: LAST_7_DAYS, granularity: DAY, timeZone: "Asia/Kolkata"`);
    expect(report.approximate).toBe(true);
    expect(report.warnings.join(' ')).toMatch(/Asia\/Kolkata is not a whole number of hours/);
    const whole = await usageOf('realm', `timeframe: LAST_7_DAYS, granularity: DAY, timeZone: "Asia/Tokyo"`);
    expect(whole.report.approximate).toBe(false);
  });
});

describe('aggregation', () => {
  it("a month's unique count is the number of distinct keys in the month, not the sum of its days", async () => {
    const args = `filter: { featureIds: ["${encodeId('Feature', realm.features.rows.id)}"] }, timeZone: "UTC"`;
    const march = rangeArg(new Date('2026-03-01T00:00:00Z'), new Date('2026-04-01T00:00:00Z'));
    const month = await usageOf('realm', `${march}, granularity: MONTH, ${args}`);
    const days = await usageOf('realm', `${march}, granularity: DAY, ${args}`);
    const distinct = new Set(usage.filter((u) => u.feature === 'rows' && u.hour < new Date('2026-04-01T00:00:00Z')).flatMap((u) => u.keys!)).size;
    expect(Number(month.report.points[0].quantity)).toBe(distinct);
    const sumOfDays = days.report.points.reduce((s: number, p: { quantity: string }) => s + Number(p.quantity), 0);
    expect(sumOfDays).toBeGreaterThan(distinct);
    expect(month.report.points[0].unit).toBe('ROW');
  });

  it('quantities are exact decimal strings', async () => {
    const { report } = await usageOf('realm', `timeframe: ALL_TIME, filter: { featureIds: ["${encodeId('Feature', realm.features.tx.id)}"] }`);
    const expected = usage.filter((u) => u.feature === 'tx').reduce((s, u) => s + Number(u.quantity) * 2, 0) / 2;
    expect(report.totals[0].quantity).toBe(String(expected));
    expect(typeof report.totals[0].quantity).toBe('string');
  });
});

describe('finality', () => {
  it('marks buckets final after the arrival delay, reports finalizedThrough, and finalizedOnly drops unfinished buckets', async () => {
    const late = new Date(DATA_FROM + DATA_HOURS * HOUR);
    const lateApp = createApp({ prisma: db.prisma, now: () => late });
    const query = (only: boolean) =>
      graphql(lateApp, `{ realm { usage(timeframe: LAST_7_DAYS, granularity: DAY, timeZone: "UTC", finalizedOnly: ${only}, filter: { featureIds: ["${encodeId('Feature', realm.features.tx.id)}"] }) { range { to } finalizedThrough warnings points { start end isFinal } } } }`, { key: realm.admin.key });
    const all = (await query(false)).body.data.realm.usage;
    expect(all.finalizedThrough).toBe(new Date(late.getTime() - 2 * HOUR).toISOString());
    expect(all.points.at(-1).isFinal).toBe(false);
    expect(all.points.slice(0, -1).every((p: { isFinal: boolean }) => p.isFinal)).toBe(true);
    const final = (await query(true)).body.data.realm.usage;
    expect(final.range.to).toBe(new Date(late.getTime() - 24 * HOUR).toISOString());
    expect(final.points.every((p: { isFinal: boolean }) => p.isFinal)).toBe(true);
    expect(final.points.length).toBe(all.points.length - 1);
  });
});

describe('scoping', () => {
  it('filter ids of another realm or outside the key\'s subtree are ignored and named in warnings', async () => {
    const other = await createRealm(db.prisma, 'Elsewhere');
    const foreignFeature = await db.prisma.feature.create({ data: { realmId: other.id, key: 'x', name: 'x', service: 'x', unit: 'GB', aggregation: 'SUM' } });
    const foreignId = encodeId('Feature', foreignFeature.id);
    const ownId = encodeId('Feature', realm.features.tx.id);
    const { report, body } = await usageOf('realm', `timeframe: ALL_TIME, filter: { featureIds: ["${ownId}", "${foreignId}"] }`);
    expect(body.errors).toBeUndefined();
    expect(report.warnings).toEqual([`Ignored filter id ${foreignId}: it does not exist or is outside this key's scope.`]);
    expect(report.totals.map((t: { feature: { key: string } }) => t.feature.key)).toEqual(['tx']);
    const right = encodeId('Workspace', realm.tree.right.id);
    const scoped = await usageOf('realm', `timeframe: ALL_TIME, filter: { workspaceIds: ["${right}"] }`, realm.scoped.key);
    expect(scoped.report.warnings).toEqual([
      `Ignored filter id ${right}: it does not exist or is outside this key's scope.`,
      '`filter.workspaceIds` matches nothing (it is empty, or every id in it was ignored): the report is empty.',
    ]);
    expect(scoped.report.points).toEqual([]);
  });

  it('a workspace-scoped key sees only usage of its subtree, even on the realm', async () => {
    const txId = encodeId('Feature', realm.features.tx.id);
    const scoped = await usageOf('realm', `timeframe: ALL_TIME, filter: { featureIds: ["${txId}"] }`, realm.scoped.key);
    const left = await usageOf({ typename: 'Workspace', id: realm.tree.left.id }, `timeframe: ALL_TIME, filter: { featureIds: ["${txId}"] }`);
    expect(scoped.report.totals).toEqual(left.report.totals);
    const expected = usage.filter((u) => u.feature === 'tx' && u.workspaceId && subtree[realm.tree.left.id]!.has(u.workspaceId)).reduce((s, u) => s + Number(u.quantity), 0);
    expect(Number(scoped.report.totals[0].quantity)).toBe(expected);
  });

  it('SELF counts the workspace alone; SUBTREE (the default) every workspace beneath it', async () => {
    const txId = encodeId('Feature', realm.features.tx.id);
    const sum = (ids: Set<string>) => usage.filter((u) => u.feature === 'tx' && u.workspaceId && ids.has(u.workspaceId)).reduce((s, u) => s + Number(u.quantity), 0);
    const self = await usageOf({ typename: 'Workspace', id: realm.tree.root.id }, `timeframe: ALL_TIME, scope: SELF, filter: { featureIds: ["${txId}"] }`);
    const tree = await usageOf({ typename: 'Workspace', id: realm.tree.root.id }, `timeframe: ALL_TIME, filter: { featureIds: ["${txId}"] }`);
    expect(Number(self.report.totals[0].quantity)).toBe(sum(new Set([realm.tree.root.id])));
    expect(Number(tree.report.totals[0].quantity)).toBe(sum(subtree[realm.tree.root.id]!));
  });

  it('rows without a datastream group under datastream: null', async () => {
    const { report } = await usageOf('realm', `timeframe: ALL_TIME, groupBy: [WORKSPACE, DATASTREAM], filter: { featureIds: ["${encodeId('Feature', realm.features.rows.id)}"] }`);
    expect(report.totals.some((t: { group: Group }) => t.group.datastream === null && t.group.workspace !== null)).toBe(true);
    expect(report.totals.some((t: { group: Group }) => t.group.datastream !== null)).toBe(true);
  });
});

describe('validation', () => {
  const cases: [string, string, string][] = [
    ['from after to', `range: { from: "2026-03-02T00:00:00Z", to: "2026-03-01T00:00:00Z" }`, 'INVALID_RANGE'],
    ['from equal to', `range: { from: "2026-03-02T00:00:00Z", to: "2026-03-02T00:00:00Z" }`, 'INVALID_RANGE'],
    ['both range and timeframe', `range: { from: "2026-03-01T00:00:00Z", to: "2026-03-02T00:00:00Z" }, timeframe: LAST_HOUR`, 'INVALID_TIMEFRAME'],
    ['neither range nor timeframe', `granularity: DAY`, 'INVALID_TIMEFRAME'],
    ['hourly detail over 95 days', `range: { from: "2026-01-01T00:00:00Z", to: "2026-04-07T00:00:00Z" }, granularity: HOUR`, 'RANGE_TOO_LARGE'],
    ['more than 10,000 buckets', `range: { from: "1990-01-01T00:00:00Z", to: "2026-01-01T00:00:00Z" }, granularity: DAY`, 'RANGE_TOO_LARGE'],
    ['MINUTE outside API traffic', `timeframe: LAST_HOUR, granularity: MINUTE`, 'INVALID_GRANULARITY'],
    ['unknown time zone', `timeframe: LAST_HOUR, timeZone: "Mars/Olympus"`, 'INVALID_TIME_ZONE'],
    ['malformed id in a filter', `timeframe: LAST_HOUR, filter: { featureIds: ["nope"] }`, 'INVALID_ID'],
    ['id of the wrong type in a filter', `timeframe: LAST_HOUR, filter: { featureIds: ["${encodeId('Workspace', '00000000-0000-0000-0000-000000000000')}"] }`, 'INVALID_ID'],
  ];
  it.each(cases)('%s is BAD_USER_INPUT', async (_name, args, reason) => {
    const { body } = await usageOf('realm', args);
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason });
  });

  it('95 days of hourly detail are allowed', async () => {
    const { body } = await usageOf('realm', `range: { from: "2026-01-01T00:00:00Z", to: "2026-04-06T00:00:00Z" }, granularity: HOUR`);
    expect(body.errors).toBeUndefined();
  });
});

describe('batching', () => {
  it('a dashboard of N workspaces runs the same number of SQL statements for N = 5 and N = 50', async () => {
    const counts: number[] = [];
    for (const size of [5, 50]) {
      const wide = await createRealm(db.prisma, `Dashboard ${size}`);
      const feature = await db.prisma.feature.create({ data: { realmId: wide.id, key: 'tx', name: 'tx', service: 's', unit: 'TRANSACTION', aggregation: 'SUM' } });
      const { insertWorkspace } = await import('../src/db/workspace-tree.js');
      const rows: RawUsage[] = [];
      for (let i = 0; i < size; i++) {
        const w = await db.prisma.$transaction((tx) => insertWorkspace(tx, { realmId: wide.id, name: `w${i}` }));
        for (let d = 1; d <= 3; d++) rows.push({ feature: 'tx', hour: new Date(NOW.getTime() - d * 24 * HOUR), workspaceId: w.id, quantity: String(i + d) });
      }
      await insertUsage(db.prisma, wide.id, { tx: feature.id }, rows);
      const { key } = await createKey(db.prisma, wide.id);
      const { body, statements } = await graphql(
        app,
        `{ realm { workspaces(first: ${size}) { edges { node { name usage(timeframe: LAST_30_DAYS, granularity: DAY, groupBy: [FEATURE]) { points { start quantity } } } } } } }`,
        { key },
      );
      expect(body.errors).toBeUndefined();
      const edges = body.data.realm.workspaces.edges;
      expect(edges).toHaveLength(size);
      for (const { node } of edges) {
        const i = Number(node.name.slice(1));
        expect(node.usage.points.map((p: { quantity: string }) => Number(p.quantity))).toEqual([i + 3, i + 2, i + 1]);
      }
      counts.push(statements.length);
    }
    expect(counts[0]).toBe(counts[1]);
  });

  it('fields with different arguments batch separately and each answers its own question', async () => {
    const tx = encodeId('Feature', realm.features.tx.id);
    const { body, statements } = await graphql(
      app,
      `{ realm { workspaces(first: 10) { edges { node {
          byDay: usage(timeframe: ALL_TIME, granularity: DAY, filter: { featureIds: ["${tx}"] }) { points { quantity } }
          total: usage(timeframe: ALL_TIME, filter: { featureIds: ["${tx}"] }) { totals { quantity } }
          self: usage(timeframe: ALL_TIME, scope: SELF, filter: { featureIds: ["${tx}"] }) { totals { quantity } } } } } } }`,
      { key: realm.admin.key },
    );
    expect(body.errors).toBeUndefined();
    const usageStatements = statements.filter((sql) => sql.includes('/* usage */'));
    expect(usageStatements).toHaveLength(3);
    for (const { node } of body.data.realm.workspaces.edges) {
      const daySum = node.byDay.points.reduce((s: number, p: { quantity: string }) => s + Number(p.quantity), 0);
      expect(daySum).toBe(Number(node.total.totals[0]?.quantity ?? 0));
      expect(Number(node.self.totals[0]?.quantity ?? 0)).toBeLessThanOrEqual(Number(node.total.totals[0]?.quantity ?? 0));
    }
  });
});

describe('licenses', () => {
  it("a license's usage is its feature's usage during its contract", async () => {
    const contract = await db.prisma.contract.create({
      data: { realmId: realm.realm.id, name: 'c', startsAt: new Date('2026-03-10T00:00:00Z'), endsAt: new Date('2026-03-20T00:00:00Z') },
    });
    const license = await db.prisma.license.create({ data: { contractId: contract.id, featureId: realm.features.tx.id, quantityPerMonth: '1000' } });
    const { report } = await usageOf({ typename: 'License', id: license.id }, `timeframe: ALL_TIME`);
    const expected = usage
      .filter((u) => u.feature === 'tx' && u.hour >= contract.startsAt && u.hour < contract.endsAt)
      .reduce((s, u) => s + Number(u.quantity), 0);
    expect(report.totals.map((t: { feature: { key: string }; quantity: string }) => [t.feature.key, Number(t.quantity)])).toEqual([['tx', expected]]);
  });
});

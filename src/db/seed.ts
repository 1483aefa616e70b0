/**
 * Deterministic demo data: three realms with workspace trees, meters, a contract, API keys and
 * 13 months of hourly usage up to now. Usage is generated inside the database with set-based SQL
 * (`INSERT … SELECT … FROM generate_series(…)`) from integer arithmetic only, so the same `now`
 * gives exactly the same quantities on PGlite and PostgreSQL, and a fresh PGlite seeds in seconds.
 *
 * Every value is a function of its hour and of the seed's anchor (the first hour of the UTC month
 * of `now`: "40 days ago" means 40 days before it), never of where the 13-month window starts or
 * ends. So a demo seeded earlier in the same month becomes exactly the demo a fresh seed at `now`
 * writes by adding the hours since and dropping those that fell out of the window (topUpDemo):
 * how a first start loads a demo prebuilt at `npm install` (src/db/pglite-template.ts).
 */
import { createHash } from 'node:crypto';
import { demoApiKeySecret, newApiKeySecret, type NewApiKeySecret } from '../auth/api-key-secret.js';
import { SCOPES } from '../auth/scopes.js';
import { createFeature } from '../admin/features.js';
import { createContract } from '../admin/contracts.js';
import { createCreditGrant, setPrice } from '../admin/credits-prices.js';
import { createApp, createDatastream, createProject } from '../admin/catalog.js';
import { systemRequest } from '../admin/admin-request.js';
import { createRealm, FIRST_ADMIN_KEY_NAME, systemOperatorRequest } from '../admin/realms.js';
import { createWorkspace } from '../admin/workspaces.js';
import type { Prisma, PrismaClient } from '../generated/prisma/client.js';

type Tx = Prisma.TransactionClient;
type Tier = 'FREE' | 'STARTER' | 'PROFESSIONAL' | 'ENTERPRISE';
type FeatureUnit = 'TRANSACTION' | 'GB_MONTH' | 'GB' | 'ROW' | 'REQUEST' | 'DYNO_UNIT' | 'SPACE' | 'CREDIT';
type Aggregation = 'SUM' | 'COUNT' | 'MAX' | 'UNIQUE_COUNT' | 'LATEST';

// ---------------------------------------------------------------------------------------------
// Public helpers
// ---------------------------------------------------------------------------------------------

/** The dimensions a usage bucket is keyed by (besides realm, feature and hour). */
import { dimensionKey, type UsageDimensions } from '../usage/dimension-key.js';

export { dimensionKey, type UsageDimensions } from '../usage/dimension-key.js';

const demoKey = demoApiKeySecret('acde2024', 'demo_Acme-Analytics_realm-wide_key');

/** The demo realm's realm-wide key with every scope; the same on every fresh demo. */
export const DEMO_API_KEY: string = demoKey.key;

export const DEMO_FEATURE_KEYS = {
  locationTransactions: 'location.transactions',
  storageGbMonths: 'storage.gb_months',
  transferGb: 'transfer.gb',
  uniqueRows: 'rows.unique',
  totalRows: 'rows.total',
  apiRequests: 'api.requests',
  privateSpaces: 'spaces.private',
  shieldSpaces: 'spaces.shield',
  dynoUnits: 'dynos.units',
} as const;

type FeatureKey = (typeof DEMO_FEATURE_KEYS)[keyof typeof DEMO_FEATURE_KEYS];

/** What the demo contains, for tests and docs. */
export const DEMO = {
  /**
   * Days of hourly usage, ending at the last whole hour before `now`: 13 calendar months (the
   * current one and the 12 before it, whatever the day and the realm's time zone), so every
   * month the exports, the CLI and `usageHistory` can ask for has data.
   */
  usageDays: 397,
  realms: {
    acme: { slug: 'acme', name: 'Acme Analytics', tier: 'PROFESSIONAL', timeZone: 'Europe/Berlin', currency: 'EUR' },
    globex: { slug: 'globex', name: 'Globex Logistics', tier: 'STARTER', timeZone: 'America/New_York', currency: 'USD' },
    initech: { slug: 'initech', name: 'Initech', tier: 'FREE', timeZone: 'UTC', currency: null },
  },
  realmSlugs: ['acme', 'globex', 'initech'],
  /** The realm the demo key belongs to. */
  demoRealmSlug: 'acme',
  /** Acme workspaces: root (depth 0), a mid-level one (depth 1, the read-only key's scope), deeper ones. */
  workspaces: {
    root: 'Acme Analytics',
    midLevel: 'Marketing',
    depth2: 'EMEA',
    depth3: 'Germany',
    depth4: 'Berlin Office',
  },
  apiKeys: {
    demo: 'Demo key (realm-wide)',
    scopedReadOnly: 'Marketing dashboard (read-only)',
    revoked: 'Legacy ingestion (revoked)',
  },
  features: DEMO_FEATURE_KEYS,
  featureKeys: Object.values(DEMO_FEATURE_KEYS) as FeatureKey[],
  uniqueCountFeature: DEMO_FEATURE_KEYS.uniqueRows,
} as const;

/** True when no realm exists (a fresh database the server may seed). */
export async function isDatabaseEmpty(prisma: PrismaClient): Promise<boolean> {
  return (await prisma.realm.findFirst({ select: { id: true } })) === null;
}

export interface SeedOptions {
  /** The seed's clock (default: the current time); the same `now` always gives the same data. */
  now?: Date;
  /** Called after each step with the steps done and the total (known from the start). */
  onProgress?: (done: number, total: number) => void;
  /**
   * For tests only: the hours of usage written, ending at the last whole hour before `now`
   * (default: the demo's 13 months, DEMO.usageDays). Each hour of a shorter window holds exactly
   * what the whole demo holds for it (every value depends on its hour and the anchor only).
   */
  usageHours?: number;
}

export interface SeedResult {
  apiKey: string;
  realmIds: string[];
}

// ---------------------------------------------------------------------------------------------
// The demo's shape
// ---------------------------------------------------------------------------------------------

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const USAGE_HOURS = DEMO.usageDays * 24;
const CHUNK_HOURS = 15 * 24;

/** Deterministic UUIDs (version 7 layout, fixed 2024 timestamp): `kind` names the entity type. */
const KIND = { realm: 1, workspace: 2, datastream: 3, project: 4, app: 5, feature: 6, apiKey: 7, contract: 8, license: 9, credit: 10, price: 11 } as const;
function seedId(kind: number, n: number): string {
  return `01900000-${kind.toString(16).padStart(4, '0')}-7000-8000-${n.toString(16).padStart(12, '0')}`;
}

const FEATURES: Record<FeatureKey, { name: string; service: string; unit: FeatureUnit; aggregation: Aggregation; arrivalDelaySeconds: number }> = {
  'location.transactions': { name: 'Location services transactions', service: 'location', unit: 'TRANSACTION', aggregation: 'SUM', arrivalDelaySeconds: 7_200 },
  // GB_MONTH with SUM: every hour records the GB stored during it as GB-months (GB × 1/730, a
  // 730-hour average month), so adding any range gives the GB-months consumed in it, day and
  // month buckets compose, and storage kept for half a month counts half (proration for free).
  // MAX would report the peak instead and could not be summed across buckets or dimensions.
  'storage.gb_months': { name: 'Cloud storage', service: 'cloud', unit: 'GB_MONTH', aggregation: 'SUM', arrivalDelaySeconds: 172_800 },
  'transfer.gb': { name: 'Data transfer', service: 'cloud', unit: 'GB', aggregation: 'SUM', arrivalDelaySeconds: 172_800 },
  'rows.unique': { name: 'Unique rows', service: 'data', unit: 'ROW', aggregation: 'UNIQUE_COUNT', arrivalDelaySeconds: 7_200 },
  'rows.total': { name: 'Total rows', service: 'data', unit: 'ROW', aggregation: 'SUM', arrivalDelaySeconds: 7_200 },
  'api.requests': { name: 'API requests', service: 'api', unit: 'REQUEST', aggregation: 'COUNT', arrivalDelaySeconds: 300 },
  // Spaces: the hour's number of running spaces; MAX gives the peak of a range.
  'spaces.private': { name: 'Private spaces', service: 'spaces', unit: 'SPACE', aggregation: 'MAX', arrivalDelaySeconds: 7_200 },
  'spaces.shield': { name: 'Shield spaces', service: 'spaces', unit: 'SPACE', aggregation: 'MAX', arrivalDelaySeconds: 7_200 },
  // Dyno units as unit-months, like storage: units running in the hour × 1/730, summed.
  'dynos.units': { name: 'Dyno units', service: 'compute', unit: 'DYNO_UNIT', aggregation: 'SUM', arrivalDelaySeconds: 7_200 },
};

interface TreeSpec {
  name: string;
  children?: TreeSpec[];
}

interface AppSpec {
  name: string;
  project: string;
  workspace?: string;
}

interface RealmSpec {
  slug: string;
  name: string;
  tier: Tier;
  timeZone: string;
  /** Standard-time UTC offset used only to shape the daily curve (no DST needed for a shape). */
  shapeOffsetHours: number;
  customRateLimit?: number;
  tree: TreeSpec;
  datastreams: [workspace: string, name: string][];
  projects: string[];
  apps: AppSpec[];
  features: FeatureKey[];
}

const REALMS: RealmSpec[] = [
  {
    slug: DEMO.realms.acme.slug,
    name: DEMO.realms.acme.name,
    tier: 'PROFESSIONAL',
    timeZone: DEMO.realms.acme.timeZone,
    shapeOffsetHours: 1,
    tree: {
      name: 'Acme Analytics',
      children: [
        {
          name: 'Marketing',
          children: [
            { name: 'EMEA', children: [{ name: 'Germany', children: [{ name: 'Berlin Office' }] }, { name: 'France' }] },
            { name: 'Americas', children: [{ name: 'USA' }] },
          ],
        },
        {
          name: 'Engineering',
          children: [{ name: 'Platform', children: [{ name: 'Data Platform' }] }, { name: 'Mobile' }],
        },
        { name: 'Finance' },
      ],
    },
    datastreams: [
      ['Germany', 'Google Ads DE'],
      ['Berlin Office', 'Facebook Ads Berlin'],
      ['France', 'Google Ads FR'],
      ['USA', 'Google Ads US'],
      ['USA', 'LinkedIn Ads US'],
      ['EMEA', 'Salesforce EMEA'],
      ['Marketing', 'HubSpot'],
      ['Data Platform', 'Snowflake Export'],
      ['Data Platform', 'Product Events'],
      ['Finance', 'NetSuite'],
    ],
    projects: ['Fleet Tracking', 'Store Locator', 'Delivery Routing'],
    apps: [
      { name: 'Fleet Web', project: 'Fleet Tracking', workspace: 'Platform' },
      { name: 'Driver App iOS', project: 'Fleet Tracking', workspace: 'Mobile' },
      { name: 'Driver App Android', project: 'Fleet Tracking', workspace: 'Mobile' },
      { name: 'Store Locator Web', project: 'Store Locator', workspace: 'EMEA' },
      { name: 'Store Locator Widget', project: 'Store Locator' },
      { name: 'Routing Batch', project: 'Delivery Routing' },
    ],
    features: [...DEMO.featureKeys],
  },
  {
    slug: DEMO.realms.globex.slug,
    name: DEMO.realms.globex.name,
    tier: 'STARTER',
    timeZone: DEMO.realms.globex.timeZone,
    shapeOffsetHours: -5,
    tree: {
      name: 'Globex Logistics',
      children: [
        {
          name: 'Operations',
          children: [
            { name: 'North America', children: [{ name: 'East Coast' }, { name: 'West Coast' }] },
            { name: 'Europe' },
          ],
        },
        { name: 'Sales', children: [{ name: 'Enterprise Sales' }] },
      ],
    },
    datastreams: [
      ['East Coast', 'Shipments East'],
      ['West Coast', 'Shipments West'],
      ['Europe', 'Carrier EDI Europe'],
      ['Enterprise Sales', 'Salesforce'],
    ],
    projects: ['Route Planner', 'Tracking Portal'],
    apps: [
      { name: 'Dispatcher Console', project: 'Route Planner', workspace: 'North America' },
      { name: 'Route Optimizer Batch', project: 'Route Planner' },
      { name: 'Customer Tracking Site', project: 'Tracking Portal', workspace: 'Sales' },
    ],
    features: ['location.transactions', 'storage.gb_months', 'transfer.gb', 'rows.unique', 'rows.total', 'api.requests'],
  },
  {
    slug: DEMO.realms.initech.slug,
    name: DEMO.realms.initech.name,
    tier: 'FREE',
    timeZone: DEMO.realms.initech.timeZone,
    shapeOffsetHours: 0,
    tree: { name: 'Initech', children: [{ name: 'IT', children: [{ name: 'Helpdesk' }] }] },
    datastreams: [['Helpdesk', 'Ticket Export']],
    projects: ['Intranet'],
    apps: [{ name: 'Office Finder', project: 'Intranet', workspace: 'IT' }],
    features: ['location.transactions', 'api.requests'],
  },
];

/** Daily curves (percent of the base, per local hour 0–23). */
const DAILY = {
  flat: Array<number>(24).fill(100),
  business: [20, 15, 12, 12, 15, 25, 45, 80, 130, 165, 180, 185, 170, 175, 185, 180, 165, 140, 105, 75, 55, 40, 30, 25],
  consumer: [45, 30, 20, 15, 15, 20, 35, 60, 85, 95, 100, 110, 120, 115, 110, 110, 120, 140, 165, 185, 190, 170, 120, 75],
  batch: [190, 290, 300, 280, 200, 90, 40, 25, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 25, 30, 40, 60, 100, 150],
  storage: [99, 99, 99, 99, 99, 99, 99, 100, 100, 100, 100, 101, 101, 101, 101, 101, 101, 101, 100, 100, 100, 100, 99, 99],
} as const;
/** Weekly curves (percent, Monday first). */
const WEEKLY = {
  flat: [100, 100, 100, 100, 100, 100, 100],
  business: [112, 118, 118, 115, 107, 42, 36],
  consumer: [92, 94, 96, 98, 108, 130, 122],
} as const;
type DailyShape = keyof typeof DAILY;
type WeeklyShape = keyof typeof WEEKLY;
const DAILY_NAMES = Object.keys(DAILY) as DailyShape[];
const WEEKLY_NAMES = Object.keys(WEEKLY) as WeeklyShape[];

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

function zonedParts(timeZone: string, at: Date) {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(at);
  const get = (type: string) => Number(parts.find((part) => part.type === type)?.value ?? 0);
  return { year: get('year'), month: get('month'), day: get('day'), hour: get('hour'), minute: get('minute'), second: get('second') };
}

function zoneOffsetMs(timeZone: string, at: Date): number {
  const p = zonedParts(timeZone, at);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(at.getTime() / 1000) * 1000;
}

/** Local midnight of a calendar date in `timeZone` (month is 1-based and may overflow). */
function zonedMidnight(timeZone: string, year: number, month: number, day: number): Date {
  const wall = Date.UTC(year, month - 1, day);
  let instant = wall - zoneOffsetMs(timeZone, new Date(wall));
  instant = wall - zoneOffsetMs(timeZone, new Date(instant));
  return new Date(instant);
}

function monthsFromNow(timeZone: string, now: Date, months: number, day: number): Date {
  const local = zonedParts(timeZone, now);
  return zonedMidnight(timeZone, local.year, local.month + months, day);
}

// ---------------------------------------------------------------------------------------------
// SQL helpers
// ---------------------------------------------------------------------------------------------

function text(value: string | null | undefined): string {
  return value == null ? 'NULL::text' : `'${value.replace(/'/g, "''")}'::text`;
}
function uuid(value: string | null | undefined): string {
  return value == null ? 'NULL::uuid' : `'${value}'::uuid`;
}
function int(value: number): string {
  if (!Number.isSafeInteger(value)) throw new Error(`not an integer: ${value}`);
  return `${value}::bigint`;
}
/** A pseudo-random 31-bit integer from integer SQL expressions (two LCG rounds, all in bigint). */
export function hashSql(...terms: string[]): string {
  const multipliers = [2654435761, 40503, 7919, 104729];
  const mixed = terms.map((term, i) => `(${term}) * ${multipliers[i % multipliers.length]}`).join(' + ');
  return `((((${mixed}) % 2147483648) * 1103515245 + 12345) % 2147483648)`;
}

interface Ids {
  realm: string;
  workspaces: Map<string, string>;
  datastreams: Map<string, string>;
  projects: Map<string, string>;
  apps: Map<string, { id: string; projectId: string; workspaceId: string | null }>;
  features: Map<FeatureKey, string>;
  apiKeys: Map<string, { id: string; workspaceId: string | null; activeUntilHour: number | null }>;
}

/** One dimension combination of a generated series. */
interface Combo {
  realmId: string;
  featureId: string;
  dims: UsageDimensions;
  /** Quantity at 100 % of the shapes (integer, in the series' input unit). */
  base: number;
  daily: DailyShape;
  weekly: WeeklyShape;
  shapeOffsetHours: number;
  /** Growth over the whole usage range, in permille (300 = +30 %). */
  growth: number;
  /** First/last epoch hour with usage (inclusive). */
  fromHour: number;
  toHour: number;
}

type Transform =
  /** The integer quantity as is. */
  | 'count'
  /** Thousandths (milli-GB → GB). */
  | 'milli'
  /** An amount in thousandths held for one hour, as a monthly amount (× 1/730 month), to 9 decimals. */
  | 'milliPerMonth';

interface Series {
  combos: Combo[];
  /** ± noise in permille around the shaped value. */
  noise: number;
  transform: Transform;
  /** eventCount as SQL over `q` (the integer quantity) and `r` (a hash); must stay ≥ 1. */
  eventCount: string;
  minimum: number;
}

interface UniqueCombo {
  realmId: string;
  uniqueFeatureId: string;
  totalFeatureId: string;
  dims: UsageDimensions;
  /** Key prefix, distinct per combination. */
  tag: string;
  syncsPerDay: number;
  firstSyncHour: number;
  /** Distinct rows the datastream can ever have (keys cycle through them). */
  pool: number;
  /** How far the daily window of keys moves per day. */
  drift: number;
}

// ---------------------------------------------------------------------------------------------
// Seeding
// ---------------------------------------------------------------------------------------------

/** The hours a seed at `now` covers, and the anchor every relative time of the demo counts from. */
interface DemoClock {
  /** First and last epoch hour with usage (the last whole hour before `now`). */
  firstHour: number;
  lastHour: number;
  /** The first hour of the UTC month holding the hour `now` is in (never after `now`). */
  anchorHour: number;
}

function demoClock(now: Date, usageHours: number = USAGE_HOURS): DemoClock {
  if (!Number.isSafeInteger(usageHours) || usageHours < 1) throw new Error(`seed: usageHours must be a positive integer, not ${usageHours}`);
  const lastHour = Math.floor(now.getTime() / HOUR_MS) - 1;
  const hourStart = new Date((lastHour + 1) * HOUR_MS);
  const anchorHour = Date.UTC(hourStart.getUTCFullYear(), hourStart.getUTCMonth(), 1) / HOUR_MS;
  return { firstHour: lastHour - usageHours + 1, lastHour, anchorHour };
}

export async function seedDemo(prisma: PrismaClient, options: SeedOptions = {}): Promise<SeedResult> {
  const clock = demoClock(options.now ?? new Date(), options.usageHours);
  const { firstHour, lastHour } = clock;
  const usageChunks = Math.ceil((lastHour - firstHour + 1) / CHUNK_HOURS);
  const total = 2 + usageChunks + 2;
  let done = 0;
  const step = () => options.onProgress?.(++done, total);

  const plan = buildPlan(clock);

  await prisma.$transaction(
    async (tx) => {
      // generate_series' default row estimates make PostgreSQL JIT-compile the usage statements
      // (≈ 0.3 s each) although they are cheap: compile nothing. Index rebuilds get more memory.
      await tx.$executeRawUnsafe('SET LOCAL jit = off');
      await tx.$executeRawUnsafe(`SET LOCAL maintenance_work_mem = '128MB'`);
      await wipe(tx);
      step();
      await insertEntities(tx, plan);
      step();
      // The PostgreSQL manual's bulk-load recipe ("Populating a Database"): load the usage tables
      // without their indexes and foreign keys, then rebuild them once (3–4× faster on PGlite).
      const restore = await dropIndexesAndConstraints(tx, USAGE_TABLES);
      for (let chunk = 0; chunk < usageChunks; chunk++) {
        const from = firstHour + chunk * CHUNK_HOURS;
        const to = Math.min(lastHour, from + CHUNK_HOURS - 1);
        await insertUsageChunk(tx, plan, from, to);
        step();
      }
      await restore();
      step();
      // PGlite has no autovacuum: without statistics the planner guesses on the biggest tables.
      await tx.$executeRawUnsafe(`ANALYZE ${USAGE_TABLES.map((t) => `"${t}"`).join(', ')}`);
      step();
    },
    { maxWait: 30_000, timeout: 600_000 },
  );

  return { apiKey: DEMO_API_KEY, realmIds: plan.realmIds };
}

/** True when a demo seeded at `seededAt` can become, by topUpDemo, exactly the demo a seed at `now` writes. */
export function canTopUpDemo(seededAt: Date, now: Date): boolean {
  return demoClock(seededAt).anchorHour === demoClock(now).anchorHour;
}

export interface TopUpOptions {
  /** The `now` the database was seeded with (or last topped up to). */
  seededAt: Date;
  /** The clock to bring it to (default: the current time); must be in the same UTC month (canTopUpDemo). */
  now?: Date;
  /** For tests only: the window the demo was seeded with (SeedOptions.usageHours). */
  usageHours?: number;
}

/**
 * Turns a demo seeded at `seededAt` into the demo seedDemo writes at `now`: drops the usage hours
 * that fell out of the window, adds the missing ones and moves the entities' clock fields. Costs
 * what the hours in between cost, not a whole seed. The usage tables' surrogate ids (bigserial)
 * are the only difference from a fresh seed.
 */
export async function topUpDemo(prisma: PrismaClient, options: TopUpOptions): Promise<SeedResult & { addedHours: number }> {
  const before = demoClock(options.seededAt, options.usageHours);
  const after = demoClock(options.now ?? new Date(), options.usageHours);
  if (before.anchorHour !== after.anchorHour) {
    throw new Error(`a demo seeded at ${options.seededAt.toISOString()} cannot be topped up to another month: seed it afresh`);
  }
  const plan = buildPlan(after);
  // The hours of the new window the database lacks: before its first and after its last hour.
  const missing = [
    [after.firstHour, Math.min(after.lastHour, before.firstHour - 1)],
    [Math.max(after.firstHour, before.lastHour + 1), after.lastHour],
  ].filter(([from, to]) => from! <= to!) as [number, number][];
  const hourSql = (hour: number) => `to_timestamp(${int(hour)} * 3600)`;
  await prisma.$transaction(
    async (tx) => {
      await tx.$executeRawUnsafe('SET LOCAL jit = off');
      for (const table of USAGE_TABLES) {
        await tx.$executeRawUnsafe(`DELETE FROM "${table}" WHERE "hour" < ${hourSql(after.firstHour)} OR "hour" > ${hourSql(after.lastHour)}`);
      }
      for (const [from, to] of missing) {
        for (let start = from; start <= to; start += CHUNK_HOURS) await insertUsageChunk(tx, plan, start, Math.min(to, start + CHUNK_HOURS - 1));
      }
      await setClockFields(tx, plan);
    },
    { maxWait: 30_000, timeout: 600_000 },
  );
  return { apiKey: DEMO_API_KEY, realmIds: plan.realmIds, addedHours: missing.reduce((sum, [from, to]) => sum + to - from + 1, 0) };
}

/** The entity fields that follow the last hour rather than the anchor (keys last used "just now"). */
async function setClockFields(tx: Tx, plan: Plan): Promise<void> {
  for (const key of plan.entities.apiKeys) await tx.apiKey.update({ where: { id: key.id! }, data: { lastUsedAt: key.lastUsedAt ?? null } });
}

/**
 * A digest of everything a seed at `now` writes apart from its window: the entities (less the
 * random secrets of the non-demo keys and the clock fields topUpDemo sets) and the usage
 * statements. Equal digests: topUpDemo from one clock to the other gives a fresh seed's data.
 */
export function demoFingerprint(now: Date): string {
  const clock = demoClock(now);
  const plan = buildPlan({ ...clock, lastHour: clock.anchorHour - 1, firstHour: clock.anchorHour - USAGE_HOURS });
  const entities = {
    ...plan.entities,
    apiKeys: plan.entities.apiKeys.map(({ prefix, secretHash, lastUsedAt, ...key }) =>
      prefix === demoKey.prefix ? { prefix, secretHash, ...key } : key,
    ),
  };
  const from = clock.anchorHour - 48;
  const to = clock.anchorHour - 1;
  const statements = [...plan.usage.series.values()].map((s) => seriesStatement(s, plan.growthFromHour, from, to));
  statements.push(uniqueRowsStatement(plan.usage.uniqueCombos, plan.growthFromHour, from, to));
  return createHash('sha256')
    .update(JSON.stringify({ entities, series: [...plan.usage.series], uniqueCombos: plan.usage.uniqueCombos, statements }))
    .digest('hex')
    .slice(0, 16);
}

async function wipe(tx: Tx): Promise<void> {
  const tables = await tx.$queryRawUnsafe<{ name: string }[]>(
    // The audit log is append-only (a trigger refuses TRUNCATE): it outlives a re-seed. So do the
    // operators' keys: one made with the CLI before the first start must still work after the demo seed.
    `SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() AND tablename NOT LIKE '\\_prisma%' AND tablename NOT IN ('AuditEntry', 'OperatorKey') ORDER BY tablename`,
  );
  if (tables.length === 0) return;
  const list = tables.map((t) => `"${t.name.replace(/"/g, '""')}"`).join(', ');
  await tx.$executeRawUnsafe(`TRUNCATE TABLE ${list} RESTART IDENTITY CASCADE`);
}

const USAGE_TABLES = ['UsageHourly', 'UsageUniqueKey'];

/**
 * Drops the indexes, primary/unique keys and foreign keys of `tables` (in the current schema) and
 * returns a function that recreates them from their catalog definitions — names and definitions
 * stay exactly as the migrations made them. Keys other tables' foreign keys depend on are kept.
 * Runs inside the seed's transaction, so a failure rolls the DDL back too.
 */
async function dropIndexesAndConstraints(tx: Tx, tables: string[]): Promise<() => Promise<void>> {
  const names = tables.map((t) => `'${t}'`).join(', ');
  const constraints = await tx.$queryRawUnsafe<{ table: string; name: string; type: string; def: string }[]>(
    `SELECT t.relname AS "table", con.conname AS name, con.contype::text AS type, pg_get_constraintdef(con.oid) AS def
     FROM pg_constraint con
     JOIN pg_class t ON t.oid = con.conrelid
     JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = current_schema() AND t.relname IN (${names}) AND con.contype IN ('p', 'u', 'f')
       AND (con.contype = 'f' OR NOT EXISTS (
         SELECT 1 FROM pg_constraint ref WHERE ref.contype = 'f' AND ref.confrelid = t.oid AND ref.conrelid <> t.oid))
     ORDER BY con.contype DESC, con.conname`,
  );
  const indexes = await tx.$queryRawUnsafe<{ name: string; def: string }[]>(
    `SELECT i.relname AS name, pg_get_indexdef(i.oid) AS def
     FROM pg_index x
     JOIN pg_class i ON i.oid = x.indexrelid
     JOIN pg_class t ON t.oid = x.indrelid
     JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = current_schema() AND t.relname IN (${names})
       AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.oid AND con.conrelid = t.oid)
     ORDER BY i.relname`,
  );
  const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
  // Unique and primary keys, then foreign keys ('u' > 'p' > 'f'), then plain indexes; restored in reverse.
  for (const c of constraints) await tx.$executeRawUnsafe(`ALTER TABLE ${quote(c.table)} DROP CONSTRAINT ${quote(c.name)}`);
  for (const i of indexes) await tx.$executeRawUnsafe(`DROP INDEX ${quote(i.name)}`);
  return async () => {
    // A partitioned table's index reads back as `ON ONLY` (the parent alone, left invalid): recreate it on every partition.
    for (const i of indexes) await tx.$executeRawUnsafe(i.def.replace(' ON ONLY ', ' ON '));
    for (const c of [...constraints].reverse()) {
      await tx.$executeRawUnsafe(`ALTER TABLE ${quote(c.table)} ADD CONSTRAINT ${quote(c.name)} ${c.def}`);
    }
  };
}

type Plan = ReturnType<typeof buildPlan>;

function buildPlan(clock: DemoClock) {
  const { firstHour, lastHour, anchorHour } = clock;
  const at = (msAgo: number) => new Date(anchorHour * HOUR_MS - msAgo);
  // Calendar arithmetic ("the 1st, 11 months back") from the middle of the anchor's month: the
  // same month in every realm's time zone.
  const monthRef = new Date((anchorHour + 15 * 24) * HOUR_MS);
  const counters = new Map<number, number>();
  const next = (kind: number) => {
    const n = (counters.get(kind) ?? 0) + 1;
    counters.set(kind, n);
    return seedId(kind, n);
  };

  const realms: Prisma.RealmCreateManyInput[] = [];
  const workspaces: Prisma.WorkspaceCreateManyInput[] = [];
  const closure: Prisma.WorkspaceClosureCreateManyInput[] = [];
  const datastreams: Prisma.DatastreamCreateManyInput[] = [];
  const projects: Prisma.ProjectCreateManyInput[] = [];
  const apps: Prisma.AppCreateManyInput[] = [];
  const features: Prisma.FeatureCreateManyInput[] = [];
  const apiKeys: Prisma.ApiKeyCreateManyInput[] = [];
  const contracts: Prisma.ContractCreateManyInput[] = [];
  const licenses: Prisma.LicenseCreateManyInput[] = [];
  const credits: Prisma.CreditGrantCreateManyInput[] = [];
  const prices: Prisma.PriceCreateManyInput[] = [];
  const idsBySlug = new Map<string, Ids>();

  REALMS.forEach((spec, realmIndex) => {
    const realmCreated = at((420 - realmIndex * 30) * DAY_MS);
    const ids: Ids = {
      realm: next(KIND.realm),
      workspaces: new Map(),
      datastreams: new Map(),
      projects: new Map(),
      apps: new Map(),
      features: new Map(),
      apiKeys: new Map(),
    };
    idsBySlug.set(spec.slug, ids);
    realms.push({
      id: ids.realm,
      name: spec.name,
      slug: spec.slug,
      tier: spec.tier,
      customRateLimit: spec.customRateLimit ?? null,
      timeZone: spec.timeZone,
      createdAt: realmCreated,
    });

    let order = 0;
    const walk = (node: TreeSpec, parentId: string | null, ancestors: string[]) => {
      const id = next(KIND.workspace);
      ids.workspaces.set(node.name, id);
      workspaces.push({
        id,
        realmId: ids.realm,
        parentId,
        name: node.name,
        depth: ancestors.length,
        createdAt: new Date(realmCreated.getTime() + ++order * HOUR_MS),
      });
      const chain = [...ancestors, id];
      chain.forEach((ancestorId, i) => closure.push({ ancestorId, descendantId: id, depth: chain.length - 1 - i }));
      for (const child of node.children ?? []) walk(child, id, chain);
    };
    walk(spec.tree, null, []);

    const workspaceId = (name: string) => {
      const id = ids.workspaces.get(name);
      if (!id) throw new Error(`seed: unknown workspace ${name} in ${spec.slug}`);
      return id;
    };

    spec.datastreams.forEach(([workspace, name], i) => {
      const id = next(KIND.datastream);
      ids.datastreams.set(name, id);
      datastreams.push({ id, realmId: ids.realm, workspaceId: workspaceId(workspace), name, createdAt: new Date(realmCreated.getTime() + (i + 1) * DAY_MS) });
    });
    spec.projects.forEach((name, i) => {
      const id = next(KIND.project);
      ids.projects.set(name, id);
      projects.push({ id, realmId: ids.realm, name, createdAt: new Date(realmCreated.getTime() + (i + 2) * DAY_MS) });
    });
    spec.apps.forEach((app, i) => {
      const id = next(KIND.app);
      const projectId = ids.projects.get(app.project)!;
      const wsId = app.workspace ? workspaceId(app.workspace) : null;
      ids.apps.set(app.name, { id, projectId, workspaceId: wsId });
      apps.push({ id, realmId: ids.realm, projectId, workspaceId: wsId, name: app.name, createdAt: new Date(realmCreated.getTime() + (i + 3) * DAY_MS) });
    });
    for (const key of spec.features) {
      const id = next(KIND.feature);
      ids.features.set(key, id);
      features.push({ id, realmId: ids.realm, key, ...FEATURES[key], createdAt: realmCreated });
    }
  });

  const acme = idsBySlug.get('acme')!;
  const globex = idsBySlug.get('globex')!;
  const initech = idsBySlug.get('initech')!;
  const lastHourDate = new Date(lastHour * HOUR_MS);

  // API keys: the fixed demo key (Acme's first key, made with the realm), a workspace-scoped
  // read-only key, a revoked one, one per other realm; then the first (admin) keys createRealm gives
  // the other realms, which the demo's traffic never uses.
  const revokedAt = at(40 * DAY_MS + 5 * HOUR_MS);
  const adminKeys = new Map<string, { id: string; name: string; secret: NewApiKeySecret }>();
  const addKey = (
    ids: Ids,
    name: string,
    secret: NewApiKeySecret,
    scopes: string[],
    extra: { workspace?: string; createdDaysAgo: number; revokedAt?: Date; tier?: Tier; realmAdmin?: boolean; unused?: boolean },
  ) => {
    const id = next(KIND.apiKey);
    const workspaceId = extra.workspace ? ids.workspaces.get(extra.workspace)! : null;
    const revokedHour = extra.revokedAt ? Math.floor(extra.revokedAt.getTime() / HOUR_MS) - 1 : null;
    if (extra.realmAdmin) adminKeys.set(ids.realm, { id, name, secret });
    if (!extra.unused) ids.apiKeys.set(name, { id, workspaceId, activeUntilHour: revokedHour });
    apiKeys.push({
      id,
      realmId: ids.realm,
      workspaceId,
      name,
      prefix: secret.prefix,
      secretHash: secret.secretHash,
      scopes,
      tier: extra.tier ?? null,
      createdAt: at(extra.createdDaysAgo * DAY_MS),
      lastUsedAt: extra.unused ? null : extra.revokedAt ? new Date((revokedHour ?? lastHour) * HOUR_MS) : lastHourDate,
      revokedAt: extra.revokedAt ?? null,
    });
  };
  const realmAge = (ids: Ids) => (anchorHour * HOUR_MS - new Date(realms.find((r) => r.id === ids.realm)!.createdAt!).getTime()) / DAY_MS;
  addKey(acme, DEMO.apiKeys.demo, demoKey, [...SCOPES], { createdDaysAgo: realmAge(acme), realmAdmin: true });
  addKey(acme, DEMO.apiKeys.scopedReadOnly, newApiKeySecret(), ['usage:read'], { workspace: DEMO.workspaces.midLevel, createdDaysAgo: 180 });
  addKey(acme, DEMO.apiKeys.revoked, newApiKeySecret(), ['usage:write'], { createdDaysAgo: 300, revokedAt });
  addKey(globex, 'Globex integration', newApiKeySecret(), ['usage:read', 'usage:write', 'billing:read'], { createdDaysAgo: 170 });
  addKey(initech, 'Initech script', newApiKeySecret(), ['usage:read', 'usage:write'], { createdDaysAgo: 160 });
  for (const ids of [globex, initech]) addKey(ids, FIRST_ADMIN_KEY_NAME, newApiKeySecret(), [...SCOPES], { createdDaysAgo: realmAge(ids), realmAdmin: true, unused: true });

  // Contracts, licenses, credits, prices.
  const acmeStart = monthsFromNow(DEMO.realms.acme.timeZone, monthRef, -11, 1);
  const acmeEnd = monthsFromNow(DEMO.realms.acme.timeZone, monthRef, 13, 1);
  const acmeContract = next(KIND.contract);
  contracts.push({ id: acmeContract, realmId: acme.realm, name: 'Acme Analytics enterprise agreement', startsAt: acmeStart, endsAt: acmeEnd, createdAt: new Date(acmeStart.getTime() - 14 * DAY_MS) });
  const acmeLicenses: [FeatureKey, string][] = [
    ['location.transactions', '16000000'],
    ['storage.gb_months', '4000'],
    ['transfer.gb', '2500'],
    ['rows.unique', '1500'],
    ['api.requests', '3000000'],
    ['spaces.private', '2'],
    ['spaces.shield', '1'],
    ['dynos.units', '12'],
  ];
  for (const [key, quantity] of acmeLicenses) {
    licenses.push({ id: next(KIND.license), contractId: acmeContract, featureId: acme.features.get(key)!, quantityPerMonth: quantity, createdAt: new Date(acmeStart.getTime() - 14 * DAY_MS) });
  }
  credits.push(
    { id: next(KIND.credit), realmId: acme.realm, kind: 'GENERAL', credits: '5000', startsAt: acmeStart, endsAt: acmeEnd, createdAt: acmeStart },
    // 2 private spaces × 1,000 credits, 1 shield space × 3,000 credits.
    { id: next(KIND.credit), realmId: acme.realm, kind: 'PRIVATE_SPACE', credits: '2000', startsAt: acmeStart, endsAt: acmeEnd, createdAt: acmeStart },
    { id: next(KIND.credit), realmId: acme.realm, kind: 'SHIELD_SPACE', credits: '3000', startsAt: acmeStart, endsAt: acmeEnd, createdAt: acmeStart },
  );
  const acmePrices: [FeatureKey, string][] = [
    ['location.transactions', '0.00075'],
    ['storage.gb_months', '0.021'],
    ['transfer.gb', '0.08'],
    ['rows.unique', '0.05'],
    ['rows.total', '0.0001'],
    ['api.requests', '0.00002'],
    ['spaces.private', '1000'],
    ['spaces.shield', '3000'],
    ['dynos.units', '35'],
  ];
  for (const [key, amount] of acmePrices) {
    prices.push({ id: next(KIND.price), realmId: acme.realm, featureId: acme.features.get(key)!, unitAmount: amount, currency: 'EUR', validFrom: acmeStart, createdAt: acmeStart });
  }
  // A price change three months ago.
  const priceChange = monthsFromNow(DEMO.realms.acme.timeZone, monthRef, -3, 1);
  prices.push({ id: next(KIND.price), realmId: acme.realm, featureId: acme.features.get('location.transactions')!, unitAmount: '0.00068', currency: 'EUR', validFrom: priceChange, createdAt: priceChange });

  // Globex: a one-year contract that started mid-month (prorated first and last months).
  const globexStart = monthsFromNow(DEMO.realms.globex.timeZone, monthRef, -5, 16);
  const globexEnd = monthsFromNow(DEMO.realms.globex.timeZone, monthRef, 7, 16);
  const globexContract = next(KIND.contract);
  contracts.push({ id: globexContract, realmId: globex.realm, name: 'Globex Logistics starter plan', startsAt: globexStart, endsAt: globexEnd, createdAt: globexStart });
  for (const [key, quantity] of [
    ['location.transactions', '4500000'],
    ['rows.unique', '400'],
    ['api.requests', '1200000'],
  ] as [FeatureKey, string][]) {
    licenses.push({ id: next(KIND.license), contractId: globexContract, featureId: globex.features.get(key)!, quantityPerMonth: quantity, createdAt: globexStart });
  }
  credits.push({ id: next(KIND.credit), realmId: globex.realm, kind: 'GENERAL', credits: '500', startsAt: globexStart, endsAt: globexEnd, createdAt: globexStart });
  for (const [key, amount] of [
    ['location.transactions', '0.00083'],
    ['storage.gb_months', '0.023'],
    ['transfer.gb', '0.09'],
    ['rows.unique', '0.06'],
    ['rows.total', '0.00012'],
    ['api.requests', '0.000025'],
  ] as [FeatureKey, string][]) {
    prices.push({ id: next(KIND.price), realmId: globex.realm, featureId: globex.features.get(key)!, unitAmount: amount, currency: 'USD', validFrom: globexStart, createdAt: globexStart });
  }

  return {
    realmIds: realms.map((r) => r.id!),
    /** Each realm's first key, which createRealm makes with it. */
    adminKeys,
    entities: { realms, workspaces, closure, datastreams, projects, apps, features, apiKeys, contracts, licenses, credits, prices },
    usage: buildUsage(idsBySlug, clock),
    firstHour,
    lastHour,
    /** Growth counts from here (the anchor's window start), so an hour's quantity never depends on the window. */
    growthFromHour: anchorHour - USAGE_HOURS,
  };
}

function buildUsage(idsBySlug: Map<string, Ids>, clock: DemoClock) {
  const { firstHour, lastHour } = clock;
  const series = new Map<FeatureKey, Series>();
  const uniqueCombos: UniqueCombo[] = [];
  const daysAgoHour = (days: number) => clock.anchorHour - days * 24;

  const add = (key: FeatureKey, defaults: Omit<Series, 'combos'>, combo: Omit<Combo, 'fromHour' | 'toHour'> & Partial<Pick<Combo, 'fromHour' | 'toHour'>>) => {
    let s = series.get(key);
    if (!s) {
      s = { ...defaults, combos: [] };
      series.set(key, s);
    }
    s.combos.push({ fromHour: firstHour, toHour: lastHour, ...combo });
  };

  const SERIES: Record<Exclude<FeatureKey, 'rows.unique' | 'rows.total'>, Omit<Series, 'combos'>> = {
    'location.transactions': { noise: 150, transform: 'count', eventCount: 'GREATEST(1, q / 4)', minimum: 1 },
    'storage.gb_months': { noise: 4, transform: 'milliPerMonth', eventCount: '1', minimum: 1 },
    'transfer.gb': { noise: 200, transform: 'milli', eventCount: '1 + r % 12', minimum: 1 },
    'api.requests': { noise: 180, transform: 'count', eventCount: 'q', minimum: 1 },
    'spaces.private': { noise: 0, transform: 'count', eventCount: '1', minimum: 1 },
    'spaces.shield': { noise: 0, transform: 'count', eventCount: '1', minimum: 1 },
    'dynos.units': { noise: 0, transform: 'milliPerMonth', eventCount: 'GREATEST(1, q / 1000)', minimum: 1000 },
  };

  for (const spec of REALMS) {
    const ids = idsBySlug.get(spec.slug)!;
    const has = (key: FeatureKey) => ids.features.has(key);
    const featureId = (key: FeatureKey) => ids.features.get(key)!;
    const common = { realmId: ids.realm, shapeOffsetHours: spec.shapeOffsetHours };
    const app = (name: string) => {
      const a = ids.apps.get(name);
      if (!a) throw new Error(`seed: unknown app ${name}`);
      return { projectId: a.projectId, appId: a.id, workspaceId: a.workspaceId };
    };
    const ws = (name: string) => ids.workspaces.get(name)!;
    const scale = spec.slug === 'acme' ? 1 : spec.slug === 'globex' ? 0.6 : 0.05;
    const scaled = (n: number) => Math.max(1, Math.round(n * scale));

    // Location services: per project/app/billing tag/resource.
    if (has('location.transactions')) {
      const tx = (
        dims: UsageDimensions,
        base: number,
        daily: DailyShape = 'business',
        weekly: WeeklyShape = 'business',
        growth = 350,
        fromHour?: number,
      ) =>
        add('location.transactions', SERIES['location.transactions'], {
          ...common,
          featureId: featureId('location.transactions'),
          dims,
          base: scaled(base),
          daily,
          weekly,
          growth,
          ...(fromHour ? { fromHour } : {}),
        });
      const appNames = spec.apps.map((a) => a.name);
      if (spec.slug === 'acme') {
        tx({ ...app('Fleet Web'), billingTag: 'fleet-prod', resource: 'routing-v8' }, 2400);
        tx({ ...app('Fleet Web'), billingTag: 'fleet-prod', resource: 'vector-tiles' }, 5200);
        tx({ ...app('Driver App iOS'), billingTag: 'fleet-prod', resource: 'routing-v8' }, 1900, 'consumer', 'flat', 500);
        tx({ ...app('Driver App iOS'), billingTag: 'fleet-prod', resource: 'geocode-v1' }, 800, 'consumer', 'flat', 500);
        tx({ ...app('Driver App Android'), billingTag: 'fleet-prod', resource: 'routing-v8' }, 1500, 'consumer', 'flat', 900, daysAgoHour(130));
        tx({ ...app('Driver App Android'), resource: 'geocode-v1' }, 600, 'consumer', 'flat', 900, daysAgoHour(130));
        tx({ ...app('Store Locator Web'), billingTag: 'marketing', resource: 'search-v7' }, 1100, 'consumer', 'consumer');
        tx({ ...app('Store Locator Web'), billingTag: 'marketing', resource: 'vector-tiles' }, 2600, 'consumer', 'consumer');
        tx({ ...app('Store Locator Widget'), resource: 'search-v7' }, 700, 'consumer', 'consumer', 150);
        tx({ ...app('Routing Batch'), billingTag: 'ops-batch', resource: 'routing-v8' }, 3000, 'batch', 'business', 200);
        tx({ ...app('Routing Batch'), billingTag: 'ops-batch', resource: 'matrix-routing-v8' }, 1200, 'batch', 'business', 200);
        tx({ projectId: ids.projects.get('Delivery Routing')!, billingTag: 'ops-batch', resource: 'geocode-v1' }, 400, 'business', 'business', 100);
      } else {
        appNames.forEach((name, i) => {
          tx({ ...app(name), billingTag: i % 2 === 0 ? 'prod' : null, resource: 'routing-v8' }, 3000 - i * 700, i === 1 ? 'batch' : 'business');
          tx({ ...app(name), resource: i % 2 === 0 ? 'geocode-v1' : 'vector-tiles' }, 1400 - i * 300, 'consumer', 'flat');
        });
      }
    }

    // Cloud storage (GB held, in milli-GB) and transfer (milli-GB per hour) per workspace/bucket.
    if (has('storage.gb_months')) {
      const buckets: [string, string, number][] =
        spec.slug === 'acme'
          ? [
              ['Data Platform', 'bucket:acme-datalake', 1_800_000],
              ['Platform', 'bucket:acme-backups', 950_000],
              ['Marketing', 'bucket:marketing-assets', 240_000],
              ['Finance', 'bucket:finance-archive', 120_000],
            ]
          : [
              ['Operations', 'bucket:globex-shipments', 700_000],
              ['Sales', 'bucket:globex-crm-exports', 90_000],
            ];
      for (const [workspace, resource, base] of buckets) {
        add('storage.gb_months', SERIES['storage.gb_months'], {
          ...common,
          featureId: featureId('storage.gb_months'),
          dims: { workspaceId: ws(workspace), resource },
          base,
          daily: 'storage',
          weekly: 'flat',
          growth: 600,
        });
      }
    }
    if (has('transfer.gb')) {
      const flows: [string, string | null, string, number][] =
        spec.slug === 'acme'
          ? [
              ['Data Platform', null, 'egress:internet', 1400],
              ['Platform', 'Fleet Web', 'cdn:fleet-web', 900],
              ['Mobile', 'Driver App iOS', 'cdn:mobile', 600],
              ['EMEA', 'Store Locator Web', 'cdn:store-locator', 700],
            ]
          : [
              ['North America', 'Dispatcher Console', 'cdn:dispatch', 800],
              ['Sales', 'Customer Tracking Site', 'cdn:tracking', 1100],
            ];
      for (const [workspace, appName, resource, base] of flows) {
        const a = appName ? app(appName) : null;
        add('transfer.gb', SERIES['transfer.gb'], {
          ...common,
          featureId: featureId('transfer.gb'),
          dims: { workspaceId: ws(workspace), ...(a ? { projectId: a.projectId, appId: a.appId } : {}), resource },
          base,
          daily: resource.startsWith('egress') ? 'batch' : 'consumer',
          weekly: 'flat',
          growth: 400,
        });
      }
    }

    // API requests per key (the key's workspace scope as the workspace dimension).
    if (has('api.requests')) {
      let i = 0;
      for (const [name, key] of ids.apiKeys) {
        add('api.requests', SERIES['api.requests'], {
          ...common,
          featureId: featureId('api.requests'),
          dims: { apiKeyId: key.id, workspaceId: key.workspaceId },
          base: spec.slug === 'initech' ? 45 : name === DEMO.apiKeys.revoked ? 2600 : i === 0 ? 1800 : 700,
          daily: name === DEMO.apiKeys.revoked ? 'batch' : 'business',
          weekly: name === DEMO.apiKeys.revoked ? 'flat' : 'business',
          growth: 250,
          ...(key.activeUntilHour !== null ? { toHour: key.activeUntilHour } : {}),
        });
        i++;
      }
    }

    // Spaces: the hour's number of running spaces (a third private space ran for 15 days).
    if (has('spaces.private')) {
      const engineering = ws('Engineering');
      const privateSpaces: [number, number | null][] = [
        [firstHour, null],
        [daysAgoHour(100), null],
        [daysAgoHour(45), daysAgoHour(30) - 1],
      ];
      privateSpaces.forEach(([fromHour, toHour]) =>
        add('spaces.private', SERIES['spaces.private'], {
          ...common,
          featureId: featureId('spaces.private'),
          // One combination per step; the statement sums overlapping steps into one row per hour.
          dims: { workspaceId: engineering },
          base: 1,
          daily: 'flat',
          weekly: 'flat',
          growth: 0,
          fromHour,
          toHour: toHour ?? lastHour,
        }),
      );
      add('spaces.shield', SERIES['spaces.shield'], {
        ...common,
        featureId: featureId('spaces.shield'),
        dims: { workspaceId: ws('Finance') },
        base: 1,
        daily: 'flat',
        weekly: 'flat',
        growth: 0,
      });
    }

    // Dyno units per app (units running, in thousandths, as unit-months).
    if (has('dynos.units')) {
      spec.apps.forEach((a, i) => {
        const d = app(a.name);
        add('dynos.units', SERIES['dynos.units'], {
          ...common,
          featureId: featureId('dynos.units'),
          dims: { workspaceId: d.workspaceId, projectId: d.projectId, appId: d.appId },
          base: (1 + (i % 3)) * 1000,
          daily: i % 2 === 0 ? 'business' : 'flat',
          weekly: 'flat',
          growth: 0,
        });
      });
    }

    // Rows per workspace × datastream (plus workspace-level uploads without a datastream).
    if (has('rows.unique') && has('rows.total')) {
      const sources: [string, string | null][] = spec.datastreams.map(([workspace, name]) => [workspace, name]);
      if (spec.slug === 'acme') sources.push(['Marketing', null], ['Finance', null]);
      if (spec.slug === 'globex') sources.push(['Operations', null]);
      sources.forEach(([workspace, datastream], i) => {
        const n = uniqueCombos.length;
        uniqueCombos.push({
          realmId: ids.realm,
          uniqueFeatureId: featureId('rows.unique'),
          totalFeatureId: featureId('rows.total'),
          dims: { workspaceId: ws(workspace), datastreamId: datastream ? ids.datastreams.get(datastream)! : null },
          tag: `${spec.slug}${n + 1}`,
          syncsPerDay: 1 + (i % 3),
          firstSyncHour: (2 + i * 5) % 24,
          pool: 60 + ((i * 37) % 240),
          drift: 1 + (i % 5),
        });
      });
    }
  }
  return { series, uniqueCombos };
}

/** The id a domain function answered; a user error is a defect of the demo's plan. */
function created(what: string, result: { id: string } | { userErrors: { code: string; message: string }[] }): string {
  if ('userErrors' in result) throw new Error(`seed: ${what}: ${result.userErrors.map((e) => `${e.code} ${e.message}`).join('; ')}`);
  return result.id;
}

/**
 * The demo's realms, trees, catalog, meters and contracts, made by the functions the API and the
 * CLI use (src/admin/*): every check they make holds for the demo, and each object gets its audit
 * entry from the SYSTEM actor. The request's clock is the object's creation time in the plan.
 * The other keys are inserted as planned: `createApiKey` has no such function yet (its logic is in
 * its GraphQL resolver, with a fresh secret and no fixed id), and one demo key was revoked long ago.
 */
async function insertEntities(tx: Tx, plan: Plan): Promise<void> {
  const e = plan.entities;
  const at = (value: Date | string | null | undefined) => new Date(value!);
  for (const realm of e.realms) {
    const adminKey = plan.adminKeys.get(realm.id!)!;
    const result = await createRealm(
      tx,
      systemOperatorRequest(at(realm.createdAt)),
      { id: realm.id!, name: realm.name, slug: realm.slug, timeZone: realm.timeZone, tier: realm.tier, customRateLimit: realm.customRateLimit ?? null },
      { adminKey },
    );
    if ('userErrors' in result) created(`realm ${realm.slug}`, result);
  }
  // Parents before children: the plan lists workspaces in tree order.
  for (const w of e.workspaces) {
    created(`workspace ${w.name}`, await createWorkspace(tx, systemRequest(w.realmId, at(w.createdAt)), { id: w.id!, name: w.name, parentId: w.parentId ?? null }));
  }
  for (const d of e.datastreams) {
    created(`datastream ${d.name}`, await createDatastream(tx, systemRequest(d.realmId, at(d.createdAt)), { id: d.id!, workspaceId: d.workspaceId, name: d.name }));
  }
  for (const p of e.projects) created(`project ${p.name}`, await createProject(tx, systemRequest(p.realmId, at(p.createdAt)), { id: p.id!, name: p.name }));
  for (const a of e.apps) {
    created(`app ${a.name}`, await createApp(tx, systemRequest(a.realmId, at(a.createdAt)), { id: a.id!, projectId: a.projectId, workspaceId: a.workspaceId ?? null, name: a.name }));
  }
  for (const f of e.features) {
    const feature = { id: f.id!, key: f.key, name: f.name, service: f.service, unit: f.unit!, aggregation: f.aggregation!, arrivalDelaySeconds: f.arrivalDelaySeconds ?? null };
    created(`feature ${f.key}`, await createFeature(tx, systemRequest(f.realmId, at(f.createdAt)), feature));
  }
  const firstKeys = new Set([...plan.adminKeys.values()].map((k) => k.id));
  await tx.apiKey.createMany({ data: e.apiKeys.filter((k) => !firstKeys.has(k.id!)) });
  for (const c of e.contracts) {
    const licenses = e.licenses.filter((l) => l.contractId === c.id).map((l) => ({ id: l.id!, featureId: l.featureId, quantityPerMonth: l.quantityPerMonth as string }));
    const contract = { id: c.id!, name: c.name, startsAt: at(c.startsAt), endsAt: at(c.endsAt), licenses };
    created(`contract ${c.name}`, await createContract(tx, systemRequest(c.realmId, at(c.createdAt)), contract));
  }
  for (const g of e.credits) {
    const grant = { id: g.id!, kind: g.kind, credits: g.credits as string, startsAt: at(g.startsAt), endsAt: g.endsAt ? at(g.endsAt) : null };
    created(`credit grant ${g.kind}`, await createCreditGrant(tx, systemRequest(g.realmId, at(g.createdAt)), grant));
  }
  for (const p of e.prices) {
    const price = { id: p.id!, featureId: p.featureId, unitAmount: p.unitAmount as string, currency: p.currency, validFrom: at(p.validFrom) };
    created(`price ${p.id}`, await setPrice(tx, systemRequest(p.realmId, at(p.createdAt)), price));
  }
  // createRealm makes a first key that was never used; the demo key was, up to the last hour.
  for (const key of e.apiKeys) {
    if (firstKeys.has(key.id!) && key.lastUsedAt) await tx.apiKey.update({ where: { id: key.id! }, data: { lastUsedAt: key.lastUsedAt }, select: { id: true } });
  }
}

const HOURLY_COLUMNS =
  '"realmId", "featureId", "hour", "dimensionKey", "workspaceId", "datastreamId", "projectId", "appId", "billingTag", "resource", "apiKeyId", "quantity", "eventCount", "updatedAt"';

function dimsSql(d: UsageDimensions): string {
  return [uuid(d.workspaceId), uuid(d.datastreamId), uuid(d.projectId), uuid(d.appId), text(d.billingTag), text(d.resource), uuid(d.apiKeyId)].join(', ');
}

function quantitySql(transform: Transform): string {
  switch (transform) {
    case 'count':
      return 'q::numeric';
    case 'milli':
      return 'q * 0.001';
    case 'milliPerMonth':
      // thousandths held for an hour → nano-units of a 730-hour month, integer division (exact).
      return '((q * 1000000) / 730) * 0.000000001';
  }
}

/** One INSERT per series and chunk: every combination × every hour of [from, to] it is active in. */
function seriesStatement(s: Series, growthFromHour: number, from: number, to: number): string | null {
  // A combination's number (which seeds its noise) is its place in the series, whichever are active.
  const active = s.combos.map((c, idx) => ({ c, idx })).filter(({ c }) => c.fromHour <= to && c.toHour >= from);
  const combos = active.map(({ c }) => c);
  if (combos.length === 0) return null;
  const dailyArray = `('{${DAILY_NAMES.flatMap((name) => DAILY[name]).join(',')}}'::bigint[])`;
  const weeklyArray = `('{${WEEKLY_NAMES.flatMap((name) => WEEKLY[name]).join(',')}}'::bigint[])`;
  const values = active
    .map(({ c, idx }) =>
      `(${[
        uuid(c.realmId),
        uuid(c.featureId),
        text(dimensionKey(c.dims)),
        dimsSql(c.dims),
        int(idx + 1),
        int(c.base),
        int(Math.max(c.fromHour, from)),
        int(Math.min(c.toHour, to)),
        int(c.shapeOffsetHours),
        int(DAILY_NAMES.indexOf(c.daily)),
        int(WEEKLY_NAMES.indexOf(c.weekly)),
        int(c.growth),
      ].join(', ')})`,
    )
    .join(',\n');
  const span = USAGE_HOURS;
  const local = '(g.h + c.tz)';
  // All integer (bigint) arithmetic; the single division at the end truncates deterministically.
  const shaped =
    `c.base * ${dailyArray}[c.dp * 24 + ${local} % 24 + 1] * ${weeklyArray}[c.wp * 7 + (${local} / 24 + 3) % 7 + 1]` +
    ` * (1000 + c.growth * (g.h - ${growthFromHour}) / ${span})` +
    ` * (${1000 - s.noise} + r.r % ${2 * s.noise + 1}) / 10000000000`;
  const dims = 'c.ws, c.ds, c.pr, c.ap, c.bt, c.rs, c.ak';
  const row = `
    SELECT c.realm_id, c.feature_id, g.h, c.dk, ${dims}, GREATEST(${s.minimum}::bigint, ${shaped}) AS q, r.r
    FROM (VALUES ${values}) AS c(realm_id, feature_id, dk, ws, ds, pr, ap, bt, rs, ak, idx, base, h_from, h_to, tz, dp, wp, growth)
    CROSS JOIN LATERAL generate_series(c.h_from, c.h_to) AS g(h)
    CROSS JOIN LATERAL (SELECT ${hashSql('g.h', 'c.idx')} AS r) AS r`;
  // Several combinations may share a dimension key (spaces: one per running space): add them up.
  const grouped = `
    SELECT realm_id, feature_id, h, dk, ws, ds, pr, ap, bt, rs, ak, SUM(q)::bigint AS q, MIN(r) AS r
    FROM (${row}) AS x
    GROUP BY realm_id, feature_id, h, dk, ws, ds, pr, ap, bt, rs, ak`;
  const needsGrouping = new Set(combos.map((c) => `${c.featureId}/${dimensionKey(c.dims)}`)).size < combos.length;
  return `INSERT INTO "UsageHourly" (${HOURLY_COLUMNS})
    SELECT y.realm_id, y.feature_id, to_timestamp(y.h * 3600), y.dk, y.ws, y.ds, y.pr, y.ap, y.bt, y.rs, y.ak,
           ${quantitySql(s.transform)}, ${s.eventCount}, to_timestamp((y.h + 1) * 3600)
    FROM (${needsGrouping ? grouped : row}) AS y(realm_id, feature_id, h, dk, ws, ds, pr, ap, bt, rs, ak, q, r)`;
}

/**
 * Distinct row keys per sync: each combination syncs 1–3 times a day, every sync sees 8–40 rows
 * out of a window that slides `drift` rows a day through a pool of `pool` rows, so the same rows
 * come back hour after hour and day after day (a month's distinct count ≪ the sum of its days).
 */
function uniqueKeysStatement(combos: UniqueCombo[], growthFromHour: number, from: number, to: number): string {
  const firstDay = Math.floor(growthFromHour / 24);
  const values = combos
    .map((c, idx) =>
      `(${[
        uuid(c.realmId),
        uuid(c.uniqueFeatureId),
        text(dimensionKey(c.dims)),
        uuid(c.dims.workspaceId),
        uuid(c.dims.datastreamId),
        int(idx + 1),
        text(c.tag),
        int(c.syncsPerDay),
        int(c.firstSyncHour),
        int(c.pool),
        int(c.drift),
      ].join(', ')})`,
    )
    .join(',\n');
  return `INSERT INTO "UsageUniqueKey" ("realmId", "featureId", "hour", "dimensionKey", "workspaceId", "datastreamId", "key")
    SELECT c.realm_id, c.feature_id, to_timestamp(s.h * 3600), c.dk, c.ws, c.ds,
           c.tag || ':row-' || lpad((((d.d - ${firstDay}) * c.drift + s.slot * 11 + j.j) % c.pool)::text, 4, '0')
    FROM (VALUES ${values}) AS c(realm_id, feature_id, dk, ws, ds, idx, tag, syncs, first_hour, pool, drift)
    CROSS JOIN generate_series(${int(Math.floor(from / 24))}, ${int(Math.floor(to / 24))}) AS d(d)
    CROSS JOIN LATERAL generate_series(0::bigint, c.syncs - 1) AS k(slot)
    CROSS JOIN LATERAL (SELECT k.slot, d.d * 24 + (c.first_hour + k.slot * (24 / c.syncs)) % 24 AS h) AS s
    CROSS JOIN LATERAL generate_series(0::bigint, 7 + ${hashSql('d.d', 'c.idx', 's.slot')} % 33) AS j(j)
    WHERE s.h BETWEEN ${int(from)} AND ${int(to)}`;
}

/**
 * Keys and their hourly rows in one statement: the unique feature's quantity is the hour's
 * distinct key count (keys are distinct per hour and combination by construction, and the
 * primary key would reject a duplicate), total rows are keys × a duplicate factor of 1–2.8.
 */
function uniqueRowsStatement(combos: UniqueCombo[], growthFromHour: number, from: number, to: number): string {
  const pairs = [...new Map(combos.map((c) => [c.uniqueFeatureId, c.totalFeatureId])).entries()]
    .map(([u, t]) => `(${uuid(u)}, ${uuid(t)})`)
    .join(', ');
  return `WITH k AS (
      ${uniqueKeysStatement(combos, growthFromHour, from, to)}
      RETURNING "realmId", "featureId", "hour", "dimensionKey", "workspaceId", "datastreamId"
    ), per_hour AS (
      SELECT "realmId", "featureId", "hour", "dimensionKey", "workspaceId", "datastreamId", COUNT(*) AS n,
             EXTRACT(EPOCH FROM "hour")::bigint / 3600 AS h
      FROM k
      GROUP BY "realmId", "featureId", "hour", "dimensionKey", "workspaceId", "datastreamId"
    )
    INSERT INTO "UsageHourly" (${HOURLY_COLUMNS})
    SELECT p."realmId", f.feature_id, p."hour", p."dimensionKey", p."workspaceId", p."datastreamId", NULL, NULL, NULL, NULL, NULL,
           CASE WHEN f.is_total THEN p.n * (100 + ${hashSql('p.h', 'length(p."dimensionKey")')} % 180) / 100 ELSE p.n END,
           CASE WHEN f.is_total THEN 1 ELSE p.n END,
           p."hour" + INTERVAL '1 hour'
    FROM per_hour AS p
    JOIN (VALUES ${pairs}) AS m(unique_id, total_id) ON m.unique_id = p."featureId"
    CROSS JOIN LATERAL (VALUES (m.unique_id, false), (m.total_id, true)) AS f(feature_id, is_total)`;
}

async function insertUsageChunk(tx: Tx, plan: Plan, from: number, to: number): Promise<void> {
  for (const s of plan.usage.series.values()) {
    const sql = seriesStatement(s, plan.growthFromHour, from, to);
    if (sql) await tx.$executeRawUnsafe(sql);
  }
  if (plan.usage.uniqueCombos.length > 0) {
    await tx.$executeRawUnsafe(uniqueRowsStatement(plan.usage.uniqueCombos, plan.growthFromHour, from, to));
  }
}

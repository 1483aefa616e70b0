import { recordAudit } from './audit.js';
import { failed, type AdminRequest, type AdminResult, type Tx } from './admin-request.js';
import { createIdempotently } from './idempotency.js';
import { checkName } from './names.js';
import type { Feature } from '../generated/prisma/client.js';
import { Aggregation, FeatureUnit } from '../generated/prisma/enums.js';
import type { UserError } from '../schema/user-error.js';

/**
 * A feature's key, the name ingestion uses for it: a lower-case letter, then up to 62 lower-case
 * letters, digits, `_`, `.` or `-` (e.g. `location.transactions`). Unique in its realm, archived
 * features included, and never changed: usage already sent names it.
 */
export const FEATURE_KEY_PATTERN = /^[a-z][a-z0-9_.-]{0,62}$/;
export const MAX_SERVICE_LENGTH = 100;
/** How late a feature's usage may arrive: at most 30 days (a month's invoice waits that long at worst). */
export const MAX_ARRIVAL_DELAY_SECONDS = 30 * 86_400;
export const DEFAULT_ARRIVAL_DELAY_SECONDS = 7_200;

export interface FeatureInput {
  /** The seed's deterministic ids; the API lets the database choose. */
  id?: string;
  key: string;
  name: string;
  service: string;
  unit: FeatureUnit;
  aggregation: Aggregation;
  arrivalDelaySeconds?: number | null;
  idempotencyKey?: string | null;
}

export interface FeatureChanges {
  /** The feature (its uuid). */
  id: string;
  name?: string | null;
  service?: string | null;
  unit?: FeatureUnit | null;
  aggregation?: Aggregation | null;
  arrivalDelaySeconds?: number | null;
}

const field = (name: string) => ['input', name];

export function featureKeyProblem(key: string): UserError | null {
  if (FEATURE_KEY_PATTERN.test(key)) return null;
  return {
    field: field('key'),
    code: 'INVALID_KEY',
    message: 'A feature key is a lower-case letter followed by up to 62 lower-case letters, digits, "_", "." or "-" (e.g. "location.transactions").',
  };
}

function checkService(value: string): { service: string } | { error: UserError } {
  const service = value.trim();
  if (service.length === 0) return { error: { field: field('service'), code: 'BLANK', message: 'A service cannot be empty.' } };
  if (service.length > MAX_SERVICE_LENGTH) return { error: { field: field('service'), code: 'TOO_LONG', message: `A service is at most ${MAX_SERVICE_LENGTH} characters.` } };
  if (/[\u0000-\u001f\u007f]/.test(service)) return { error: { field: field('service'), code: 'INVALID_STRING', message: 'A service cannot contain control characters.' } };
  return { service };
}

function arrivalDelayProblem(seconds: number): UserError | null {
  if (Number.isInteger(seconds) && seconds >= 0 && seconds <= MAX_ARRIVAL_DELAY_SECONDS) return null;
  return { field: field('arrivalDelaySeconds'), code: 'INVALID_ARRIVAL_DELAY', message: `The arrival delay is 0 to ${MAX_ARRIVAL_DELAY_SECONDS} seconds (30 days).` };
}

/** The fields the audit log keeps of a feature. */
function audited(f: Pick<Feature, 'key' | 'name' | 'service' | 'unit' | 'aggregation' | 'arrivalDelaySeconds' | 'archivedAt'>) {
  return { key: f.key, name: f.name, service: f.service, unit: f.unit, aggregation: f.aggregation, arrivalDelaySeconds: f.arrivalDelaySeconds, archivedAt: f.archivedAt };
}

/**
 * Registers a meter in the request's realm (`feature.create`). Run inside a transaction. The key is
 * claimed with one `INSERT … ON CONFLICT DO NOTHING`, so two concurrent creations of one key give
 * one feature and one DUPLICATE_KEY.
 */
export async function createFeature(tx: Tx, request: AdminRequest, input: FeatureInput): Promise<AdminResult> {
  const keyProblem = featureKeyProblem(input.key);
  if (keyProblem) return { userErrors: [keyProblem] };
  const name = checkName(input.name, field('name'));
  if ('error' in name) return { userErrors: [name.error] };
  const service = checkService(input.service);
  if ('error' in service) return { userErrors: [service.error] };
  const arrivalDelaySeconds = input.arrivalDelaySeconds ?? DEFAULT_ARRIVAL_DELAY_SECONDS;
  const delayProblem = arrivalDelayProblem(arrivalDelaySeconds);
  if (delayProblem) return { userErrors: [delayProblem] };

  return createIdempotently(
    tx,
    { scope: request.idempotencyScope, key: input.idempotencyKey, action: 'feature.create', input: { ...input, idempotencyKey: undefined }, now: request.now },
    async () => {
      const [feature] = await tx.feature.createManyAndReturn({
        data: [{ ...(input.id ? { id: input.id } : {}), realmId: request.realmId, key: input.key, name: name.name, service: service.service, unit: input.unit, aggregation: input.aggregation, arrivalDelaySeconds, createdAt: request.now }],
        skipDuplicates: true,
      });
      if (!feature) return failed(field('key'), 'DUPLICATE_KEY', `The realm already has a feature "${input.key}" (archived features keep their key).`);
      await recordAudit(tx, request.actor, { action: 'feature.create', realmId: request.realmId, targetType: 'Feature', targetId: feature.id, before: null, after: audited(feature) });
      return { id: feature.id };
    },
  );
}

/** Whether any usage of the feature was recorded (one indexed probe per table). */
async function hasUsage(tx: Tx, realmId: string, featureId: string): Promise<boolean> {
  const rows = await tx.$queryRaw<unknown[]>`
    SELECT 1 WHERE EXISTS (SELECT 1 FROM "UsageHourly" WHERE "realmId" = ${realmId}::uuid AND "featureId" = ${featureId}::uuid)
                OR EXISTS (SELECT 1 FROM "UsageEvent" WHERE "featureId" = ${featureId}::uuid)`;
  return rows.length > 0;
}

/**
 * Renames a feature or changes its service, unit, aggregation or arrival delay (`feature.update`).
 * The unit and the aggregation say what the recorded quantities mean: once usage exists they are
 * IMMUTABLE_FIELD (create a new feature instead). The key never changes.
 */
export async function updateFeature(tx: Tx, request: AdminRequest, input: FeatureChanges): Promise<AdminResult> {
  // The row is locked: two updates of one feature are applied one after the other, each audited against the other's result.
  const locked = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM "Feature" WHERE id = ${input.id}::uuid AND "realmId" = ${request.realmId}::uuid FOR UPDATE`;
  if (!locked.length) return failed(['input', 'id'], 'NOT_FOUND', 'No such feature.');
  const before = await tx.feature.findUniqueOrThrow({ where: { id: input.id } });
  if (before.archivedAt) return failed(['input', 'id'], 'ARCHIVED', 'An archived feature cannot be changed.');
  const data: { name?: string; service?: string; unit?: FeatureUnit; aggregation?: Aggregation; arrivalDelaySeconds?: number } = {};
  if (input.name != null) {
    const name = checkName(input.name, field('name'));
    if ('error' in name) return { userErrors: [name.error] };
    data.name = name.name;
  }
  if (input.service != null) {
    const service = checkService(input.service);
    if ('error' in service) return { userErrors: [service.error] };
    data.service = service.service;
  }
  if (input.arrivalDelaySeconds != null) {
    const problem = arrivalDelayProblem(input.arrivalDelaySeconds);
    if (problem) return { userErrors: [problem] };
    data.arrivalDelaySeconds = input.arrivalDelaySeconds;
  }
  const meaningChanges = (['unit', 'aggregation'] as const).filter((name) => input[name] != null && input[name] !== before[name]);
  if (meaningChanges.length && (await hasUsage(tx, request.realmId, before.id))) {
    return {
      userErrors: meaningChanges.map((name) => ({
        field: field(name),
        code: 'IMMUTABLE_FIELD',
        message: `The ${name} of a feature with usage cannot change: its recorded quantities would change meaning. Create a new feature instead.`,
      })),
    };
  }
  if (input.unit != null) data.unit = input.unit;
  if (input.aggregation != null) data.aggregation = input.aggregation;
  const after = await tx.feature.update({ where: { id: before.id }, data });
  await recordAudit(tx, request.actor, { action: 'feature.update', realmId: request.realmId, targetType: 'Feature', targetId: before.id, before: audited(before), after: audited(after) });
  return { id: before.id };
}

/**
 * Archives a feature (`feature.archive`): hidden from `Realm.features` unless asked for, refused by
 * ingestion from now on; its usage, licenses and prices stay and keep being reported and billed.
 */
export async function archiveFeature(tx: Tx, request: AdminRequest, id: string): Promise<AdminResult> {
  const archived = await tx.feature.updateManyAndReturn({ where: { id, realmId: request.realmId, archivedAt: null }, data: { archivedAt: request.now } });
  const feature = archived[0];
  if (!feature) {
    const existing = await tx.feature.findFirst({ where: { id, realmId: request.realmId }, select: { id: true } });
    return existing ? failed(['id'], 'ALREADY_ARCHIVED', 'This feature is already archived.') : failed(['id'], 'NOT_FOUND', 'No such feature.');
  }
  await recordAudit(tx, request.actor, {
    action: 'feature.archive',
    realmId: request.realmId,
    targetType: 'Feature',
    targetId: feature.id,
    before: { archivedAt: null },
    after: { archivedAt: feature.archivedAt },
  });
  return { id: feature.id };
}

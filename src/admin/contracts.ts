import { recordAudit } from './audit.js';
import { failed, type AdminRequest, type AdminResult, type Tx } from './admin-request.js';
import { createIdempotently } from './idempotency.js';
import { checkName } from './names.js';
import { dec, type Decimal, type DecimalLike } from '../billing/decimal.js';
import type { UserError } from '../schema/user-error.js';

export interface LicenseQuantity {
  /** The seed's deterministic ids; the API lets the database choose. */
  id?: string;
  /** The feature's uuid (a uuid no feature has answers NOT_FOUND). */
  featureId: string;
  quantityPerMonth: DecimalLike;
}

export interface ContractInput {
  /** The seed's deterministic ids; the API lets the database choose. */
  id?: string;
  name: string;
  startsAt: Date;
  /** Exclusive. */
  endsAt: Date;
  licenses: readonly LicenseQuantity[];
  idempotencyKey?: string | null;
}

export interface LicenseAmendment extends LicenseQuantity {
  /** The new quantity applies from this instant to the contract's end. */
  effectiveFrom: Date;
}

export interface ContractAmendment {
  /** The contract's uuid. */
  id: string;
  /** The new end (exclusive); null or undefined: unchanged. */
  endsAt?: Date | null;
  licenses?: readonly LicenseAmendment[] | null;
}

/** Whether a decimal fits a column of `scale` decimals and `integerDigits` before the point. */
export function fitsColumn(value: Decimal, integerDigits: number, scale: number): boolean {
  return value.decimalPlaces() <= scale && value.abs().lessThan(dec(10).pow(integerDigits));
}

function quantityProblem(value: DecimalLike, field: string[]): { quantity: Decimal } | { error: UserError } {
  const quantity = dec(value);
  if (quantity.isNegative()) return { error: { field, code: 'INVALID_QUANTITY', message: 'A licensed quantity cannot be negative.' } };
  if (!fitsColumn(quantity, 21, 9)) return { error: { field, code: 'INVALID_QUANTITY', message: 'A licensed quantity has at most 21 digits before the point and 9 after.' } };
  return { quantity };
}

/**
 * Serialises the contract changes of one realm: "contracts do not overlap" is checked and kept by
 * one request at a time (a transaction-scoped advisory lock, taken before the check reads).
 */
async function lockRealmContracts(tx: Tx, realmId: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`realm-contracts:${realmId}`}, 0))`;
}

/** The realm's features named by licenses, in one read: id → archived or not. */
async function licensableFeatures(tx: Tx, realmId: string, ids: readonly string[]): Promise<Map<string, { archived: boolean }>> {
  if (!ids.length) return new Map();
  const rows = await tx.feature.findMany({ where: { realmId, id: { in: [...new Set(ids)] } }, select: { id: true, archivedAt: true } });
  return new Map(rows.map((f) => [f.id, { archived: f.archivedAt !== null }]));
}

async function overlappingContract(tx: Tx, realmId: string, startsAt: Date, endsAt: Date, exceptId: string | null): Promise<UserError | null> {
  const overlapping = await tx.contract.findFirst({
    where: { realmId, startsAt: { lt: endsAt }, endsAt: { gt: startsAt }, ...(exceptId ? { id: { not: exceptId } } : {}) },
    select: { name: true, startsAt: true, endsAt: true },
    orderBy: { startsAt: 'asc' },
  });
  if (!overlapping) return null;
  return {
    field: ['input', exceptId ? 'endsAt' : 'startsAt'],
    code: 'OVERLAPPING_CONTRACT',
    message: `Overlaps "${overlapping.name}" (${overlapping.startsAt.toISOString()} to ${overlapping.endsAt.toISOString()}); a realm's contracts do not overlap.`,
  };
}

interface StoredLicense {
  id: string;
  featureId: string;
  quantityPerMonth: DecimalLike;
  startsAt: Date | null;
  endsAt: Date | null;
}

/** A contract as the audit log keeps it: its dates and every license row, in a stable order. */
function auditedContract(contract: { name?: string; startsAt?: Date; endsAt: Date }, licenses: readonly StoredLicense[]) {
  const rows = [...licenses]
    .sort((a, b) => (a.featureId < b.featureId ? -1 : a.featureId > b.featureId ? 1 : (a.startsAt?.getTime() ?? 0) - (b.startsAt?.getTime() ?? 0)))
    .map((l) => ({ id: l.id, featureId: l.featureId, quantityPerMonth: dec(l.quantityPerMonth).toFixed(), startsAt: l.startsAt, endsAt: l.endsAt }));
  return { ...contract, licenses: rows };
}

/**
 * Creates a contract with its licenses (`contract.create`): a quantity per month of each product
 * for the whole contract. A realm's contracts do not overlap; a renewal starts where the previous
 * one ends. Run inside a transaction.
 */
export async function createContract(tx: Tx, request: AdminRequest, input: ContractInput): Promise<AdminResult> {
  const name = checkName(input.name, ['input', 'name']);
  if ('error' in name) return { userErrors: [name.error] };
  if (input.endsAt.getTime() <= input.startsAt.getTime()) return failed(['input', 'endsAt'], 'INVALID_RANGE', '`endsAt` must be after `startsAt`.');
  const licenses: { id?: string; featureId: string; quantityPerMonth: Decimal }[] = [];
  for (const [i, license] of input.licenses.entries()) {
    const checked = quantityProblem(license.quantityPerMonth, ['input', 'licenses', String(i), 'quantityPerMonth']);
    if ('error' in checked) return { userErrors: [checked.error] };
    if (licenses.some((l) => l.featureId === license.featureId)) return failed(['input', 'licenses', String(i), 'featureId'], 'DUPLICATE_LICENSE', 'A contract licenses each product once.');
    licenses.push({ ...(license.id ? { id: license.id } : {}), featureId: license.featureId, quantityPerMonth: checked.quantity });
  }
  return createIdempotently(
    tx,
    { scope: request.idempotencyScope, key: input.idempotencyKey, action: 'contract.create', input: { ...input, idempotencyKey: undefined }, now: request.now },
    async () => {
      const features = await licensableFeatures(tx, request.realmId, licenses.map((l) => l.featureId));
      for (const [i, license] of licenses.entries()) {
        const feature = features.get(license.featureId);
        if (!feature) return failed(['input', 'licenses', String(i), 'featureId'], 'NOT_FOUND', 'No such feature.');
        if (feature.archived) return failed(['input', 'licenses', String(i), 'featureId'], 'ARCHIVED', 'An archived feature cannot be licensed.');
      }
      await lockRealmContracts(tx, request.realmId);
      const overlap = await overlappingContract(tx, request.realmId, input.startsAt, input.endsAt, null);
      if (overlap) return { userErrors: [overlap] };
      const contract = await tx.contract.create({
        data: { ...(input.id ? { id: input.id } : {}), realmId: request.realmId, name: name.name, startsAt: input.startsAt, endsAt: input.endsAt, createdAt: request.now, licenses: { create: licenses.map((l) => ({ ...l, createdAt: request.now })) } },
        select: { id: true, name: true, startsAt: true, endsAt: true, licenses: { select: { id: true, featureId: true, quantityPerMonth: true, startsAt: true, endsAt: true } } },
      });
      await recordAudit(tx, request.actor, {
        action: 'contract.create',
        realmId: request.realmId,
        targetType: 'Contract',
        targetId: contract.id,
        before: null,
        after: auditedContract({ name: contract.name, startsAt: contract.startsAt, endsAt: contract.endsAt }, contract.licenses),
      });
      return { id: contract.id };
    },
  );
}

/** When a license row takes effect: its own start, or its contract's. */
const effectiveStart = (contract: { startsAt: Date }, license: { startsAt: Date | null }) => license.startsAt ?? contract.startsAt;

/**
 * Amends a contract (`contract.amend`): a new end date (after its start, not overlapping the next
 * contract), and products' quantities from a date. Changing a quantity from `effectiveFrom` ends the
 * license row in force then at `effectiveFrom` and starts a new row there, so what was licensed
 * before stays as it was (and so do the months before); a product the contract did not license is
 * added from `effectiveFrom`. An amendment continues a product's history: it cannot start before
 * the product's latest change (INVALID_RANGE); one at exactly that instant corrects its quantity.
 * Run inside a transaction; the audit entry holds the contract's rows before and after.
 */
export async function amendContract(tx: Tx, request: AdminRequest, input: ContractAmendment): Promise<AdminResult> {
  const amendments = input.licenses ?? [];
  const quantities: Decimal[] = [];
  for (const [i, amendment] of amendments.entries()) {
    const checked = quantityProblem(amendment.quantityPerMonth, ['input', 'licenses', String(i), 'quantityPerMonth']);
    if ('error' in checked) return { userErrors: [checked.error] };
    if (amendments.slice(0, i).some((a) => a.featureId === amendment.featureId)) {
      return failed(['input', 'licenses', String(i), 'featureId'], 'DUPLICATE_LICENSE', 'An amendment changes each product once.');
    }
    quantities.push(checked.quantity);
  }

  await lockRealmContracts(tx, request.realmId);
  const contract = await tx.contract.findFirst({
    where: { id: input.id, realmId: request.realmId },
    select: { id: true, name: true, startsAt: true, endsAt: true, licenses: { select: { id: true, featureId: true, quantityPerMonth: true, startsAt: true, endsAt: true } } },
  });
  if (!contract) return failed(['input', 'id'], 'NOT_FOUND', 'No such contract.');

  const endsAt = input.endsAt ?? contract.endsAt;
  if (endsAt.getTime() <= contract.startsAt.getTime()) return failed(['input', 'endsAt'], 'INVALID_RANGE', `\`endsAt\` must be after the contract's start (${contract.startsAt.toISOString()}).`);
  if (endsAt.getTime() > contract.endsAt.getTime()) {
    const overlap = await overlappingContract(tx, request.realmId, contract.startsAt, endsAt, contract.id);
    if (overlap) return { userErrors: [overlap] };
  }
  const startsAfterEnd = contract.licenses.find((l) => effectiveStart(contract, l).getTime() >= endsAt.getTime());
  if (startsAfterEnd) {
    return failed(['input', 'endsAt'], 'INVALID_RANGE', `A license of this contract starts at ${effectiveStart(contract, startsAfterEnd).toISOString()}: the contract cannot end before it.`);
  }

  const features = await licensableFeatures(tx, request.realmId, amendments.map((a) => a.featureId));
  type Change = { update?: { id: string; data: { quantityPerMonth?: Decimal; endsAt?: Date } }; create?: { featureId: string; quantityPerMonth: Decimal; startsAt: Date | null; endsAt: Date | null } };
  const changes: Change[] = [];
  for (const [i, amendment] of amendments.entries()) {
    const at = (name: string) => ['input', 'licenses', String(i), name];
    const feature = features.get(amendment.featureId);
    if (!feature) return failed(at('featureId'), 'NOT_FOUND', 'No such feature.');
    const from = amendment.effectiveFrom;
    if (from.getTime() < contract.startsAt.getTime() || from.getTime() >= endsAt.getTime()) {
      return failed(at('effectiveFrom'), 'INVALID_RANGE', `\`effectiveFrom\` must be within the contract (${contract.startsAt.toISOString()} to ${endsAt.toISOString()}).`);
    }
    const quantity = quantities[i]!;
    const rows = contract.licenses.filter((l) => l.featureId === amendment.featureId).sort((a, b) => effectiveStart(contract, a).getTime() - effectiveStart(contract, b).getTime());
    const latest = rows[rows.length - 1];
    if (!latest) {
      if (feature.archived) return failed(at('featureId'), 'ARCHIVED', 'An archived feature cannot be licensed.');
      changes.push({ create: { featureId: amendment.featureId, quantityPerMonth: quantity, startsAt: from.getTime() === contract.startsAt.getTime() ? null : from, endsAt: null } });
      continue;
    }
    const latestStart = effectiveStart(contract, latest);
    if (from.getTime() < latestStart.getTime()) {
      return failed(at('effectiveFrom'), 'INVALID_RANGE', `This product's quantity last changed at ${latestStart.toISOString()}: an amendment cannot start before it.`);
    }
    const inForce = latest.endsAt === null || from.getTime() < latest.endsAt.getTime();
    if (inForce && dec(latest.quantityPerMonth).equals(quantity)) continue; // nothing changes
    if (from.getTime() === latestStart.getTime()) {
      changes.push({ update: { id: latest.id, data: { quantityPerMonth: quantity } } });
    } else if (inForce) {
      changes.push({ update: { id: latest.id, data: { endsAt: from } }, create: { featureId: amendment.featureId, quantityPerMonth: quantity, startsAt: from, endsAt: latest.endsAt } });
    } else {
      changes.push({ create: { featureId: amendment.featureId, quantityPerMonth: quantity, startsAt: from, endsAt: null } });
    }
  }

  if (endsAt.getTime() === contract.endsAt.getTime() && !changes.length) return { id: contract.id };
  if (endsAt.getTime() !== contract.endsAt.getTime()) await tx.contract.update({ where: { id: contract.id }, data: { endsAt } });
  for (const change of changes) if (change.update) await tx.license.update({ where: { id: change.update.id }, data: change.update.data });
  const created = changes.flatMap((c) => (c.create ? [{ ...c.create, contractId: contract.id, createdAt: request.now }] : []));
  if (created.length) await tx.license.createMany({ data: created });
  const after = await tx.license.findMany({ where: { contractId: contract.id }, select: { id: true, featureId: true, quantityPerMonth: true, startsAt: true, endsAt: true } });
  await recordAudit(tx, request.actor, {
    action: 'contract.amend',
    realmId: request.realmId,
    targetType: 'Contract',
    targetId: contract.id,
    before: auditedContract({ endsAt: contract.endsAt }, contract.licenses),
    after: auditedContract({ endsAt }, after),
  });
  return { id: contract.id };
}

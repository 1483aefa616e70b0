/**
 * Credit grants and on-demand prices: plain functions over a transaction, so that the GraphQL
 * mutations (`createCreditGrant`, `setPrice` in src/schema/billing.ts), the demo seed and scripts
 * share them. Each validates everything before it writes and appends one audit entry.
 */
import { recordAudit } from './audit.js';
import { failed, type AdminRequest, type AdminResult, type Tx } from './admin-request.js';
import { fitsColumn } from './contracts.js';
import { createIdempotently } from './idempotency.js';
import { CREDITS_PER_SPACE } from '../billing/categories.js';
import { dec, type Decimal, type DecimalLike } from '../billing/decimal.js';
import type { CreditKind } from '../generated/prisma/enums.js';

export interface CreditGrantInput {
  /** The seed's deterministic ids; the API lets the database choose. */
  id?: string;
  kind: CreditKind;
  /** Exactly one of `credits` and `spaces` (PRIVATE_SPACE / SHIELD_SPACE only: spaces × 1,000 / × 3,000). */
  credits?: DecimalLike | null;
  spaces?: DecimalLike | null;
  startsAt: Date;
  /** Exclusive; null: open-ended. */
  endsAt?: Date | null;
  idempotencyKey?: string | null;
}

/** Grants credits per month (`creditGrant.create`). Run inside a transaction. */
export async function createCreditGrant(tx: Tx, request: AdminRequest, input: CreditGrantInput): Promise<AdminResult> {
  if ((input.credits == null) === (input.spaces == null)) return failed(['input', 'credits'], 'INVALID_QUANTITY', 'Give either `credits` or `spaces`.');
  let credits: Decimal;
  if (input.spaces != null) {
    if (input.kind === 'GENERAL') return failed(['input', 'spaces'], 'INVALID_QUANTITY', '`spaces` is for PRIVATE_SPACE and SHIELD_SPACE credits; give GENERAL credits in `credits`.');
    const spaces = dec(input.spaces);
    if (spaces.isNegative()) return failed(['input', 'spaces'], 'INVALID_QUANTITY', 'A number of spaces cannot be negative.');
    credits = spaces.mul(CREDITS_PER_SPACE[input.kind]);
  } else {
    credits = dec(input.credits!);
    if (credits.isNegative()) return failed(['input', 'credits'], 'INVALID_QUANTITY', 'Credits cannot be negative.');
  }
  if (!fitsColumn(credits, 21, 9)) return failed(['input', input.spaces != null ? 'spaces' : 'credits'], 'INVALID_QUANTITY', 'Credits have at most 21 digits before the point and 9 after.');
  if (input.endsAt && input.endsAt.getTime() <= input.startsAt.getTime()) return failed(['input', 'endsAt'], 'INVALID_RANGE', '`endsAt` must be after `startsAt`.');
  const { id, idempotencyKey, ...asked } = input;
  return createIdempotently(tx, { scope: request.idempotencyScope, key: idempotencyKey, action: 'creditGrant.create', input: asked, now: request.now }, async () => {
    const grant = await tx.creditGrant.create({
      data: { ...(id ? { id } : {}), realmId: request.realmId, kind: input.kind, credits, startsAt: input.startsAt, endsAt: input.endsAt ?? null, createdAt: request.now },
      select: { id: true, kind: true, credits: true, startsAt: true, endsAt: true },
    });
    const { id: grantId, ...after } = grant;
    await recordAudit(tx, request.actor, { action: 'creditGrant.create', realmId: request.realmId, targetType: 'CreditGrant', targetId: grantId, before: null, after });
    return { id: grantId };
  });
}

export interface PriceInput {
  /** The seed's deterministic ids (for a new price); the API lets the database choose. */
  id?: string;
  /** The feature's uuid (one of another realm, or none: NOT_FOUND). */
  featureId: string;
  unitAmount: DecimalLike;
  /** ISO 4217; one currency per realm. */
  currency: string;
  /** A price set again for the same instant replaces it. */
  validFrom: Date;
}

/** Sets the on-demand price of a product from a date (`price.set`). Run inside a transaction. */
export async function setPrice(tx: Tx, request: AdminRequest, input: PriceInput): Promise<AdminResult> {
  const unitAmount = dec(input.unitAmount);
  if (unitAmount.isNegative()) return failed(['input', 'unitAmount'], 'INVALID_PRICE', 'A price cannot be negative.');
  if (!fitsColumn(unitAmount, 18, 12)) return failed(['input', 'unitAmount'], 'INVALID_PRICE', 'A price has at most 18 digits before the point and 12 after.');
  if (!/^[A-Z]{3}$/.test(input.currency)) return failed(['input', 'currency'], 'INVALID_CURRENCY', 'A currency is an ISO 4217 code of three capital letters, e.g. "EUR".');
  const { realmId } = request;
  const { featureId, currency, validFrom } = input;
  // One realm's price changes one at a time: the one-currency check holds against concurrent calls.
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`realm-prices:${realmId}`}, 0))`;
  const feature = await tx.feature.findFirst({ where: { id: featureId, realmId }, select: { id: true } });
  if (!feature) return failed(['input', 'featureId'], 'NOT_FOUND', 'No such feature.');
  const other = await tx.price.findFirst({ where: { realmId, currency: { not: currency } }, select: { currency: true } });
  if (other) return failed(['input', 'currency'], 'CURRENCY_MISMATCH', `This realm's prices are in ${other.currency}; a realm is billed in one currency.`);
  const previous = await tx.price.findUnique({ where: { featureId_validFrom: { featureId, validFrom } }, select: { unitAmount: true, currency: true } });
  const price = await tx.price.upsert({
    where: { featureId_validFrom: { featureId, validFrom } },
    create: { ...(input.id ? { id: input.id } : {}), realmId, featureId, unitAmount, currency, validFrom, createdAt: request.now },
    update: { unitAmount, currency },
    select: { id: true },
  });
  await recordAudit(tx, request.actor, {
    action: 'price.set',
    realmId,
    targetType: 'Price',
    targetId: price.id,
    before: previous && { featureId, validFrom, unitAmount: previous.unitAmount, currency: previous.currency },
    after: { featureId, validFrom, unitAmount, currency },
  });
  return { id: price.id };
}

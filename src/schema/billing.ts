import { UserErrorRef, type UserError } from './user-error.js';
import { builder } from '../builder.js';
import type { Context } from '../context.js';
import { badUserInput } from '../errors.js';
import { CreditKind } from '../generated/prisma/enums.js';
import type { Feature } from '../generated/prisma/client.js';
import { billMonths, billingWindow, BILLING_MONTHS, type BilledMonth } from '../billing/billing-loader.js';
import { isMonthName, monthOf } from '../billing/calendar.js';
import { CREDIT_CATEGORIES, CREDITS_PER_SPACE } from '../billing/categories.js';
import type { ProductCoverage } from '../billing/coverage.js';
import { sum, type Decimal } from '../billing/decimal.js';
import { invoiceLines, type InvoiceLine } from '../billing/invoice.js';
import { FeatureNode } from './feature.js';
import { TimeRangeRef, UsagePointRef } from './usage.js';
import { BILLING_SCOPES, BILLING_WRITE_SCOPES, visibleBilling } from './visibility.js';
import { pointCoverage, type CoveragePortion } from '../usage/coverage-loader.js';
import { adminRequestOf, decodeInputId } from '../admin/admin-request.js';
import { createCreditGrant, setPrice } from '../admin/credits-prices.js';

// ─── Output types ─────────────────────────────────────────────────────────────────────────────

const CreditKindEnum = builder.enumType(CreditKind, {
  name: 'CreditKind',
  description: 'GENERAL: add-on credits for any product. PRIVATE_SPACE / SHIELD_SPACE: credits that come with spaces (1,000 / 3,000 per space and month).',
});
const CreditCategoryEnum = builder.enumType('CreditCategory', {
  values: CREDIT_CATEGORIES,
  description:
    'The order general add-on credits are spent in. SHIELD_SPACE: unit SPACE with "shield" in the key or service; PRIVATE_SPACE: other SPACE units; DATA_ADDON: units ROW, GB, GB_MONTH or service "data"; THIRD_PARTY_ADDON: everything else.',
});

interface Money {
  amount: Decimal;
  currency: string;
}
const MoneyRef = builder.objectRef<Money>('Money').implement({
  description: 'An exact amount of money.',
  fields: (t) => ({
    amount: t.expose('amount', { type: 'Decimal' }),
    currency: t.exposeString('currency', { description: 'ISO 4217 code, e.g. "EUR".' }),
  }),
});
const money = (amount: Decimal | null, currency: string | null): Money | null => (amount && currency ? { amount, currency } : null);

/** A product's coverage, with the request's features to resolve `feature`. */
interface ProductRow {
  coverage: ProductCoverage;
  feature: Feature;
}

const ProductUsageRef = builder.objectRef<ProductRow>('ProductUsage').implement({
  description:
    'One product (feature) in one month: licensed vs used, and how the use is paid for. used = coveredByLicense + coveredByCredits + onDemand; licensed = coveredByLicense + unusedLicensed.',
  fields: (t) => ({
    feature: t.field({ type: FeatureNode, resolve: (p) => p.feature }),
    category: t.field({ type: CreditCategoryEnum, resolve: (p) => p.coverage.category }),
    licensed: t.field({ type: 'Decimal', description: 'Licensed quantity for the month, prorated by days under each contract.', resolve: (p) => p.coverage.licensed }),
    used: t.field({ type: 'Decimal', description: 'By the feature\'s aggregation; spaces in space-months (hours in use / hours in the month).', resolve: (p) => p.coverage.used }),
    coveredByLicense: t.field({ type: 'Decimal', resolve: (p) => p.coverage.coveredByLicense }),
    unusedLicensed: t.field({ type: 'Decimal', resolve: (p) => p.coverage.unusedLicensed }),
    coveredByCredits: t.field({ type: 'Decimal', description: 'Quantity paid with credits.', resolve: (p) => p.coverage.coveredByCredits }),
    creditsApplied: t.field({ type: 'Decimal', description: 'Credits spent on this product (coveredByCredits × unit price).', resolve: (p) => p.coverage.creditsApplied }),
    onDemand: t.field({ type: 'Decimal', description: 'Quantity beyond license and credits.', resolve: (p) => p.coverage.onDemand }),
    exceeding: t.field({ type: 'Decimal', description: 'Same as `onDemand`.', resolve: (p) => p.coverage.onDemand }),
    unitPrice: t.field({ type: MoneyRef, nullable: true, description: 'On-demand price of one unit for the month; null: no price set.', resolve: (p) => money(p.coverage.unitPrice, p.coverage.currency) }),
    onDemandCost: t.field({ type: MoneyRef, nullable: true, description: 'onDemand × unit price, exact; null without a price.', resolve: (p) => money(p.coverage.onDemandCost, p.coverage.currency) }),
  }),
});

interface CreditTotals {
  available: Decimal;
  applied: Decimal;
  remaining: Decimal;
}
const CreditBalanceRef = builder.objectRef<CreditTotals>('CreditBalance').implement({
  description: 'Credits of every kind for the month (grants prorated by days in force).',
  fields: (t) => ({
    available: t.expose('available', { type: 'Decimal' }),
    applied: t.expose('applied', { type: 'Decimal' }),
    remaining: t.expose('remaining', { type: 'Decimal' }),
  }),
});

const poolTotal = (p: { general: Decimal; privateSpace: Decimal; shieldSpace: Decimal }) => sum([p.general, p.privateSpace, p.shieldSpace]);

export const BillingMonthRef = builder.objectRef<BilledMonth>('BillingMonth').implement({
  description: 'Licensed vs used for one calendar month of the realm (in its time zone); the current month is month to date.',
  fields: (t) => ({
    month: t.string({ description: '"YYYY-MM".', resolve: (m) => m.month.month }),
    range: t.field({ type: TimeRangeRef, description: 'The usage read: the month, or up to the end of the current hour.', resolve: (m) => m.range }),
    timeZone: t.field({ type: 'TimeZone', resolve: (m) => m.timeZone }),
    products: t.field({
      type: [ProductUsageRef],
      description: 'Every product used or licensed in the month, by feature key.',
      resolve: (m) => productRows(m),
    }),
    credits: t.field({
      type: CreditBalanceRef,
      resolve: (m) => ({
        available: poolTotal(m.coverage.creditsAvailable),
        applied: m.coverage.creditsApplied,
        remaining: poolTotal(m.coverage.creditsRemaining),
      }),
    }),
  }),
});

function productRows(m: BilledMonth): ProductRow[] {
  return m.coverage.products.map((coverage) => ({ coverage, feature: m.features.get(coverage.featureId)! }));
}

interface InvoiceView {
  billed: BilledMonth;
  lines: (InvoiceLine & { feature: Feature })[];
  currency: string | null;
  subtotal: Decimal;
  creditsApplied: Decimal;
  total: Decimal;
  warnings: string[];
  isFinal: boolean;
}

const InvoiceLineRef = builder.objectRef<InvoiceView['lines'][number]>('InvoiceLine').implement({
  description: 'One product billed beyond its license: amount = quantity × unitPrice; total = amount − creditsApplied. Exact.',
  fields: (t) => ({
    feature: t.field({ type: FeatureNode, resolve: (l) => l.feature }),
    used: t.expose('used', { type: 'Decimal', description: 'The month\'s usage of the product (see `Realm.usageHistory`).' }),
    coveredByLicense: t.expose('coveredByLicense', { type: 'Decimal' }),
    quantity: t.expose('quantity', { type: 'Decimal', description: 'Billable quantity: used − coveredByLicense.' }),
    unitPrice: t.expose('unitPrice', { type: 'Decimal' }),
    amount: t.expose('amount', { type: 'Decimal' }),
    creditsApplied: t.expose('creditsApplied', { type: 'Decimal' }),
    total: t.expose('total', { type: 'Decimal' }),
  }),
});

const InvoicePreviewRef = builder.objectRef<InvoiceView>('InvoicePreview').implement({
  description: 'What a month would be invoiced: lines, credits applied, total. Amounts are exact, not rounded to cents.',
  fields: (t) => ({
    month: t.string({ resolve: (i) => i.billed.month.month }),
    range: t.field({ type: TimeRangeRef, resolve: (i) => i.billed.range }),
    currency: t.string({ nullable: true, description: 'The currency of every amount; null when nothing is billed.', resolve: (i) => i.currency }),
    lines: t.field({ type: [InvoiceLineRef], resolve: (i) => i.lines }),
    subtotal: t.field({ type: 'Decimal', description: 'Sum of line amounts.', resolve: (i) => i.subtotal }),
    creditsApplied: t.field({ type: 'Decimal', resolve: (i) => i.creditsApplied }),
    total: t.field({ type: 'Decimal', description: 'subtotal − creditsApplied.', resolve: (i) => i.total }),
    isFinal: t.boolean({
      description: "True once the month is over and every feature's arrival delay has passed since (or ingestion finalized it): no more usage of the month can arrive.",
      resolve: (i) => i.isFinal,
    }),
    warnings: t.stringList({ resolve: (i) => i.warnings }),
  }),
});

// ─── Queries ──────────────────────────────────────────────────────────────────────────────────

async function realmTimeZone(ctx: Context, realmId: string): Promise<string> {
  const realm = await ctx.prisma.realm.findUniqueOrThrow({ where: { id: realmId }, select: { timeZone: true } });
  return realm.timeZone;
}

builder.prismaObjectField('Realm', 'currentUsage', (t) =>
  t.field({
    type: BillingMonthRef,
    description: 'This month to date (in the realm\'s time zone), per product: licensed, used, covered by license, by credits, and on demand with its cost.',
    authScopes: BILLING_SCOPES,
    resolve: async (realm, _args, ctx) => {
      const month = monthOf(ctx.now, await realmTimeZone(ctx, realm.id));
      const [billed] = await billMonths(ctx, realm.id, [month]);
      return billed!;
    },
  }),
);

builder.prismaObjectField('Realm', 'usageHistory', (t) =>
  t.field({
    type: [BillingMonthRef],
    description: `The last \`months\` calendar months (1 to ${BILLING_MONTHS}, this one included, oldest first), per product: unused licensed, covered by license, covered by credits, exceeding.`,
    authScopes: BILLING_SCOPES,
    args: { months: t.arg.int({ defaultValue: BILLING_MONTHS }) },
    resolve: async (realm, args, ctx) => {
      const count = args.months ?? BILLING_MONTHS;
      if (!Number.isInteger(count) || count < 1 || count > BILLING_MONTHS) {
        throw badUserInput(`\`months\` is 1 to ${BILLING_MONTHS} (got ${count}).`, 'INVALID_RANGE', { min: 1, max: BILLING_MONTHS });
      }
      const window = billingWindow(ctx.now, await realmTimeZone(ctx, realm.id));
      return billMonths(ctx, realm.id, window.slice(window.length - count));
    },
  }),
);

builder.prismaObjectField('Realm', 'invoicePreview', (t) =>
  t.field({
    type: InvoicePreviewRef,
    description: `The invoice of a month ("YYYY-MM", in the realm's time zone; this month or one of the ${BILLING_MONTHS - 1} before it): one line per product used beyond its license.`,
    authScopes: BILLING_SCOPES,
    args: { month: t.arg.string({ required: true }) },
    resolve: async (realm, args, ctx) => {
      if (!isMonthName(args.month)) throw badUserInput(`"${args.month}" is not a month: use "YYYY-MM".`, 'INVALID_RANGE');
      const window = billingWindow(ctx.now, await realmTimeZone(ctx, realm.id));
      if (!window.includes(args.month)) {
        throw badUserInput(`${args.month} is outside the last ${BILLING_MONTHS} months (${window[0]} to ${window[window.length - 1]}).`, 'INVALID_RANGE');
      }
      const [billed] = await billMonths(ctx, realm.id, [args.month]);
      const invoice = invoiceLines(billed!.coverage.products);
      const isFinal = billed!.isFinal;
      const warnings = invoice.unpriced.map((p) => `${billed!.features.get(p.featureId)!.key}: ${p.used.minus(p.coveredByLicense).toFixed()} beyond the license has no price and is not invoiced.`);
      if (args.month === window[window.length - 1]) warnings.unshift('This month is not over: the preview covers usage so far.');
      else if (!isFinal) warnings.unshift('Usage of this month can still arrive (within the features\' arrival delay): the preview may change.');
      return {
        billed: billed!,
        lines: invoice.lines.map((l) => ({ ...l, feature: billed!.features.get(l.featureId)! })),
        currency: invoice.currency,
        subtotal: invoice.subtotal,
        creditsApplied: invoice.creditsApplied,
        total: invoice.total,
        warnings,
        isFinal,
      };
    },
  }),
);

// ─── Mutations ────────────────────────────────────────────────────────────────────────────────
// Contract, credit, price and quota-rule mutations need `billing:write` on a realm-wide key; each
// writes its change and its audit entry in one transaction.

const USER_ERROR = UserErrorRef;

export const CreditGrantNode = builder.prismaNode('CreditGrant', {
  description: 'Credits per month: general add-on credits, or credits that come with private (1,000) or shield (3,000) spaces.',
  authScopes: BILLING_SCOPES,
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [visibleBilling(ctx)] }),
  fields: (t) => ({
    kind: t.expose('kind', { type: CreditKindEnum }),
    credits: t.expose('credits', { type: 'Decimal', description: 'Credits per month (prorated by days in force).' }),
    startsAt: t.expose('startsAt', { type: 'DateTime' }),
    endsAt: t.expose('endsAt', { type: 'DateTime', nullable: true }),
  }),
});

builder.prismaObject('Price', {
  authScopes: BILLING_SCOPES,
  description: 'On-demand price of one unit of a feature, from a date. A month is billed at the price in force when it starts.',
  fields: (t) => ({
    feature: t.relation('feature'),
    unitAmount: t.expose('unitAmount', { type: 'Decimal' }),
    currency: t.exposeString('currency'),
    validFrom: t.expose('validFrom', { type: 'DateTime' }),
  }),
});

// createContract and amendContract: src/schema/contract-admin.ts (logic in src/admin/contracts.ts).

const CreateCreditGrantInput = builder.inputType('CreateCreditGrantInput', {
  fields: (t) => ({
    kind: t.field({ type: CreditKindEnum, required: true }),
    credits: t.field({ type: 'Decimal', description: 'Credits per month. Give this or `spaces`.' }),
    spaces: t.field({ type: 'Decimal', description: `PRIVATE_SPACE / SHIELD_SPACE only: spaces, turned into credits (× ${CREDITS_PER_SPACE.PRIVATE_SPACE} / × ${CREDITS_PER_SPACE.SHIELD_SPACE}).` }),
    startsAt: t.field({ type: 'DateTime', required: true }),
    endsAt: t.field({ type: 'DateTime', description: 'Exclusive; null: open-ended.' }),
    idempotencyKey: t.string({ description: 'The same key and input again answers the same grant; another input with it is IDEMPOTENCY_MISMATCH.' }),
  }),
});

interface CreditGrantPayload {
  creditGrantId: string | null;
  userErrors: UserError[];
}
const CreateCreditGrantPayload = builder.objectRef<CreditGrantPayload>('CreateCreditGrantPayload').implement({
  fields: (t) => ({
    creditGrant: t.prismaField({
      type: 'CreditGrant',
      nullable: true,
      resolve: (query, p, _args, ctx) => (p.creditGrantId ? ctx.prisma.creditGrant.findUnique({ ...query, where: { id: p.creditGrantId } }) : null),
    }),
    userErrors: t.field({ type: [USER_ERROR], resolve: (p) => p.userErrors as never }),
  }),
});

builder.mutationField('createCreditGrant', (t) =>
  t.field({
    type: CreateCreditGrantPayload,
    description: 'Grants credits per month: general add-on credits, or space credits (1 space = 1,000 credits, 1 shield space = 3,000). Needs `billing:write` on a realm-wide key.',
    authScopes: BILLING_WRITE_SCOPES,
    args: { input: t.arg({ type: CreateCreditGrantInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const result = await ctx.prisma.$transaction((tx) => createCreditGrant(tx, adminRequestOf(ctx), input));
      return 'id' in result ? { creditGrantId: result.id, userErrors: [] } : { creditGrantId: null, userErrors: result.userErrors };
    },
  }),
);

const SetPriceInput = builder.inputType('SetPriceInput', {
  fields: (t) => ({
    featureId: t.id({ required: true }),
    unitAmount: t.field({ type: 'Decimal', required: true, description: 'Price of one unit (at most 12 decimals).' }),
    currency: t.string({ required: true, description: 'ISO 4217, e.g. "EUR"; one currency per realm.' }),
    validFrom: t.field({ type: 'DateTime', required: true, description: 'A price set again for the same instant replaces it.' }),
  }),
});

interface PricePayload {
  priceId: string | null;
  userErrors: UserError[];
}
const SetPricePayload = builder.objectRef<PricePayload>('SetPricePayload').implement({
  fields: (t) => ({
    price: t.prismaField({
      type: 'Price',
      nullable: true,
      resolve: (query, p, _args, ctx) => (p.priceId ? ctx.prisma.price.findUnique({ ...query, where: { id: p.priceId } }) : null),
    }),
    userErrors: t.field({ type: [USER_ERROR], resolve: (p) => p.userErrors as never }),
  }),
});

builder.mutationField('setPrice', (t) =>
  t.field({
    type: SetPricePayload,
    description: 'Sets the on-demand price of a product from a date. Needs `billing:write` on a realm-wide key.',
    authScopes: BILLING_WRITE_SCOPES,
    args: { input: t.arg({ type: SetPriceInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      // A global id of another type or a malformed one names no feature: NOT_FOUND, like another realm's.
      const featureId = decodeInputId(input.featureId, 'Feature') ?? '00000000-0000-0000-0000-000000000000';
      const result = await ctx.prisma.$transaction((tx) => setPrice(tx, adminRequestOf(ctx), { ...input, featureId }));
      return 'id' in result ? { priceId: result.id, userErrors: [] } : { priceId: null, userErrors: result.userErrors };
    },
  }),
);

// ─── Lists ────────────────────────────────────────────────────────────────────────────────────

builder.prismaObjectField('Realm', 'creditGrants', (t) =>
  t.relatedConnection('creditGrants', {
    cursor: 'id',
    totalCount: true,
    description: 'Credit grants of the realm, by start date.',
    authScopes: BILLING_SCOPES,
    query: () => ({ orderBy: [{ startsAt: 'asc' }, { id: 'asc' }] }),
  }),
);

builder.prismaObjectField('Realm', 'prices', (t) =>
  t.relatedConnection('prices', {
    cursor: 'id',
    totalCount: true,
    description: 'On-demand prices of the realm, by date.',
    authScopes: BILLING_SCOPES,
    query: () => ({ orderBy: [{ validFrom: 'asc' }, { id: 'asc' }] }),
  }),
);

// ─── Coverage of usage points ─────────────────────────────────────────────────────────────────

const CoverageSourceEnum = builder.enumType('CoverageSource', {
  values: ['LICENSE', 'CREDIT_GRANT', 'ON_DEMAND'] as const,
  description: 'What paid for usage: a license, the credits of a credit grant, or nothing (on demand, at the unit price).',
});

const UsageCoverageRef = builder.objectRef<CoveragePortion>('UsageCoverage').implement({
  description: "A share of a usage point and what paid for it, as the month's billing (`Realm.usageHistory`) counts it.",
  fields: (t) => ({
    source: t.field({ type: CoverageSourceEnum, resolve: (c) => c.source }),
    license: t.prismaField({
      type: 'License',
      nullable: true,
      description: 'LICENSE: the license.',
      resolve: (query, c, _args, ctx) => (c.source === 'LICENSE' && c.sourceId ? ctx.prisma.license.findUnique({ ...query, where: { id: c.sourceId } }) : null),
    }),
    creditGrant: t.prismaField({
      type: 'CreditGrant',
      nullable: true,
      description: 'CREDIT_GRANT: the grant whose credits paid.',
      resolve: (query, c, _args, ctx) => (c.source === 'CREDIT_GRANT' && c.sourceId ? ctx.prisma.creditGrant.findUnique({ ...query, where: { id: c.sourceId } }) : null),
    }),
    quantity: t.field({ type: 'Decimal', description: 'The part of the point paid this way, in the feature\'s unit.', resolve: (c) => c.quantity }),
    credits: t.field({ type: 'Decimal', nullable: true, description: 'CREDIT_GRANT: credits spent on it (quantity × the month\'s unit price); null otherwise.', resolve: (c) => c.credits }),
  }),
});

builder.objectField(UsagePointRef, 'coverage', (t) =>
  t.field({
    type: [UsageCoverageRef],
    nullable: true,
    authScopes: BILLING_SCOPES,
    description:
      "What paid for this point, as the month's billing counts it: licenses first, then credit grants (first in, first out), then on demand, " +
      "taking each realm month's hourly usage of the feature (the whole realm's, whatever the report's filters) in hour order. The quantities add up " +
      'to the point\'s quantity, and over a month to `Realm.usageHistory` coveredByLicense, coveredByCredits and onDemand exactly. ' +
      'Null for features whose monthly quantity is not the sum of their hours (MAX, LATEST, UNIQUE_COUNT aggregation, SPACE unit): ' +
      'an hour cannot be said to use a part of them. Usage after the current hour is not billed yet and has no coverage. ' +
      'Needs `billing:read` and a realm-wide key.',
    resolve: (point, _args, ctx) => pointCoverage(ctx, point),
  }),
);

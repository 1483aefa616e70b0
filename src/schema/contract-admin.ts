import { adminRequestOf, decodeInputId, failed, type AdminResult } from '../admin/admin-request.js';
import { amendContract, createContract } from '../admin/contracts.js';
import { builder } from '../builder.js';
import { NO_REALM } from '../context.js';
import { ContractNode } from './contract.js';
import { UserErrorRef } from './user-error.js';
import { BILLING_WRITE_SCOPES } from './visibility.js';

/** A feature's uuid from its global id; an id of another type or a malformed one names no feature (NOT_FOUND). */
const featureUuid = (globalId: string | number) => decodeInputId(String(globalId), 'Feature') ?? NO_REALM;

const LicenseInput = builder.inputType('LicenseInput', {
  fields: (t) => ({
    featureId: t.id({ required: true }),
    quantityPerMonth: t.field({ type: 'Decimal', required: true, description: 'At least 0; at most 21 digits before the point and 9 after.' }),
  }),
});

const CreateContractInput = builder.inputType('CreateContractInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: '1 to 200 characters.' }),
    startsAt: t.field({ type: 'DateTime', required: true }),
    endsAt: t.field({ type: 'DateTime', required: true, description: 'Exclusive. A renewal starts where the previous contract ends.' }),
    licenses: t.field({ type: [LicenseInput], required: true, defaultValue: [] }),
    idempotencyKey: t.string({ description: 'The same key and input again answers the same contract; another input with it is IDEMPOTENCY_MISMATCH.' }),
  }),
});

const LicenseAmendmentInput = builder.inputType('LicenseAmendmentInput', {
  fields: (t) => ({
    featureId: t.id({ required: true }),
    quantityPerMonth: t.field({ type: 'Decimal', required: true, description: 'The new quantity per month (0: the product stops being licensed).' }),
    effectiveFrom: t.field({
      type: 'DateTime',
      required: true,
      description:
        "From when (to the contract's end): within the contract, and not before the product's latest change. Billing gives each day of a month the quantity in force at its first instant (local midnight of the realm).",
    }),
  }),
});

const AmendContractInput = builder.inputType('AmendContractInput', {
  fields: (t) => ({
    id: t.id({ required: true, description: 'The contract.' }),
    endsAt: t.field({ type: 'DateTime', description: "A new end (exclusive): after the start, not overlapping the next contract, not before any license row's start. Null: unchanged." }),
    licenses: t.field({ type: [LicenseAmendmentInput], required: true, defaultValue: [], description: 'Products whose quantity changes (or that are added) from a date.' }),
  }),
});

const ContractPayload = (name: string) =>
  builder.objectRef<AdminResult>(name).implement({
    fields: (t) => ({
      contract: t.field({
        type: ContractNode,
        nullable: true,
        resolve: (p, _args, ctx) => ('id' in p ? ctx.prisma.contract.findFirst({ where: { id: p.id, realmId: ctx.viewer.realmId } }) : null),
      }),
      userErrors: t.field({ type: [UserErrorRef], resolve: (p) => ('userErrors' in p ? p.userErrors : []) }),
    }),
  });

builder.mutationField('createContract', (t) =>
  t.field({
    type: ContractPayload('CreateContractPayload'),
    description:
      "Creates a contract with its licenses (quantity per month per product). Contracts of a realm may not overlap; a renewal starts where the previous one ends. Needs `billing:write` on a realm-wide key.",
    authScopes: BILLING_WRITE_SCOPES,
    args: { input: t.arg({ type: CreateContractInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.prisma.$transaction((tx) =>
        createContract(tx, adminRequestOf(ctx), {
          ...input,
          licenses: input.licenses.map((l) => ({ featureId: featureUuid(l.featureId), quantityPerMonth: l.quantityPerMonth })),
        }),
      ),
  }),
);

builder.mutationField('amendContract', (t) =>
  t.field({
    type: ContractPayload('AmendContractPayload'),
    description:
      "Amends a contract: its end date, and products' quantities from a date (the license row in force then ends there and a new one starts, so earlier months stay as billed) or new products from a date. Needs `billing:write` on a realm-wide key.",
    authScopes: BILLING_WRITE_SCOPES,
    args: { input: t.arg({ type: AmendContractInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      const id = decodeInputId(String(input.id), 'Contract');
      if (!id) return failed(['input', 'id'], 'NOT_FOUND', 'No such contract.');
      return ctx.prisma.$transaction((tx) =>
        amendContract(tx, adminRequestOf(ctx), {
          id,
          endsAt: input.endsAt ?? null,
          licenses: input.licenses.map((l) => ({ featureId: featureUuid(l.featureId), quantityPerMonth: l.quantityPerMonth, effectiveFrom: l.effectiveFrom })),
        }),
      );
    },
  }),
);

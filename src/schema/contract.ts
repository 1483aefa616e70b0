import { licensePeriod } from '../billing/proration.js';
import { builder } from '../builder.js';
import { BILLING_SCOPES, visibleBilling, visibleLicenses } from './visibility.js';

export const ContractNode = builder.prismaNode('Contract', {
  description: 'An agreement with start and end dates, under which licenses are bought.',
  authScopes: BILLING_SCOPES,
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [visibleBilling(ctx)] }),
  fields: (t) => ({
    name: t.exposeString('name'),
    startsAt: t.expose('startsAt', { type: 'DateTime' }),
    endsAt: t.expose('endsAt', { type: 'DateTime' }),
    realm: t.relation('realm'),
    licenses: t.relatedConnection('licenses', {
      cursor: 'id',
      totalCount: true,
      description: 'License rows, oldest first (amended products have one row per period).',
      query: () => ({ orderBy: { id: 'asc' } }),
    }),
  }),
});

export const LicenseNode = builder.prismaNode('License', {
  description:
    'A licensed quantity of a product (a feature) per month over a period of its contract. A contract licenses a product with one row for its whole life, ' +
    'or, once amended, with consecutive rows: an amendment ends the row in force at its date and starts a new one there, so what was licensed before stays.',
  authScopes: BILLING_SCOPES,
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [visibleLicenses(ctx)] }),
  fields: (t) => ({
    quantityPerMonth: t.expose('quantityPerMonth', { type: 'Decimal' }),
    startsAt: t.field({
      type: 'DateTime',
      select: { startsAt: true, contract: { select: { startsAt: true, endsAt: true } } },
      description: "When this quantity takes effect: the contract's start, or the date of the amendment that set it.",
      resolve: (license) => licensePeriod(license.contract, license).startsAt,
    }),
    endsAt: t.field({
      type: 'DateTime',
      select: { endsAt: true, contract: { select: { startsAt: true, endsAt: true } } },
      description: "When it stops (exclusive): the contract's end, or the date of the amendment that replaced it.",
      resolve: (license) => licensePeriod(license.contract, license).endsAt,
    }),
    contract: t.relation('contract'),
    feature: t.relation('feature'),
  }),
});

builder.prismaObjectField('Realm', 'contracts', (t) =>
  t.relatedConnection('contracts', {
    cursor: 'id',
    totalCount: true,
    description: 'Contracts of the realm, by start date. Needs `billing:read` and a realm-wide key.',
    authScopes: BILLING_SCOPES,
    query: () => ({ orderBy: [{ startsAt: 'asc' }, { id: 'asc' }] }),
  }),
);

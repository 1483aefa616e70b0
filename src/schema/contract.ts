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
    licenses: t.relatedConnection('licenses', { cursor: 'id', totalCount: true, query: () => ({ orderBy: { id: 'asc' } }) }),
  }),
});

export const LicenseNode = builder.prismaNode('License', {
  description: 'A licensed quantity of a product (a feature) per month, for the life of its contract.',
  authScopes: BILLING_SCOPES,
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [visibleLicenses(ctx)] }),
  fields: (t) => ({
    quantityPerMonth: t.expose('quantityPerMonth', { type: 'Decimal' }),
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

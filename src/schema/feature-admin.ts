import { adminRequestOf, decodeInputId, failed, type AdminResult } from '../admin/admin-request.js';
import { archiveFeature, createFeature, MAX_ARRIVAL_DELAY_SECONDS, updateFeature } from '../admin/features.js';
import { builder } from '../builder.js';
import type { Aggregation, FeatureUnit } from '../generated/prisma/enums.js';
import { AggregationEnum, FeatureUnitEnum } from './enums.js';
import { FeatureNode } from './feature.js';
import { UserErrorRef } from './user-error.js';
import { REALM_ADMIN_WRITE_SCOPES } from './visibility.js';

const FeaturePayload = builder.objectRef<AdminResult>('FeaturePayload').implement({
  description: 'The feature created or changed, or what was wrong with the input (then `feature` is null).',
  fields: (t) => ({
    feature: t.field({
      type: FeatureNode,
      nullable: true,
      resolve: (p, _args, ctx) => ('id' in p ? ctx.prisma.feature.findFirst({ where: { id: p.id, realmId: ctx.viewer.realmId } }) : null),
    }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => ('userErrors' in p ? p.userErrors : []) }),
  }),
});

const CreateFeatureInput = builder.inputType('CreateFeatureInput', {
  fields: (t) => ({
    key: t.string({ required: true, description: 'What ingestion calls the feature: `^[a-z][a-z0-9_.-]{0,62}$`, unique in the realm (archived features keep theirs), never changed.' }),
    name: t.string({ required: true, description: '1 to 200 characters.' }),
    service: t.string({ required: true, description: 'The product family, e.g. "location" or "data" (1 to 100 characters).' }),
    unit: t.field({ type: FeatureUnitEnum, required: true }),
    aggregation: t.field({ type: AggregationEnum, required: true }),
    arrivalDelaySeconds: t.int({ description: `How late usage may normally arrive, 0 to ${MAX_ARRIVAL_DELAY_SECONDS} (30 days); default 7200.` }),
    idempotencyKey: t.string({ description: 'The same key and input again answers the same feature; another input with it is IDEMPOTENCY_MISMATCH.' }),
  }),
});

const UpdateFeatureInput = builder.inputType('UpdateFeatureInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string(),
    service: t.string(),
    unit: t.field({ type: FeatureUnitEnum, description: 'Only while the feature has no usage (else IMMUTABLE_FIELD).' }),
    aggregation: t.field({ type: AggregationEnum, description: 'Only while the feature has no usage (else IMMUTABLE_FIELD).' }),
    arrivalDelaySeconds: t.int({ description: `0 to ${MAX_ARRIVAL_DELAY_SECONDS}.` }),
  }),
});

builder.mutationField('createFeature', (t) =>
  t.field({
    type: FeaturePayload,
    description: 'Registers a meter (feature) in the realm. Needs `admin:write` on a realm-wide key: features are the realm\'s shared catalog.',
    authScopes: REALM_ADMIN_WRITE_SCOPES,
    args: { input: t.arg({ type: CreateFeatureInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.prisma.$transaction((tx) =>
        createFeature(tx, adminRequestOf(ctx), { ...input, unit: input.unit as FeatureUnit, aggregation: input.aggregation as Aggregation }),
      ),
  }),
);

builder.mutationField('updateFeature', (t) =>
  t.field({
    type: FeaturePayload,
    description: "Renames a feature or changes its service and arrival delay; its unit and aggregation only while it has no usage. Its key never changes. Needs `admin:write` on a realm-wide key.",
    authScopes: REALM_ADMIN_WRITE_SCOPES,
    args: { input: t.arg({ type: UpdateFeatureInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      const id = decodeInputId(String(input.id), 'Feature');
      if (!id) return failed(['input', 'id'], 'NOT_FOUND', 'No such feature.');
      return ctx.prisma.$transaction((tx) =>
        updateFeature(tx, adminRequestOf(ctx), {
          ...input,
          id,
          unit: input.unit as FeatureUnit | null | undefined,
          aggregation: input.aggregation as Aggregation | null | undefined,
        }),
      );
    },
  }),
);

builder.mutationField('archiveFeature', (t) =>
  t.field({
    type: FeaturePayload,
    description:
      'Archives a feature: hidden from `Realm.features` (unless `includeArchived`), refused by ingestion (ARCHIVED_DIMENSION); its usage, licenses and prices stay reportable and billed; `node(id)` still finds it. Needs `admin:write` on a realm-wide key.',
    authScopes: REALM_ADMIN_WRITE_SCOPES,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => {
      const id = decodeInputId(String(args.id), 'Feature');
      if (!id) return failed(['id'], 'NOT_FOUND', 'No such feature.');
      return ctx.prisma.$transaction((tx) => archiveFeature(tx, adminRequestOf(ctx), id));
    },
  }),
);

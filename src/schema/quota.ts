import { builder } from '../builder.js';
import type { Context } from '../context.js';
import { dec, type Decimal } from '../billing/decimal.js';
import { decodeId } from '../global-id.js';
import { newWebhookSecret, privateWebhookDestinationsAllowed } from '../quota/delivery.js';
import { checkWebhookUrl } from '../quota/webhook-url.js';
import { FORECAST_RULE_PERIOD } from '../quota/forecast.js';
import { isForecastable } from '../usage/forecast.js';
import { UserErrorRef, userError, type UserError } from './user-error.js';
import { BILLING_SCOPES, BILLING_WRITE_SCOPES, visibleBilling } from './visibility.js';
import { actorOf, recordAudit } from '../admin/audit.js';
import { createIdempotently, idempotencyScope } from '../admin/idempotency.js';

const QuotaPeriodEnum = builder.enumType('QuotaPeriod', {
  values: ['DAY', 'MONTH'] as const,
  description: "A calendar day or month in the realm's time zone.",
});

const AlertKindEnum = builder.enumType('AlertKind', {
  values: {
    ACTUAL: { description: "The period's usage crossed the threshold." },
    FORECAST: { description: "The projection of the month's usage to its end crosses the threshold (a rule with `onForecast`): a warning, not a crossing." },
  } as const,
});

export const QuotaRuleNode = builder.prismaNode('QuotaRule', {
  description:
    "A threshold on a feature's usage per day or month (realm time zone): an absolute quantity or a percentage of the licensed quantity for the period. Crossing it creates one Alert per period.",
  authScopes: BILLING_SCOPES,
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [visibleBilling(ctx)] }),
  fields: (t) => ({
    feature: t.relation('feature'),
    period: t.field({ type: QuotaPeriodEnum, resolve: (r) => r.period }),
    thresholdQuantity: t.expose('thresholdQuantity', { type: 'Decimal', nullable: true, description: 'Absolute threshold; null for a percentage rule.' }),
    thresholdPercent: t.expose('thresholdPercent', { type: 'Decimal', nullable: true, description: 'Percentage of the licensed quantity for the period; null for an absolute rule.' }),
    webhookUrl: t.exposeString('webhookUrl', { nullable: true }),
    onForecast: t.exposeBoolean('onForecast', {
      description:
        "Fires on the month-end projection (the usage report's `forecast`, realm-wide) instead of the usage so far: once per month, with the date the projection crosses the threshold. Checked after ingested batches, at most once an hour.",
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

export const AlertNode = builder.prismaNode('Alert', {
  description: 'A quota rule crossed in one period (at most one alert per rule and period).',
  authScopes: BILLING_SCOPES,
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [visibleBilling(ctx)] }),
  fields: (t) => ({
    rule: t.relation('rule'),
    periodStart: t.expose('periodStart', { type: 'DateTime' }),
    periodEnd: t.expose('periodEnd', { type: 'DateTime' }),
    quantity: t.expose('quantity', { type: 'Decimal', description: 'Usage of the period when the threshold was crossed.' }),
    threshold: t.expose('threshold', { type: 'Decimal', description: 'The threshold as a quantity (percentage rules: of the license for the period).' }),
    crossedAt: t.expose('crossedAt', { type: 'DateTime' }),
    late: t.exposeBoolean('late', { description: "True when usage that arrived after the feature's arrival delay crossed the threshold." }),
    kind: t.field({ type: AlertKindEnum, resolve: (a) => a.kind }),
    projectedAt: t.expose('projectedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'FORECAST alerts: when the projected usage reaches the threshold ("at this rate on the 24th"; past when it already has). Null for ACTUAL alerts.',
    }),
    projectedQuantity: t.expose('projectedQuantity', {
      type: 'Decimal',
      nullable: true,
      description: "FORECAST alerts: the projected usage at the month's end when the alert was raised (`quantity` is the usage so far). Null for ACTUAL alerts.",
    }),
    message: t.exposeString('message'),
    deliveredAt: t.expose('deliveredAt', { type: 'DateTime', nullable: true, description: 'When the webhook accepted the alert; null: not (yet) delivered or no webhook.' }),
    deliveryAttempts: t.exposeInt('deliveryAttempts'),
    lastDeliveryError: t.exposeString('lastDeliveryError', { nullable: true }),
    nextDeliveryAt: t.expose('nextDeliveryAt', {
      type: 'DateTime',
      nullable: true,
      description:
        'When the next webhook attempt is due (while an attempt runs: when its lease expires and another gateway process may retry it); null: nothing left to deliver (delivered, given up after the last attempt, or no webhook).',
    }),
  }),
});

builder.prismaObjectField('Realm', 'quotaRules', (t) =>
  t.relatedConnection('quotaRules', {
    cursor: 'id',
    totalCount: true,
    description: 'Quota rules of the realm, oldest first.',
    authScopes: BILLING_SCOPES,
    query: () => ({ orderBy: { id: 'asc' } }),
  }),
);

builder.prismaObjectField('Realm', 'alerts', (t) =>
  t.relatedConnection('alerts', {
    cursor: 'id',
    totalCount: true,
    description: 'Alerts of the realm, newest first.',
    authScopes: BILLING_SCOPES,
    query: () => ({ orderBy: { id: 'desc' } }),
  }),
);

const CreateQuotaRuleInput = builder.inputType('CreateQuotaRuleInput', {
  fields: (t) => ({
    featureId: t.id({ required: true }),
    period: t.field({ type: QuotaPeriodEnum, required: true }),
    quantity: t.field({ type: 'Decimal', description: 'Absolute threshold. Give this or `percentOfLicense`.' }),
    percentOfLicense: t.field({ type: 'Decimal', description: 'Threshold as a percentage of the licensed quantity for the period (e.g. 80).' }),
    webhookUrl: t.string({
      description:
        'http(s) URL of a public host the alert is POSTed to, signed with the secret returned once in the payload. No credentials; private, loopback and link-local addresses are refused (INVALID_URL) unless the gateway runs with WEBHOOK_ALLOW_PRIVATE=true.',
    }),
    onForecast: t.boolean({
      defaultValue: false,
      description:
        "Fire on the month-end projection instead of the usage so far (MONTH rules on SUM or COUNT features only: FORECAST_NEEDS_MONTH, NOT_FORECASTABLE). Default false.",
    }),
    idempotencyKey: t.string({
      description: 'The same key and input again answers the same rule (with its webhook secret, so a retry after a lost answer does not lose it); another input with it is IDEMPOTENCY_MISMATCH.',
    }),
  }),
});

interface CreatePayload {
  ruleId: string | null;
  webhookSecret: string | null;
  userErrors: UserError[];
}
const CreateQuotaRulePayload = builder.objectRef<CreatePayload>('CreateQuotaRulePayload').implement({
  fields: (t) => ({
    quotaRule: t.prismaField({
      type: 'QuotaRule',
      nullable: true,
      resolve: (query, p, _args, ctx) => (p.ruleId ? ctx.prisma.quotaRule.findUnique({ ...query, where: { id: p.ruleId } }) : null),
    }),
    webhookSecret: t.string({
      nullable: true,
      description: 'Key of the `X-Usage-Gateway-Signature: sha256=<hex HMAC-SHA256 of the body>` header. Shown only here, once.',
      resolve: (p) => p.webhookSecret,
    }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

async function featureIdOf(ctx: Context, globalId: string): Promise<string | undefined> {
  try {
    const decoded = decodeId(globalId);
    if (decoded.typename !== 'Feature') return undefined;
    const feature = await ctx.prisma.feature.findFirst({ where: { id: decoded.id, realmId: ctx.viewer.realmId }, select: { id: true } });
    return feature?.id;
  } catch {
    return undefined;
  }
}

const fits = (value: Decimal, integerDigits: number, scale: number) => value.decimalPlaces() <= scale && value.abs().lessThan(dec(10).pow(integerDigits));

builder.mutationField('createQuotaRule', (t) =>
  t.field({
    type: CreateQuotaRulePayload,
    description: 'Creates a quota rule on a feature. Needs `billing:write` on a realm-wide key.',
    authScopes: BILLING_WRITE_SCOPES,
    args: { input: t.arg({ type: CreateQuotaRuleInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const fail = (field: string[], code: string, message: string): CreatePayload => ({ ruleId: null, webhookSecret: null, userErrors: [userError(field, code, message)] });
      if ((input.quantity == null) === (input.percentOfLicense == null)) return fail(['input', 'quantity'], 'INVALID_THRESHOLD', 'Give either `quantity` or `percentOfLicense`.');
      const field = input.quantity != null ? 'quantity' : 'percentOfLicense';
      const value = dec((input.quantity ?? input.percentOfLicense)!);
      if (!value.greaterThan(0)) return fail(['input', field], 'INVALID_THRESHOLD', 'A threshold must be greater than zero.');
      if (field === 'quantity' ? !fits(value, 21, 9) : !fits(value, 8, 4)) return fail(['input', field], 'INVALID_THRESHOLD', 'The threshold has too many digits.');
      const urlCheck = input.webhookUrl == null ? null : checkWebhookUrl(input.webhookUrl, { allowPrivate: privateWebhookDestinationsAllowed() });
      if (urlCheck && !urlCheck.ok) return fail(['input', 'webhookUrl'], 'INVALID_URL', urlCheck.reason);
      const onForecast = input.onForecast ?? false;
      if (onForecast && input.period !== FORECAST_RULE_PERIOD) {
        return fail(['input', 'onForecast'], 'FORECAST_NEEDS_MONTH', 'Forecast rules project the month: use `period: MONTH` (a day has no days to project from).');
      }
      const featureId = await featureIdOf(ctx, input.featureId);
      if (!featureId) return fail(['input', 'featureId'], 'NOT_FOUND', 'No such feature.');
      if (onForecast) {
        const feature = await ctx.prisma.feature.findUniqueOrThrow({ where: { id: featureId }, select: { aggregation: true } });
        if (!isForecastable(feature.aggregation)) {
          return fail(['input', 'onForecast'], 'NOT_FORECASTABLE', `A ${feature.aggregation} feature is not a sum of days: its usage cannot be forecast (SUM and COUNT features only).`);
        }
      }
      if (field === 'percentOfLicense') {
        const license = await ctx.prisma.license.findFirst({ where: { featureId, contract: { realmId: ctx.viewer.realmId } }, select: { id: true } });
        if (!license) return fail(['input', 'percentOfLicense'], 'NO_LICENSE', 'This feature is not licensed under any contract: give an absolute `quantity`.');
      }
      const realmId = ctx.viewer.realmId;
      return ctx.prisma.$transaction(async (tx) => {
        const result = await createIdempotently(
          tx,
          { scope: idempotencyScope(ctx.viewer), key: input.idempotencyKey, action: 'quotaRule.create', input: { ...input, idempotencyKey: undefined }, now: ctx.now },
          async () => {
            const rule = await tx.quotaRule.create({
              data: {
                realmId,
                featureId,
                period: input.period,
                thresholdQuantity: field === 'quantity' ? value : null,
                thresholdPercent: field === 'percentOfLicense' ? value : null,
                webhookUrl: input.webhookUrl ?? null,
                webhookSecret: input.webhookUrl ? newWebhookSecret() : null,
                onForecast,
              },
              select: { id: true, featureId: true, period: true, thresholdQuantity: true, thresholdPercent: true, webhookUrl: true, onForecast: true },
            });
            const { id, ...after } = rule;
            await recordAudit(tx, actorOf(ctx), { action: 'quotaRule.create', realmId, targetType: 'QuotaRule', targetId: id, before: null, after });
            return { id };
          },
        );
        if (!('id' in result)) return { ruleId: null, webhookSecret: null, userErrors: result.userErrors };
        const rule = await tx.quotaRule.findUniqueOrThrow({ where: { id: result.id }, select: { webhookSecret: true } });
        return { ruleId: result.id, webhookSecret: rule.webhookSecret, userErrors: [] };
      });
    },
  }),
);

interface DeletePayload {
  deletedQuotaRuleId: string | null;
  userErrors: UserError[];
}
const DeleteQuotaRulePayload = builder.objectRef<DeletePayload>('DeleteQuotaRulePayload').implement({
  fields: (t) => ({
    deletedQuotaRuleId: t.id({ nullable: true, resolve: (p) => p.deletedQuotaRuleId }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('deleteQuotaRule', (t) =>
  t.field({
    type: DeleteQuotaRulePayload,
    description: 'Deletes a quota rule and its alerts. Needs `billing:write` on a realm-wide key.',
    authScopes: BILLING_WRITE_SCOPES,
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx) => {
      const notFound: DeletePayload = { deletedQuotaRuleId: null, userErrors: [userError(['id'], 'NOT_FOUND', 'No such quota rule.')] };
      let decoded: { typename: string; id: string };
      try {
        decoded = decodeId(String(id));
      } catch {
        return notFound;
      }
      if (decoded.typename !== 'QuotaRule' || !/^[0-9a-f-]{36}$/i.test(decoded.id)) return notFound;
      const realmId = ctx.viewer.realmId;
      return ctx.prisma.$transaction(async (tx) => {
        const rule = await tx.quotaRule.findFirst({ where: { id: decoded.id, realmId } });
        if (!rule) return notFound;
        const { count } = await tx.quotaRule.deleteMany({ where: { id: rule.id } });
        if (!count) return notFound; // deleted concurrently: that request audited it
        const before = { featureId: rule.featureId, period: rule.period, thresholdQuantity: rule.thresholdQuantity, thresholdPercent: rule.thresholdPercent, webhookUrl: rule.webhookUrl, onForecast: rule.onForecast };
        await recordAudit(tx, actorOf(ctx), { action: 'quotaRule.delete', realmId, targetType: 'QuotaRule', targetId: rule.id, before, after: null });
        return { deletedQuotaRuleId: String(id), userErrors: [] };
      });
    },
  }),
);

import { builder } from '../builder.js';
import type { BilledMonth } from '../billing/billing-loader.js';
import { FORECAST_METHOD, FORECAST_STATUS_DESCRIPTIONS, FORECAST_STATUSES } from '../usage/forecast.js';
import { forecastBasisOf, loadForecast, type ForecastView, type Projection } from '../usage/forecast-loader.js';
import { BillingMonthRef } from './billing.js';
import { FeatureUnitEnum } from './enums.js';
import { FeatureNode } from './feature.js';
import { TimeRangeRef, UsageGroupRef, UsageReportRef } from './usage.js';
import { BILLING_SCOPES } from './visibility.js';

const ForecastStatusEnum = builder.enumType('ForecastStatus', {
  description: 'Whether a forecast is given, and if not, why.',
  values: Object.fromEntries(FORECAST_STATUSES.map((status) => [status, { description: FORECAST_STATUS_DESCRIPTIONS[status] }])) as Record<
    (typeof FORECAST_STATUSES)[number],
    { description: string }
  >,
});

const UsageProjectionRef = builder.objectRef<Projection>('UsageProjection').implement({
  description: 'The projected end-of-period quantity of one feature (and group), with its interval; fields other than `status` and `reason` are null when withheld.',
  fields: (t) => ({
    feature: t.field({ type: FeatureNode, resolve: (p) => p.feature }),
    unit: t.field({ type: FeatureUnitEnum, resolve: (p) => p.feature.unit }),
    group: t.field({ type: UsageGroupRef, resolve: (p) => p.group }),
    status: t.field({ type: ForecastStatusEnum, resolve: (p) => p.status }),
    reason: t.string({ nullable: true, description: 'Why the projection is withheld; null when AVAILABLE.', resolve: (p) => p.reason }),
    usedToDate: t.field({ type: 'Decimal', nullable: true, description: 'Usage of the period so far (null for NOT_ADDITIVE features).', resolve: (p) => p.usedToDate }),
    projected: t.field({ type: 'Decimal', nullable: true, description: 'Projected quantity for the whole period (9 decimals).', resolve: (p) => p.projected }),
    low: t.field({ type: 'Decimal', nullable: true, description: 'Low end of the nominal 90 % interval (never below `usedToDate` for non-negative usage).', resolve: (p) => p.low }),
    high: t.field({ type: 'Decimal', nullable: true, description: 'High end of the nominal 90 % interval.', resolve: (p) => p.high }),
    licensed: t.field({ type: 'Decimal', nullable: true, description: "Billing months: the product's licensed quantity for the month; null elsewhere.", resolve: (p) => p.licensed }),
    projectedExhaustion: t.field({
      type: 'DateTime',
      nullable: true,
      description:
        'Billing months: when the projected cumulative usage reaches `licensed` (each day spread evenly over the day; in the past when the license is already used up); null when not licensed or not before the month ends.',
      resolve: (p) => p.projectedExhaustion,
    }),
  }),
});

const UsageForecastRef = builder.objectRef<ForecastView>('UsageForecast').implement({
  description: `A projection of usage to the end of the period. Method: ${FORECAST_METHOD}`,
  fields: (t) => ({
    status: t.field({ type: ForecastStatusEnum, description: 'AVAILABLE: the period can be forecast (each projection has its own status).', resolve: (f) => f.status }),
    reason: t.string({ nullable: true, resolve: (f) => f.reason }),
    method: t.string({ resolve: () => FORECAST_METHOD }),
    period: t.field({ type: TimeRangeRef, nullable: true, description: 'The period projected to the end of; null for rolling windows.', resolve: (f) => f.period }),
    asOf: t.field({ type: 'DateTime', description: "The request's instant the forecast is made at.", resolve: (f) => f.asOf }),
    projections: t.field({ type: [UsageProjectionRef], description: 'Per feature (by key) and group.', resolve: (f) => f.projections }),
  }),
});

builder.objectField(UsageReportRef, 'forecast', (t) =>
  t.field({
    type: UsageForecastRef,
    description:
      'The report\'s usage projected to the end of its period: the calendar month for MONTH_TO_DATE, the range itself for a `range` that spans now (on local midnights); withheld (status ROLLING_WINDOW / PERIOD_OVER) otherwise. Per feature and `groupBy` group. ' +
      FORECAST_METHOD,
    resolve: (report, _args, ctx) => {
      const basis = forecastBasisOf(report);
      if (!basis) throw new Error('a usage report without its forecast basis');
      return loadForecast(ctx, basis);
    },
  }),
);

builder.objectField(BillingMonthRef, 'forecast', (t) =>
  t.field({
    type: UsageForecastRef,
    // The month's own scopes, stated on the field: billing needs `billing:read` on a realm-wide key.
    authScopes: BILLING_SCOPES,
    description:
      "The month's products projected to the month's end, with the licensed quantity and the date the license runs out (`projectedExhaustion`); PERIOD_OVER for past months. " +
      FORECAST_METHOD,
    resolve: (m: BilledMonth, _args, ctx) =>
      loadForecast(ctx, {
        parentKind: 'REALM',
        parent: { id: ctx.viewer.realmId },
        filter: {},
        groupBy: [],
        timeZone: m.timeZone,
        period: m.month.range,
        featureIds: m.coverage.products.map((p) => p.featureId),
        licensed: new Map(m.coverage.products.filter((p) => p.licensed.greaterThan(0)).map((p) => [p.featureId, p.licensed])),
      }),
  }),
);

import { query } from '../api.js';
import { dateIn, decimal, monthLabel, toNumber, unitLabel } from '../format.js';
import { h, table } from '../dom.js';
import { CurrentUsageDocument, type CurrentUsageQuery, type ProductMonthFragment } from '../generated.js';
import { empty, load, realmOf, type Section } from '../section.js';

/** The four shares of a product's month, in the order bars and legends show them. */
export const SHARES = [
  { field: 'coveredByLicense', label: 'Covered by license', className: 'share-license' },
  { field: 'coveredByCredits', label: 'Covered by credits', className: 'share-credits' },
  { field: 'exceeding', label: 'Exceeding', className: 'share-exceeding' },
  { field: 'unusedLicensed', label: 'Unused licensed', className: 'share-unused' },
] as const;

export function legend(): HTMLElement {
  return h('ul', { class: 'legend', 'aria-label': 'Legend' }, SHARES.map((share) => h('li', null, h('span', { class: `swatch ${share.className}`, 'aria-hidden': 'true' }), share.label)));
}

/** A bar split into license / credits / exceeding, with unused license after; widths of the larger of used and licensed. */
export function usageBar(product: ProductMonthFragment): HTMLElement {
  const whole = Math.max(toNumber(product.used), toNumber(product.licensed)) || 1;
  const description = SHARES.map((share) => `${share.label}: ${decimal(product[share.field])}`).join(', ');
  return h(
    'div',
    { class: 'bar', role: 'img', 'aria-label': `${product.feature.name}: ${description}` },
    SHARES.map((share) => {
      const width = (toNumber(product[share.field]) / whole) * 100;
      return width > 0 ? h('span', { class: `segment ${share.className}`, 'data-width': width.toFixed(3), title: `${share.label}: ${decimal(product[share.field])}` }) : null;
    }),
  );
}

/** Bar widths come from data-width after insertion: the CSP allows no inline style attributes. */
export function sizeBars(container: HTMLElement): void {
  for (const segment of container.querySelectorAll<HTMLElement>('.segment[data-width]')) segment.style.width = `${segment.dataset.width}%`;
}

const words = (value: string) => value.charAt(0) + value.slice(1).toLowerCase().replace(/_/g, ' ');

type Projection = CurrentUsageQuery['viewer']['realm'] extends infer R ? NonNullable<R> extends { currentUsage: { forecast: { projections: (infer P)[] } } } ? P : never : never;

/** The forecast's month-end figure with its 90 % interval, or why there is none. */
function projectionCell(projection: Projection | undefined, timeZone: string): HTMLElement {
  if (!projection) return h('td', { class: 'muted' }, '—');
  if (projection.status !== 'AVAILABLE' || projection.projected === null || projection.projected === undefined) {
    return h('td', { class: 'muted', 'data-field': 'projectionStatus' }, words(projection.status));
  }
  return h(
    'td',
    { class: 'num' },
    h('span', { 'data-field': 'projected' }, decimal(projection.projected)),
    h('br'),
    h('span', { class: 'muted' }, `90 %: ${decimal(projection.low)} – ${decimal(projection.high)}`),
    projection.projectedExhaustion ? [h('br'), h('span', { class: 'warning-text' }, `License used up ${dateIn(projection.projectedExhaustion, timeZone)}`)] : null,
  );
}

export const currentUsageSection: Section = {
  id: 'current',
  title: 'Current usage',
  render: (context, body) =>
    load(context, body, () => query(context.key, CurrentUsageDocument), (data) => {
      const month = realmOf(data.viewer).currentUsage;
      body.append(
        h(
          'p',
          null,
          `${monthLabel(month.month)} to date (${dateIn(month.range.from, month.timeZone, true)} – ${dateIn(month.range.to, month.timeZone, true)}, ${month.timeZone}). Credits: `,
          h('span', { 'data-field': 'creditsApplied' }, decimal(month.credits.applied)),
          ' applied of ',
          h('span', { 'data-field': 'creditsAvailable' }, decimal(month.credits.available)),
          ' available.',
          month.forecast.status === 'AVAILABLE' ? '' : ` No month-end projection: ${month.forecast.reason ?? words(month.forecast.status)}.`,
        ),
      );
      // One projection per product (the month's forecast is not grouped).
      const projections = new Map(month.forecast.projections.map((p) => [p.feature.key, p]));
      const products = month.products;
      if (products.length === 0) {
        body.append(empty('No usage this month yet, and nothing licensed.'));
        return;
      }
      body.append(legend());
      body.append(
        table(
          'Used vs licensed this month, per product',
          ['Product', 'Used', 'Licensed', 'Split', 'Projected at month end', 'On-demand cost'],
          products.map((product) =>
            h(
              'tr',
              { 'data-feature': product.feature.key },
              h('th', { scope: 'row' }, product.feature.name, h('br'), h('span', { class: 'muted' }, unitLabel(product.feature.unit))),
              h('td', { class: 'num', 'data-field': 'used' }, decimal(product.used)),
              h('td', { class: 'num', 'data-field': 'licensed' }, decimal(product.licensed)),
              h(
                'td',
                { class: 'split' },
                usageBar(product),
                h(
                  'dl',
                  { class: 'shares' },
                  SHARES.slice(0, 3).map((share) => [h('dt', null, share.label), h('dd', { 'data-field': share.field }, decimal(product[share.field]))]),
                ),
              ),
              projectionCell(projections.get(product.feature.key), month.timeZone),
              h('td', { class: 'num', 'data-field': 'onDemandCost' }, product.onDemandCost ? `${decimal(product.onDemandCost.amount)} ${product.onDemandCost.currency}` : '—'),
            ),
          ),
          { class: 'current-usage' },
        ),
      );
      sizeBars(body);
    }),
};

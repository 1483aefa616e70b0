import { query } from '../api.js';
import { COLOURS, stackedBars, type Pattern } from '../chart.js';
import { decimal, monthLabel, toNumber, unitLabel } from '../format.js';
import { h, labelled, replace, select, table } from '../dom.js';
import { UsageHistoryDocument, type ProductMonthFragment } from '../generated.js';
import { empty, load, realmOf, type Section } from '../section.js';

/** Bottom to top, as Heroku stacks them. */
const STACK: { field: keyof ProductMonthFragment & ('coveredByLicense' | 'coveredByCredits' | 'exceeding' | 'unusedLicensed'); label: string; colour: string; pattern: Pattern }[] = [
  { field: 'coveredByLicense', label: 'Covered by license', colour: COLOURS.license, pattern: 'solid' },
  { field: 'coveredByCredits', label: 'Covered by credits', colour: COLOURS.credits, pattern: 'stripes' },
  { field: 'exceeding', label: 'Exceeding', colour: COLOURS.exceeding, pattern: 'cross' },
  { field: 'unusedLicensed', label: 'Unused licensed', colour: COLOURS.unused, pattern: 'dots' },
];

export const historySection: Section = {
  id: 'history',
  title: 'Usage history',
  slow: true,
  render: (context, body) =>
    load(context, body, () => query(context.key, UsageHistoryDocument), (data) => {
      const months = realmOf(data.viewer).usageHistory;
      const features = new Map<string, ProductMonthFragment['feature']>();
      for (const month of months) for (const product of month.products) features.set(product.feature.key, product.feature);
      if (features.size === 0) {
        body.append(empty('No usage in the last 12 months.'));
        return;
      }
      const picker = select([...features.values()].map((f) => ({ value: f.key, label: f.name })), [...features.keys()][0]!, { name: 'product' });
      const view = h('div', { class: 'history-view' });
      body.append(h('div', { class: 'controls' }, labelled('Product', picker)), view);
      const show = () => {
        const feature = features.get(picker.value)!;
        const rows = months.map((month) => ({ month: month.month, product: month.products.find((p) => p.feature.key === feature.key) ?? null }));
        const chart = h('div', { class: 'chart', role: 'img', 'aria-label': `Stacked monthly bars of ${feature.name}; the table below has the figures.` });
        replace(
          view,
          chart,
          table(
            `${feature.name} per month (${unitLabel(feature.unit)})`,
            ['Month', 'Used', 'Licensed', ...STACK.map((s) => s.label)],
            rows.map(({ month, product }) =>
              h(
                'tr',
                { 'data-month': month },
                h('th', { scope: 'row' }, monthLabel(month)),
                h('td', { class: 'num', 'data-field': 'used' }, decimal(product?.used ?? '0')),
                h('td', { class: 'num', 'data-field': 'licensed' }, decimal(product?.licensed ?? '0')),
                STACK.map((s) => h('td', { class: 'num', 'data-field': s.field }, decimal(product?.[s.field] ?? '0'))),
              ),
            ),
            { class: 'usage-history', 'data-feature': feature.key },
          ),
        );
        stackedBars(
          chart,
          rows.map((row) => monthLabel(row.month)),
          STACK.map((s) => ({ ...s, values: rows.map((row) => toNumber(row.product?.[s.field])), shown: rows.map((row) => decimal(row.product?.[s.field] ?? '0')) })),
          `${feature.name}, last 12 months (${unitLabel(feature.unit)})`,
        );
      };
      picker.addEventListener('change', show);
      show();
    }),
};

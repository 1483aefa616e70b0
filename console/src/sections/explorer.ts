import { query } from '../api.js';
import { COLOURS, timeBars } from '../chart.js';
import { dateIn, decimal, toNumber, unitLabel } from '../format.js';
import { h, labelled, replace, table } from '../dom.js';
import {
  ExplorerNodesDocument,
  ExplorerUsageDocument,
  type ExplorerNodesQuery,
  type ExplorerUsageQueryVariables,
  type Granularity,
  type ReportFragment,
  type Timeframe,
  type UsageDimension,
} from '../generated.js';
import { groupLabel } from '../labels.js';
import { empty, load, realmOf, type ConsoleContext, type Section } from '../section.js';

const TIMEFRAMES: Timeframe[] = ['LAST_HOUR', 'LAST_24_HOURS', 'LAST_7_DAYS', 'LAST_30_DAYS', 'LAST_90_DAYS', 'LAST_YEAR', 'MONTH_TO_DATE', 'PREVIOUS_MONTH', 'ALL_TIME'];
const GRANULARITIES: Granularity[] = ['HOUR', 'DAY', 'WEEK', 'MONTH', 'SUMMARIZED'];
const DIMENSIONS: { value: UsageDimension; label: string }[] = [
  { value: 'WORKSPACE', label: 'Workspace' },
  { value: 'APP', label: 'App' },
  { value: 'PROJECT', label: 'Project' },
  { value: 'DATASTREAM', label: 'Datastream' },
  { value: 'API_KEY', label: 'API key' },
  { value: 'BILLING_TAG', label: 'Billing tag' },
  { value: 'RESOURCE', label: 'Resource' },
];
const TABLE_ROWS = 400;

const words = (value: string) => value.charAt(0) + value.slice(1).toLowerCase().replace(/_/g, ' ');

type Realm = NonNullable<ExplorerNodesQuery['viewer']['realm']>;

function nodePicker(realm: Realm): HTMLSelectElement {
  const group = (label: string, items: { id: string; label: string }[]) =>
    items.length ? h('optgroup', { label }, items.map((item) => h('option', { value: item.id }, item.label))) : null;
  return h(
    'select',
    { name: 'node' },
    h('option', { value: realm.id }, `Realm: ${realm.name}`),
    group('Workspaces', realm.workspaces.edges.map(({ node }) => ({ id: node.id, label: `${'\u00a0\u00a0'.repeat(node.depth)}${node.name}` }))),
    group('Datastreams', realm.datastreams.edges.map(({ node }) => ({ id: node.id, label: node.name }))),
    group('Projects', realm.projects.edges.map(({ node }) => ({ id: node.id, label: node.name }))),
    group('Apps', realm.apps.edges.map(({ node }) => ({ id: node.id, label: node.name }))),
    group('Features', realm.features.edges.map(({ node }) => ({ id: node.id, label: node.name }))),
    group('API keys', (realm.apiKeys?.edges ?? []).map(({ node }) => ({ id: node.id, label: `${node.name} (${node.prefix}…)` }))),
  );
}

function filterPicker(name: string, allLabel: string, items: { id: string; name: string }[]): HTMLSelectElement {
  return h('select', { name }, h('option', { value: '' }, allLabel), items.map((item) => h('option', { value: item.id }, item.name)));
}

function showReport(context: ConsoleContext, out: HTMLElement, report: ReportFragment): void {
  const zone = report.timeZone;
  out.append(
    h(
      'p',
      // The resolved range, for a reader that must ask the same question (a rolling timeframe moves every hour).
      { class: 'muted explorer-range', 'data-from': report.range.from, 'data-to': report.range.to },
      `${dateIn(report.range.from, zone, true)} – ${dateIn(report.range.to, zone, true)} (${zone}), ${words(report.granularity)}. `,
      report.finalizedThrough ? `Final through ${dateIn(report.finalizedThrough, zone, true)}.` : 'No bucket is final yet.',
    ),
  );
  if (report.approximate || report.warnings.length) {
    out.append(
      h(
        'div',
        { class: 'notice warning', role: 'status', 'data-field': 'warnings' },
        report.approximate ? h('p', null, h('strong', null, 'Approximate: '), 'hourly data cannot be split exactly at these boundaries.') : null,
        report.warnings.length ? h('ul', null, report.warnings.map((warning) => h('li', null, warning))) : null,
      ),
    );
  }
  if (report.points.length === 0) {
    out.append(empty('No usage in this range.'));
    return;
  }
  // Units differ between features: the chart shows one feature (the first with usage), the tables all.
  const feature = report.totals[0]?.feature ?? report.points[0]!.feature;
  const starts = [...new Set(report.points.filter((p) => p.feature.id === feature.id).map((p) => p.start))].sort();
  const final = new Map<string, number>();
  const pending = new Map<string, number>();
  for (const point of report.points) {
    if (point.feature.id !== feature.id) continue;
    const into = point.isFinal ? final : pending;
    into.set(point.start, (into.get(point.start) ?? 0) + toNumber(point.quantity));
  }
  const chart = h('div', { class: 'chart', role: 'img', 'aria-label': `Usage of ${feature.name} per bucket; hatched bars are not final yet. The table below has the figures.` });
  out.append(chart);
  timeBars(
    chart,
    starts.map((start) => Date.parse(start) / 1000),
    [
      { label: 'Final', colour: COLOURS.final, pattern: 'solid', values: starts.map((s) => final.get(s) ?? null) },
      { label: 'Not final yet', colour: COLOURS.pending, pattern: 'stripes', dash: [4, 3], values: starts.map((s) => pending.get(s) ?? null) },
    ],
    zone,
    `${feature.name} (${unitLabel(report.points.find((p) => p.feature.id === feature.id)!.unit)})`,
  );
  out.append(
    table(
      'Totals over the range',
      ['Product', 'Group', 'Total', 'Unit'],
      report.totals.map((total) =>
        h(
          'tr',
          { 'data-feature': total.feature.key, 'data-group': groupLabel(total.group) },
          h('th', { scope: 'row' }, total.feature.name),
          h('td', null, groupLabel(total.group)),
          h('td', { class: 'num', 'data-field': 'quantity' }, decimal(total.quantity)),
          h('td', null, unitLabel(total.unit)),
        ),
      ),
      { class: 'explorer-totals' },
    ),
  );
  const shown = report.points.slice(0, TABLE_ROWS);
  out.append(
    table(
      report.points.length > TABLE_ROWS ? `Buckets (the first ${TABLE_ROWS} of ${report.points.length}; narrow the range for the rest)` : `Buckets (${report.points.length})`,
      ['Start', 'Product', 'Group', 'Quantity', 'Final'],
      shown.map((point) =>
        h(
          'tr',
          { class: point.isFinal ? null : 'pending', 'data-feature': point.feature.key, 'data-start': point.start },
          h('td', null, h('time', { datetime: point.start }, dateIn(point.start, zone, true))),
          h('td', null, point.feature.name),
          h('td', null, groupLabel(point.group)),
          h('td', { class: 'num', 'data-field': 'quantity' }, decimal(point.quantity)),
          h('td', null, point.isFinal ? 'final' : h('em', null, 'not final')),
        ),
      ),
      { class: 'explorer-points' },
    ),
  );
  void context;
}

export const explorerSection: Section = {
  id: 'explorer',
  title: 'Explorer',
  render: (context, body) =>
    load(context, body, () => query(context.key, ExplorerNodesDocument, { withKeys: context.viewer.scopes.includes('keys:manage') }), (data) => {
      const realm = realmOf(data.viewer);
      const workspaceIds = new Set(realm.workspaces.edges.map(({ node }) => node.id));
      const node = nodePicker(realm);
      const scope = h('select', { name: 'scope', disabled: true }, h('option', { value: 'SUBTREE' }, 'Subtree'), h('option', { value: 'SELF' }, 'This workspace only'));
      node.addEventListener('change', () => (scope.disabled = !workspaceIds.has(node.value)));
      const timeframe = h('select', { name: 'timeframe' }, TIMEFRAMES.map((t) => h('option', { value: t, selected: t === 'LAST_7_DAYS' }, words(t))), h('option', { value: 'RANGE' }, 'Custom range (UTC dates)'));
      const from = h('input', { type: 'date', name: 'from', disabled: true });
      const to = h('input', { type: 'date', name: 'to', disabled: true });
      timeframe.addEventListener('change', () => (from.disabled = to.disabled = timeframe.value !== 'RANGE'));
      const granularity = h('select', { name: 'granularity' }, GRANULARITIES.map((g) => h('option', { value: g, selected: g === 'DAY' }, words(g))));
      const timeZone = h('input', { type: 'text', name: 'timeZone', value: realm.timeZone, list: 'explorer-zones', autocomplete: 'off' });
      const zones = h('datalist', { id: 'explorer-zones' }, [...new Set([realm.timeZone, 'UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Tokyo', 'Asia/Kolkata'])].map((z) => h('option', { value: z })));
      const groupBy = h(
        'fieldset',
        { class: 'checks' },
        h('legend', null, 'Group by'),
        DIMENSIONS.map((d) => h('label', null, h('input', { type: 'checkbox', name: 'groupBy', value: d.value }), ` ${d.label}`)),
      );
      const featureFilter = filterPicker('featureId', 'All products', realm.features.edges.map(({ node }) => node));
      const workspaceFilter = filterPicker('workspaceId', 'All workspaces', realm.workspaces.edges.map(({ node }) => node));
      const appFilter = filterPicker('appId', 'All apps', realm.apps.edges.map(({ node }) => node));
      const projectFilter = filterPicker('projectId', 'All projects', realm.projects.edges.map(({ node }) => node));
      const datastreamFilter = filterPicker('datastreamId', 'All datastreams', realm.datastreams.edges.map(({ node }) => node));
      const apiKeyFilter = filterPicker('apiKeyId', 'All API keys', (realm.apiKeys?.edges ?? []).map(({ node }) => ({ id: node.id, name: `${node.name} (${node.prefix}…)` })));
      const out = h('div', { class: 'explorer-out', 'aria-live': 'polite' });
      const form = h(
        'form',
        { class: 'controls explorer-form', 'aria-label': 'Explorer query' },
        labelled('Node', node),
        labelled('Workspace scope', scope),
        labelled('Timeframe', timeframe),
        labelled('From', from),
        labelled('To (exclusive)', to),
        labelled('Granularity', granularity),
        labelled('Time zone', timeZone),
        zones,
        groupBy,
        labelled('Product', featureFilter),
        labelled('Workspace filter', workspaceFilter),
        labelled('App filter', appFilter),
        labelled('Project filter', projectFilter),
        labelled('Datastream filter', datastreamFilter),
        labelled('API key filter', apiKeyFilter),
        h('button', { type: 'submit' }, 'Show usage'),
      );
      const run = () => {
        const variables: ExplorerUsageQueryVariables = {
          id: node.value,
          granularity: granularity.value as Granularity,
          timeZone: timeZone.value.trim() || null,
          groupBy: [...groupBy.querySelectorAll<HTMLInputElement>('input:checked')].map((input) => input.value as UsageDimension),
          filter: {
            ...(featureFilter.value ? { featureIds: [featureFilter.value] } : {}),
            ...(workspaceFilter.value ? { workspaceIds: [workspaceFilter.value] } : {}),
            ...(appFilter.value ? { appIds: [appFilter.value] } : {}),
            ...(projectFilter.value ? { projectIds: [projectFilter.value] } : {}),
            ...(datastreamFilter.value ? { datastreamIds: [datastreamFilter.value] } : {}),
            ...(apiKeyFilter.value ? { apiKeyIds: [apiKeyFilter.value] } : {}),
          },
          scope: workspaceIds.has(node.value) ? (scope.value as 'SELF' | 'SUBTREE') : null,
        };
        if (timeframe.value === 'RANGE') {
          if (!from.value || !to.value) {
            replace(out, h('div', { class: 'notice error', role: 'alert' }, 'Pick both dates of the range.'));
            return;
          }
          variables.range = { from: `${from.value}T00:00:00Z`, to: `${to.value}T00:00:00Z` };
        } else variables.timeframe = timeframe.value as Timeframe;
        replace(out);
        void load(context, out, () => query(context.key, ExplorerUsageDocument, variables), (result) => {
          const report = result.node && 'usage' in result.node ? (result.node.usage as ReportFragment) : null;
          if (!report) out.append(h('div', { class: 'notice error', role: 'alert' }, 'This node does not exist or is outside what the key can see.'));
          else showReport(context, out, report);
        });
      };
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        run();
      });
      body.append(form, out);
      run();
    }),
};

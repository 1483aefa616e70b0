import { query } from '../api.js';
import { dateIn, decimal } from '../format.js';
import { h, table } from '../dom.js';
import { AlertsDocument } from '../generated.js';
import { empty, load, realmOf, type Section } from '../section.js';

export const alertsSection: Section = {
  id: 'alerts',
  title: 'Alerts',
  render: (context, body) =>
    load(context, body, () => query(context.key, AlertsDocument), (data) => {
      const zone = context.realm.timeZone;
      const rules = realmOf(data.viewer).quotaRules.edges.map((edge) => edge.node);
      const alerts = realmOf(data.viewer).alerts.edges.map((edge) => edge.node);
      body.append(h('h3', null, 'Quota rules'));
      body.append(
        rules.length === 0
          ? empty('No quota rules.')
          : table(
              'Quota rules',
              ['Product', 'Period', 'Threshold', 'Webhook'],
              rules.map((rule) =>
                h(
                  'tr',
                  { 'data-rule': rule.id },
                  h('th', { scope: 'row' }, rule.feature.name),
                  h('td', null, rule.period === 'DAY' ? 'Day' : 'Month'),
                  h('td', { class: 'num', 'data-field': 'threshold' }, rule.thresholdPercent !== null && rule.thresholdPercent !== undefined ? `${decimal(rule.thresholdPercent)} % of license` : decimal(rule.thresholdQuantity)),
                  h('td', null, rule.webhookUrl ? 'yes' : 'no'),
                ),
              ),
              { class: 'quota-rules' },
            ),
      );
      body.append(h('h3', null, `Alerts raised (${realmOf(data.viewer).alerts.totalCount})`));
      body.append(
        alerts.length === 0
          ? empty('No alerts raised.')
          : table(
              'Alerts, newest first',
              ['Crossed at', 'Product', 'Period', 'Usage', 'Threshold', 'Message'],
              alerts.map((alert) =>
                h(
                  'tr',
                  { 'data-alert': alert.id },
                  h('td', null, h('time', { datetime: alert.crossedAt }, dateIn(alert.crossedAt, zone, true))),
                  h('th', { scope: 'row' }, alert.rule.feature.name),
                  h('td', null, `${dateIn(alert.periodStart, zone)} – ${dateIn(alert.periodEnd, zone)}`),
                  h('td', { class: 'num', 'data-field': 'quantity' }, decimal(alert.quantity)),
                  h('td', { class: 'num', 'data-field': 'threshold' }, decimal(alert.threshold)),
                  h('td', null, alert.message, alert.late ? ' (late usage)' : ''),
                ),
              ),
              { class: 'alerts' },
            ),
      );
    }),
};

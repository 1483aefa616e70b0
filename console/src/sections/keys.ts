import { query } from '../api.js';
import { dateIn, percent } from '../format.js';
import { h, table } from '../dom.js';
import { ApiKeysTrafficDocument } from '../generated.js';
import { empty, load, realmOf, type Section } from '../section.js';

const ms = (value: number | undefined) => (value === undefined ? '—' : `${Math.round(value * 10) / 10} ms`);

/** Per key, the last 24 hours of traffic (src/schema/traffic.ts), and the calling key's rate-limit window. */
export const apiKeysSection: Section = {
  id: 'keys',
  title: 'API keys',
  render: (context, body) =>
    load(context, body, () => query(context.key, ApiKeysTrafficDocument), (data) => {
      const zone = context.realm.timeZone;
      const limit = data.viewer.rateLimit;
      body.append(
        h(
          'p',
          { class: 'rate-limit', 'data-field': 'rateLimit' },
          limit
            ? [`This key's rate limit: `, h('span', { 'data-field': 'remaining' }, String(limit.remaining)), ' of ', h('span', { 'data-field': 'limit' }, String(limit.limit)), ` requests left this minute (resets ${dateIn(limit.resetAt, zone, true)}).`]
            : 'The gateway runs without rate limits.',
        ),
      );
      const keys = realmOf(data.viewer).apiKeys.edges.map((edge) => edge.node);
      if (keys.length === 0) {
        body.append(empty('No API keys visible to this key.'));
        return;
      }
      body.append(
        table(
          'Traffic per key, last 24 hours',
          ['Key', 'Requests', 'Errors', 'p50', 'p95', 'p99', 'Endpoints', 'Rate limit', 'Alerts and recommendations'],
          keys.map((key) => {
            const traffic = key.traffic;
            const notes = [...traffic.alerts.map((a) => `${a.severity}: ${a.message}`), ...traffic.recommendations.map((r) => r.message), ...traffic.warnings];
            return h(
              'tr',
              { 'data-key': key.id, class: key.revokedAt ? 'revoked' : null },
              h('th', { scope: 'row' }, key.name, h('br'), h('code', null, `${key.prefix}…`), key.revokedAt ? h('span', { class: 'badge danger' }, 'revoked') : null),
              h('td', { class: 'num', 'data-field': 'requests' }, String(traffic.summary.requests)),
              h('td', { class: 'num', 'data-field': 'errors' }, `${traffic.summary.errors}`, traffic.summary.requests ? ` (${percent(traffic.summary.errorRate)})` : ''),
              h('td', { class: 'num', 'data-field': 'p50' }, ms(traffic.summary.latency?.p50)),
              h('td', { class: 'num', 'data-field': 'p95' }, ms(traffic.summary.latency?.p95)),
              h('td', { class: 'num', 'data-field': 'p99' }, ms(traffic.summary.latency?.p99)),
              h('td', null, traffic.endpoints.length ? h('ul', { class: 'plain' }, traffic.endpoints.slice(0, 5).map((e) => h('li', null, `${e.endpoint}: ${e.requests}`, e.errors ? ` (${e.errors} failed)` : ''))) : '—'),
              h('td', { 'data-field': 'rateLimit' }, `${traffic.rateLimit.limit}/min (${traffic.rateLimit.tier}), peak ${traffic.rateLimit.peakRequests} (${percent(traffic.rateLimit.peakUtilization)})`),
              h('td', null, notes.length ? h('ul', { class: 'plain' }, notes.map((note) => h('li', null, note))) : '—'),
            );
          }),
          { class: 'api-keys' },
        ),
      );
    }),
};

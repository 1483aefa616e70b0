import { query } from '../api.js';
import { dateIn, decimal, unitLabel } from '../format.js';
import { h, table } from '../dom.js';
import { PlanDocument } from '../generated.js';
import { empty, load, realmOf, type Section } from '../section.js';

/** Contracts, their dates, and the products licensed under each with their monthly quantities. */
export const planSection: Section = {
  id: 'plan',
  title: 'Plan',
  render: (context, body) =>
    load(context, body, () => query(context.key, PlanDocument), (data) => {
      const zone = context.realm.timeZone;
      const contracts = realmOf(data.viewer).contracts.edges.map((edge) => edge.node);
      if (contracts.length === 0) {
        body.append(empty('No contract: every product is billed on demand.'));
        return;
      }
      const now = Date.now();
      for (const contract of contracts) {
        const active = Date.parse(contract.startsAt) <= now && now < Date.parse(contract.endsAt);
        const licenses = contract.licenses.edges.map((edge) => edge.node);
        body.append(
          h(
            'article',
            { class: 'contract', 'data-contract': contract.id },
            h('h3', null, contract.name, active ? h('span', { class: 'badge' }, 'in force') : null),
            h(
              'p',
              null,
              'From ',
              h('time', { datetime: contract.startsAt, 'data-field': 'startsAt' }, dateIn(contract.startsAt, zone)),
              ' to ',
              h('time', { datetime: contract.endsAt, 'data-field': 'endsAt' }, dateIn(contract.endsAt, zone)),
              ' (end exclusive).',
            ),
            licenses.length === 0
              ? empty('No licensed products.')
              : table(
                  `Products licensed under ${contract.name}`,
                  ['Product', 'Key', 'Licensed per month', 'Unit'],
                  licenses.map((license) =>
                    h(
                      'tr',
                      { 'data-feature': license.feature.key },
                      h('th', { scope: 'row' }, license.feature.name),
                      h('td', null, h('code', null, license.feature.key)),
                      h('td', { class: 'num', 'data-field': 'quantityPerMonth' }, decimal(license.quantityPerMonth)),
                      h('td', null, unitLabel(license.feature.unit)),
                    ),
                  ),
                ),
          ),
        );
      }
    }),
};

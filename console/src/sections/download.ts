import { downloadExport, RequestFailed } from '../api.js';
import { monthLabel } from '../format.js';
import { h, labelled, replace, select } from '../dom.js';
import { showFailure, type Section } from '../section.js';

/** "YYYY-MM-DD" of an instant in a time zone. */
function localDate(instant: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(instant);
}

function lastMonths(today: string, count: number): string[] {
  const [year, month] = today.split('-').map(Number);
  return Array.from({ length: count }, (_, back) => {
    const date = new Date(Date.UTC(year!, month! - 1 - back, 1));
    return `${date.getUTCFullYear()}-${String(date.getUTCMonth() + 1).padStart(2, '0')}`;
  });
}

/** The CSV exports, fetched with the key in a header and saved from a blob: the key is never in a link. */
export const downloadSection: Section = {
  id: 'download',
  title: 'Downloadable usage',
  async render(context, body) {
    const zone = context.realm.timeZone;
    const today = localDate(new Date(), zone);
    const status = h('div', { class: 'download-status', 'aria-live': 'polite' });
    const save = async (path: string) => {
      replace(status, h('p', { class: 'muted' }, 'Preparing the CSV…'));
      try {
        const { blob, filename } = await downloadExport(context.key, path);
        const url = URL.createObjectURL(blob);
        const link = h('a', { href: url, download: filename });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
        const rows = Math.max(0, (await blob.text()).split('\r\n').filter(Boolean).length - 1);
        replace(status, h('p', { class: 'notice info' }, `Downloaded ${filename}: ${rows === 0 ? 'no usage in this range (the header only)' : `${rows} rows`}.`));
      } catch (error) {
        if (error instanceof RequestFailed) showFailure(status, error.failure, () => void save(path), context);
        else throw error;
      }
    };

    const month = select(lastMonths(today, 12).map((m) => ({ value: m, label: monthLabel(m) })), lastMonths(today, 1)[0]!, { name: 'month' });
    const monthly = h('form', { class: 'controls', 'aria-label': 'Monthly usage CSV' }, h('h3', null, 'A month'), labelled('Month', month), h('button', { type: 'submit' }, 'Download monthly CSV'));
    monthly.addEventListener('submit', (event) => {
      event.preventDefault();
      void save(`/exports/usage/monthly.csv?month=${encodeURIComponent(month.value)}`);
    });

    const start = h('input', { type: 'date', name: 'start', required: true, value: `${today.slice(0, 8)}01` });
    const end = h('input', { type: 'date', name: 'end', required: true, value: today });
    const daily = h(
      'form',
      { class: 'controls', 'aria-label': 'Daily usage CSV' },
      h('h3', null, 'Days'),
      h('p', { class: 'muted' }, `Up to 31 days, starting at most 6 months ago (${zone}).`),
      labelled('First day', start),
      labelled('Last day', end),
      h('button', { type: 'submit' }, 'Download daily CSV'),
    );
    daily.addEventListener('submit', (event) => {
      event.preventDefault();
      void save(`/exports/usage/daily.csv?start=${encodeURIComponent(start.value)}&end=${encodeURIComponent(end.value)}`);
    });
    body.append(h('div', { class: 'download-forms' }, monthly, daily), status);
  },
};

/**
 * Numbers are shown exactly as the gateway sent them (exact decimal strings), with thousands
 * separators only: the page never rounds what a bill is made of.
 */
export function decimal(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '—';
  const text = String(value);
  const match = /^(-?)(\d+)(\.\d+)?$/.exec(text);
  if (!match) return text;
  return `${match[1]}${match[2]!.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}${match[3] ?? ''}`;
}

/** For bar widths and charts only (never for shown figures). */
export const toNumber = (value: string | null | undefined) => (value ? Number(value) : 0);

export function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(ratio < 0.1 ? 2 : 1)} %`;
}

export function dateIn(iso: string, timeZone: string, withTime = false): string {
  const options: Intl.DateTimeFormatOptions = { timeZone, year: 'numeric', month: 'short', day: 'numeric' };
  if (withTime) Object.assign(options, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  return new Intl.DateTimeFormat('en-GB', options).format(new Date(iso));
}

export function monthLabel(month: string): string {
  const [year, m] = month.split('-').map(Number);
  return new Intl.DateTimeFormat('en-GB', { month: 'short', year: 'numeric', timeZone: 'UTC' }).format(new Date(Date.UTC(year!, m! - 1, 1)));
}

export function unitLabel(unit: string): string {
  return unit.toLowerCase().replace(/_/g, '-');
}

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { billingMonth } from '../src/billing/calendar.js';
import { bucketsOf, timeframeRange } from '../src/usage/time.js';
import { isMidnightTransition, modelBuckets, offsetTransitions, type CalendarUnit } from './local-calendar-model.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ZONES = Intl.supportedValuesOf('timeZone');

const iso = (t: number) => new Date(t).toISOString();
const show = (buckets: { from: number | Date; to: number | Date }[]) =>
  buckets.map((b) => `${iso(+b.from)}..${iso(+b.to)}`);
const gateway = (from: number, to: number, zone: string, unit: CalendarUnit) =>
  show(bucketsOf({ from: new Date(from), to: new Date(to) }, unit, zone));
const UNITS = ['DAY', 'WEEK', 'MONTH'] as const;
const model = (from: number, to: number, zone: string, unit: CalendarUnit) => show(modelBuckets(from, to, zone, [unit])[unit]);

/** Every unit's buckets from the gateway and from the model, compared. */
function expectModel(from: number, to: number, zone: string) {
  const expected = modelBuckets(from, to, zone, UNITS);
  for (const unit of UNITS) expect(gateway(from, to, zone, unit), `${zone} ${unit} ${iso(from)}..${iso(to)}`).toEqual(show(expected[unit]));
}

describe('day and month buckets where DST changes at local midnight', () => {
  it('America/Havana, 1 November 2026: the day starts at the first of its two midnights (04:00Z)', () => {
    const from = Date.parse('2026-10-30T00:00:00Z');
    const to = Date.parse('2026-11-03T00:00:00Z');
    const days = gateway(from, to, 'America/Havana', 'DAY');
    expect(days).toContain('2026-10-31T04:00:00.000Z..2026-11-01T04:00:00.000Z');
    expect(days).toContain('2026-11-01T04:00:00.000Z..2026-11-02T05:00:00.000Z');
    expect(days).toEqual(model(from, to, 'America/Havana', 'DAY'));
    expect(billingMonth('2026-11', 'America/Havana').range.from.toISOString()).toBe('2026-11-01T04:00:00.000Z');
    expect(billingMonth('2026-10', 'America/Havana').range.to.toISOString()).toBe('2026-11-01T04:00:00.000Z');
    expect(billingMonth('2026-11', 'America/Havana').hours).toBe(721);
  });

  it('America/Santiago, 6 September 2026: a 23-hour day from 04:00Z to 03:00Z', () => {
    const from = Date.parse('2026-09-04T00:00:00Z');
    const to = Date.parse('2026-09-09T00:00:00Z');
    const days = gateway(from, to, 'America/Santiago', 'DAY');
    expect(days).toContain('2026-09-06T04:00:00.000Z..2026-09-07T03:00:00.000Z');
    expect(days).toEqual(model(from, to, 'America/Santiago', 'DAY'));
  });

  it('MONTH_TO_DATE in Havana in November starts at the first midnight', () => {
    const range = timeframeRange('MONTH_TO_DATE', new Date('2026-11-15T12:00:00Z'), 'America/Havana');
    expect(range.from.toISOString()).toBe('2026-11-01T04:00:00.000Z');
    const previous = timeframeRange('PREVIOUS_MONTH', new Date('2026-12-15T12:00:00Z'), 'America/Havana');
    expect(previous.from.toISOString()).toBe('2026-11-01T04:00:00.000Z');
  });

  it('every IANA zone whose offset changes at local midnight (2010–2030): days, weeks and months match the model', () => {
    const from = Date.UTC(2010, 0, 1);
    const to = Date.UTC(2031, 0, 1);
    const checked: string[] = [];
    for (const zone of ZONES) {
      for (const t of offsetTransitions(zone, from, to, 14 * DAY)) {
        if (!isMidnightTransition(t, zone)) continue;
        checked.push(`${zone} ${iso(t)}`);
        // The edges at issue are within hours of the transition.
        expectModel(t - 3 * HOUR, t + 3 * HOUR, zone);
      }
    }
    expect(checked.some((c) => c.startsWith('America/Havana 2026-11-01'))).toBe(true);
    expect(checked.some((c) => c.startsWith('America/Santiago 2026-09-06'))).toBe(true);
    expect(checked.length).toBeGreaterThan(100);
  }, 60_000);
});

describe('buckets of any range in any IANA zone (property, against the minute-by-minute model)', () => {
  const instant = fc.integer({ min: Date.UTC(1971, 0, 1) / 60_000, max: Date.UTC(2037, 0, 1) / 60_000 }).map((m) => m * 60_000);
  const question = fc.record({ zone: fc.constantFrom(...ZONES), from: instant, minutes: fc.integer({ min: 1, max: 12 * 24 * 60 }) });

  it('edges are the first instants of local dates', () => {
    fc.assert(
      fc.property(question, ({ zone, from, minutes }) => expectModel(from, from + minutes * 60_000, zone)),
      { numRuns: 20 },
    );
  }, 60_000);

  it('around the zone’s own offset changes', () => {
    // Random transitions are rare at random instants: aim at them.
    const nearTransition = fc
      .record({ zone: fc.constantFrom(...ZONES), year: fc.integer({ min: 1971, max: 2036 }), shift: fc.integer({ min: -36 * 60, max: 36 * 60 }) })
      .map(({ zone, year, shift }) => {
        const transitions = offsetTransitions(zone, Date.UTC(year, 0, 1), Date.UTC(year + 1, 0, 1), 14 * DAY);
        return { zone, at: (transitions[0] ?? Date.UTC(year, 6, 1)) + shift * 60_000 };
      });
    fc.assert(
      fc.property(nearTransition, ({ zone, at }) => expectModel(at - 26 * HOUR, at + 26 * HOUR, zone)),
      { numRuns: 30 },
    );
  }, 60_000);
});

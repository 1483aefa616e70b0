import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { DateTimeResolver } from 'graphql-scalars';
import { describe, expect, it } from 'vitest';
import { canonicalQuantity, contentHashOf, EventRejection, isoMillisOf, nanosOf, nanosOfText, parseQuantity, parseTimestamp } from '../src/ingest/event.js';
import { Prisma } from '../src/generated/prisma/client.js';
import { DriverAdapterError } from '@prisma/driver-adapter-utils';
import { isRetryable } from '../src/ingest/pipeline.js';

/**
 * The ingestion's per-event shortcuts (src/ingest/event.ts) against the general code they stand in
 * for: every input must get the same answer either way. Pure functions: no database.
 */

const NOW = new Date('2026-06-15T12:00:00Z');
const WINDOW_MS = 35 * 86_400_000;

/** What the general code answers: the value, or the rejection's code and message. */
function outcome<T>(run: () => T): { value: T } | { code: string; message: string } {
  try {
    return { value: run() };
  } catch (error) {
    if (!(error instanceof EventRejection)) throw error;
    return { code: error.code, message: error.message };
  }
}

const quantityInputs = fc.oneof(
  // Well-formed decimals, leading and trailing zeros included.
  fc
    .tuple(fc.stringMatching(/^\d{1,20}$/), fc.option(fc.stringMatching(/^\d{1,9}$/), { nil: undefined }), fc.constantFrom('', ' ', '\t'))
    .map(([whole, fraction, pad]) => `${pad}${whole}${fraction === undefined ? '' : `.${fraction}`}${pad}`),
  fc.constantFrom('0', '00', '0.0', '000.000000000', '1.10', '007', '99999999999999999999.999999999', '-1', '1e3', '.5', '5.', '1.0000000001', '', ' '),
  fc.integer({ min: -10, max: Number.MAX_SAFE_INTEGER }),
  fc.constantFrom(Number.MAX_SAFE_INTEGER + 1, 1.5, -0, NaN, null, true),
  fc.string(),
);

describe('canonicalQuantity', () => {
  it('is parseQuantity(value).toFixed() for every value parseQuantity takes, and null for every other (property)', () => {
    fc.assert(
      fc.property(quantityInputs, (value) => {
        const general = outcome(() => parseQuantity(value).toFixed());
        const fast = canonicalQuantity(value);
        if ('value' in general) expect(fast).toBe(general.value);
        else expect(fast).toBeNull();
      }),
      { numRuns: 2000 },
    );
  });

  it('gives the same billionths as the Decimal', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^\d{1,20}(\.\d{1,9})?$/), (text) => {
        expect(nanosOfText(canonicalQuantity(text)!)).toBe(nanosOf(new Prisma.Decimal(text)));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('parseTimestamp', () => {
  /** The scalar alone, as parseTimestamp read every string before the shortcut. */
  const scalar = (value: string) => {
    try {
      const parsed: unknown = DateTimeResolver.parseValue(value);
      return parsed instanceof Date && !Number.isNaN(parsed.getTime()) ? parsed.getTime() : null;
    } catch {
      return null;
    }
  };

  it('reads toISOString() forms as the DateTime scalar does, impossible dates included (property)', () => {
    const nearNow = fc.integer({ min: NOW.getTime() - WINDOW_MS + 1, max: NOW.getTime() });
    const shaped = fc
      .tuple(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 19 }), fc.integer({ min: 0, max: 39 }), fc.integer({ min: 0, max: 29 }), fc.integer({ min: 0, max: 69 }), fc.integer({ min: 0, max: 69 }), fc.integer({ min: 0, max: 999 }))
      .map(([y, mo, d, h, mi, s, ms]) => `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:${String(mi).padStart(2, '0')}:${String(s).padStart(2, '0')}.${String(ms).padStart(3, '0')}Z`);
    fc.assert(
      fc.property(fc.oneof(nearNow.map((t) => new Date(t).toISOString()), shaped), (text) => {
        const fast = outcome(() => parseTimestamp(text, NOW, WINDOW_MS).getTime());
        const general = scalar(text);
        if (general === null) {
          expect(fast).toMatchObject({ code: 'INVALID_TIMESTAMP' });
        } else if ('value' in fast) {
          expect(fast.value).toBe(general);
        } else {
          // In range of the scalar, out of the lateness window or in the future: a time rejection.
          expect(['TOO_LATE', 'TIMESTAMP_IN_FUTURE']).toContain(fast.code);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('rejects impossible calendar dates in the short form', () => {
    for (const text of ['2026-02-30T10:00:00.000Z', '2026-06-15T24:00:00.000Z', '2026-13-01T00:00:00.000Z', '2026-06-15T10:60:00.000Z']) {
      expect(outcome(() => parseTimestamp(text, NOW, WINDOW_MS))).toMatchObject({ code: 'INVALID_TIMESTAMP' });
    }
  });
});

describe('isoMillisOf', () => {
  it('is the instant of every toISOString() text, and null or the same instant for any text of that shape (property)', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('0100-01-01T00:00:00.000Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }), (date) => {
        expect(isoMillisOf(date.toISOString())).toBe(date.getTime());
      }),
      { numRuns: 2000 },
    );
    // Any digits in the toISOString() shape: 30 February, hour 24, second 60, year 0050 included.
    const digits = (n: number) => fc.stringMatching(new RegExp(`^\\d{${n}}$`));
    fc.assert(
      fc.property(fc.tuple(digits(4), digits(2), digits(2), digits(2), digits(2), digits(2), digits(3)), ([y, mo, d, h, mi, s, ms]) => {
        const text = `${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}Z`;
        const date = new Date(text);
        const printsBack = !Number.isNaN(date.getTime()) && date.toISOString() === text && Number(y) >= 100;
        expect(isoMillisOf(text)).toBe(printsBack ? date.getTime() : null);
      }),
      { numRuns: 5000 },
    );
    for (const text of ['2026-02-29T00:00:00.000Z', '2024-02-30T00:00:00.000Z', '2026-06-15T24:00:00.000Z', '2026-06-15T10:15:60.000Z', '2026-06-15 10:15:00.000Z', '2026-06-15T10:15:00.000+00:00', '+02026-06-15T10:15:00.000Z']) {
      expect(isoMillisOf(text)).toBeNull();
    }
    expect(isoMillisOf('2024-02-29T23:59:59.999Z')).toBe(Date.UTC(2024, 1, 29, 23, 59, 59, 999));
  });
});

describe('contentHashOf', () => {
  it('is the SHA-256 of the event content it always was (stored hashes must keep matching)', () => {
    const event = {
      featureId: '0190a0b0-0000-7000-8000-000000000001',
      occurredAt: new Date('2026-06-15T10:15:00.250Z'),
      quantity: new Prisma.Decimal('12.50'),
      workspaceId: '0190a0b0-0000-7000-8000-000000000002',
      datastreamId: null,
      projectId: null,
      appId: null,
      apiKeyId: null,
      billingTag: 'team-1',
      resource: null,
      uniqueKey: null,
    };
    // As stored events were hashed before the one-shot `hash`: the same JSON array through createHash.
    const expected = createHash('sha256')
      .update(JSON.stringify([event.featureId, '2026-06-15T10:15:00.250Z', '12.5', event.workspaceId, null, null, null, null, 'team-1', null, null]))
      .digest('hex');
    expect(contentHashOf(event)).toBe(expected);
    expect(contentHashOf(event, '12.5')).toBe(expected);
  });

  it('hashes exactly JSON.stringify of the values, whatever characters the texts hold (property)', () => {
    const text = fc.option(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('a"b', 'c\\d', '\u0001', '\ud800', '\ud83d\ude00', '\u2028')), { nil: null });
    fc.assert(
      fc.property(fc.tuple(text, text, text, text, fc.date({ noInvalidDate: true, min: new Date(0), max: new Date('9999-01-01') })), ([workspaceId, billingTag, resource, uniqueKey, occurredAt]) => {
        const event = { featureId: 'f', occurredAt, quantity: new Prisma.Decimal('1.5'), workspaceId, datastreamId: null, projectId: null, appId: null, apiKeyId: null, billingTag, resource, uniqueKey };
        const expected = createHash('sha256')
          .update(JSON.stringify(['f', occurredAt.toISOString(), '1.5', workspaceId, null, null, null, null, billingTag, resource, uniqueKey]))
          .digest('hex');
        expect(contentHashOf(event)).toBe(expected);
        expect(contentHashOf({ ...event, occurredAtText: occurredAt.toISOString() }, '1.5')).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('isRetryable', () => {
  // The batch's statements go to the driver adapter's transaction directly (src/ingest/pipeline.ts
  // driverSql): a deadlock or serialization failure then arrives as the adapter's error, whose
  // message is only its kind and whose SQLSTATE is `originalCode`. It must still be retried.
  it('retries deadlocks and serialization failures as the driver adapter reports them, and nothing else', () => {
    const adapterError = (originalCode: string, kind: string) => new DriverAdapterError({ kind, originalCode, originalMessage: 'x' } as never);
    expect(isRetryable(adapterError('40P01', 'TransactionWriteConflict'))).toBe(true);
    expect(isRetryable(adapterError('40001', 'TransactionWriteConflict'))).toBe(true);
    expect(isRetryable(new Error('wrapped', { cause: adapterError('40P01', 'TransactionWriteConflict') }))).toBe(true);
    expect(isRetryable(adapterError('23505', 'UniqueConstraintViolation'))).toBe(false);
    expect(isRetryable(Object.assign(new Error('could not serialize: retry'), { code: '40001' }))).toBe(true);
    expect(isRetryable(new Error('boom'))).toBe(false);
  });
});

/**
 * A streaming NDJSON reader: bytes in (a web `ReadableStream`, e.g. `request.body`), batches of parsed
 * lines out. Memory stays flat whatever the body's size: it holds at most one batch, one chunk and
 * one partial line (itself bounded by `maxLineBytes`).
 *
 * Lines are split on `\n` in the raw bytes (a multi-byte UTF-8 sequence never contains the byte
 * 0x0A, so a character split across two chunks is simply joined before decoding); a trailing `\r`
 * is dropped (CRLF), blank lines are skipped (but counted: line numbers are the file's, 1-based),
 * a last line without a newline is read, and a UTF-8 byte-order mark at the very start is ignored.
 */
import { Buffer, isUtf8 } from 'node:buffer';

/** 1 GiB: `INGEST_MAX_BYTES`' default. */
export const DEFAULT_INGEST_MAX_BYTES = 1024 ** 3;

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3 };

/**
 * `INGEST_MAX_BYTES`: bytes, or with a binary unit (`512MiB`, `2GiB`); unset or blank is 1 GiB.
 * A bad value throws `fail(message)` (config.ts passes its ConfigError), a one-line explanation.
 * Here, not in http.ts, so that reading the configuration does not load the Prisma client.
 */
export function parseIngestMaxBytes(raw: string | undefined, fail: (message: string) => Error = (message) => new Error(message)): number {
  const value = raw?.trim();
  if (!value) return DEFAULT_INGEST_MAX_BYTES;
  const match = /^(\d{1,16})\s*([a-z]*)$/i.exec(value);
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  const bytes = match && unit ? Number(match[1]) * unit : NaN;
  if (!(bytes > 0 && Number.isSafeInteger(bytes))) {
    throw fail(`INGEST_MAX_BYTES must be a positive number of bytes, optionally with KiB, MiB or GiB (got "${raw}"); set INGEST_MAX_BYTES=1GiB or unset it`);
  }
  return bytes;
}

/** 15 minutes: `INGEST_MAX_SECONDS`' default. */
export const DEFAULT_INGEST_MAX_SECONDS = 900;

/** `INGEST_MAX_SECONDS`: the longest one `POST /ingest` may take, in whole seconds; unset or blank is 900. */
export function parseIngestMaxSeconds(raw: string | undefined, fail: (message: string) => Error = (message) => new Error(message)): number {
  const value = raw?.trim();
  if (!value) return DEFAULT_INGEST_MAX_SECONDS;
  const seconds = /^\d{1,7}$/.test(value) ? Number(value) : NaN;
  if (!(seconds >= 1 && seconds <= 86_400)) {
    throw fail(`INGEST_MAX_SECONDS must be a whole number of seconds from 1 to 86400 (got "${raw}"); set INGEST_MAX_SECONDS=${DEFAULT_INGEST_MAX_SECONDS} or unset it`);
  }
  return seconds;
}

/** `1 GiB`, `512 MiB`, `1000 bytes`: exact sizes for messages. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3 && bytes % 1024 ** 3 === 0) return `${bytes / 1024 ** 3} GiB`;
  if (bytes >= 1024 ** 2 && bytes % 1024 ** 2 === 0) return `${bytes / 1024 ** 2} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

/** A parsed line: any JSON value (the ingestion pipeline validates the event). */
export interface NdjsonValue {
  line: number;
  value: unknown;
}

export type NdjsonErrorCode = 'MALFORMED_JSON' | 'INVALID_UTF8' | 'LINE_TOO_LONG';

/** A line that is not JSON (reported by its number; the rest of the body is still read). */
export interface NdjsonError {
  line: number;
  code: NdjsonErrorCode;
  error: string;
}

export type NdjsonItem = NdjsonValue | NdjsonError;

export function isNdjsonError(item: NdjsonItem): item is NdjsonError {
  return 'error' in item;
}

/** The body is longer than the limit: thrown as soon as the byte past the limit arrives. */
export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
  constructor(
    readonly limit: number,
    /** Bytes read when the limit was passed (at least `limit + 1`). */
    readonly received: number,
  ) {
    super(`The body is larger than the limit of ${limit} bytes.`);
  }
}

export interface NdjsonReadOptions {
  /** The most bytes the body may have; one more throws `BodyTooLargeError`. Default: unlimited. */
  maxBytes?: number;
  /** The most items (values and malformed lines) per yielded batch. Default 5,000. */
  batchSize?: number;
  /** A longer line is reported as `LINE_TOO_LONG` and skipped without being buffered. Default 1 MiB. */
  maxLineBytes?: number;
  /** Called after each chunk with the bytes read so far. */
  onBytes?: (bytesRead: number) => void;
  /** Stops reading at once (cancelling the stream); the reader throws the signal's reason. */
  signal?: AbortSignal;
}

export interface NdjsonStats {
  /** Bytes read from the stream. */
  bytes: number;
  /** Lines seen, blank ones included (the number of the last line). */
  lines: number;
  /** Lines that were not blank. */
  nonBlankLines: number;
}

const NEWLINE = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;
const DEFAULT_BATCH = 5_000;
const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0b && c !== 0x0c) return false;
  }
  return true;
}

function describeJsonError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `not valid JSON: ${message.length > 200 ? `${message.slice(0, 200)}…` : message}`;
}

/**
 * Reads `stream` to its end (or until the consumer stops, which cancels the stream) and yields the
 * lines in order, in batches of at most `batchSize` items. `stats` (optional) is filled as it goes.
 */
export async function* readNdjson(
  stream: ReadableStream<Uint8Array>,
  options: NdjsonReadOptions = {},
  stats: NdjsonStats = { bytes: 0, lines: 0, nonBlankLines: 0 },
): AsyncGenerator<NdjsonItem[], NdjsonStats, undefined> {
  const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
  const batchSize = Math.max(1, options.batchSize ?? DEFAULT_BATCH);
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;

  const reader = stream.getReader();
  const signal = options.signal;
  signal?.throwIfAborted();
  // A pending read (a client that stalls) ends when the signal fires, not when the client goes on:
  // cancelling the reader does not end a pending read of every stream implementation.
  let onAbort = () => {};
  const aborted = new Promise<never>((_resolve, reject) => (onAbort = () => reject(signal?.reason)));
  aborted.catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  let finished = false;
  let batch: NdjsonItem[] = [];
  /** The start of the current line, when it began in an earlier chunk. */
  let partial: Buffer[] = [];
  let partialBytes = 0;
  /** The current line passed `maxLineBytes`: its bytes are dropped until its newline. */
  let overlong = false;
  let atStart = true;

  const finishLine = (bytes: Buffer) => {
    const line = ++stats.lines;
    const first = atStart;
    atStart = false;
    if (overlong) {
      overlong = false;
      stats.nonBlankLines++;
      batch.push({ line, code: 'LINE_TOO_LONG', error: `line longer than ${maxLineBytes} bytes` });
      return;
    }
    let start = 0;
    let end = bytes.length;
    if (first && end >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3;
    if (end > start && bytes[end - 1] === CR) end--;
    if (end === start) return;
    const slice = bytes.subarray(start, end);
    if (!isUtf8(slice)) {
      stats.nonBlankLines++;
      batch.push({ line, code: 'INVALID_UTF8', error: 'not valid UTF-8' });
      return;
    }
    const text = slice.toString('utf8');
    if (isBlank(text)) return;
    stats.nonBlankLines++;
    try {
      batch.push({ line, value: JSON.parse(text) });
    } catch (error) {
      batch.push({ line, code: 'MALFORMED_JSON', error: describeJsonError(error) });
    }
  };

  /** Adds bytes of the current (unfinished) line. */
  const keepPartial = (bytes: Buffer) => {
    if (bytes.length === 0 || overlong) return;
    if (partialBytes + bytes.length > maxLineBytes) {
      overlong = true;
      partial = [];
      partialBytes = 0;
      return;
    }
    // A copy: the chunk's memory may be reused by the stream's source.
    partial.push(Buffer.from(bytes));
    partialBytes += bytes.length;
  };

  try {
    for (;;) {
      const { done, value } = await (signal ? Promise.race([reader.read(), aborted]) : reader.read());
      signal?.throwIfAborted();
      if (done) break;
      if (!value || value.byteLength === 0) continue;
      stats.bytes += value.byteLength;
      if (stats.bytes > maxBytes) throw new BodyTooLargeError(maxBytes, stats.bytes);
      options.onBytes?.(stats.bytes);
      const chunk = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      let from = 0;
      for (;;) {
        if (partialBytes === 0 && !overlong) {
          // Whitespace-only lines in a tight loop: a gzip of newlines expands a thousandfold, and
          // building each empty line would cost far more than its byte.
          let scan = from;
          let afterNewline = -1;
          let newlines = 0;
          for (; scan < chunk.length; scan++) {
            const byte = chunk[scan];
            if (byte === NEWLINE) {
              newlines++;
              afterNewline = scan + 1;
            } else if (byte !== SPACE && byte !== TAB && byte !== CR) break;
          }
          if (newlines > 0) {
            stats.lines += newlines;
            atStart = false;
            from = afterNewline;
          }
        }
        const newline = chunk.indexOf(NEWLINE, from);
        if (newline < 0) break;
        if (partialBytes > 0 || overlong) {
          keepPartial(chunk.subarray(from, newline));
          const whole = partial.length === 1 ? partial[0]! : Buffer.concat(partial, partialBytes);
          partial = [];
          partialBytes = 0;
          finishLine(whole);
        } else if (newline - from > maxLineBytes) {
          overlong = true;
          finishLine(chunk.subarray(0, 0));
        } else {
          finishLine(chunk.subarray(from, newline));
        }
        from = newline + 1;
        if (batch.length >= batchSize) {
          const full = batch;
          batch = [];
          yield full;
        }
      }
      keepPartial(chunk.subarray(from));
    }
    if (partialBytes > 0 || overlong) {
      const whole = Buffer.concat(partial, partialBytes);
      partial = [];
      partialBytes = 0;
      finishLine(whole);
    }
    finished = true;
    if (batch.length > 0) yield batch;
    return stats;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (signal?.aborted) {
      // Not awaited: the source may never answer (a stalled client).
      void reader.cancel(signal.reason).catch(() => {});
    } else {
      if (!finished) await reader.cancel().catch(() => {});
      reader.releaseLock();
    }
  }
}

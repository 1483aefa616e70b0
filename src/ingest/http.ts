/**
 * `POST /ingest`: usage events as NDJSON (one JSON event per line), of any size, streamed through
 * the ingestion pipeline in batches of `MAX_BATCH`; the answer counts what happened to every line.
 *
 * A yoga plugin (like `useHealthCheck`): it answers the path itself in `onRequest`, before GraphQL.
 */
import type { Plugin } from 'graphql-yoga';
import { authorizeRoute, errorResponse, JSON_HEADERS, serviceUnavailableResponse, useRoute, type RouteNote } from '../plugins/http-route.js';
import { isDatabaseUnavailable } from '../errors.js';
import { Authenticator } from '../auth/authenticate.js';
import type { Viewer } from '../context.js';
import { outsideRecording } from '../db/statement-recorder.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { Logger } from '../observability.js';
import type { TrafficRecorder } from '../traffic/recorder.js';
import { statusClass } from '../traffic/status.js';
import {
  BodyTooLargeError,
  DEFAULT_INGEST_MAX_BYTES,
  DEFAULT_INGEST_MAX_SECONDS,
  formatBytes,
  isNdjsonError,
  readNdjson,
  type NdjsonItem,
  type NdjsonStats,
} from './ndjson.js';

export { DEFAULT_INGEST_MAX_BYTES, DEFAULT_INGEST_MAX_SECONDS, parseIngestMaxBytes, parseIngestMaxSeconds } from './ndjson.js';
import { ingestBatch, MAX_BATCH, type IngestErrorCode } from './pipeline.js';
import { ingestIntoLog, IngestLogFullError, IngestLogUnavailableError, INGEST_LOG_FULL_RETRY_AFTER_SECONDS, INGEST_LOG_UNAVAILABLE_RETRY_AFTER_SECONDS, type IngestLog } from './log.js';

/** The answer lists the first this many rejected lines (`rejected` counts them all). */
export const MAX_REPORTED_ERRORS = 1000;
export const INGEST_SCOPE = 'usage:write' as const;
/** `application/x-ndjson` is the usual name; the others are seen in the wild. */
export const NDJSON_CONTENT_TYPES = ['application/x-ndjson', 'application/ndjson', 'application/jsonl'] as const;

export interface IngestEndpointOptions {
  prisma: PrismaClient;
  /** The key check (default: a new `Authenticator(prisma)`). */
  authenticator?: Pick<Authenticator, 'authenticate'>;
  /** The largest body accepted, in bytes (uncompressed when the body is gzip-encoded). */
  maxBytes?: number;
  /** The longest a request may take, reading and storing, in seconds (`INGEST_MAX_SECONDS`). */
  maxSeconds?: number;
  /** Events per batch (one transaction each); default and maximum MAX_BATCH. */
  batchSize?: number;
  /** The clock (tests fix it); read once per batch. */
  now?: () => Date;
  path?: string;
  /** Called with every error that is answered as 500 "Unexpected error." */
  onUnexpectedError?: (error: unknown) => void;
  /** One line per request: status, counts, bytes, duration, the key's prefix and realm. */
  logger?: Logger;
  /** Records every request of a known key (rate-limited ones included) as its API traffic, endpoint "POST /ingest". */
  trafficRecorder?: TrafficRecorder;
  /**
   * The durable ingestion log (NATS_URL): valid events are stored there and the answer comes once
   * JetStream acknowledged them; workers fold them later. Without it: straight into the database.
   */
  log?: IngestLog;
}

export type IngestLineErrorCode = IngestErrorCode | 'MALFORMED_JSON' | 'INVALID_UTF8' | 'LINE_TOO_LONG';

export interface IngestLineError {
  /** The line's number in the body, from 1. */
  line: number;
  code: IngestLineErrorCode;
  message: string;
}

/** The 200 answer. */
export interface IngestResponseBody {
  /** Events stored by this request (with NATS_URL: stored in the ingestion log, counted once a worker folds them). */
  accepted: number;
  /** Events already stored with the same idempotency key and content (nothing changed); with NATS_URL: repeated in the body or already in the log. */
  duplicates: number;
  /** Lines not stored: malformed lines and rejected events. */
  rejected: number;
  /** The first `MAX_REPORTED_ERRORS` rejected lines, in line order. */
  errors: IngestLineError[];
  /** Lines in the body, blank ones included. */
  lines: number;
}

/** Reading the body failed (the client went away, bad gzip): the client's problem, not a 500. */
class BodyReadError extends Error {
  override name = 'BodyReadError';
}

/** Why a request's work was stopped before the end of its body. */
class IngestStopped extends Error {
  override name = 'IngestStopped';
  constructor(readonly why: 'timeout' | 'disconnected') {
    super(why === 'timeout' ? 'the request took longer than INGEST_MAX_SECONDS' : 'the client closed the connection');
  }
}

/** The counts of a request cut short (413 while streaming, 500): what was stored before it stopped. */
interface Progress {
  accepted: number;
  duplicates: number;
  rejected: number;
  errors: IngestLineError[];
}

function mediaType(contentType: string | null): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/**
 * Streams the NDJSON body through the pipeline. While a batch is being stored the next one is
 * already being read and parsed (at most two batches in memory).
 */
async function ingestStream(
  options: IngestEndpointOptions,
  viewer: Viewer,
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
  progress: Progress,
  stats: NdjsonStats,
  signal: AbortSignal,
): Promise<void> {
  const realm = { realmId: viewer.realmId, workspaceId: viewer.workspaceId };
  const report = (error: IngestLineError) => {
    progress.rejected++;
    if (progress.errors.length < MAX_REPORTED_ERRORS) progress.errors.push(error);
  };
  const batchSize = Math.min(MAX_BATCH, Math.max(1, options.batchSize ?? MAX_BATCH));
  const batches = readNdjson(body, { maxBytes, batchSize, signal }, stats);
  let next = batches.next();
  try {
    for (;;) {
      let step: IteratorResult<NdjsonItem[], NdjsonStats>;
      try {
        step = await next;
      } catch (error) {
        if (error instanceof BodyTooLargeError) throw error;
        if (signal.aborted) throw signal.reason;
        throw new BodyReadError(error instanceof Error ? error.message : String(error), { cause: error });
      }
      // A batch read before the client left (or the time ran out) is not stored.
      signal.throwIfAborted();
      if (step.done) break;
      // Read ahead while this batch is stored; a failure there is seen when it is awaited.
      next = batches.next();
      next.catch(() => {});
      const items: NdjsonItem[] = step.value;
      const lines: number[] = [];
      const events: unknown[] = [];
      const lineErrors: IngestLineError[] = [];
      for (const item of items) {
        if (isNdjsonError(item)) {
          lineErrors.push({ line: item.line, code: item.code, message: item.error });
        } else {
          lines.push(item.line);
          events.push(item.value);
        }
      }
      if (events.length > 0) {
        const now = options.now?.();
        const { log } = options;
        // Not counted in the request's statement log: a long upload would grow it without bound.
        const result = await outsideRecording(() =>
          log ? ingestIntoLog(options.prisma, log, realm, events, now ?? new Date()) : ingestBatch(options.prisma, realm, events, now ? { now } : undefined),
        ).catch((error: unknown) => {
          // Part of the batch may be in the log already (publishers filled it meanwhile): counted.
          if (error instanceof IngestLogFullError || error instanceof IngestLogUnavailableError) {
            progress.accepted += error.accepted;
            progress.duplicates += error.duplicates;
          }
          throw error;
        });
        progress.accepted += result.accepted;
        progress.duplicates += result.duplicates;
        for (const rejection of result.rejected) {
          lineErrors.push({ line: lines[rejection.index] ?? 0, code: rejection.code, message: rejection.message });
        }
      }
      lineErrors.sort((a, b) => a.line - b.line);
      for (const error of lineErrors) report(error);
    }
  } finally {
    // Stops reading (and cancels the body) when storing failed; a no-op after the last batch.
    await batches.return(stats).catch(() => {});
  }
}

/** A 413 for a body that is too large, with what was stored before the limit was reached. */
function tooLarge(maxBytes: number, progress?: Progress) {
  return errorResponse(
    413,
    'PAYLOAD_TOO_LARGE',
    `The body is larger than the limit of ${formatBytes(maxBytes)} (INGEST_MAX_BYTES); split it into smaller uploads.` +
      (progress ? ' The lines before the limit were processed: re-sending them is safe (idempotency keys).' : ''),
    { extensions: { maxBytes, ...(progress ? { accepted: progress.accepted, duplicates: progress.duplicates, rejected: progress.rejected } : {}) } },
  );
}

/** A 408 for a request that ran out of time, with what was stored before it stopped. */
function tooSlow(maxSeconds: number, progress: Progress, lines: number) {
  return errorResponse(
    408,
    'REQUEST_TIMEOUT',
    `The upload took longer than ${maxSeconds} s (INGEST_MAX_SECONDS) and was stopped; split it into smaller uploads. The batches before were stored: re-sending the whole body is safe (idempotency keys).`,
    { extensions: { maxSeconds, accepted: progress.accepted, duplicates: progress.duplicates, rejected: progress.rejected, lines } },
  );
}

/**
 * Aborts when the client goes away (the request's signal: the connection closed) or after
 * `maxSeconds`, whichever comes first; `done()` releases the timer.
 */
function requestDeadline(request: Request, maxSeconds: number) {
  const controller = new AbortController();
  const onDisconnect = () => controller.abort(new IngestStopped('disconnected'));
  if (request.signal?.aborted) onDisconnect();
  request.signal?.addEventListener?.('abort', onDisconnect, { once: true });
  const timer = setTimeout(() => controller.abort(new IngestStopped('timeout')), maxSeconds * 1000);
  return {
    signal: controller.signal,
    done() {
      clearTimeout(timer);
      request.signal?.removeEventListener?.('abort', onDisconnect);
    },
  };
}

export function useIngestEndpoint(options: IngestEndpointOptions): Plugin {
  const path = options.path ?? '/ingest';
  const maxBytes = options.maxBytes ?? DEFAULT_INGEST_MAX_BYTES;
  const maxSeconds = options.maxSeconds ?? DEFAULT_INGEST_MAX_SECONDS;
  const authenticator = options.authenticator ?? new Authenticator(options.prisma);

  const handle = async (request: Request, note: RouteNote): Promise<Response> => {
    const started = performance.now();
    const at = options.now?.() ?? new Date();
    const served: { viewer?: Viewer } = {};
    let status = 500;
    try {
      const response = await answer(request, note, served);
      status = response.status;
      return response;
    } finally {
      if (options.trafficRecorder && served.viewer?.kind === 'apiKey') {
        options.trafficRecorder.record({ apiKeyId: served.viewer.apiKeyId, at, endpoint: `POST ${path}`, status: statusClass([], status), latencyMs: performance.now() - started });
      }
    }
  };

  const answer = async (request: Request, note: RouteNote, served: { viewer?: Viewer }): Promise<Response> => {
    if (request.method !== 'POST') {
      return errorResponse(405, 'METHOD_NOT_ALLOWED', `Use POST ${path} with an NDJSON body (one usage event per line).`, { headers: { allow: 'POST' } });
    }
    const { viewer, response } = await authorizeRoute(authenticator, request, INGEST_SCOPE);
    served.viewer = viewer;
    note.realmId = viewer?.realmId;
    note.apiKeyId = viewer?.apiKeyId;
    if (response) return response;
    const type = mediaType(request.headers.get('content-type'));
    if (!(NDJSON_CONTENT_TYPES as readonly string[]).includes(type)) {
      return errorResponse(
        415,
        'UNSUPPORTED_MEDIA_TYPE',
        `${type ? `Content-Type "${type}" is not supported` : 'Content-Type is missing'}: send NDJSON (one JSON event per line) as "Content-Type: application/x-ndjson" (or application/jsonl).`,
      );
    }
    const encoding = (request.headers.get('content-encoding') ?? 'identity').trim().toLowerCase();
    if (encoding !== 'identity' && encoding !== 'gzip') {
      return errorResponse(415, 'UNSUPPORTED_MEDIA_TYPE', `Content-Encoding "${encoding}" is not supported: send the body as is or gzip-compressed.`);
    }
    const declaredLength = request.headers.get('content-length');
    if (declaredLength !== null && encoding === 'identity' && Number(declaredLength) > maxBytes) return tooLarge(maxBytes);
    const emptyBody = () =>
      errorResponse(400, 'EMPTY_BODY', 'The body is empty: send one usage event per line as NDJSON.', { extensions: { lines: 0 } });
    if (!request.body || declaredLength === '0') return emptyBody();

    const body: ReadableStream<Uint8Array> =
      encoding === 'gzip' ? request.body.pipeThrough(new DecompressionStream('gzip') as unknown as TransformStream<Uint8Array, Uint8Array>) : request.body;
    const progress: Progress = { accepted: 0, duplicates: 0, rejected: 0, errors: [] };
    const stats: NdjsonStats = { bytes: 0, lines: 0, nonBlankLines: 0 };
    const counts = () => ({ accepted: progress.accepted, duplicates: progress.duplicates, rejected: progress.rejected, lines: stats.lines });
    const deadline = requestDeadline(request, maxSeconds);
    try {
      await ingestStream(options, viewer, body, maxBytes, progress, stats, deadline.signal);
    } catch (error) {
      note.fields = { ...counts(), bytes: stats.bytes };
      if (error instanceof BodyTooLargeError) return tooLarge(maxBytes, progress);
      if (error instanceof IngestStopped && error.why === 'timeout') return tooSlow(maxSeconds, progress, stats.lines);
      if (error instanceof IngestStopped) {
        // Nobody reads this answer; the status (nginx's "client closed request") is for the log line.
        return errorResponse(499, 'CLIENT_CLOSED_REQUEST', 'The client closed the connection; the batches before were stored.', { extensions: counts() });
      }
      if (error instanceof BodyReadError) {
        return errorResponse(
          400,
          'BAD_REQUEST',
          `The body could not be read${encoding === 'gzip' ? ' (is it valid gzip?)' : ''}: ${error.message}. The lines before were processed: re-sending them is safe (idempotency keys).`,
          { extensions: counts() },
        );
      }
      // The batches before were stored: the counts say how far it got.
      if (isDatabaseUnavailable(error)) return serviceUnavailableResponse(counts());
      if (error instanceof IngestLogFullError) {
        return errorResponse(503, 'INGEST_LOG_FULL', `${error.message} The batches before were stored.`, {
          headers: { 'retry-after': String(INGEST_LOG_FULL_RETRY_AFTER_SECONDS) },
          extensions: { retryAfter: INGEST_LOG_FULL_RETRY_AFTER_SECONDS, ...counts() },
        });
      }
      if (error instanceof IngestLogUnavailableError) {
        return errorResponse(503, 'INGEST_LOG_UNAVAILABLE', `${error.message} The batches before were stored.`, {
          headers: { 'retry-after': String(INGEST_LOG_UNAVAILABLE_RETRY_AFTER_SECONDS) },
          extensions: { retryAfter: INGEST_LOG_UNAVAILABLE_RETRY_AFTER_SECONDS, ...counts() },
        });
      }
      options.onUnexpectedError?.(error);
      return errorResponse(
        500,
        'INTERNAL_SERVER_ERROR',
        'Unexpected error. The batches before it were stored: re-sending the whole body is safe (idempotency keys).',
        { extensions: counts() },
      );
    } finally {
      deadline.done();
    }
    note.fields = { ...counts(), bytes: stats.bytes };
    if (stats.nonBlankLines === 0) return emptyBody();
    const answer: IngestResponseBody = {
      accepted: progress.accepted,
      duplicates: progress.duplicates,
      rejected: progress.rejected,
      errors: progress.errors,
      lines: stats.lines,
    };
    return new Response(JSON.stringify(answer), { status: 200, headers: JSON_HEADERS });
  };

  return useRoute({
    match: (url) => (url.pathname === path ? true : undefined),
    handle: (request, _url, _match, note) => handle(request, note),
    describe: (line, note) => {
      const counts = note.fields as { accepted: number; duplicates: number; rejected: number } | undefined;
      return `ingest ${line.status}${counts ? ` accepted=${counts.accepted} duplicates=${counts.duplicates} rejected=${counts.rejected}` : ''} ${line.durationMs}ms`;
    },
    logger: options.logger,
    onUnexpectedError: options.onUnexpectedError,
  });
}

import { outsideRecording } from '../db/statement-recorder.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import { addLatency, histogramToJson, mergeInto, type Histogram } from './histogram.js';
import type { TrafficStatus } from './status.js';

/** One request served to an API key. */
export interface TrafficSample {
  apiKeyId: string;
  /** When the request came in; it counts in the minute holding this instant. */
  at: Date;
  endpoint: string;
  status: TrafficStatus;
  latencyMs: number;
}

export interface TrafficRecorderOptions {
  /** Longest time a sample waits in memory (default 1,000 ms). */
  flushIntervalMs?: number;
  /** Flush as soon as this many samples are buffered (default 1,000). */
  maxBufferedSamples?: number;
  /** Rows kept for a retry after a failed flush; beyond this the oldest failure is dropped (default 50,000). */
  maxPendingRows?: number;
  /** Told about failed flushes (their rows are retried with the next flush). */
  onError?: (error: unknown, rows: number) => void;
}

interface MinuteRow {
  apiKeyId: string;
  minute: number;
  endpoint: string;
  status: TrafficStatus;
  requests: number;
  errors: number;
  latencySumMs: number;
  latencyMaxMs: number;
  histogram: Histogram;
}

const MINUTE_MS = 60_000;

/**
 * One statement for a whole flush, whatever its size: the rows travel as nine arrays and are
 * upserted per (key, minute, endpoint, status), adding counts and merging histograms bucket by
 * bucket. Rows of keys deleted meanwhile are skipped rather than failing the batch.
 */
export const UPSERT_TRAFFIC_SQL = `INSERT INTO "ApiTrafficMinute" AS t
  ("apiKeyId", "minute", "endpoint", "status", "requests", "errors", "latencySumMs", "latencyMaxMs", "latencyHistogram", "updatedAt")
SELECT v.key, v.minute, v.endpoint, v.status::"TrafficStatus", v.requests, v.errors, v.lsum, v.lmax, v.hist, now()
FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::int[], $6::int[], $7::float8[], $8::float8[], $9::jsonb[])
  AS v(key, minute, endpoint, status, requests, errors, lsum, lmax, hist)
WHERE EXISTS (SELECT 1 FROM "ApiKey" k WHERE k.id = v.key)
ON CONFLICT ("apiKeyId", "minute", "endpoint", "status") DO UPDATE SET
  "requests" = t."requests" + EXCLUDED."requests",
  "errors" = t."errors" + EXCLUDED."errors",
  "latencySumMs" = t."latencySumMs" + EXCLUDED."latencySumMs",
  "latencyMaxMs" = GREATEST(t."latencyMaxMs", EXCLUDED."latencyMaxMs"),
  "latencyHistogram" = (
    SELECT jsonb_object_agg(merged.idx, merged.n) FROM (
      SELECT u.idx, sum(u.n::bigint) AS n
      FROM (SELECT * FROM jsonb_each_text(t."latencyHistogram") UNION ALL SELECT * FROM jsonb_each_text(EXCLUDED."latencyHistogram")) AS u(idx, n)
      GROUP BY u.idx
    ) AS merged
  ),
  "updatedAt" = now()`;

/**
 * Buffers request samples in memory, aggregated per key, minute, endpoint and status, and writes
 * them in batches (every `flushIntervalMs`, or once `maxBufferedSamples` are waiting): one upsert
 * statement per flush, in a transaction, outside every request's statement recording, so a request
 * never waits for its own row. `flush()` writes what is buffered now; `close()` flushes and stops.
 */
export class TrafficRecorder {
  private buffer = new Map<string, MinuteRow>();
  private bufferedSamples = 0;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private identifying = new Set<Promise<unknown>>();
  private closed = false;
  private readonly flushIntervalMs: number;
  private readonly maxBufferedSamples: number;
  private readonly maxPendingRows: number;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly options: TrafficRecorderOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 1_000;
    this.maxBufferedSamples = options.maxBufferedSamples ?? 1_000;
    this.maxPendingRows = options.maxPendingRows ?? 50_000;
  }

  /** Samples waiting for the next flush. */
  get pendingSamples(): number {
    return this.bufferedSamples;
  }

  record(sample: TrafficSample): void {
    if (this.closed) return;
    const minute = Math.floor(sample.at.getTime() / MINUTE_MS) * MINUTE_MS;
    const id = `${sample.apiKeyId}|${minute}|${sample.status}|${sample.endpoint}`;
    let row = this.buffer.get(id);
    if (!row) {
      row = { apiKeyId: sample.apiKeyId, minute, endpoint: sample.endpoint, status: sample.status, requests: 0, errors: 0, latencySumMs: 0, latencyMaxMs: 0, histogram: new Map() };
      this.buffer.set(id, row);
    }
    const latency = Number.isFinite(sample.latencyMs) && sample.latencyMs > 0 ? sample.latencyMs : 0;
    row.requests += 1;
    if (sample.status !== 'OK') row.errors += 1;
    row.latencySumMs += latency;
    row.latencyMaxMs = Math.max(row.latencyMaxMs, latency);
    addLatency(row.histogram, latency);
    this.bufferedSamples += 1;
    if (this.bufferedSamples >= this.maxBufferedSamples) void this.flush();
    else this.schedule();
  }

  /** A sample whose key is still being looked up (null: no key after all); `flush()` waits for it. */
  recordWhenKnown(pending: Promise<TrafficSample | null>): void {
    if (this.closed) return;
    const tracked = pending.then(
      (sample) => sample && this.record(sample),
      () => {},
    );
    this.identifying.add(tracked);
    void tracked.finally(() => this.identifying.delete(tracked));
  }

  /** Writes everything buffered so far (after any flush already under way). Never rejects. */
  flush(): Promise<void> {
    return outsideRecording(async () => {
      if (this.identifying.size) await Promise.all([...this.identifying]);
      clearTimeout(this.timer);
      this.timer = undefined;
      this.chain = this.chain.then(() => this.write());
      return this.chain;
    });
  }

  /** Flushes and stops: later samples are ignored. */
  async close(): Promise<void> {
    if (this.identifying.size) await Promise.all([...this.identifying]);
    this.closed = true;
    await this.flush();
  }

  private schedule() {
    if (this.timer) return;
    outsideRecording(() => {
      this.timer = setTimeout(() => void this.flush(), this.flushIntervalMs);
      this.timer.unref();
    });
  }

  private async write(): Promise<void> {
    if (this.buffer.size === 0) return;
    const rows = [...this.buffer.values()];
    this.buffer = new Map();
    this.bufferedSamples = 0;
    try {
      await this.prisma.$transaction([this.prisma.$executeRawUnsafe(UPSERT_TRAFFIC_SQL, ...columnsOf(rows))]);
    } catch (error) {
      this.options.onError?.(error, rows.length);
      this.requeue(rows);
    }
  }

  /** Puts the rows of a failed flush back (merging with newer samples), up to `maxPendingRows`. */
  private requeue(rows: MinuteRow[]) {
    if (this.closed) return;
    for (const row of rows) {
      const id = `${row.apiKeyId}|${row.minute}|${row.status}|${row.endpoint}`;
      const newer = this.buffer.get(id);
      if (newer) {
        newer.requests += row.requests;
        newer.errors += row.errors;
        newer.latencySumMs += row.latencySumMs;
        newer.latencyMaxMs = Math.max(newer.latencyMaxMs, row.latencyMaxMs);
        mergeInto(newer.histogram, row.histogram);
      } else if (this.buffer.size < this.maxPendingRows) {
        this.buffer.set(id, row);
      } else {
        continue;
      }
      this.bufferedSamples += row.requests;
    }
    this.schedule();
  }
}

function columnsOf(rows: MinuteRow[]): unknown[] {
  return [
    rows.map((r) => r.apiKeyId),
    rows.map((r) => new Date(r.minute).toISOString()),
    rows.map((r) => r.endpoint),
    rows.map((r) => r.status),
    rows.map((r) => r.requests),
    rows.map((r) => r.errors),
    rows.map((r) => r.latencySumMs),
    rows.map((r) => r.latencyMaxMs),
    rows.map((r) => JSON.stringify(histogramToJson(r.histogram))),
  ];
}

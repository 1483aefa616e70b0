/**
 * A worker of the ingestion log: takes batches from the durable pull consumer every worker shares
 * (any number, in any process), folds them into the database through `ingestBatch` and
 * acknowledges a message only after its fold committed. A message delivered twice (a worker died
 * after the commit, before the ack) is folded twice: its idempotency key makes the second a
 * duplicate, so nothing is counted twice.
 */
import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import type { PrismaClient } from '../generated/prisma/client.js';
import { errorSummary, type Logger } from '../observability.js';
import { HEADER_REALM, HEADER_RECEIVED_AT, HEADER_WORKSPACE, type IngestLog } from './log.js';
import { ingestBatch, MAX_BATCH, type IngestResult, type IngestTarget } from './pipeline.js';

/** After the first message of a batch, how long the worker waits for more before folding what it has. */
const LINGER_MS = 20;
/** A fold that failed (the database is down) is retried after this long, by whichever worker gets it. */
const RETRY_DELAY_MS = 5_000;

/** What one fold of a group (one target, one receive time) did. */
export interface FoldReport {
  target: IngestTarget;
  events: number;
  result: IngestResult;
  /** Seconds from JetStream's storing (the edge's ack) to the fold's commit, per message. */
  lagSeconds: number[];
  redelivered: number;
}

export interface IngestWorkerOptions {
  prisma: PrismaClient;
  log: IngestLog;
  /** Messages per batch (default and maximum MAX_BATCH). */
  batchSize?: number;
  logger?: Logger;
  /** Called after each group's fold committed and was acknowledged (metrics, tests). */
  onFold?: (report: FoldReport) => void;
  /** Called with each fold that failed (its messages are redelivered later). */
  onFoldError?: (error: unknown, messages: number) => void;
  /** Messages that cannot be read (not written by a gateway): terminated, never redelivered. */
  onPoison?: (message: JsMsg, reason: string) => void;
}

export interface IngestWorker {
  /** Stops taking messages, finishes the fold under way; buffered messages go back after their ack wait. */
  stop(): Promise<void>;
  /** Settles when the worker stopped (rejects if it could not start). */
  done: Promise<void>;
}

interface Parsed {
  message: JsMsg;
  target: IngestTarget;
  receivedAt: Date;
  event: unknown;
}

function parseMessage(message: JsMsg): Parsed | string {
  const realmId = message.headers?.get(HEADER_REALM);
  const receivedAtRaw = message.headers?.get(HEADER_RECEIVED_AT);
  if (!realmId || !receivedAtRaw) return 'no Ugw-Realm / Ugw-Received-At header';
  const receivedAt = new Date(receivedAtRaw);
  if (Number.isNaN(receivedAt.getTime())) return `bad ${HEADER_RECEIVED_AT} "${receivedAtRaw}"`;
  let event: unknown;
  try {
    event = message.json();
  } catch {
    return 'the body is not JSON';
  }
  return { message, target: { realmId, workspaceId: message.headers?.get(HEADER_WORKSPACE) || null }, receivedAt, event };
}

/** A fold's lag from the edge's ack to its commit, in ms: fewest, median, most. */
function lagSummary(lagSeconds: number[]) {
  const sorted = lagSeconds.map((seconds) => Math.round(seconds * 1000)).sort((x, y) => x - y);
  return { min: sorted[0] ?? 0, p50: sorted[Math.floor(sorted.length / 2)] ?? 0, max: sorted[sorted.length - 1] ?? 0 };
}

/** Groups of one target and one receive time (one edge batch), in the order of their first message. */
function groupsOf(items: Parsed[]): Parsed[][] {
  const groups = new Map<string, Parsed[]>();
  for (const item of items) {
    const key = `${item.target.realmId}|${item.target.workspaceId ?? ''}|${item.receivedAt.toISOString()}`;
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return [...groups.values()];
}

/**
 * Folds one batch of messages: each group through `ingestBatch` with the edge's target and receive
 * time (so a late fold does not turn an event TOO_LATE), then acknowledges the group's messages.
 * A group whose fold fails is nak'ed with a delay (redelivered, to this or another worker).
 */
export async function foldMessages(options: IngestWorkerOptions, messages: JsMsg[]): Promise<void> {
  const parsed: Parsed[] = [];
  for (const message of messages) {
    const item = parseMessage(message);
    if (typeof item === 'string') {
      options.onPoison?.(message, item);
      options.logger?.error({ stream: message.info.stream, seq: message.seq, reason: item }, `ingestion log: message ${message.seq} cannot be folded (${item}); terminated`);
      message.term(item);
    } else parsed.push(item);
  }
  for (const group of groupsOf(parsed)) {
    const { target, receivedAt } = group[0]!;
    let result: IngestResult;
    try {
      result = await ingestBatch(options.prisma, target, group.map((item) => item.event), { now: receivedAt });
    } catch (error) {
      options.onFoldError?.(error, group.length);
      options.logger?.warn({ err: error, events: group.length }, `ingestion log: folding ${group.length} events failed (${errorSummary(error)}); they are redelivered in ${RETRY_DELAY_MS / 1000} s`);
      for (const item of group) item.message.nak(RETRY_DELAY_MS);
      continue;
    }
    for (const item of group) item.message.ack();
    const foldedAt = Date.now();
    const report: FoldReport = {
      target,
      events: group.length,
      result,
      lagSeconds: group.map((item) => Math.max(0, (foldedAt - item.message.info.timestampNanos / 1e6) / 1000)),
      redelivered: group.filter((item) => item.message.redelivered).length,
    };
    if (result.rejected.length) {
      const codes = [...new Set(result.rejected.map((r) => r.code))];
      options.logger?.warn(
        { realmId: target.realmId, rejected: result.rejected.length, codes, first: result.rejected[0] },
        `ingestion log: ${result.rejected.length} events rejected at the fold (${codes.join(', ')}), after the edge had accepted them`,
      );
    }
    options.logger?.debug(
      {
        realmId: target.realmId,
        events: group.length,
        accepted: result.accepted,
        duplicates: result.duplicates,
        rejected: result.rejected.length,
        redelivered: report.redelivered,
        lagMs: lagSummary(report.lagSeconds),
      },
      'ingestion log: folded',
    );
    options.onFold?.(report);
  }
}

/** Starts a worker: it runs until `stop()`. */
export function startIngestWorker(options: IngestWorkerOptions): IngestWorker {
  const batchSize = Math.min(MAX_BATCH, Math.max(1, options.batchSize ?? MAX_BATCH));
  const { log } = options;
  let messages: ConsumerMessages | undefined;
  let stopped = false;

  const run = async () => {
    const consumer = await log.client.consumers.get(log.settings.stream, log.settings.consumer);
    if (stopped) return;
    // Pull requests of 5 s: after a NATS restart (pull requests lost) the client notices missed
    // heartbeats and pulls again within seconds, not the default 30 s.
    messages = await consumer.consume({ max_messages: batchSize, expires: 5000 });
    if (stopped) {
      messages.stop();
      return;
    }
    const iterator = messages[Symbol.asyncIterator]();
    let next = iterator.next();
    const LINGERED = Symbol('lingered');
    for (;;) {
      const first = await next;
      if (first.done) return;
      const batch: JsMsg[] = [first.value];
      next = iterator.next();
      while (batch.length < batchSize) {
        let timer: NodeJS.Timeout | undefined;
        const step = await Promise.race([next, new Promise<typeof LINGERED>((resolve) => (timer = setTimeout(() => resolve(LINGERED), LINGER_MS)))]);
        clearTimeout(timer);
        if (step === LINGERED || step.done) break;
        batch.push(step.value);
        next = iterator.next();
      }
      // A long fold keeps its messages: "in progress" resets their ack wait.
      const keepAlive = setInterval(() => batch.forEach((message) => message.working()), Math.max(500, log.settings.ackWaitMs / 3));
      try {
        await foldMessages(options, batch);
      } finally {
        clearInterval(keepAlive);
      }
      if (stopped) return;
    }
  };

  const done = run();
  done.catch(() => {});
  return {
    async stop() {
      stopped = true;
      messages?.stop();
      await done.catch(() => {});
    },
    done,
  };
}

/**
 * The durable ingestion log (NATS JetStream, with `NATS_URL`): `POST /ingest` and `ingestUsage`
 * validate events at the edge and answer once JetStream has stored the valid ones; workers
 * (./log-worker.ts) fold them into the database later through `ingestBatch`.
 *
 * One message per event, on `<prefix>.<realmId>`: the body is the event as received, the headers
 * carry the caller's target (realm, workspace scope) and the edge's receive time. Its
 * `Nats-Msg-Id` is derived from realm, idempotency key and content, so a re-sent event is dropped
 * by JetStream within the duplicate window, and by the idempotency keys at the fold after it.
 */
import { createHash } from 'node:crypto';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  type PubAck,
  type StreamConfig,
} from '@nats-io/jetstream';
import { connect, headers as natsHeaders, nanos, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import type { Prisma, PrismaClient } from '../generated/prisma/client.js';
import { DEFAULT_LATENESS_WINDOW_MS, parseBatch, type IngestRejection, type IngestResult, type IngestTarget } from './pipeline.js';

export const DEFAULT_INGEST_STREAM = 'UGW_USAGE';
export const DEFAULT_INGEST_SUBJECT_PREFIX = 'ugw.usage';
export const DEFAULT_INGEST_CONSUMER = 'ugw-usage-workers';
export const DEFAULT_INGEST_STREAM_MAX_BYTES = 1024 ** 3;
export const DEFAULT_INGEST_STREAM_MAX_MSGS = 10_000_000;
export const DEFAULT_INGEST_ACK_WAIT_MS = 60_000;
/** JetStream drops a message whose `Nats-Msg-Id` it stored this recently. */
export const INGEST_DUPLICATE_WINDOW_MS = 120_000;
/** Retry-After of a 503 INGEST_LOG_FULL: workers need a while to make room. */
export const INGEST_LOG_FULL_RETRY_AFTER_SECONDS = 10;
/** Retry-After of a 503 INGEST_LOG_UNAVAILABLE: the client reconnects by itself. */
export const INGEST_LOG_UNAVAILABLE_RETRY_AFTER_SECONDS = 5;
/** How long one publish waits for JetStream's ack. */
const PUBLISH_TIMEOUT_MS = 10_000;
/**
 * Publishes awaiting their ack, per process: enough to keep JetStream busy, few enough that a
 * publish's timeout measures JetStream, not a queue of this process's own earlier publishes.
 */
const MAX_PUBLISHES_IN_FLIGHT = 1000;
/** A stored message's bytes beyond its subject, headers and body (file store record), rounded up. */
const STORED_MESSAGE_OVERHEAD_BYTES = 64;
/** Unacknowledged messages the consumer hands out in all (a batch of 5000 per worker, buffered twice). */
const MAX_ACK_PENDING = 100_000;

export const HEADER_REALM = 'Ugw-Realm';
export const HEADER_WORKSPACE = 'Ugw-Workspace';
export const HEADER_RECEIVED_AT = 'Ugw-Received-At';

export interface IngestLogSettings {
  /** NATS_URL (comma-separated for a cluster). */
  url: string;
  /** INGEST_STREAM */
  stream: string;
  /** INGEST_SUBJECT_PREFIX: events go to `<prefix>.<realmId>`. */
  subjectPrefix: string;
  /** INGEST_CONSUMER: the durable pull consumer every worker shares. */
  consumer: string;
  /** INGEST_STREAM_MAX_BYTES / INGEST_STREAM_MAX_MSGS: beyond them ingestion answers 503 INGEST_LOG_FULL. */
  maxBytes: number;
  maxMessages: number;
  /** INGEST_ACK_WAIT_MS: a delivered message not acknowledged by then goes to another worker. */
  ackWaitMs: number;
  /** INGEST_STREAM_REPLICAS: copies of the stream in a NATS cluster (1 on a single server). */
  replicas: number;
  /** INGEST_WORKERS: workers inside each gateway process (0: only `usage-gateway worker` processes fold). */
  workers: number;
}

type Env = Record<string, string | undefined>;
const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** The log's settings from the environment; undefined without NATS_URL (events go straight to the database). */
export function ingestLogSettings(env: Env, fail: (message: string) => Error = (message) => new Error(message)): IngestLogSettings | undefined {
  const read = (name: string) => env[name]?.trim() || undefined;
  const workersRaw = read('INGEST_WORKERS');
  const url = read('NATS_URL');
  if (!url) {
    if (workersRaw && workersRaw !== '0') throw fail('INGEST_WORKERS needs NATS_URL (the ingestion log the workers read); set NATS_URL or unset INGEST_WORKERS');
    return undefined;
  }
  for (const server of url.split(',')) {
    let protocol = '';
    try {
      protocol = new URL(server.trim()).protocol;
    } catch {
      // reported below
    }
    if (!['nats:', 'tls:', 'ws:', 'wss:'].includes(protocol)) throw fail(`NATS_URL must look like nats://host:4222 (got "${url}"); fix it or unset it`);
  }
  const name = (variable: string, fallback: string, pattern: RegExp, example: string) => {
    const value = read(variable) ?? fallback;
    if (!pattern.test(value)) throw fail(`${variable} must be ${example} (got "${value}"); fix it or unset it`);
    return value;
  };
  const whole = (variable: string, fallback: number, min: number, max: number) => {
    const raw = read(variable);
    if (raw === undefined) return fallback;
    const number = /^\d{1,12}$/.test(raw) ? Number(raw) : NaN;
    if (!(number >= min && number <= max)) throw fail(`${variable} must be a whole number from ${min} to ${max} (got "${raw}"); set ${variable}=${fallback} or unset it`);
    return number;
  };
  const maxBytesRaw = read('INGEST_STREAM_MAX_BYTES');
  let maxBytes = DEFAULT_INGEST_STREAM_MAX_BYTES;
  if (maxBytesRaw !== undefined) {
    const match = /^(\d{1,16})\s*([a-z]*)$/i.exec(maxBytesRaw);
    const unit = match ? BYTE_UNITS[match[2]!.toLowerCase()] : undefined;
    maxBytes = match && unit ? Number(match[1]) * unit : NaN;
    if (!(maxBytes >= 1024 && Number.isSafeInteger(maxBytes))) {
      throw fail(`INGEST_STREAM_MAX_BYTES must be at least 1KiB, in bytes or with KiB, MiB or GiB (got "${maxBytesRaw}"); set INGEST_STREAM_MAX_BYTES=1GiB or unset it`);
    }
  }
  return {
    url,
    stream: name('INGEST_STREAM', DEFAULT_INGEST_STREAM, /^[A-Za-z0-9_-]{1,64}$/, 'a stream name of letters, digits, _ and - (e.g. UGW_USAGE)'),
    subjectPrefix: name('INGEST_SUBJECT_PREFIX', DEFAULT_INGEST_SUBJECT_PREFIX, /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'dot-separated subject tokens (e.g. ugw.usage)'),
    consumer: name('INGEST_CONSUMER', DEFAULT_INGEST_CONSUMER, /^[A-Za-z0-9_-]{1,64}$/, 'a consumer name of letters, digits, _ and - (e.g. ugw-usage-workers)'),
    maxBytes,
    maxMessages: whole('INGEST_STREAM_MAX_MSGS', DEFAULT_INGEST_STREAM_MAX_MSGS, 1, 1_000_000_000_000),
    ackWaitMs: whole('INGEST_ACK_WAIT_MS', DEFAULT_INGEST_ACK_WAIT_MS, 1000, 3_600_000),
    replicas: whole('INGEST_STREAM_REPLICAS', 1, 1, 5),
    workers: whole('INGEST_WORKERS', 0, 0, 64),
  };
}

/** The log is at INGEST_STREAM_MAX_BYTES / _MSGS: nothing more is taken until workers make room. */
export class IngestLogFullError extends Error {
  override name = 'IngestLogFullError';
  constructor(
    /** Events of the refused batch stored before the limit was hit (0 when refused up front). */
    readonly accepted = 0,
    readonly duplicates = 0,
  ) {
    super('The ingestion log is full: workers are behind. Nothing of the refused batch was stored unless the counts say so; retry later (re-sending is safe).');
  }
}

/** NATS cannot be reached, or did not acknowledge in time. */
export class IngestLogUnavailableError extends Error {
  override name = 'IngestLogUnavailableError';
  constructor(
    readonly accepted = 0,
    readonly duplicates = 0,
    options?: ErrorOptions,
  ) {
    super('The ingestion log (NATS) cannot be reached right now; the counts say what was stored. Retry later (re-sending is safe).', options);
  }
}

/** What /metrics and /healthz show of the log. */
export interface IngestLogStats {
  stream: string;
  connected: boolean;
  /** Messages in the stream: not yet folded and acknowledged (workqueue retention), and after a crash of nats-server possibly some that were. */
  messages: number;
  bytes: number;
  maxMessages: number;
  maxBytes: number;
  /** Consumer lag: messages not yet delivered to any worker. */
  pending: number;
  /** Delivered to a worker, not yet acknowledged. */
  ackPending: number;
  /** Messages delivered more than once (a worker died or was too slow). */
  redelivered: number;
  /** Age of the oldest message not yet folded; 0 when there is none. */
  oldestUnprocessedAgeSeconds: number;
}

export interface LoggedEvent {
  /** The event as received (`withUnknownFields` applied for GraphQL): the worker validates it again. */
  raw: unknown;
  idempotencyKey: string;
  contentHash: string;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** JetStream's deduplication id of an event: the realm, the key and the content (a key re-used with other content is not hidden). */
export function messageIdOf(realmId: string, event: Pick<LoggedEvent, 'idempotencyKey' | 'contentHash'>): string {
  return `${realmId}:${sha256(event.idempotencyKey)}:${event.contentHash}`;
}

function isLimitError(error: unknown): boolean {
  const message = String((error as Error)?.message ?? error);
  return /maximum (messages|bytes)|resource limits exceeded|insufficient resources/i.test(message);
}

function apiCode(error: unknown): number | undefined {
  return error instanceof JetStreamApiError ? error.apiError().err_code : undefined;
}

export class IngestLog {
  private connected = true;
  private publishesInFlight = 0;
  private readonly waitingToPublish: Array<() => void> = [];

  private constructor(
    readonly settings: IngestLogSettings,
    readonly connection: NatsConnection,
    readonly client: JetStreamClient,
    readonly manager: JetStreamManager,
  ) {
    void (async () => {
      for await (const status of connection.status()) {
        if (status.type === 'disconnect') this.connected = false;
        else if (status.type === 'reconnect') this.connected = true;
      }
    })();
  }

  /** Connects (failing at once when NATS cannot be reached) and creates or updates the stream and the consumer. */
  static async open(settings: IngestLogSettings, options: { name?: string } = {}): Promise<IngestLog> {
    const connection = await connect({
      servers: settings.url.split(',').map((server) => server.trim()),
      name: options.name ?? 'usage-gateway',
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 10_000,
    });
    try {
      const manager = await jetstreamManager(connection);
      const log = new IngestLog(settings, connection, jetstream(connection, { timeout: PUBLISH_TIMEOUT_MS }), manager);
      await log.ensureStream();
      await log.ensureConsumer();
      return log;
    } catch (error) {
      await connection.close().catch(() => {});
      throw error;
    }
  }

  subjectOf(realmId: string): string {
    return `${this.settings.subjectPrefix}.${realmId}`;
  }

  private streamConfig(): Partial<StreamConfig> & { name: string } {
    return {
      name: this.settings.stream,
      subjects: [`${this.settings.subjectPrefix}.>`],
      // A message is gone once a worker acknowledged its fold: the stream's size is the backlog.
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      discard: DiscardPolicy.New,
      max_bytes: this.settings.maxBytes,
      max_msgs: this.settings.maxMessages,
      duplicate_window: nanos(INGEST_DUPLICATE_WINDOW_MS),
      num_replicas: this.settings.replicas,
    };
  }

  private async ensureStream(): Promise<void> {
    const config = this.streamConfig();
    try {
      await this.manager.streams.add(config);
    } catch (error) {
      // Another process created it, with other limits: this process's settings win.
      if (apiCode(error) !== 10058) throw error;
      const { name, retention: _retention, storage: _storage, ...update } = config;
      await this.manager.streams.update(name, update);
    }
  }

  private consumerConfig(): Partial<ConsumerConfig> & { durable_name: string } {
    return {
      durable_name: this.settings.consumer,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(this.settings.ackWaitMs),
      deliver_policy: DeliverPolicy.All,
      max_ack_pending: MAX_ACK_PENDING,
      max_deliver: -1,
      filter_subject: `${this.settings.subjectPrefix}.>`,
    };
  }

  private async ensureConsumer(): Promise<void> {
    const config = this.consumerConfig();
    try {
      await this.manager.consumers.add(this.settings.stream, config);
    } catch (error) {
      if (apiCode(error) === undefined) throw error;
      await this.manager.consumers.update(this.settings.stream, this.settings.consumer, { ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending });
    }
  }

  isConnected(): boolean {
    return this.connected && !this.connection.isClosed();
  }

  /**
   * Stores `events` (one message each) and resolves once JetStream acknowledged every one.
   * Refuses the whole batch up front when it would not fit (IngestLogFullError with no counts);
   * when concurrent publishers fill the stream meanwhile, the error counts what was stored.
   */
  async publish(target: IngestTarget, receivedAt: Date, events: LoggedEvent[]): Promise<{ accepted: number; duplicates: number }> {
    if (events.length === 0) return { accepted: 0, duplicates: 0 };
    if (!this.isConnected()) throw new IngestLogUnavailableError();
    const subject = this.subjectOf(target.realmId);
    const encoder = new TextEncoder();
    const headers = (): MsgHdrs => {
      const h = natsHeaders();
      h.set(HEADER_REALM, target.realmId);
      if (target.workspaceId) h.set(HEADER_WORKSPACE, target.workspaceId);
      h.set(HEADER_RECEIVED_AT, receivedAt.toISOString());
      return h;
    };
    const bodies = events.map((event) => encoder.encode(JSON.stringify(event.raw)));
    const headerBytes = 160 + (target.workspaceId?.length ?? 0);
    const bytes = bodies.reduce((sum, body) => sum + body.length + subject.length + headerBytes + STORED_MESSAGE_OVERHEAD_BYTES, 0);
    let state: { messages: number; bytes: number };
    try {
      state = (await this.manager.streams.info(this.settings.stream)).state;
    } catch (error) {
      throw new IngestLogUnavailableError(0, 0, { cause: error });
    }
    if (state.messages + events.length > this.settings.maxMessages || state.bytes + bytes > this.settings.maxBytes) throw new IngestLogFullError();

    // After the first failure (full, disconnected) the events not yet sent are not sent: the answer comes at once.
    let stop: unknown;
    const results = await Promise.allSettled(
      events.map((event, i) =>
        this.inFlight(async () => {
          if (stop !== undefined) throw stop;
          if (!this.isConnected()) throw (stop = new IngestLogUnavailableError());
          return this.client.publish(subject, bodies[i], { msgID: messageIdOf(target.realmId, event), headers: headers() }).catch((error: unknown) => {
            stop ??= error;
            throw error;
          });
        }),
      ),
    );
    let accepted = 0;
    let duplicates = 0;
    let failure: unknown;
    for (const result of results) {
      if (result.status === 'fulfilled') {
        if ((result.value as PubAck).duplicate) duplicates++;
        else accepted++;
      } else failure ??= result.reason;
    }
    if (failure !== undefined) {
      if (isLimitError(failure)) throw new IngestLogFullError(accepted, duplicates);
      if (failure instanceof IngestLogUnavailableError) throw new IngestLogUnavailableError(accepted, duplicates);
      throw new IngestLogUnavailableError(accepted, duplicates, { cause: failure });
    }
    return { accepted, duplicates };
  }

  private async inFlight<T>(publish: () => Promise<T>): Promise<T> {
    while (this.publishesInFlight >= MAX_PUBLISHES_IN_FLIGHT) await new Promise<void>((resolve) => this.waitingToPublish.push(resolve));
    this.publishesInFlight++;
    try {
      return await publish();
    } finally {
      this.publishesInFlight--;
      this.waitingToPublish.shift()?.();
    }
  }

  /** One look at the stream and the consumer (two JetStream API calls). */
  async stats(now = new Date()): Promise<IngestLogStats> {
    const [stream, consumer] = await Promise.all([
      this.manager.streams.info(this.settings.stream),
      this.manager.consumers.info(this.settings.stream, this.settings.consumer),
    ]);
    // The oldest message past the consumer's ack floor: not the stream's first message, since after
    // a crash of nats-server acknowledged messages can stay stored (the consumer's state is kept apart).
    let firstAt = NaN;
    if (consumer.num_pending + consumer.num_ack_pending > 0) {
      const oldest = await this.manager.streams
        .getMessage(this.settings.stream, { seq: Math.max(consumer.ack_floor.stream_seq + 1, stream.state.first_seq) })
        .catch(() => null);
      firstAt = oldest ? oldest.time.getTime() : NaN;
    }
    return {
      stream: this.settings.stream,
      connected: this.isConnected(),
      messages: stream.state.messages,
      bytes: stream.state.bytes,
      maxMessages: stream.config.max_msgs,
      maxBytes: stream.config.max_bytes,
      pending: consumer.num_pending,
      ackPending: consumer.num_ack_pending,
      redelivered: consumer.num_redelivered,
      oldestUnprocessedAgeSeconds: Number.isFinite(firstAt) ? Math.max(0, (now.getTime() - firstAt) / 1000) : 0,
    };
  }

  /** `/healthz`'s `ingestLog`: `ok`, `full` (ingestion answers 503 INGEST_LOG_FULL) or `unavailable`, with the counts. */
  async health(): Promise<Record<string, unknown>> {
    if (!this.isConnected()) return { status: 'unavailable', stream: this.settings.stream, error: 'not connected to NATS' };
    try {
      const stats = await this.stats();
      const full = stats.messages >= stats.maxMessages || stats.bytes + 1024 > stats.maxBytes;
      return { status: full ? 'full' : 'ok', ...stats };
    } catch (error) {
      return { status: 'unavailable', stream: this.settings.stream, error: String((error as Error)?.message ?? error) };
    }
  }

  async close(): Promise<void> {
    if (this.connection.isClosed()) return;
    await this.connection.drain().catch(() => this.connection.close());
  }
}

type Db = PrismaClient | Prisma.TransactionClient;

/**
 * The edge of the log: validates a batch exactly as `ingestBatch` does (`parseBatch`, per-event
 * rejections), settles repeats of a key inside the batch as `ingestBatch` would (same content: a
 * duplicate; other content: DUPLICATE_MISMATCH), and stores the rest in the log.
 * `accepted` counts events newly stored in the log; `duplicates` those repeated in the batch or
 * already in the log (within the duplicate window). Whether an event was already in the database
 * is known only at the fold.
 */
export async function ingestIntoLog(db: Db, log: IngestLog, target: IngestTarget, raw: unknown[], now: Date): Promise<IngestResult> {
  const { events, rejected } = await parseBatch(db, target, raw, now, DEFAULT_LATENESS_WINDOW_MS);
  const first = new Map<string, { index: number; contentHash: string }>();
  const mismatches: IngestRejection[] = [];
  let repeated = 0;
  for (const { index, event } of events) {
    const seen = first.get(event.idempotencyKey);
    if (!seen) first.set(event.idempotencyKey, { index, contentHash: event.contentHash });
    else if (seen.contentHash === event.contentHash) repeated++;
    else {
      mismatches.push({
        index,
        code: 'DUPLICATE_MISMATCH',
        message: `Idempotency key "${event.idempotencyKey}" was already used for an event with other content; the first event stays.`,
      });
    }
  }
  // In the order received: the log's order is the order workers fold in.
  const toStore = [...first.entries()]
    .sort(([, a], [, b]) => a.index - b.index)
    .map(([idempotencyKey, { index, contentHash }]) => ({ raw: raw[index], idempotencyKey, contentHash }));
  const stored = await log.publish(target, now, toStore);
  return {
    accepted: stored.accepted,
    duplicates: stored.duplicates + repeated,
    rejected: [...rejected, ...mismatches].sort((a, b) => a.index - b.index),
  };
}

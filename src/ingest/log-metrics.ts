/**
 * The ingestion log in `/metrics`: the stream's and the consumer's state (read from JetStream at
 * each scrape, so every gateway shows the lag of all workers, wherever they run) and what this
 * process's workers folded.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { IngestLog, IngestLogStats } from './log.js';
import type { IngestWorkerOptions } from './log-worker.js';

/** One JetStream look per scrape, shared by every gauge of the scrape. */
function sharedStats(log: IngestLog) {
  let last: { at: number; stats: Promise<IngestLogStats | null> } | undefined;
  return () => {
    const now = Date.now();
    if (!last || now - last.at > 1000) last = { at: now, stats: log.stats().catch(() => null) };
    return last.stats;
  };
}

export function registerIngestLogMetrics(registry: Registry, log: IngestLog): Pick<IngestWorkerOptions, 'onFold' | 'onFoldError' | 'onPoison'> {
  const stats = sharedStats(log);
  const gauge = (name: string, help: string, read: (s: IngestLogStats) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const current = await stats();
        if (current) this.set(read(current));
        else this.reset();
      },
    });
  gauge('ingest_log_up', '1 when NATS answered and this process is connected, else 0', (s) => (s.connected ? 1 : 0));
  gauge('ingest_log_consumer_pending_messages', 'Consumer lag: events stored in the log, not yet delivered to a worker', (s) => s.pending);
  gauge('ingest_log_consumer_ack_pending_messages', 'Events delivered to a worker, not yet folded and acknowledged', (s) => s.ackPending);
  gauge('ingest_log_consumer_redelivered_messages', 'Events delivered more than once and not yet acknowledged (a worker died or was slow)', (s) => s.redelivered);
  gauge('ingest_log_oldest_unprocessed_age_seconds', 'Age of the oldest event in the log not yet folded (0: none)', (s) => s.oldestUnprocessedAgeSeconds);
  gauge('ingest_log_stream_messages', 'Events in the log (not yet folded)', (s) => s.messages);
  gauge('ingest_log_stream_bytes', 'Bytes in the log', (s) => s.bytes);
  gauge('ingest_log_stream_max_messages', 'INGEST_STREAM_MAX_MSGS: beyond it ingestion answers 503 INGEST_LOG_FULL', (s) => s.maxMessages);
  gauge('ingest_log_stream_max_bytes', 'INGEST_STREAM_MAX_BYTES: beyond it ingestion answers 503 INGEST_LOG_FULL', (s) => s.maxBytes);

  const folded = new Counter({ name: 'ingest_log_folded_events_total', help: "Events folded by this process's workers", labelNames: ['outcome'], registers: [registry] });
  const rejected = new Counter({ name: 'ingest_log_fold_rejected_events_total', help: 'Events rejected at the fold after the edge accepted them, by code', labelNames: ['code'], registers: [registry] });
  const failures = new Counter({ name: 'ingest_log_fold_failures_total', help: 'Folds that failed (their events are redelivered)', registers: [registry] });
  const poison = new Counter({ name: 'ingest_log_poison_messages_total', help: 'Messages that could not be read and were terminated', registers: [registry] });
  const lag = new Histogram({
    name: 'ingest_log_fold_lag_seconds',
    help: "From JetStream's ack at the edge to the fold's commit, per event",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  return {
    onFold(report) {
      folded.inc({ outcome: 'accepted' }, report.result.accepted);
      folded.inc({ outcome: 'duplicate' }, report.result.duplicates);
      folded.inc({ outcome: 'rejected' }, report.result.rejected.length);
      for (const r of report.result.rejected) rejected.inc({ code: r.code });
      for (const seconds of report.lagSeconds) lag.observe(seconds);
    },
    onFoldError() {
      failures.inc();
    },
    onPoison() {
      poison.inc();
    },
  };
}

/**
 * `usage-gateway worker`: folds the durable ingestion log (NATS JetStream) into the database, until
 * SIGTERM or SIGINT. Run any number, on any machine: they share one durable consumer, so each event
 * goes to one of them at a time. Settings come from the gateway's environment variables.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { CliError, EXIT_CODES_HELP } from './client.js';

interface WorkerOptions {
  workers: number;
  batch: number;
}

function wholeNumber(min: number, max: number) {
  return (raw: string) => {
    const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!(value >= min && value <= max)) throw new InvalidArgumentError(`a whole number from ${min} to ${max}`);
    return value;
  };
}

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description(
      'Fold usage events from the ingestion log (NATS JetStream, NATS_URL) into the database (DATABASE_URL, PostgreSQL), until stopped (SIGTERM, Ctrl-C). ' +
        'Start any number, anywhere: they share the durable consumer, and an event redelivered after a crash is a duplicate, never counted twice.',
    )
    .option('--workers <n>', 'consumers in this process', wholeNumber(1, 64), 1)
    .option('--batch <n>', 'events per fold (one transaction each)', wholeNumber(1, 5000), 5000)
    .addHelpText(
      'after',
      `
Environment (the gateway's): NATS_URL (required), DATABASE_URL (a postgresql:// URL; the embedded
database has one process only: use INGEST_WORKERS=n in the gateway instead), INGEST_STREAM,
INGEST_SUBJECT_PREFIX, INGEST_CONSUMER, INGEST_STREAM_MAX_BYTES, INGEST_STREAM_MAX_MSGS,
INGEST_ACK_WAIT_MS, INGEST_STREAM_REPLICAS, LOG_LEVEL. Logs are JSON lines on stdout.

${EXIT_CODES_HELP}`,
    )
    .action(async (options: WorkerOptions) => {
      const { ConfigError, loadConfig } = await import('../config.js');
      let config: ReturnType<typeof loadConfig>;
      try {
        config = loadConfig();
      } catch (error) {
        if (error instanceof ConfigError) throw new CliError(error.message, 2);
        throw error;
      }
      if (!config.ingestLog) throw new CliError('NATS_URL is not set: the worker reads the ingestion log there (e.g. NATS_URL=nats://127.0.0.1:4222)', 2);
      if (config.databaseTarget.kind !== 'postgres') {
        throw new CliError('DATABASE_URL must be a postgresql:// URL: the embedded database belongs to one gateway process (use INGEST_WORKERS=n there instead)', 2);
      }
      const { runWorkers } = await import('../ingest/log-worker-process.js');
      await runWorkers(config, options);
    });
}

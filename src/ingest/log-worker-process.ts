/** The process of `usage-gateway worker`: opens the database and the log, runs workers until a signal. */
import type { Config } from '../config.js';
import { CliError } from '../cli/client.js';
import { createLogger, errorSummary, logBackgroundErrorsTo } from '../observability.js';
import { IngestLog } from './log.js';
import { startIngestWorker } from './log-worker.js';

export async function runWorkers(config: Config, options: { workers: number; batch: number }): Promise<void> {
  const settings = config.ingestLog!;
  const logger = createLogger({ level: config.logLevel }).child({ component: 'ingest-worker' });
  logBackgroundErrorsTo(logger);
  const { openDatabase } = await import('../db/database.js');
  // The gateway migrates; a worker only reads and writes usage.
  const db = await openDatabase(config.databaseTarget, { migrate: false }).catch((error: unknown) => {
    throw new CliError(`cannot open the database (${errorSummary(error)}); check DATABASE_URL`);
  });
  const log = await IngestLog.open(settings, { name: 'usage-gateway-worker' }).catch(async (error: unknown) => {
    await db.close().catch(() => {});
    throw new CliError(`cannot open the ingestion log on NATS at ${settings.url} (${errorSummary(error)}); check NATS_URL and that nats-server runs with JetStream (-js)`);
  });
  const workers = Array.from({ length: options.workers }, () => startIngestWorker({ prisma: db.prisma, log, logger, batchSize: options.batch }));
  logger.info(
    { stream: settings.stream, consumer: settings.consumer, workers: options.workers, database: db.description },
    `folding stream ${settings.stream} (consumer ${settings.consumer}) into ${db.description} with ${options.workers} worker(s)`,
  );
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  const failed = Promise.race(workers.map((worker) => worker.done.then(() => new Promise<never>(() => {}))));
  try {
    const signal = await Promise.race([stopped, failed]);
    logger.info({ signal }, `${signal}: finishing the fold under way`);
  } catch (error) {
    logger.error({ err: error }, `a worker stopped: ${errorSummary(error)}`);
    throw new CliError(`a worker stopped: ${errorSummary(error)}`);
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
    await log.close();
    await db.close().catch(() => {});
  }
  logger.info('stopped');
}

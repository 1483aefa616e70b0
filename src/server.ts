import { mkdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import v8 from 'node:v8';
import pg from 'pg';
import { parseApiKey, secretMatches } from './auth/api-key-secret.js';
import { ConfigError, DEFAULT_AUTH_CACHE_TTL_MS, DEFAULT_V8_HEAP_GROWING_PERCENT, loadConfig, type Config } from './config.js';
import type { DatabaseTarget } from './db/adapters.js';
import type { Database } from './db/database.js';
import { DEMO_API_KEY, isDatabaseEmpty, seedDemo, topUpDemo } from './db/seed.js';
import type { PrismaClient } from './generated/prisma/client.js';
import type { QuotaDeliverer } from './quota/delivery.js';
import type { LiveHub } from './live/hub.js';
import { answerClientError, errorBody } from './plugins/http-errors.js';
import { requestIdFrom } from './plugins/request-id.js';
import { TrafficRecorder } from './traffic/recorder.js';
import { createMemoryRateLimiter, createRedisRateLimiter, type RateLimiter } from './rate-limit/limiter.js';
import {
  createLogger,
  createMetrics,
  errorSummary,
  logBackgroundErrorsTo,
  logUnexpectedError,
  useHealthCheck,
  useRequestLogging,
  type Logger,
} from './observability.js';

const SHUTDOWN_TIMEOUT_MS = 10_000;
const DATABASE_CLOSE_TIMEOUT_MS = 5_000;
const CONNECT_TIMEOUT_MS = 5_000;
/** Webhook attempts in flight at shutdown get this long; then they are aborted and left to the next start. */
const QUOTA_DELIVERY_STOP_TIMEOUT_MS = 5_000;

/** A start-up failure the operator can fix: printed as one line on stderr, exit code 1. */
class StartupError extends Error {}

const elapsedMs = (since: number) => Math.round(performance.now() - since);

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(listenError(error, port, host));
    };
    const onListening = () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

function listenError(error: NodeJS.ErrnoException, port: number, host: string): Error {
  switch (error.code) {
    case 'EADDRINUSE':
      return new StartupError(`port ${port} is in use; set PORT to a free port`);
    case 'EACCES':
      return new StartupError(`no permission to listen on port ${port}; set PORT to 1024 or above`);
    case 'EADDRNOTAVAIL':
      return new StartupError(`HOST ${host} is not an address of this machine; set HOST=0.0.0.0 or unset it`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new StartupError(`HOST ${host} cannot be resolved; set HOST to an address such as 0.0.0.0 or unset it`);
    default:
      return new StartupError(`cannot listen on ${host}:${port} (${errorSummary(error)}); check HOST and PORT`);
  }
}

/**
 * Creates the PGlite directory one level at a time and proves it writable. (A recursive mkdir of a
 * path under /proc never returns on Node 20, and root passes every permission check but EROFS.)
 */
function preparePGliteDir(dir: string): void {
  if (dir === 'memory://') return;
  const variable = process.env.DATABASE_URL?.trim() ? 'DATABASE_URL' : 'PGLITE_DIR';
  const fail = (reason: string) =>
    new StartupError(`${variable} "${dir}" cannot hold the embedded database: ${reason}; set ${variable} to a writable directory`);
  const code = (error: unknown) => (error as NodeJS.ErrnoException).code ?? errorSummary(error);
  const absolute = path.resolve(dir);
  const missing: string[] = [];
  let current = absolute;
  for (;;) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(current).isDirectory();
    } catch (error) {
      if (code(error) !== 'ENOENT' && code(error) !== 'ENOTDIR') throw fail(`cannot read ${current} (${code(error)})`);
      missing.unshift(current);
      const parent = path.dirname(current);
      if (parent === current) throw fail('no such directory');
      current = parent;
      continue;
    }
    if (!isDirectory) throw fail(`${current} is not a directory`);
    break;
  }
  for (const missingDir of missing) {
    try {
      mkdirSync(missingDir);
    } catch (error) {
      throw fail(`cannot create ${missingDir} (${code(error)})`);
    }
  }
  const probe = path.join(absolute, `.write-test-${process.pid}`);
  try {
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (error) {
    throw fail(`cannot write to ${absolute} (${code(error)})`);
  }
}

function describePostgres(url: URL): string {
  return `${url.hostname}:${url.port || 5432}${url.pathname}`;
}

/** One connection before migrating, so that each way of not reaching PostgreSQL gets its own advice. */
async function checkPostgres(target: Extract<DatabaseTarget, { kind: 'postgres' }>): Promise<void> {
  const url = new URL(target.url);
  url.searchParams.delete('schema');
  const where = describePostgres(url);
  const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    const err = error as NodeJS.ErrnoException & { errors?: NodeJS.ErrnoException[] };
    const code = err.code ?? err.errors?.[0]?.code;
    const database = decodeURIComponent(url.pathname.slice(1)) || decodeURIComponent(url.username) || 'postgres';
    switch (code) {
      case 'ECONNREFUSED':
        throw new StartupError(`cannot connect to PostgreSQL at ${where} (connection refused); check DATABASE_URL and that PostgreSQL is running`);
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        throw new StartupError(`cannot resolve the PostgreSQL host "${url.hostname}"; check the host in DATABASE_URL`);
      case 'ETIMEDOUT':
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        throw new StartupError(`cannot reach PostgreSQL at ${where} (${code}); check DATABASE_URL and the network`);
      case '28P01':
      case '28000':
        throw new StartupError(`PostgreSQL at ${where} refused the login (${errorSummary(error)}); check the user and password in DATABASE_URL`);
      case '3D000':
        throw new StartupError(`database "${database}" does not exist on PostgreSQL at ${url.hostname}:${url.port || 5432}; create it or fix DATABASE_URL`);
    }
    if (/timeout/i.test(errorSummary(error))) {
      throw new StartupError(`PostgreSQL at ${where} did not answer within ${CONNECT_TIMEOUT_MS / 1000} s; check DATABASE_URL and the network`);
    }
    throw new StartupError(`cannot connect to PostgreSQL at ${where} (${errorSummary(error)}); check DATABASE_URL`);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Opens (creating, migrating) the configured database. A first start of a PGlite directory with the
 * demo copies the demo prebuilt at `npm install` when it can become the demo of `now`: then
 * `prebuiltDemo` says when it was seeded, for topUpDemo.
 */
async function openConfiguredDatabase(config: Config, logger: Logger, now: Date): Promise<{ db: Database; prebuiltDemo?: { seededAt: Date } }> {
  const target = config.databaseTarget;
  if (target.kind === 'pglite') preparePGliteDir(target.dir);
  else await checkPostgres(target);
  const started = performance.now();
  const { copyDemoTemplate, isFreshPGliteDir } = await import('./db/pglite-template.js');
  let prebuiltDemo: { seededAt: Date } | undefined;
  if (target.kind === 'pglite' && isFreshPGliteDir(target.dir)) {
    prebuiltDemo = config.seedDemo && target.dir !== 'memory://' ? copyDemoTemplate(target.dir, now) : undefined;
    logger.info(
      prebuiltDemo
        ? `first start: creating the embedded database in ${target.dir} from the demo prebuilt at install (seeded at ${prebuiltDemo.seededAt.toISOString()})`
        : `first start: creating the embedded database in ${target.dir}`,
    );
  }
  let migrated = false;
  const onMigrated = (applied: string[]) => {
    migrated = true;
    if (applied.length === 0) logger.info('database schema is up to date');
    else logger.info({ migrations: applied }, `applied ${applied.length} migration(s): ${applied.join(', ')}`);
  };
  try {
    const { openDatabase } = await import('./db/database.js');
    // The prebuilt demo holds every current migration (its directory's name is derived from them).
    const db = await openDatabase(target, prebuiltDemo ? { migrate: false } : { onMigrated });
    if (prebuiltDemo) onMigrated((await import('./db/schema-engine.js')).readMigrationsList().migrationDirectories.map((m) => m.path));
    logger.info({ database: db.description, durationMs: elapsedMs(started) }, `opened ${db.description}`);
    return { db, prebuiltDemo };
  } catch (error) {
    logger.debug({ err: error }, 'opening the database failed');
    const where = target.kind === 'pglite' ? `the embedded database in ${target.dir}` : 'the PostgreSQL database';
    if (!migrated) {
      throw new StartupError(
        `opening or migrating ${where} failed (${errorSummary(error)}); a failed migration is rolled back: fix the cause and start again`,
      );
    }
    throw new StartupError(`cannot open ${where} (${errorSummary(error)}); check DATABASE_URL / PGLITE_DIR`);
  }
}

/** DATABASE_READ_URL: opened (never migrated: it replays the primary's migrations) and checked once at start. */
async function openReadReplica(target: Extract<DatabaseTarget, { kind: 'postgres' }>, logger: Logger): Promise<Database> {
  const where = describePostgres(new URL(target.url));
  const { openDatabase } = await import('./db/database.js');
  const { replicaFreshness } = await import('./db/read-replica.js');
  let replica: Database;
  try {
    replica = await openDatabase(target, { migrate: false });
  } catch (error) {
    throw new StartupError(`cannot connect to the read replica at ${where} (${errorSummary(error)}); check DATABASE_READ_URL or unset it`);
  }
  const freshness = await replicaFreshness(replica.prisma).catch(async (error: unknown) => {
    await replica.close().catch(() => {});
    throw new StartupError(`the read replica at ${where} cannot be queried (${errorSummary(error)}); check DATABASE_READ_URL or unset it`);
  });
  const [recovery] = await replica.prisma.$queryRawUnsafe<{ inRecovery: boolean }[]>('SELECT pg_is_in_recovery() AS "inRecovery"');
  if (!recovery?.inRecovery) logger.warn(`DATABASE_READ_URL (${where}) is not a replica (not in recovery): reports read it as it is`);
  logger.info({ replica: where, lagSeconds: freshness?.lagSeconds ?? null }, `reports read the replica at ${where}`);
  return replica;
}

/** Whether the demo key is present and not revoked, without counting a use of it. */
async function demoKeyWorks(prisma: PrismaClient): Promise<boolean> {
  const parsed = parseApiKey(DEMO_API_KEY);
  if (!parsed) return false;
  const row = await prisma.apiKey.findUnique({
    where: { prefix: parsed.prefix },
    select: { secretHash: true, revokedAt: true },
  });
  return !!row && secretMatches(DEMO_API_KEY, row.secretHash) && (!row.revokedAt || row.revokedAt > new Date());
}

async function revokeDemoKey(prisma: PrismaClient): Promise<void> {
  const parsed = parseApiKey(DEMO_API_KEY);
  if (parsed) await prisma.apiKey.update({ where: { prefix: parsed.prefix }, data: { revokedAt: new Date() } });
}

/** Counters in Redis with REDIS_URL (shared by every gateway process), else in this process. */
function createConfiguredRateLimiter(config: Config, logger: Logger): RateLimiter {
  if (!config.redisUrl) {
    logger.info('rate limits: counted in memory, per process (set REDIS_URL to share them)');
    return createMemoryRateLimiter();
  }
  const where = new URL(config.redisUrl).host;
  // One line per outage, not one per reconnect attempt; meanwhile each process counts in memory.
  let failing = false;
  const limiter = createRedisRateLimiter({
    redis: config.redisUrl,
    onRedisError(error) {
      if (failing) return;
      failing = true;
      logger.warn({ err: error }, `Redis at ${where} failed (${errorSummary(error)}); rate limits are counted per process until it is back`);
    },
    onRedisReady() {
      if (failing) logger.info(`Redis at ${where} is back: rate limits are shared again`);
      failing = false;
    },
  });
  logger.info(`rate limits: counted in Redis at ${where}, shared by every gateway process`);
  return limiter;
}

function answerStarting(req: http.IncomingMessage, res: http.ServerResponse) {
  const requestId = requestIdFrom(req.headers['x-request-id'] as string | undefined);
  res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '1', connection: 'close', 'x-request-id': requestId });
  res.end(errorBody('The gateway is starting: retry in a second.', 'SERVICE_UNAVAILABLE', requestId, { status: 'starting', retryAfter: 1 }));
}

/**
 * V8_HEAP_GROWING_PERCENT (config.ts): V8 reads --heap-growing-percent at every full GC, so it can
 * be set at run time (measured: the same peak as the command-line flag). A --heap-growing-percent or --max-old-space-size given to node itself
 * (or in NODE_OPTIONS) is the operator's choice and is left alone.
 */
function limitHeapGrowth(percent: number): void {
  if (percent <= 0) return;
  const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  if (/--(heap-growing-percent|max-old-space-size|max_old_space_size|heap_growing_percent)/.test(given)) return;
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}

async function main(): Promise<void> {
  const startedAt = performance.now();
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel });
  logBackgroundErrorsTo(logger);
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, `uncaught exception: ${errorSummary(error)}`);
    process.exit(1);
  });
  process.on('unhandledRejection', (error) => {
    logger.fatal({ err: error }, `unhandled rejection: ${errorSummary(error)}`);
    process.exit(1);
  });

  // Listen first: a taken port fails at once, not after migrating and seeding; until the app is
  // ready every request gets 503 "starting".
  let handle: http.RequestListener = answerStarting;
  const server = http.createServer((req, res) => handle(req, res));
  // Node answers malformed requests and oversized headers (431) itself: in the JSON error shape instead.
  server.on('clientError', answerClientError((line) => logger.warn(line, `${line.status} ${line.code}: ${line.error}`)));
  // Node cuts off requests whose body takes over 5 minutes by default; a large NDJSON upload may.
  server.requestTimeout = 0;
  const port = await listen(server, config.port, config.host);
  // The schema and the Prisma client take a while to load: not needed to reject bad settings.
  const yogaModule = import('./yoga.js');
  yogaModule.catch(() => {});

  let db: Database | undefined;
  let readDb: Database | undefined;
  let trafficRecorder: TrafficRecorder | undefined;
  let rateLimiter: RateLimiter | undefined;
  let quotaDeliverer: QuotaDeliverer | undefined;
  let partitionMaintenance: import('./db/partitions.js').PartitionMaintenance | undefined;
  let liveHub: LiveHub | undefined;
  let rollupJob: import('./usage/rollups.js').RollupJob | undefined;
  let ingestLog: import('./ingest/log.js').IngestLog | undefined;
  let ingestWorkers: import('./ingest/log-worker.js').IngestWorker[] = [];
  let shuttingDown = false;
  let startup: Promise<void> = Promise.resolve();

  const shutdown = async (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      logger.warn({ signal }, `${signal} again: exiting without waiting`);
      process.exit(1);
    }
    shuttingDown = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Open subscriptions end (SERVICE_UNAVAILABLE: reconnect elsewhere) instead of holding the shutdown open.
    void liveHub?.close();
    logger.info({ signal }, `${signal}: shutting down; no new connections, waiting for in-flight requests`);
    // Keep-alive connections become idle once their request is answered; close them as they do.
    const idleSweep = setInterval(() => server.closeIdleConnections(), 100);
    server.closeIdleConnections();
    const force = setTimeout(() => {
      logger.warn(`requests still running after ${SHUTDOWN_TIMEOUT_MS / 1000} s; closing their connections`);
      server.closeAllConnections();
    }, SHUTDOWN_TIMEOUT_MS);
    await closed;
    clearInterval(idleSweep);
    clearTimeout(force);
    await startup.catch(() => {});
    // Workers finish the fold under way; what they had buffered goes back to the log (ack wait).
    await Promise.all(ingestWorkers.map((worker) => worker.stop()));
    await ingestLog?.close();
    // No new webhook attempts; those in flight finish (bounded). Pending ones stay queued in the database.
    await quotaDeliverer?.stop(QUOTA_DELIVERY_STOP_TIMEOUT_MS).catch((error) => logger.warn({ err: error }, `stopping quota deliveries failed: ${errorSummary(error)}`));
    await partitionMaintenance?.stop().catch(() => {});
    await rollupJob?.stop().catch(() => {});
    await liveHub?.close();
    await readDb?.close().catch(() => {});
    // The last requests' traffic is still buffered: written before the database closes.
    await trafficRecorder?.close();
    await rateLimiter?.close().catch((error) => logger.warn({ err: error }, `closing the rate limiter failed: ${errorSummary(error)}`));
    if (db) {
      const database = db;
      await Promise.race([
        database.close(),
        new Promise((resolve) => setTimeout(resolve, DATABASE_CLOSE_TIMEOUT_MS)),
      ]).catch((error) => logger.warn({ err: error }, `closing the database failed: ${errorSummary(error)}`));
    }
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', (signal) => void shutdown(signal));
  process.on('SIGINT', (signal) => void shutdown(signal));

  startup = (async () => {
    const now = new Date();
    const opened = await openConfiguredDatabase(config, logger, now);
    db = opened.db;
    if (shuttingDown) return;
    if (config.databaseReadTarget) readDb = await openReadReplica(config.databaseReadTarget, logger);
    if (shuttingDown) return;
    if (config.seedDemo && opened.prebuiltDemo) {
      const seedStarted = performance.now();
      const { seededAt } = opened.prebuiltDemo;
      const seeded = await topUpDemo(db.prisma, { seededAt, now }).catch((error: unknown) => {
        logger.debug({ err: error }, 'topping up the prebuilt demo failed');
        throw new StartupError(
          `bringing the prebuilt demo up to date failed (${errorSummary(error)}); empty ${config.databaseTarget.kind === 'pglite' ? config.databaseTarget.dir : 'the database'} and start again, or set SEED_DEMO=false`,
        );
      });
      logger.info(
        { realmIds: seeded.realmIds, prebuilt: true, addedHours: seeded.addedHours, durationMs: elapsedMs(seedStarted) },
        `seeded the demo in ${elapsedMs(seedStarted)} ms`,
      );
    } else if (config.seedDemo && (await isDatabaseEmpty(db.prisma))) {
      const seedStarted = performance.now();
      logger.info('empty database: seeding the demo realms (SEED_DEMO=false skips this)');
      const seeded = await seedDemo(db.prisma, {
        onProgress: (done, total) => logger.debug({ done, total }, `seeding: step ${done} of ${total}`),
      }).catch((error: unknown) => {
        logger.debug({ err: error }, 'seeding failed');
        throw new StartupError(
          `seeding the demo failed (${errorSummary(error)}); the database was left empty: set SEED_DEMO=false to start without the demo`,
        );
      });
      logger.info({ realmIds: seeded.realmIds, durationMs: elapsedMs(seedStarted) }, `seeded the demo in ${elapsedMs(seedStarted)} ms`);
    }
    if (shuttingDown) return;
    let demoKey = (await demoKeyWorks(db.prisma)) ? DEMO_API_KEY : undefined;
    if (demoKey && !config.development && !config.seedDemo) {
      // Its secret is in the source code: in production it works only when asked for (SEED_DEMO=true).
      await revokeDemoKey(db.prisma);
      demoKey = undefined;
      logger.warn('revoked the demo API key: its secret is public; set SEED_DEMO=true to keep it on a demo server');
    } else if (demoKey && !config.development) {
      logger.warn('the demo API key works on this production server (SEED_DEMO=true); anyone can use it');
    }
    // Development's operator key is public too: printed beside the demo key, never working in production.
    const devOperator = await (await import('./admin/operators.js')).devOperatorKeyAtStart(db.prisma, config);
    if (devOperator.revoked) logger.warn('revoked the development operator key: its secret is public; create one with usage-gateway operator:create-key');

    const database = db;
    const { createApp } = await yogaModule;
    const { useIngestEndpoint } = await import('./ingest/http.js');
    const metrics = createMetrics({ processMetrics: true, token: config.metricsToken });
    rateLimiter = createConfiguredRateLimiter(config, logger);
    trafficRecorder = new TrafficRecorder(database.prisma, {
      onError: (error, rows) =>
        logger.warn({ err: error, rows }, `recording API traffic failed (${errorSummary(error)}); ${rows} rows are retried with the next flush`),
    });
    const { configureQuotaDelivery, startQuotaDeliveries } = await import('./quota/delivery.js');
    // One setting for which webhook URLs createQuotaRule accepts and where deliveries may connect.
    configureQuotaDelivery({ allowPrivateDestinations: config.webhookAllowPrivate ?? false });
    // Subscriptions: on PostgreSQL a LISTEN connection of this process hears every process's events.
    liveHub = await (await import('./live/hub.js')).startLiveHub(database.prisma, database.target, {
      onError: (error) => logger.warn({ err: error }, `the live LISTEN connection failed (${errorSummary(error)}); reconnecting, events meanwhile are missed`),
    });
    // Another process's usage writes (ingestion, corrections) reach this one's report cache through
    // the same LISTEN; this process's own writes invalidate it directly.
    if (liveHub.transport === 'postgres') {
      const { usageWritten } = await import('./usage/report-cache.js');
      liveHub.listen((event) => {
        if (event.type === 'usage') usageWritten(event.realmId);
      });
    }
    // Day and month rollups (README "Rollups"): rolled up in the background, now and every ROLLUP_INTERVAL_MS.
    {
      const rollups = await import('./usage/rollups.js');
      const intervalMs = rollups.rollupIntervalMs();
      if (intervalMs > 0) {
        rollupJob = rollups.startRollupJob(database.prisma, intervalMs, (error, run) => {
          if (error) logger.warn({ err: error }, `rolling usage up failed (${errorSummary(error)}); retried in ${intervalMs} ms, reports read hourly rows meanwhile`);
          else if (run?.features) logger.info(run, `rolled up ${run.days} day(s) and ${run.months} month(s) of ${run.features} feature(s)`);
        });
      }
    }
    // NATS_URL: ingestion answers once JetStream stored the events; workers fold them (here with INGEST_WORKERS).
    let ingestLogMetrics: ReturnType<typeof import('./ingest/log-metrics.js').registerIngestLogMetrics> | undefined;
    if (config.ingestLog) {
      const { IngestLog } = await import('./ingest/log.js');
      const settings = config.ingestLog;
      ingestLog = await IngestLog.open(settings).catch((error: unknown) => {
        throw new StartupError(`cannot open the ingestion log on NATS at ${settings.url} (${errorSummary(error)}); check NATS_URL and that nats-server runs with JetStream (-js), or unset NATS_URL`);
      });
      ingestLogMetrics = (await import('./ingest/log-metrics.js')).registerIngestLogMetrics(metrics.registry, ingestLog);
      logger.info(`ingestion log: NATS JetStream stream ${settings.stream} (subjects ${settings.subjectPrefix}.<realm>), ${settings.workers} worker(s) in this process`);
    }
    const onReplicaError = (error: unknown) => logger.warn({ err: error }, `the read replica failed (${errorSummary(error)}); this request read the primary`);
    const app = createApp({
      ingestLog,
      prisma: database.prisma,
      readPrisma: readDb?.prisma,
      onReplicaError,
      exposeQueryStats: config.exposeQueryStats,
      authCacheTtlMs: config.authCacheTtlMs ?? DEFAULT_AUTH_CACHE_TTL_MS,
      graphiql: config.graphiql ? { defaultKey: config.development ? demoKey : undefined } : false,
      console: { defaultKey: config.development ? demoKey : undefined },
      introspection: config.introspection,
      maxBodyBytes: config.graphqlMaxBodyBytes,
      plugins: [
        useHealthCheck({
          database: database.target.kind,
          check: () => database.prisma.$queryRawUnsafe('SELECT 1'),
          ...(readDb ? { replica: async () => (await import('./db/read-replica.js')).replicaHealth(readDb!.prisma) } : {}),
          draining: () => shuttingDown,
          ...(ingestLog ? { ingestLog: () => ingestLog!.health() } : {}),
          logger,
        }),
        useIngestEndpoint({ prisma: database.prisma, log: ingestLog, maxBytes: config.ingestMaxBytes, maxSeconds: config.ingestMaxSeconds, logger, trafficRecorder, onUnexpectedError: logUnexpectedError(logger) }),
        (await import('./exports/http.js')).useUsageExportEndpoints({ prisma: database.prisma, readPrisma: readDb?.prisma, onReplicaError, logger, onUnexpectedError: logUnexpectedError(logger) }),
        (await import('./rest/http.js')).useRestRoutes({
          prisma: database.prisma,
          readPrisma: readDb?.prisma,
          onReplicaError,
          trafficRecorder,
          logger,
          onUnexpectedError: logUnexpectedError(logger),
        }),
        metrics.plugin,
        useRequestLogging(logger),
      ],
      onUnexpectedError: logUnexpectedError(logger),
      trafficRecorder,
      rateLimiter,
      live: liveHub,
    });
    // Quota alert webhooks are queued in the database: deliver those left pending by an earlier
    // process (stopped, crashed, between retries) now, then poll; new alerts nudge it at once.
    quotaDeliverer = startQuotaDeliveries(database.prisma, {
      pollIntervalMs: config.quotaDeliveryPollMs,
      onError: (error) => logger.warn({ err: error }, `quota alert delivery failed: ${errorSummary(error)}`),
    });
    if (ingestLog && config.ingestLog!.workers > 0) {
      const { startIngestWorker } = await import('./ingest/log-worker.js');
      const log = ingestLog;
      ingestWorkers = Array.from({ length: config.ingestLog!.workers }, () => {
        const worker = startIngestWorker({ prisma: database.prisma, log, logger, ...ingestLogMetrics });
        worker.done.catch((error: unknown) => logger.error({ err: error }, `an ingestion worker stopped: ${errorSummary(error)}`));
        return worker;
      });
    }
    // Time partitions ahead and event retention (src/db/partitions.ts): now, then hourly. Until a
    // period has its partition its rows go to the DEFAULT partition, so nothing waits for this.
    partitionMaintenance = (await import('./db/partitions.js')).startPartitionMaintenance(database.prisma, {
      retentionDays: config.eventRetentionDays,
      onError: (error) => logger.warn({ err: error }, `partition maintenance failed (${errorSummary(error)}); retried in an hour`),
      onPass: ({ created, dropped }) => {
        if (created.length || dropped.length) logger.info({ created, dropped }, `partitions: ${created.length} created, ${dropped.length} dropped by event retention`);
      },
    });
    handle = (req, res) => {
      if (shuttingDown) res.setHeader('connection', 'close');
      app.handleNodeRequest(req, res).catch((error: unknown) => {
        const requestId = requestIdFrom(req.headers['x-request-id'] as string | undefined);
        logger.error({ err: error, requestId }, `request failed: ${errorSummary(error)}`);
        if (res.headersSent) {
          res.end();
          return;
        }
        res.writeHead(500, { 'content-type': 'application/json; charset=utf-8', 'x-request-id': requestId });
        res.end(errorBody('Unexpected error. Retry later; if it persists, report it with the request id.', 'INTERNAL_SERVER_ERROR', requestId));
      });
    };

    logger.info(
      { port, host: config.host, database: database.description, startupMs: elapsedMs(startedAt) },
      `listening on ${config.host}:${port} (${database.description}), ready in ${elapsedMs(startedAt)} ms`,
    );
    process.stdout.write(`Console: http://localhost:${port}/\n`);
    process.stdout.write(`${config.graphiql ? 'GraphiQL' : 'GraphQL'}: http://localhost:${port}/graphql\n`);
    if (demoKey) process.stdout.write(`API key: ${demoKey}\n`);
    if (devOperator.key) process.stdout.write(`Operator key: ${devOperator.key}\n`);
    // Once ready (seeding the demo on PGlite is left V8's own heuristics): the heap under request load.
    limitHeapGrowth(config.heapGrowingPercent ?? DEFAULT_V8_HEAP_GROWING_PERCENT);
  })();
  try {
    await startup;
  } catch (error) {
    // A signal during start-up: shutdown() closes what was opened and exits 0.
    if (shuttingDown) return;
    await quotaDeliverer?.stop(QUOTA_DELIVERY_STOP_TIMEOUT_MS).catch(() => {});
    await partitionMaintenance?.stop().catch(() => {});
    await liveHub?.close();
    await ingestLog?.close();
    await rateLimiter?.close().catch(() => {});
    await readDb?.close().catch(() => {});
    await db?.close().catch(() => {});
    throw error;
  }
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof StartupError) {
    process.stderr.write(`error: ${error.message}\n`);
  } else {
    // Not a setting the operator can fix but a bug: the stack is what its reader needs.
    process.stderr.write(`error: could not start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
});

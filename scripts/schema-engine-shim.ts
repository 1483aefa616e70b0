/**
 * Prisma's schema-engine CLI protocol (JSON-RPC 2.0, one object per line on stdin/stdout) served by
 * the wasm schema engine, so `prisma migrate *` works where the native binary cannot be downloaded.
 * Nothing but protocol lines may reach stdout; diagnostics go to $SCHEMA_ENGINE_LOG when set.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { PGlite } from '@electric-sql/pglite';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { openPGlite, parseDatabaseTarget, withWholeScripts } from '../src/db/adapters.js';
import type { SchemaEngine as WasmSchemaEngine } from '@prisma/schema-engine-wasm';
import { createSchemaEngine, loadSchemaEngineWasm } from '../src/db/schema-engine.js';
import { isFreshPGliteDir, readPGliteEmptyTemplate } from '../src/db/pglite-empty-template.js';

function log(message: string) {
  if (process.env.SCHEMA_ENGINE_LOG) appendFileSync(process.env.SCHEMA_ENGINE_LOG, `${new Date().toISOString()} ${message}\n`);
}

function parseArgs(argv: string[]) {
  const datamodels: string[] = [];
  let datasource: { url?: string; shadowDatabaseUrl?: string } = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--datamodels' || argv[i] === '-d') datamodels.push(argv[++i]!);
    else if (argv[i] === '--datasource') datasource = JSON.parse(argv[++i]!);
    else rest.push(argv[i]!);
  }
  return { datamodels, datasource, rest };
}

/**
 * adapter-pg cannot deserialize PostgreSQL's internal `"char"` type (OID 18), which introspection
 * reads; relabelled as text it comes through unchanged.
 */
function relabelCharColumns(pool: pg.Pool) {
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<pg.QueryResult>;
  (pool as unknown as { query: unknown }).query = async (...args: unknown[]) => {
    const result = await query(...args);
    for (const field of result?.fields ?? []) if (field.dataTypeID === 18) field.dataTypeID = 25;
    return result;
  };
}

/**
 * adapter-pg's own shadow database connects to the main database when given a URL; an in-memory
 * PGlite speaks the same SQL and leaves nothing behind.
 */
function withMemoryShadow(factory: SqlMigrationAwareDriverAdapterFactory): SqlMigrationAwareDriverAdapterFactory {
  return {
    provider: factory.provider,
    adapterName: factory.adapterName,
    connect: () => factory.connect(),
    async connectToShadowDb() {
      const shadow = new PGlite('memory://', { loadDataDir: readPGliteEmptyTemplate() });
      const adapter = await new PrismaPGlite(shadow).connect();
      const dispose = adapter.dispose.bind(adapter);
      adapter.dispose = async () => {
        await dispose();
        await shadow.close();
      };
      return adapter;
    },
  };
}

async function factoryFor(url: string | undefined): Promise<SqlMigrationAwareDriverAdapterFactory> {
  const target = parseDatabaseTarget(url, undefined);
  if (target.kind === 'pglite') return withMemoryShadow(new PrismaPGlite(await openPGlite(target.dir, isFreshPGliteDir(target.dir) ? readPGliteEmptyTemplate() : undefined)));
  const connectionString = new URL(target.url);
  connectionString.searchParams.delete('schema');
  const pool = new pg.Pool({
    connectionString: connectionString.toString(),
    // One session: the engine's advisory lock must be released on the connection that took it.
    max: 1,
    ...(target.schema ? { options: `-c search_path="${target.schema}"` } : {}),
  });
  relabelCharColumns(pool);
  return withMemoryShadow(withWholeScripts(new PrismaPg(pool, target.schema ? { schema: target.schema } : undefined)));
}

function errorLog(code: string, message: string) {
  process.stderr.write(
    `${JSON.stringify({ timestamp: new Date().toISOString(), level: 'ERROR', target: 'schema_engine::logger', fields: { error_code: code, message } })}\n`,
  );
}

function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? Number(v) : v));
}

async function oneShot(command: string, url: string | undefined) {
  try {
    const factory = await factoryFor(url);
    const adapter = await factory.connect();
    await adapter.queryRaw({ sql: 'SELECT 1', args: [], argTypes: [] });
    await adapter.dispose();
    process.exit(0);
  } catch (error) {
    errorLog('P1001', `${command}: ${(error as Error).message}`);
    process.exit(1);
  }
}

type EvaluateDataLossInput = Parameters<WasmSchemaEngine['evaluateDataLoss']>[0];
type CreateMigrationInput = Parameters<WasmSchemaEngine['createMigration']>[0];

/**
 * The wasm engine's evaluateDataLoss and createMigration refuse an adapter-provided shadow database
 * ("must be provided through an external factory"), while `diff` from the migrations to the
 * datamodel replays the migrations on it fine: both are answered from that diff. A diff does not say
 * which steps lose data, so statements that can (drops, type changes, new NOT NULL) are flagged by
 * their SQL, whether or not the table holds rows: a warning too many rather than one too few.
 */
async function pendingScript(engine: WasmSchemaEngine, input: EvaluateDataLossInput | CreateMigrationInput) {
  const diff = await engine.diff({
    from: { tag: 'migrations', ...input.migrationsList },
    to: { tag: 'schemaDatamodel', ...input.schema },
    script: true,
    exitCode: true,
    filters: input.filters,
  });
  const script = diff.exitCode === 2 ? (diff.stdout ?? '') : '';
  const statements = script
    .split(/;\s*$/m)
    .map((statement) => statement.split('\n').filter((line) => line.trim() && !line.trim().startsWith('--')).join(' '))
    .filter(Boolean);
  return { script, steps: statements.length, statements };
}

async function evaluateDataLoss(engine: WasmSchemaEngine, input: EvaluateDataLossInput) {
  const { steps, statements } = await pendingScript(engine, input);
  const warnings = statements.flatMap((sql, stepIndex) =>
    /\bDROP (TABLE|COLUMN|TYPE)\b|\bALTER COLUMN .* (TYPE|SET NOT NULL)\b/i.test(sql)
      ? [{ message: `This step may lose data: ${sql.slice(0, 200)}`, stepIndex }]
      : [],
  );
  return { migrationSteps: steps, unexecutableSteps: [], warnings };
}

/** The native engine's naming: UTC `YYYYMMDDHHMMSS`, then `_<name>` when there is one. */
function migrationDirectoryName(name: string, now = new Date()) {
  const timestamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return name ? `${timestamp}_${name}` : timestamp;
}

async function createMigration(engine: WasmSchemaEngine, input: CreateMigrationInput) {
  const { script, steps } = await pendingScript(engine, input);
  const migrationScript = steps > 0 ? script : input.draft ? '-- This is an empty migration.' : null;
  return {
    connectorType: 'postgresql' as const,
    generatedMigrationName: migrationDirectoryName(input.migrationName),
    migrationScript,
    extension: 'sql',
  };
}

async function main() {
  const { datamodels, datasource, rest } = parseArgs(process.argv.slice(2));
  const wasm = await loadSchemaEngineWasm();
  if (rest.includes('--version') || rest.includes('-V')) {
    process.stdout.write(`schema-engine-cli ${wasm.version()}\n`);
    return;
  }
  if (rest[0] === 'cli') return oneShot(rest[1] ?? '', datasource.url);

  const files: [string, string][] = datamodels.length
    ? datamodels.map((file) => [file, readFileSync(file, 'utf8')])
    : [['schema.prisma', 'datasource db {\n  provider = "postgresql"\n}\n']];
  const factory = await factoryFor(datasource.url);
  // The wasm engine hands its shadow database out once per instance, and a `migrate dev` asks for
  // one several times (diagnostic, data-loss evaluation, …): a fresh instance per request.
  const newEngine = () => createSchemaEngine(factory, files, (line) => log(line));
  let printId = 1_000_000;

  const send = (message: unknown) => process.stdout.write(`${toJson(message)}\n`);
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const request = JSON.parse(line) as { id?: number; method?: string; params?: unknown };
    if (!request.method) continue; // an answer to one of our `print` requests
    log(`-> ${request.method} ${JSON.stringify(request.params).slice(0, 300)}`);
    try {
      const method = request.method === 'getDatabaseVersion' ? 'version' : request.method;
      const engine = await newEngine();
      const call = (engine as unknown as Record<string, (params: unknown) => Promise<unknown>>)[method];
      if (!call) throw Object.assign(new Error(`Unknown method ${request.method}`), { code: 'P1000' });
      let result: unknown;
      try {
        if (method === 'evaluateDataLoss') result = await evaluateDataLoss(engine, request.params as EvaluateDataLossInput);
        else if (method === 'createMigration') result = await createMigration(engine, request.params as CreateMigrationInput);
        else result = await call.call(engine, request.params ?? {});
      } finally {
        engine.free();
      }
      if (method === 'diff') {
        // The native engine prints the script through the CLI and answers with no stdout.
        const diff = result as { exitCode: number; stdout: string | null };
        if (diff.stdout) send({ jsonrpc: '2.0', id: printId++, method: 'print', params: { content: diff.stdout } });
        result = { exitCode: diff.exitCode, stdout: null };
      }
      send({ jsonrpc: '2.0', id: request.id, result: result ?? null });
    } catch (error) {
      const err = error as { message?: string; code?: string; error_code?: string; meta?: unknown };
      const message = err.message ?? String(error);
      log(`<- error ${message}`);
      send({
        jsonrpc: '2.0',
        id: request.id,
        error: {
          code: 4466,
          message: 'An error happened. Check the data field for details.',
          data: { is_panic: false, message, meta: err.meta ?? {}, error_code: err.error_code ?? err.code ?? null },
        },
      });
    }
  }
}

main().catch((error) => {
  errorLog('P1000', (error as Error).stack ?? String(error));
  process.exit(1);
});

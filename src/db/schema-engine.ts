import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bindMigrationAwareSqlAdapterFactory,
  type SqlMigrationAwareDriverAdapterFactory,
} from '@prisma/driver-adapter-utils';
import type { SchemaEngine as WasmSchemaEngine } from '@prisma/schema-engine-wasm';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const schemaPath = path.join(projectRoot, 'prisma/schema.prisma');
export const migrationsDir = path.join(projectRoot, 'prisma/migrations');

type WasmModule = typeof import('@prisma/schema-engine-wasm');
let wasmModule: Promise<WasmModule> | undefined;

/**
 * The package's main entry imports the .wasm as an ES module, which Node 20 only allows behind
 * --experimental-wasm-modules; instantiating the bytes ourselves avoids the flag. Once per process:
 * a second `__wbindgen_start` panics.
 */
export function loadSchemaEngineWasm(): Promise<WasmModule> {
  wasmModule ??= (async () => {
    (globalThis as Record<string, unknown>).PRISMA_WASM_PANIC_REGISTRY ??= { set_message() {} };
    const bg = (await import('@prisma/schema-engine-wasm/schema_engine_bg')) as unknown as WasmModule &
      Record<string, unknown> & { __wbg_set_wasm(exports: unknown): void };
    const require = createRequire(import.meta.url);
    const wasmPath = path.join(path.dirname(require.resolve('@prisma/schema-engine-wasm/schema_engine_bg')), 'schema_engine_bg.wasm');
    const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), { './schema_engine_bg.js': bg as never });
    bg.__wbg_set_wasm(instance.exports);
    (instance.exports as { __wbindgen_start?: () => void }).__wbindgen_start?.();
    return bg;
  })();
  return wasmModule;
}

export type EngineLog = (message: string) => void;

export async function createSchemaEngine(
  factory: SqlMigrationAwareDriverAdapterFactory,
  datamodels: [string, string][] = [[schemaPath, readFileSync(schemaPath, 'utf8')]],
  log: EngineLog = () => {},
): Promise<WasmSchemaEngine> {
  const { SchemaEngine } = await loadSchemaEngineWasm();
  return SchemaEngine.new({ datamodels }, log, bindMigrationAwareSqlAdapterFactory(factory));
}

/** The migrations folder in the shape the engine's RPC methods take (`migrationsList`). */
export function readMigrationsList(dir: string = migrationsDir) {
  const lockPath = path.join(dir, 'migration_lock.toml');
  const names = existsSync(dir)
    ? readdirSync(dir, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name)
        .sort()
    : [];
  return {
    baseDir: dir,
    shadowDbInitScript: '',
    lockfile: { path: 'migration_lock.toml', content: existsSync(lockPath) ? readFileSync(lockPath, 'utf8') : null },
    migrationDirectories: names.map((name) => {
      const file = path.join(dir, name, 'migration.sql');
      return {
        path: name,
        migrationFile: {
          path: 'migration.sql',
          content: existsSync(file)
            ? { tag: 'ok' as const, value: readFileSync(file, 'utf8') }
            : { tag: 'error' as const, value: `${file} does not exist` },
        },
      };
    }),
  };
}

export const noFilters = { externalTables: [], externalEnums: [] };

/** Applies pending migrations (what `prisma migrate deploy` does); each migration runs in a transaction. */
export async function applyMigrations(factory: SqlMigrationAwareDriverAdapterFactory): Promise<string[]> {
  const engine = await createSchemaEngine(factory);
  try {
    const result = await engine.applyMigrations({ migrationsList: readMigrationsList(), filters: noFilters });
    return result.appliedMigrationNames;
  } finally {
    engine.free();
  }
}

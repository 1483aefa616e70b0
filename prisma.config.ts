import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'prisma/config';

const root = path.dirname(fileURLToPath(import.meta.url));

// The native schema engine is a download these machines cannot reach; the project's own shim runs
// the wasm engine instead, for every `prisma` command, without the user setting anything.
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= path.join(root, 'scripts/schema-engine');

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: {
    // `pglite:<dir>` is the embedded database (the shim opens it); otherwise a PostgreSQL URL.
    url: process.env.DATABASE_URL || `pglite:${process.env.PGLITE_DIR || './data/pglite'}`,
  },
});

/** The schema engine Prisma's CLI runs (scripts/schema-engine): scripts/schema-engine-shim.ts, compiled (scripts/compiled.mjs). */
import { runCompiled } from './compiled.mjs';

await runCompiled({ entry: 'scripts/schema-engine-shim.ts', name: 'usage-gateway-schema-engine' });

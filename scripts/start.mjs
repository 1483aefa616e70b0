/**
 * `npm start`: src/server.ts, compiled (scripts/compiled.mjs). `--compile-only` (postinstall) builds
 * the server's and the CLI's bundles and exits; it never fails the install: the first run tries again.
 */
import { runCompiled } from './compiled.mjs';

if (process.argv.includes('--compile-only')) {
  await runCompiled({ entry: 'src/server.ts', name: 'usage-gateway-server', compileOnly: true });
  await runCompiled({ entry: 'src/cli/main.ts', name: 'usage-gateway-cli', compileOnly: true });
  await runCompiled({ entry: 'scripts/schema-engine-shim.ts', name: 'usage-gateway-schema-engine', compileOnly: true });
} else {
  await runCompiled({ entry: 'src/server.ts', name: 'usage-gateway-server' });
}

/**
 * postinstall: builds the usage console (console/, Vite) into node_modules/.cache/usage-gateway/console
 * (console/vite.config.ts), which the gateway serves at `/` (src/console/serve.ts). Plain JavaScript:
 * no TypeScript loader to start. Never fails the install: without it the gateway answers `/` with a
 * 404 saying how to build it (`npm run console:build`, which fails loudly instead).
 */
import { build } from 'vite';

const started = performance.now();
try {
  await build({ configFile: new URL('../console/vite.config.ts', import.meta.url).pathname, logLevel: 'warn' });
  console.log(`The usage console was built in ${((performance.now() - started) / 1000).toFixed(1)} s (node_modules/.cache/usage-gateway/console)`);
} catch (error) {
  console.log(`Skipped the usage console (${error instanceof Error ? error.message : String(error)}); run \`npm run console:build\` to see why`);
  if (process.env.CONSOLE_BUILD_STRICT === 'true') process.exitCode = 1;
}

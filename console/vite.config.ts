import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Built into node_modules/.cache at `npm install` (scripts/build-console.ts); served by src/console/serve.ts. */
export default defineConfig({
  root: here,
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: path.join(here, '../node_modules/.cache/usage-gateway/console'),
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    // No inline assets: the page's CSP allows only the gateway's own files.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});

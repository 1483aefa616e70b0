import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../src/yoga.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

/** GET / and /assets/…: the console's files, their cache headers and CSP (src/console/serve.ts), on a stand-in build. */

let db: TestDatabase;
let dir: string;
const INDEX = '<!doctype html><html><head><!--console-settings--><script type="module" src="/assets/index-AbC123.js"></script></head><body></body></html>';

const appWith = (console: Parameters<typeof createApp>[0]['console']) => createApp({ prisma: db.prisma, console });

async function get(app: App, pathname: string, init: RequestInit = {}) {
  const response = await app.fetch(`http://gateway.test${pathname}`, init);
  return { status: response.status, headers: response.headers, text: await response.text() };
}

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(tmpdir(), 'console-build-'));
  mkdirSync(path.join(dir, 'assets'));
  writeFileSync(path.join(dir, 'index.html'), INDEX);
  writeFileSync(path.join(dir, 'assets/index-AbC123.js'), 'console.log(1)');
  writeFileSync(path.join(dir, 'secret.txt'), 'not an asset');
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await db?.destroy();
});

describe('the console route', () => {
  it('serves index.html uncached, with a CSP that allows only the gateway and no framing', async () => {
    const page = await get(appWith({ dir }), '/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.text).toContain('<script type="application/json" id="console-settings">{"defaultKey":null}</script>');
  });

  it('pre-fills the key only when given one, escaped so that it cannot close the script element', async () => {
    const page = await get(appWith({ dir, defaultKey: 'ugw_x</script><script>alert(1)</script>' }), '/');
    expect(page.text).toContain('{"defaultKey":"ugw_x\\u003c/script>\\u003cscript>alert(1)\\u003c/script>"}');
    expect(page.text).not.toContain('ugw_x</script>');
  });

  it('allows framing by the origins it is given', async () => {
    const page = await get(appWith({ dir, frameAncestors: ['https://portal.example'] }), '/');
    expect(page.headers.get('content-security-policy')).toContain('frame-ancestors https://portal.example');
  });

  it('serves hashed assets as immutable, and nothing outside assets/', async () => {
    const app = appWith({ dir });
    const asset = await get(app, '/assets/index-AbC123.js');
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(asset.text).toBe('console.log(1)');
    for (const pathname of ['/assets/missing-1.js', '/assets/..%2Fsecret.txt', '/assets/%2e%2e/secret.txt', '/assets/', '/assets/sub/index-AbC123.js']) {
      const missing = await get(app, pathname);
      expect(missing.status, pathname).toBe(404);
      expect(JSON.parse(missing.text).errors[0].extensions.code).toBe('NOT_FOUND');
    }
  });

  it('answers HEAD without a body and other methods with 405', async () => {
    const app = appWith({ dir });
    const head = await get(app, '/', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    const post = await get(app, '/', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('says how to build the console when it is not built', async () => {
    const page = await get(appWith({ dir: path.join(dir, 'nowhere') }), '/');
    expect(page.status).toBe(404);
    expect(JSON.parse(page.text).errors[0].message).toMatch(/npm run console:build/);
  });

  it('is off without the option: / stays a 404 naming the routes', async () => {
    const page = await get(appWith(undefined), '/');
    expect(page.status).toBe(404);
    expect(JSON.parse(page.text).errors[0].message).toMatch(/^No route GET \//);
  });
});

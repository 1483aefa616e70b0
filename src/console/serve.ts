/**
 * `GET /`: the usage console (console/, built by Vite at `npm install` into CONSOLE_BUILD_DIR), and
 * `GET /assets/<file>`: its hashed scripts, styles and fonts, and `GET /portal/<session id>`: the
 * same page for a portal session (src/portal/), framable by its realm's origins. A yoga plugin answering in
 * `onRequest`, like the CSV exports; the console itself only calls `/graphql` and `/exports/…`
 * with the key the person gives it, as any other client would.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'graphql-yoga';
import { isDatabaseUnavailable } from '../errors.js';
import { errorResponse, serviceUnavailableResponse } from '../plugins/http-route.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CONSOLE_BUILD_DIR = path.join(projectRoot, 'node_modules/.cache/usage-gateway/console');
export const CONSOLE_PATH = '/';
export const CONSOLE_ASSETS_PREFIX = '/assets/';

export interface ConsoleOptions {
  /** The built console (default CONSOLE_BUILD_DIR). */
  dir?: string;
  /** Pre-filled in the key field (development with the demo only, like GraphiQL's). */
  defaultKey?: string;
  /** Origins that may show the console in a frame (`frame-ancestors`); default: none. */
  frameAncestors?: string[];
  /**
   * `GET /portal/<session id>`: the console for a portal session, framable by the origins this
   * answers (its realm's `portalOrigins`); null: no such session (404). Without it: no portal pages.
   */
  portalFrameAncestors?: (sessionId: string) => Promise<string[] | null>;
}

/** A portal session's console page; its token follows in the fragment (`#token=…`), which no request carries. */
export const PORTAL_PAGE = /^\/portal\/([A-Za-z0-9_-]{1,200})$/;

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json; charset=utf-8',
};

/** Vite names every asset `<name>-<hash>.<ext>`: safe to cache for a year. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

function contentSecurityPolicy(frameAncestors: string[]): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    // uPlot positions its tooltips and legend through element.style (CSSOM), not inline <style>.
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    `frame-ancestors ${frameAncestors.length ? frameAncestors.join(' ') : "'none'"}`,
  ].join('; ');
}

/** The page with the console's settings as inert JSON (no inline script: the CSP allows none). */
function renderIndex(template: string, settings: { defaultKey: string | null; portal?: boolean }): string {
  const json = JSON.stringify(settings).replace(/</g, '\\u003c');
  return template.replace('<!--console-settings-->', `<script type="application/json" id="console-settings">${json}</script>`);
}

/** Vite's asset names: `<name>-<hash>.<ext>`; anything else (`..`, slashes) is not an asset. */
const ASSET_NAME = /^[\w-]+(\.[\w-]+)*\.[a-z0-9]+$/i;

export function useConsole(options: ConsoleOptions = {}): Plugin {
  const dir = options.dir ?? CONSOLE_BUILD_DIR;
  const csp = contentSecurityPolicy(options.frameAncestors ?? []);
  // A portal page never gets the demo key: it holds the session's token only.
  let portalIndex: { mtimeMs: number; html: string } | null = null;
  // Re-read when a new build replaces it (`npm run console:build` while the gateway runs).
  let index: { mtimeMs: number; html: string } | null = null;
  const readIndex = (): string | null => {
    const file = path.join(dir, 'index.html');
    let mtimeMs: number;
    try {
      mtimeMs = statSync(file).mtimeMs;
    } catch {
      return null;
    }
    if (index?.mtimeMs !== mtimeMs) index = { mtimeMs, html: renderIndex(readFileSync(file, 'utf8'), { defaultKey: options.defaultKey ?? null }) };
    return index.html;
  };
  const readPortalIndex = (): string | null => {
    const file = path.join(dir, 'index.html');
    let mtimeMs: number;
    try {
      mtimeMs = statSync(file).mtimeMs;
    } catch {
      return null;
    }
    if (portalIndex?.mtimeMs !== mtimeMs) portalIndex = { mtimeMs, html: renderIndex(readFileSync(file, 'utf8'), { defaultKey: null, portal: true }) };
    return portalIndex.html;
  };
  const htmlHeaders = (policy: string) => ({
    'content-type': 'text/html; charset=utf-8',
    // Always revalidated: a new build's index names new asset hashes.
    'cache-control': 'no-cache',
    'content-security-policy': policy,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  const readAsset = (name: string): Buffer | null => {
    if (!ASSET_NAME.test(name)) return null;
    try {
      return readFileSync(path.join(dir, 'assets', name));
    } catch {
      return null;
    }
  };

  const answerPortal = async (session: string, head: boolean, endResponse: (response: Response) => void) => {
    let origins: string[] | null;
    try {
      origins = await options.portalFrameAncestors!(session);
    } catch (error) {
      // Exceptions in onRequest are not caught by yoga: answer here.
      endResponse(isDatabaseUnavailable(error) ? serviceUnavailableResponse() : errorResponse(500, 'INTERNAL_SERVER_ERROR', 'Unexpected error.'));
      return;
    }
    const html = origins && readPortalIndex();
    if (!origins) endResponse(errorResponse(404, 'NOT_FOUND', 'No such portal session: open the link the site gave you again.'));
    else if (!html) endResponse(errorResponse(404, 'NOT_FOUND', 'The console is not built: run `npm install` (or `npm run console:build`).'));
    else endResponse(new Response(head ? null : html, { headers: htmlHeaders(contentSecurityPolicy(origins)) }));
  };

  return {
    onRequest({ request, url, endResponse }) {
      const isIndex = url.pathname === CONSOLE_PATH || url.pathname === '/index.html';
      const isAsset = url.pathname.startsWith(CONSOLE_ASSETS_PREFIX);
      const portal = options.portalFrameAncestors ? PORTAL_PAGE.exec(url.pathname) : null;
      if (!isIndex && !isAsset && !portal) return;
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        endResponse(errorResponse(405, 'METHOD_NOT_ALLOWED', `Use GET ${url.pathname}.`, { headers: { allow: 'GET, HEAD' } }));
        return;
      }
      const head = request.method === 'HEAD';
      // Only a portal page waits for the database: every other request passes synchronously.
      if (portal) return answerPortal(portal[1]!, head, endResponse);
      if (isIndex) {
        const html = readIndex();
        if (html === null) {
          endResponse(errorResponse(404, 'NOT_FOUND', 'The console is not built: run `npm install` (or `npm run console:build`).'));
          return;
        }
        endResponse(new Response(head ? null : html, { headers: htmlHeaders(csp) }));
        return;
      }
      const name = url.pathname.slice(CONSOLE_ASSETS_PREFIX.length);
      const content = readAsset(name);
      if (content === null) {
        endResponse(errorResponse(404, 'NOT_FOUND', `No console asset ${url.pathname}.`));
        return;
      }
      endResponse(
        new Response(head ? null : new Uint8Array(content), {
          headers: {
            'content-type': CONTENT_TYPES[path.extname(name)] ?? 'application/octet-stream',
            'cache-control': IMMUTABLE,
            'x-content-type-options': 'nosniff',
          },
        }),
      );
    },
  };
}

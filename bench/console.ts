/**
 * `npm run bench:console [-- <url>]`: the usage console's first load and first visit.
 *  - The JavaScript and CSS the page loads, raw and gzipped (the built files of CONSOLE_BUILD_DIR
 *    that index.html names).
 *  - A first visit: a fresh browser context (nothing cached) opens the console at <url> (default
 *    http://127.0.0.1:4000/, a running `npm start` with the demo) and waits until every section
 *    shows its data; the time from navigation to then, per run, and each section's own GraphQL time.
 * Debian's Chromium at /usr/bin/chromium, driven by playwright-core. Prints Markdown.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { CONSOLE_BUILD_DIR } from '../src/console/serve.js';
import { percentile } from './measure.js';

const url = process.argv[2] ?? 'http://127.0.0.1:4000/';
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const index = readFileSync(path.join(CONSOLE_BUILD_DIR, 'index.html'), 'utf8');
const assets = [...index.matchAll(/(?:src|href)="\/assets\/([^"]+)"/g)].map((m) => m[1]!);
console.log('| first-load file | bytes | gzipped (level 9) |\n| --- | ---: | ---: |');
let jsGzipped = 0;
for (const asset of assets) {
  const content = readFileSync(path.join(CONSOLE_BUILD_DIR, 'assets', asset));
  const gzipped = gzipSync(content, { level: 9 }).length;
  if (asset.endsWith('.js')) jsGzipped += gzipped;
  console.log(`| ${asset} | ${content.length.toLocaleString('en')} | ${gzipped.toLocaleString('en')} |`);
}
console.log(`\nJavaScript of the first load: ${(jsGzipped / 1024).toFixed(1)} KB gzipped (limit 300 KB).\n`);

// The machine may be shared: the load average says how far the times are from an idle one.
const load = () => loadavg().map((l) => l.toFixed(2)).join(' / ');
const loadBefore = load();
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
const visits: number[] = [];
const graphqlTimes = new Map<string, number[]>();
try {
  for (let run = 0; run < RUNS; run++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const started = new Map<string, number>();
    page.on('request', (request) => {
      if (request.url().endsWith('/graphql')) started.set(JSON.parse(request.postData() ?? '{}').query?.match(/^\s*query (\w+)/)?.[1] ?? '?', performance.now());
    });
    page.on('requestfinished', (request) => {
      if (!request.url().endsWith('/graphql')) return;
      const name = JSON.parse(request.postData() ?? '{}').query?.match(/^\s*query (\w+)/)?.[1] ?? '?';
      const list = graphqlTimes.get(name) ?? [];
      list.push(performance.now() - started.get(name)!);
      graphqlTimes.set(name, list);
    });
    const begin = performance.now();
    await page.goto(url);
    await page.waitForSelector('#alerts h3', { timeout: 120_000 });
    await page.waitForFunction(() => document.querySelectorAll('[aria-busy="true"]').length === 0 && !/Loading…/.test(document.querySelector('main')?.textContent ?? ''), null, { timeout: 120_000 });
    const errors = await page.locator('main .notice.error').count();
    if (errors) throw new Error(`run ${run + 1}: ${errors} section(s) show an error`);
    visits.push(performance.now() - begin);
    await context.close();
  }
} finally {
  await browser.close();
}
const sorted = [...visits].sort((a, b) => a - b);
console.log(`First visit to every section with data (${url}, ${RUNS} cold visits): p50 ${Math.round(percentile(sorted, 0.5))} ms, min ${Math.round(sorted[0]!)} ms, max ${Math.round(sorted.at(-1)!)} ms.`);
console.log(`Per visit (ms): ${visits.map((v) => Math.round(v)).join(', ')}. Load average (1 / 5 / 15 min) before: ${loadBefore}, after: ${load()}.\n`);
console.log('| section query | p50 ms | max ms |\n| --- | ---: | ---: |');
for (const [name, times] of graphqlTimes) {
  times.sort((a, b) => a - b);
  console.log(`| ${name} | ${Math.round(percentile(times, 0.5))} | ${Math.round(times.at(-1)!)} |`);
}

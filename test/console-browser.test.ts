/**
 * The usage console in a real browser: Debian's Chromium driven by playwright-core, against a
 * gateway on the demo seed (src/db/seed.ts) served over HTTP as src/server.ts wires it. Every number
 * a section shows is compared with the GraphQL answer to the same question; the CSV download with
 * the export endpoint. Screenshots go to docs/console/ (the README shows them).
 *
 * Runs on the PGlite project only (a browser and a copy of the demo per database kind would double a
 * slow file for no gain: the console reads the database only through the GraphQL API, which the
 * other suites test on both databases). Skipped
 * when /usr/bin/chromium is missing locally; in CI (`CI` set), where .ci/run installs it, it fails.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AlertsDocument,
  ApiKeysTrafficDocument,
  CurrentUsageDocument,
  ExplorerNodesDocument,
  ExplorerUsageDocument,
  PlanDocument,
  UsageHistoryDocument,
  type ExplorerUsageQueryVariables,
  type ReportFragment,
  type TypedDocumentString,
} from '../console/src/generated.js';
import { groupLabel } from '../console/src/labels.js';
import { CONSOLE_BUILD_DIR } from '../src/console/serve.js';
import { DEMO_API_KEY } from '../src/db/seed.js';
import { useUsageExportEndpoints } from '../src/exports/http.js';
import { createMemoryRateLimiter } from '../src/rate-limit/limiter.js';
import { createApp } from '../src/yoga.js';
import { testDatabaseKind, type TestDatabase } from './helpers/database.js';
import { createDemoTestDatabase } from './helpers/demo-database.js';
import { createKey, createRealm } from './helpers/fixtures.js';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
// The README's screenshots are rewritten only when asked (WRITE_SCREENSHOTS=1): a test run leaves the
// checkout as it found it. Otherwise they still render (the same code runs), into a temporary directory.
const SCREENSHOTS = process.env.WRITE_SCREENSHOTS ? path.resolve(import.meta.dirname, '../docs/console') : mkdtempSync(path.join(tmpdir(), 'ugw-console-shots-'));

const hasChromium = existsSync(CHROMIUM);
const inCI = !!process.env.CI;
if (!hasChromium && !inCI && testDatabaseKind() === 'pglite') {
  console.warn(`test/console-browser.test.ts skipped: ${CHROMIUM} is missing (apt-get install -y chromium; CI installs it and fails without it)`);
}

let db: TestDatabase;
let server: http.Server;
let base: string;
let browser: Browser;

/** The gateway's /graphql answer to one of the console's own documents. */
async function gql<Result, Variables>(key: string, document: TypedDocumentString<Result, Variables>, variables?: Variables): Promise<Result> {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query: document.toString(), variables: variables ?? {} }),
  });
  const body = (await response.json()) as { data: Result; errors?: unknown[] };
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data;
}

/** What the page shows, back to the gateway's decimal string: the thousands separators removed. */
const plain = (text: string | null) => (text ?? '').replace(/,/g, '').trim();

/** The text of every `[data-field]` cell in the rows matching `rows`, by the row's `key` attribute. */
async function fieldsByRow(page: Page, rows: string, key: string): Promise<Record<string, Record<string, string>>> {
  return page.$$eval(
    rows,
    (elements, attribute) =>
      Object.fromEntries(
        elements.map((row) => [
          row.getAttribute(attribute)!,
          Object.fromEntries([...row.querySelectorAll('[data-field]')].map((cell) => [cell.getAttribute('data-field')!, (cell.textContent ?? '').replace(/,/g, '').trim()])),
        ]),
      ),
    key,
  );
}

async function openConsole(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${base}/`);
  await waitForSections(page);
  return page;
}

/** Every section has finished loading (its content, an empty state or a failure). */
async function waitForSections(page: Page): Promise<void> {
  await page.waitForSelector('#alerts h3');
  await page.waitForFunction(() => document.querySelectorAll('[aria-busy="true"]').length === 0 && !/Loading…/.test(document.querySelector('main')?.textContent ?? ''), null, { timeout: 60_000 });
}

async function stopServer(): Promise<void> {
  if (!server?.listening) return;
  const closed = new Promise((resolve) => server.close(resolve));
  server.closeAllConnections();
  await closed;
}

/** A section's screenshot, cut at `maxHeight` (the explorer's bucket table runs long). */
async function shoot(page: Page, selector: string, name: string, maxHeight = 1100): Promise<void> {
  // In page coordinates, as a full-page screenshot's clip takes them.
  const box = await page.$eval(selector, (element) => {
    const rect = element.getBoundingClientRect();
    return { x: rect.x + window.scrollX, y: rect.y + window.scrollY, width: rect.width, height: rect.height };
  });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true, clip: { ...box, height: Math.min(box.height, maxHeight) } });
}

/** axe-core's serious and critical violations on the page as it is. */
async function seriousAxeViolations(page: Page): Promise<unknown[]> {
  const axe = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  const violations = (await page.evaluate(`${axe}\n;axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) })))`)) as { id: string; impact: string }[];
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

describe.runIf(testDatabaseKind() === 'pglite' && (hasChromium || inCI))('the usage console in Chromium', () => {
  beforeAll(async () => {
    if (!hasChromium) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium (apt-get install -y chromium)`);
    if (!existsSync(path.join(CONSOLE_BUILD_DIR, 'index.html'))) throw new Error('the console is not built: npm install builds it (npm run console:build)');
    mkdirSync(SCREENSHOTS, { recursive: true });
    db = await createDemoTestDatabase();
    // As src/server.ts wires it: the console, the CSV exports, rate limits.
    const app = createApp({
      prisma: db.prisma,
      console: { defaultKey: DEMO_API_KEY },
      rateLimiter: createMemoryRateLimiter(),
      plugins: [useUsageExportEndpoints({ prisma: db.prisma })],
    });
    server = http.createServer((req, res) => void app.handleNodeRequest(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // One quota rule crossed by the next event: the Alerts section has a rule and an alert to show.
    const features = await gql(DEMO_API_KEY, ExplorerNodesDocument, { withKeys: true });
    const requests = features.viewer.realm!.features.edges.find((edge) => edge.node.key === 'api.requests')!.node;
    const mutation = async (query: string, variables: Record<string, unknown>) =>
      (await fetch(`${base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${DEMO_API_KEY}` }, body: JSON.stringify({ query, variables }) })).json();
    await mutation('mutation($input: CreateQuotaRuleInput!) { createQuotaRule(input: $input) { userErrors { code } } }', { input: { featureId: requests.id, period: 'MONTH', quantity: '1000' } });
    await mutation('mutation($events: [UsageEventInput!]!) { ingestUsage(events: $events) { accepted } }', {
      events: [{ feature: 'api.requests', idempotencyKey: 'console-browser-alert', timestamp: new Date().toISOString(), quantity: '1' }],
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await stopServer();
    await db?.destroy();
  });

  describe('at 1280×800 with the demo key (pre-filled in development)', () => {
    let context: BrowserContext;
    let page: Page;
    const requests: { url: string; authorization: string | undefined }[] = [];

    beforeAll(async () => {
      context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
      context.on('request', (request) => requests.push({ url: request.url(), authorization: request.headers().authorization }));
      page = await openConsole(context);
    }, 120_000);
    afterAll(() => context?.close());

    it('shows every section, and never puts the key in a URL', async () => {
      for (const id of ['plan', 'current', 'history', 'download', 'explorer', 'keys', 'alerts']) {
        await expect(page.locator(`#${id} .notice.error`).count(), id).resolves.toBe(0);
      }
      expect(await page.locator('header.top h1').textContent()).toBe('Acme Analytics');
      const secret = DEMO_API_KEY.slice(DEMO_API_KEY.lastIndexOf('_') + 1);
      expect(requests.length).toBeGreaterThan(5);
      for (const request of requests) expect(request.url).not.toContain(secret);
      expect(requests.filter((r) => r.url.endsWith('/graphql')).every((r) => r.authorization === `Bearer ${DEMO_API_KEY}`)).toBe(true);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'overview.png') });
    });

    it('Plan: every licensed quantity is the GraphQL answer', async () => {
      const contracts = (await gql(DEMO_API_KEY, PlanDocument)).viewer.realm!.contracts.edges.map((edge) => edge.node);
      expect(contracts.length).toBeGreaterThan(0);
      for (const contract of contracts) {
        const shown = await fieldsByRow(page, `[data-contract="${contract.id}"] tbody tr`, 'data-feature');
        expect(shown).toEqual(Object.fromEntries(contract.licenses.edges.map(({ node }) => [node.feature.key, { quantityPerMonth: node.quantityPerMonth }])));
      }
      await shoot(page, '#plan', 'plan');
    });

    it('Current usage: used, licensed and the license / credits / exceeding split of every product', async () => {
      const month = (await gql(DEMO_API_KEY, CurrentUsageDocument)).viewer.realm!.currentUsage;
      const shown = await fieldsByRow(page, '#current table.current-usage tbody tr', 'data-feature');
      expect(Object.keys(shown).sort()).toEqual(month.products.map((p) => p.feature.key).sort());
      for (const product of month.products) {
        expect(shown[product.feature.key], product.feature.key).toMatchObject({
          used: product.used,
          licensed: product.licensed,
          coveredByLicense: product.coveredByLicense,
          coveredByCredits: product.coveredByCredits,
          exceeding: product.exceeding,
        });
      }
      expect(plain(await page.locator('#current [data-field="creditsApplied"]').textContent())).toBe(month.credits.applied);
      // The month-end projection where the forecast gives one, otherwise why not.
      for (const projection of month.forecast.projections) {
        const cells = shown[projection.feature.key]!;
        // The projection moves with the clock (today's elapsed share): the page asked a moment before this query did.
        if (projection.status === 'AVAILABLE') expect(Math.abs(Number(cells.projected) / Number(projection.projected) - 1), projection.feature.key).toBeLessThan(1e-4);
        else expect(cells.projectionStatus?.toUpperCase().replace(/ /g, '_'), projection.feature.key).toBe(projection.status);
      }
      // The bar's segments are as wide as their shares of the larger of used and licensed.
      const widths = await page.$$eval('#current tbody tr:first-child .segment', (segments) => segments.map((s) => (s as HTMLElement).style.width));
      expect(widths.length).toBeGreaterThan(0);
      await shoot(page, '#current', 'current-usage');
    });

    it('Usage history: 12 months of each product equal usageHistory, and the product is picked by keyboard', async () => {
      const months = (await gql(DEMO_API_KEY, UsageHistoryDocument)).viewer.realm!.usageHistory;
      expect(months).toHaveLength(12);
      const check = async () => {
        const feature = await page.locator('#history table.usage-history').getAttribute('data-feature');
        const shown = await fieldsByRow(page, '#history table.usage-history tbody tr', 'data-month');
        expect(Object.keys(shown)).toEqual(months.map((m) => m.month));
        for (const month of months) {
          const product = month.products.find((p) => p.feature.key === feature);
          const zero = (value: string | undefined) => value ?? '0';
          expect(shown[month.month], `${feature} ${month.month}`).toEqual({
            used: zero(product?.used),
            licensed: zero(product?.licensed),
            coveredByLicense: zero(product?.coveredByLicense),
            coveredByCredits: zero(product?.coveredByCredits),
            exceeding: zero(product?.exceeding),
            unusedLicensed: zero(product?.unusedLicensed),
          });
        }
        return feature;
      };
      const first = await check();
      await expect(page.locator('#history canvas').count()).resolves.toBeGreaterThan(0);
      await expect(page.locator('#history .u-legend').textContent()).resolves.toContain('Covered by credits');
      await shoot(page, '#history', 'usage-history');
      await page.locator('#history select').focus();
      await page.keyboard.press('ArrowDown');
      await page.waitForFunction((previous) => document.querySelector('#history table.usage-history')?.getAttribute('data-feature') !== previous, first);
      expect(await check()).not.toBe(first);
    });

    it('Downloadable usage: the CSV saved is the export endpoint’s, fetched with the key in a header', async () => {
      const month = await page.locator('#download select[name="month"]').inputValue();
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download monthly CSV' }).click()]);
      const saved = readFileSync((await download.path())!, 'utf8');
      const expected = await (await fetch(`${base}/exports/usage/monthly.csv?month=${month}`, { headers: { authorization: `Bearer ${DEMO_API_KEY}` } })).text();
      expect(download.suggestedFilename()).toBe(`usage-monthly-${month}.csv`);
      expect(saved).toBe(expected);
      expect(saved.split('\r\n').length).toBeGreaterThan(2);
      const exportRequest = requests.find((r) => r.url.includes('/exports/usage/monthly.csv'))!;
      expect(exportRequest.url).toBe(`${base}/exports/usage/monthly.csv?month=${month}`);
      expect(exportRequest.authorization).toBe(`Bearer ${DEMO_API_KEY}`);
      await expect(page.locator('#download .download-status').textContent()).resolves.toMatch(/^Downloaded usage-monthly-.*rows/);

      const start = await page.locator('#download input[name="start"]').inputValue();
      const end = await page.locator('#download input[name="end"]').inputValue();
      const [daily] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download daily CSV' }).click()]);
      const expectedDaily = await (await fetch(`${base}/exports/usage/daily.csv?start=${start}&end=${end}`, { headers: { authorization: `Bearer ${DEMO_API_KEY}` } })).text();
      expect(readFileSync((await daily.path())!, 'utf8')).toBe(expectedDaily);
      // A range the endpoint refuses is said plainly, with its message.
      await page.locator('#download input[name="start"]').fill('2020-01-01');
      await page.getByRole('button', { name: 'Download daily CSV' }).click();
      await expect(page.locator('#download .notice.error').textContent()).resolves.toMatch(/^Not valid: /);
      await shoot(page, '#download', 'download');
    });

    it('Explorer: totals and buckets equal the usage report for the same question; non-final buckets are marked', async () => {
      const nodes = (await gql(DEMO_API_KEY, ExplorerNodesDocument, { withKeys: true })).viewer.realm!;
      const compare = async (variables: ExplorerUsageQueryVariables) => {
        const report = ((await gql(DEMO_API_KEY, ExplorerUsageDocument, variables)).node as { usage: ReportFragment }).usage;
        // A rolling timeframe moves on the hour: when the page asked before it and this test after, the page asks again.
        const asked = `${report.range.from}|${report.range.to}`;
        const shownRange = () => page.locator('#explorer .explorer-range').evaluate((el) => `${el.getAttribute('data-from')}|${el.getAttribute('data-to')}`);
        if ((await shownRange()) !== asked) {
          await page.getByRole('button', { name: 'Show usage' }).click();
          await page.waitForFunction(
            (want) => {
              const el = document.querySelector('#explorer .explorer-range');
              return `${el?.getAttribute('data-from')}|${el?.getAttribute('data-to')}` === want;
            },
            asked,
          );
        }
        const totals = await page.$$eval('#explorer table.explorer-totals tbody tr', (rows) =>
          rows.map((row) => `${row.getAttribute('data-feature')}|${row.getAttribute('data-group')}|${(row.querySelector('[data-field="quantity"]')?.textContent ?? '').replace(/,/g, '')}`),
        );
        expect(totals).toHaveLength(report.totals.length);
        expect(totals.map((t) => t.split('|')[2])).toEqual(report.totals.map((t) => t.quantity));
        expect(totals.map((t) => t.split('|')[1])).toEqual(report.totals.map((t) => groupLabel(t.group)));
        const points = await page.$$eval('#explorer table.explorer-points tbody tr', (rows) =>
          rows.map((row) => ({ start: row.getAttribute('data-start'), quantity: (row.querySelector('[data-field="quantity"]')?.textContent ?? '').replace(/,/g, ''), pending: row.classList.contains('pending') })),
        );
        expect(points).toEqual(report.points.slice(0, 400).map((p) => ({ start: p.start, quantity: p.quantity, pending: !p.isFinal })));
        return report;
      };
      // The first view: the realm, the last 7 days by day.
      const first = await compare({ id: nodes.id, timeframe: 'LAST_7_DAYS', granularity: 'DAY', timeZone: nodes.timeZone, groupBy: [], filter: {}, scope: null });
      expect(first.points.some((p) => !p.isFinal)).toBe(true);
      await shoot(page, '#explorer', 'explorer');

      // A workspace of the tree, itself only, by app, hourly in another time zone, one product.
      const workspace = nodes.workspaces.edges.find((edge) => edge.node.depth === 1)!.node;
      const feature = nodes.features.edges.find((edge) => edge.node.key === 'location.transactions')!.node;
      await page.locator('#explorer select[name="node"]').selectOption(workspace.id);
      await page.locator('#explorer select[name="scope"]').selectOption('SELF');
      await page.locator('#explorer select[name="timeframe"]').selectOption('LAST_24_HOURS');
      await page.locator('#explorer select[name="granularity"]').selectOption('HOUR');
      await page.locator('#explorer input[name="timeZone"]').fill('Asia/Kolkata');
      await page.locator('#explorer input[value="APP"]').check();
      await page.locator('#explorer select[name="featureId"]').selectOption(feature.id);
      await page.getByRole('button', { name: 'Show usage' }).click();
      await page.waitForFunction(() => document.querySelector('#explorer .explorer-out')?.textContent?.includes('Kolkata'));
      const second = await compare({ id: workspace.id, timeframe: 'LAST_24_HOURS', granularity: 'HOUR', timeZone: 'Asia/Kolkata', groupBy: ['APP'], filter: { featureIds: [feature.id] }, scope: 'SELF' });
      // Asia/Kolkata is UTC+5:30: hourly data cannot be split there exactly, and the page says so.
      expect(second.approximate).toBe(true);
      await expect(page.locator('#explorer [data-field="warnings"]').textContent()).resolves.toContain('Approximate');
      for (const warning of second.warnings) await expect(page.locator('#explorer [data-field="warnings"]').textContent()).resolves.toContain(warning);
    });

    it('API keys: each key’s traffic equals ApiKey.traffic', async () => {
      const data = await gql(DEMO_API_KEY, ApiKeysTrafficDocument);
      const shown = await fieldsByRow(page, '#keys table.api-keys tbody tr', 'data-key');
      const keys = data.viewer.realm!.apiKeys.edges.map((edge) => edge.node);
      expect(Object.keys(shown).sort()).toEqual(keys.map((k) => k.id).sort());
      const ms = (value: number | undefined) => (value === undefined ? '—' : `${Math.round(value * 10) / 10} ms`);
      for (const key of keys) {
        const summary = key.traffic.summary;
        expect(shown[key.id], key.name).toMatchObject({ requests: String(summary.requests), p50: ms(summary.latency?.p50), p95: ms(summary.latency?.p95), p99: ms(summary.latency?.p99) });
        expect(shown[key.id]!.errors!.startsWith(String(summary.errors))).toBe(true);
        expect(shown[key.id]!.rateLimit).toContain(`${key.traffic.rateLimit.limit}/min`);
      }
      expect(plain(await page.locator('#keys [data-field="limit"]').textContent())).toBe(String(data.viewer.rateLimit!.limit));
      await shoot(page, '#keys', 'api-keys');
    });

    it('Alerts: the quota rule and the alert it raised', async () => {
      const realm = (await gql(DEMO_API_KEY, AlertsDocument)).viewer.realm!;
      expect(realm.alerts.edges.length).toBeGreaterThan(0);
      const rules = await fieldsByRow(page, '#alerts table.quota-rules tbody tr', 'data-rule');
      expect(Object.keys(rules)).toEqual(realm.quotaRules.edges.map((e) => e.node.id));
      const alerts = await fieldsByRow(page, '#alerts table.alerts tbody tr', 'data-alert');
      expect(alerts).toEqual(Object.fromEntries(realm.alerts.edges.map(({ node }) => [node.id, { quantity: node.quantity, threshold: node.threshold }])));
      await shoot(page, '#alerts', 'alerts');
    });

    it('has no serious or critical axe-core violation', async () => {
      expect(await seriousAxeViolations(page)).toEqual([]);
    });

    it('works by keyboard: skip link, then every control reachable with Tab, and the explorer runs with Enter', async () => {
      await page.goto(`${base}/`);
      await waitForSections(page);
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to the usage');
      await page.keyboard.press('Enter');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('main');
      const reached = new Set<string>();
      for (let i = 0; i < 200 && !reached.has('Show usage'); i++) {
        await page.keyboard.press('Tab');
        reached.add(await page.evaluate(() => (document.activeElement as HTMLElement).getAttribute('name') ?? document.activeElement?.textContent ?? ''));
      }
      for (const control of ['product', 'month', 'start', 'end', 'node', 'timeframe', 'granularity', 'timeZone', 'groupBy', 'featureId', 'Show usage']) expect(reached, control).toContain(control);
      await page.locator('#explorer select[name="granularity"]').focus();
      await page.keyboard.press('ArrowDown');
      const granularity = await page.locator('#explorer select[name="granularity"]').inputValue();
      await page.locator('#explorer button[type="submit"]').focus();
      await page.keyboard.press('Enter');
      await page.waitForFunction((g) => document.querySelector('#explorer .explorer-out p')?.textContent?.includes(`${g.charAt(0)}${g.slice(1).toLowerCase()}`), granularity);
    });
  });

  it('at 390×844: every section fits the width (tables scroll inside their region)', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    try {
      const page = await openConsole(context);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      for (const id of ['plan', 'current', 'history', 'download', 'explorer', 'keys', 'alerts']) await expect(page.locator(`#${id}`).isVisible()).resolves.toBe(true);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'mobile.png') });
    } finally {
      await context.close();
    }
  });

  it('a pasted key is kept in session storage, not in the URL; an empty realm says so', async () => {
    const realm = await createRealm(db.prisma, 'Empty Realm');
    const { key } = await createKey(db.prisma, realm.id);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const page = await context.newPage();
      await page.goto(`${base}/`);
      await waitForSections(page);
      await page.getByRole('button', { name: 'Change key' }).click();
      await page.getByLabel('API key').fill(key);
      await page.getByRole('button', { name: 'Open the console' }).click();
      await page.waitForFunction(() => document.querySelector('header.top h1')?.textContent === 'Empty Realm');
      await waitForSections(page);
      expect(page.url()).toBe(`${base}/`);
      expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([key]);
      expect(await page.evaluate(() => Object.values(localStorage))).toEqual([]);
      await expect(page.locator('#plan .empty').textContent()).resolves.toMatch(/No contract/);
      await expect(page.locator('#history .empty').textContent()).resolves.toBe('No usage in the last 12 months.');
      await expect(page.locator('#explorer .empty').textContent()).resolves.toBe('No usage in this range.');
      await expect(page.locator('#alerts').textContent()).resolves.toContain('No alerts raised.');
      await page.screenshot({ path: path.join(SCREENSHOTS, 'empty.png') });
    } finally {
      await context.close();
    }
  });

  describe('a portal session (test/portal-sessions.test.ts tests its rules over HTTP)', () => {
    const CREATE = 'mutation ($input: CreatePortalSessionInput!) { createPortalSession(input: $input) { url token userErrors { code message } } }';
    async function createSession(workspaceId: string, featureId: string, expiresInSeconds: number) {
      const response = await fetch(`${base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${DEMO_API_KEY}` },
        body: JSON.stringify({ query: CREATE, variables: { input: { workspaceId, featureIds: [featureId], sections: ['explorer', 'download'], expiresInSeconds } } }),
      });
      const payload = ((await response.json()) as { data: { createPortalSession: { url: string; token: string; userErrors: unknown[] } } }).data.createPortalSession;
      expect(payload.userErrors).toEqual([]);
      return payload;
    }

    it('opens from its URL with only its sections and its subtree, and the token leaves the address bar', async () => {
      const nodes = (await gql(DEMO_API_KEY, ExplorerNodesDocument, { withKeys: true })).viewer.realm!;
      const subtreeRoot = nodes.workspaces.edges.find(({ node }) => node.depth === 1)!.node;
      const feature = nodes.features.edges[0]!.node;
      const session = await createSession(subtreeRoot.id, feature.id, 3600);
      const seen = (await gql(session.token, ExplorerNodesDocument, { withKeys: false })).viewer.realm!;
      expect(seen.workspaces.edges.length).toBeLessThan(nodes.workspaces.edges.length);
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const urls: string[] = [];
      context.on('request', (request) => urls.push(request.url()));
      try {
        const page = await context.newPage();
        await page.goto(session.url.replace(/^https?:\/\/[^/]+/, base));
        await page.waitForSelector('#explorer select[name="node"]');
        expect(await page.$$eval('nav a', (links) => links.map((a) => a.getAttribute('href')))).toEqual(['#download', '#explorer']);
        expect(await page.locator('input[name="key"]').count()).toBe(0);
        expect(await page.getByRole('button', { name: 'Change key' }).count()).toBe(0);
        expect(new URL(page.url()).hash).toBe('');
        expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([session.token]);
        const workspaces = await page.$$eval('#explorer select[name="node"] optgroup[label="Workspaces"] option', (options) => options.map((o) => (o.textContent ?? '').trim()));
        expect(workspaces.sort()).toEqual(seen.workspaces.edges.map(({ node }) => node.name).sort());
        const features = await page.$$eval('#explorer select[name="node"] optgroup[label="Features"] option', (options) => options.map((o) => o.textContent));
        expect(features).toEqual([feature.name]);
        expect(await page.locator('#explorer select[name="node"] optgroup[label="API keys"]').count()).toBe(0);
        const secret = session.token.slice(session.token.lastIndexOf('_') + 1);
        for (const url of urls) expect(url).not.toContain(secret);
        expect(await seriousAxeViolations(page)).toEqual([]);
        await page.screenshot({ path: path.join(SCREENSHOTS, 'portal.png') });
      } finally {
        await context.close();
      }
    });

    it('says plainly that an expired session has expired', async () => {
      const nodes = (await gql(DEMO_API_KEY, ExplorerNodesDocument, { withKeys: true })).viewer.realm!;
      const session = await createSession(nodes.workspaces.edges[0]!.node.id, nodes.features.edges[0]!.node.id, 1);
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
      try {
        const page = await context.newPage();
        await page.goto(session.url.replace(/^https?:\/\/[^/]+/, base));
        await expect(page.getByRole('alert').textContent()).resolves.toMatch(/This portal session expired at .*ask the site that opened it for a new one/);
        expect(await page.locator('input[name="key"]').count()).toBe(0);
        expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([]);
      } finally {
        await context.close();
      }
    });
  });

  it('a revoked key, a rate-limited key and an unreachable gateway are each said plainly', async () => {
    const realm = await createRealm(db.prisma, 'Limits Realm');
    const revoked = await createKey(db.prisma, realm.id, { revokedAt: new Date() });
    const limited = await createKey(db.prisma, realm.id);
    // Three requests a minute: the console's first page needs eight.
    await db.prisma.apiKey.update({ where: { id: limited.record.id }, data: { customRateLimit: 3 } });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const page = await context.newPage();
      await page.goto(`${base}/`);
      await page.evaluate((key) => sessionStorage.setItem('usage-gateway.console.key', key), revoked.key);
      await page.reload();
      await expect(page.getByRole('alert').textContent()).resolves.toMatch(/not valid: it is wrong, expired or revoked/);
      expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([]);

      await page.getByLabel('API key').fill(limited.key);
      await page.getByRole('button', { name: 'Open the console' }).click();
      const notice = page.locator('.notice.warning', { hasText: 'rate limited' }).first();
      await notice.waitFor();
      const first = Number(await notice.locator('.countdown').textContent());
      expect(first).toBeGreaterThan(0);
      await page.waitForFunction((start) => Number(document.querySelector('.notice.warning .countdown')?.textContent) < start, first, { timeout: 5_000 });
      await page.screenshot({ path: path.join(SCREENSHOTS, 'rate-limited.png') });

      // The gateway goes away (the last test: the server stays stopped): the next request says so.
      await page.evaluate((key) => sessionStorage.setItem('usage-gateway.console.key', key), DEMO_API_KEY);
      await page.reload();
      await waitForSections(page);
      await stopServer();
      await page.getByRole('button', { name: 'Show usage' }).click();
      await expect(page.locator('#explorer .notice.error').textContent()).resolves.toMatch(/^Unreachable: The gateway cannot be reached/);
      await expect(page.locator('#explorer .notice.error button').textContent()).resolves.toBe('Retry');
    } finally {
      await context.close();
    }
  });
});

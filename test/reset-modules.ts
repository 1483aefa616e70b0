/**
 * Test files share their worker's modules (vitest.config.ts `isolate: false`): what a file may have
 * set in a module's settings is put back before the next file starts.
 */
import { beforeAll } from 'vitest';
import { configureQuotaDelivery } from '../src/quota/delivery.js';
import { configureReportCache } from '../src/usage/report-cache.js';

beforeAll(() => configureQuotaDelivery());
// Off unless a file turns it on (test/report-cache.test.ts): statement counts elsewhere are of uncached reads.
beforeAll(() => configureReportCache({ maxBytes: 0, ttlMs: 1 }));

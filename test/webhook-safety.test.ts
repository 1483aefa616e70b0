import { getHeapStatistics } from 'node:v8';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { encodeId } from '../src/global-id.js';
import { configureQuotaDelivery, newWebhookSecret, QuotaDeliverer, type QuotaDelivererOptions } from '../src/quota/delivery.js';
import { MAX_REPLY_BYTES, postWebhook, type HostResolver } from '../src/quota/webhook-post.js';
import { checkWebhookUrl } from '../src/quota/webhook-url.js';
import { createApp } from '../src/yoga.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from './helpers/database.js';
import { createQueuedAlert } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { createUsageRealm } from './helpers/usage-fixture.js';

/**
 * This thread's heap and the buffers it holds (v8 counts both per isolate): the process's RSS is
 * shared with the other test files' worker threads, so it would measure them too.
 */
function isolateMemory(): number {
  const heap = getHeapStatistics();
  return heap.used_heap_size + heap.external_memory;
}

// Outbound webhooks must not become a weapon: no requests into the gateway's own network (SSRF),
// no redirects, no memory blown by a reply, no alert retried forever by crashing processes.
// Receivers are real node:http servers on 127.0.0.1, reached with WEBHOOK_ALLOW_PRIVATE.

const LOOPBACK_SPELLINGS = [
  'http://127.0.0.1:6379/',
  'http://localhost:8080/hook',
  'http://LOCALHOST./hook',
  'http://api.localhost/hook',
  'http://[::1]/hook',
  'http://127.1/hook',
  'http://2130706433/hook',
  'http://0x7f.1/hook',
  'http://0177.0.0.1/hook',
  'http://%31%32%37.0.0.1/hook',
  'http://[::ffff:127.0.0.1]/hook',
  'http://[::ffff:7f00:1]/hook',
];
const NON_PUBLIC = [
  'http://0.0.0.0/',
  'http://0/',
  'http://[::]/',
  'http://10.0.0.8/',
  'http://172.16.0.1/',
  'http://172.31.255.254/',
  'http://192.168.1.1/',
  'http://169.254.169.254/latest/meta-data/',
  'http://100.64.0.1/',
  'http://224.0.0.251/',
  'http://255.255.255.255/',
  'http://[fc00::1]/',
  'http://[fd12:3456::1]/',
  'http://[fe80::1]/',
  'http://[ff02::1]/',
  'http://[64:ff9b::7f00:1]/',
  'http://[2002:7f00:1::]/',
  'http://metadata.google.internal/',
];
const ODD_FORMS = [
  'http://user:pass@hooks.example.com/',
  'http://user@hooks.example.com/',
  'http://@hooks.example.com/',
  'http:/hooks.example.com/',
  'http:hooks.example.com/',
  'http:\\\\hooks.example.com/',
  ' https://hooks.example.com/',
  'https://hooks.example.com/ ',
  'https://hooks.exa mple.com/',
  'https://hooks.example.com/\n',
  'ftp://hooks.example.com/',
  'file:///etc/passwd',
  'gopher://hooks.example.com/',
  'javascript:alert(1)',
  '//hooks.example.com/',
  'https://hooks.example.com:0/',
  `https://hooks.example.com/${'a'.repeat(2000)}`,
];
const PUBLIC = ['https://hooks.example.com/quota', 'http://hooks.example.com:8080/a?b=c', 'https://93.184.215.14/x', 'https://[2606:4700::6810:84e5]/x', 'HTTPS://Hooks.Example.COM/'];

describe.runIf(testDatabaseKind() === 'pglite')('checkWebhookUrl', () => {
  it('refuses loopback in every spelling, every non-public range, credentials and odd forms', () => {
    for (const url of [...LOOPBACK_SPELLINGS, ...NON_PUBLIC, ...ODD_FORMS]) {
      expect({ url, ok: checkWebhookUrl(url, { allowPrivate: false }).ok }).toEqual({ url, ok: false });
    }
    for (const url of PUBLIC) expect({ url, ok: checkWebhookUrl(url, { allowPrivate: false }).ok }).toEqual({ url, ok: true });
  });

  it('with WEBHOOK_ALLOW_PRIVATE accepts private addresses, still never credentials or odd forms', () => {
    for (const url of [...LOOPBACK_SPELLINGS, ...NON_PUBLIC]) expect({ url, ok: checkWebhookUrl(url, { allowPrivate: true }).ok }).toEqual({ url, ok: true });
    for (const url of ODD_FORMS) expect({ url, ok: checkWebhookUrl(url, { allowPrivate: true }).ok }).toEqual({ url, ok: false });
  });

  it('WEBHOOK_ALLOW_PRIVATE is off unless set to true', () => {
    expect(loadConfig({}).webhookAllowPrivate).toBe(false);
    expect(loadConfig({ WEBHOOK_ALLOW_PRIVATE: 'true' }).webhookAllowPrivate).toBe(true);
    expect(() => loadConfig({ WEBHOOK_ALLOW_PRIVATE: 'sometimes' })).toThrow(ConfigError);
  });
});

// ---- real receivers ----

type Behaviour = (req: IncomingMessage, res: ServerResponse) => void;
let receiver: Server;
let port: number;
let behave: Behaviour = (_req, res) => res.writeHead(204).end();
const hits: { path: string; method: string; headers: IncomingMessage['headers'] }[] = [];
const url = (path = '/hook') => `http://127.0.0.1:${port}${path}`;

/** Writes `chunk` until `total` bytes are sent or the client goes away, honouring back-pressure (the receiver's own memory stays flat). */
function stream(res: ServerResponse, chunk: Buffer, total: number) {
  let sent = 0;
  let gone = false;
  res.on('close', () => (gone = true));
  res.on('error', () => (gone = true));
  const pump = () => {
    while (!gone && sent < total) {
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    if (!gone) res.end();
  };
  pump();
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits.push({ path: req.url ?? '', method: req.method ?? '', headers: req.headers });
      behave(req, res);
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  port = (receiver.address() as AddressInfo).port;
});
afterAll(async () => {
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
});
beforeEach(() => {
  hits.length = 0;
  behave = (_req, res) => res.writeHead(204).end();
});

const post = (target: string, options: { timeoutMs?: number; allowPrivate?: boolean; resolve?: HostResolver } = {}) =>
  postWebhook(target, '{"type":"quota.crossed"}', { 'content-type': 'application/json' }, { timeoutMs: options.timeoutMs ?? 2000, allowPrivate: options.allowPrivate ?? true, resolve: options.resolve });

describe.runIf(testDatabaseKind() === 'pglite')('postWebhook against hostile receivers', () => {
  it('does not follow a 302: the attempt fails with the status, the Location is never requested', async () => {
    behave = (req, res) => (req.url === '/hook' ? res.writeHead(302, { location: url('/internal') }).end() : res.writeHead(200).end());
    const outcome = await post(url());
    expect(outcome).toMatchObject({ status: 302, error: 'HTTP 302: redirects are not followed' });
    expect(hits.map((h) => h.path)).toEqual(['/hook']);
  });

  it('does not follow a 307: the body and signature are not POSTed again', async () => {
    behave = (req, res) => (req.url === '/hook' ? res.writeHead(307, { location: url('/internal') }).end() : res.writeHead(200).end());
    const outcome = await post(url());
    expect(outcome).toMatchObject({ status: 307, error: 'HTTP 307: redirects are not followed' });
    expect(hits.map((h) => `${h.method} ${h.path}`)).toEqual(['POST /hook']);
  });

  it('reads at most 64 KiB of a 50 MB reply and keeps memory flat', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'x');
    behave = (_req, res) => {
      res.writeHead(200, { 'content-length': String(50 * 1024 * 1024) });
      stream(res, chunk, 50 * 1024 * 1024);
    };
    const before = isolateMemory();
    const outcome = await post(url());
    const grown = isolateMemory() - before;
    expect(outcome).toMatchObject({ status: 200, error: null });
    // Reading stops at the bound; the socket read that crossed it is at most 64 KiB.
    expect(outcome.replyBytesReceived).toBeGreaterThanOrEqual(MAX_REPLY_BYTES);
    expect(outcome.replyBytesReceived).toBeLessThanOrEqual(MAX_REPLY_BYTES + 64 * 1024);
    expect(grown).toBeLessThan(20 * 1024 * 1024);
  });

  it('never decompresses: a gzip bomb (10 MB expanding to 10 GB) is read as at most 64 KiB of compressed bytes', async () => {
    const member = gzipSync(Buffer.alloc(1024 * 1024)); // ~1 KB of gzip = 1 MiB of zeros; members concatenate
    behave = (req, res) => {
      expect(req.headers['accept-encoding']).toBe('identity');
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-type': 'application/json' });
      stream(res, Buffer.concat(Array.from({ length: 64 }, () => member)), 10 * 1024 * 1024);
    };
    const before = isolateMemory();
    const outcome = await post(url());
    const grown = isolateMemory() - before;
    expect(outcome).toMatchObject({ status: 200, error: null });
    expect(outcome.replyBytesReceived).toBeLessThanOrEqual(MAX_REPLY_BYTES + 64 * 1024);
    expect(grown).toBeLessThan(20 * 1024 * 1024);
    expect(hits).toHaveLength(1);
  });

  it('ends an attempt whose receiver trickles its reply when the timeout is reached', async () => {
    const timers: NodeJS.Timeout[] = [];
    behave = (_req, res) => {
      res.writeHead(200);
      timers.push(setInterval(() => res.write('.'), 10));
    };
    try {
      const outcome = await post(url(), { timeoutMs: 300 });
      expect(outcome.error).toBe('timed out after 300 ms');
      expect(outcome.replyBytesReceived).toBeLessThan(MAX_REPLY_BYTES);
    } finally {
      timers.forEach(clearInterval);
    }
  });

  it('ends an attempt whose receiver trickles its status line when the timeout is reached', async () => {
    const timers: NodeJS.Timeout[] = [];
    behave = (req) => {
      const bytes = [...'HTTP/1.1 200 OK\r\nX-Slow: yes'];
      timers.push(setInterval(() => bytes.length && req.socket.write(bytes.shift()!), 20));
    };
    try {
      expect(await post(url(), { timeoutMs: 200 })).toMatchObject({ status: null, error: 'timed out after 200 ms' });
    } finally {
      timers.forEach(clearInterval);
    }
  });

  it('refuses reply headers beyond 16 KiB instead of buffering them', async () => {
    behave = (_req, res) => res.writeHead(200, { 'x-padding': 'a'.repeat(1024 * 1024) }).end();
    expect(await post(url())).toMatchObject({ status: null, error: 'the reply headers are too large' });
  });

  it('records a connection reset, before or during the reply, as a failed attempt', async () => {
    behave = (req) => req.socket.destroy();
    expect(await post(url())).toMatchObject({ status: null, error: 'the receiver reset the connection' });
    behave = (req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('partial', () => req.socket.destroy());
    };
    const midReply = await post(url());
    expect(midReply.status).toBe(200);
    expect(midReply.error).toMatch(/reset|closed/);
  });

  it('refuses private destinations after DNS resolution, and connects only to the address it checked', async () => {
    const resolved: string[] = [];
    const toLoopback: HostResolver = async (hostname) => {
      resolved.push(hostname);
      return [{ address: '127.0.0.1', family: 4 }];
    };
    const target = `http://hooks.rebind.example:${port}/hook`;
    const refused = await post(target, { allowPrivate: false, resolve: toLoopback });
    expect(refused).toMatchObject({ status: null, connected: false, error: 'refused: hooks.rebind.example resolves to 127.0.0.1, a loopback address' });
    expect(hits).toHaveLength(0);
    // One public and one private address: refused too (the connection could pick either).
    const mixed = await post(target, { allowPrivate: false, resolve: async () => [{ address: '93.184.215.14', family: 4 }, { address: '10.0.0.1', family: 4 }] });
    expect(mixed.error).toBe('refused: hooks.rebind.example resolves to 10.0.0.1, a private address');
    // Allowed: the name exists only in this resolver, so reaching the receiver proves the socket used its answer.
    expect(await post(target, { allowPrivate: true, resolve: toLoopback })).toMatchObject({ status: 204, error: null, connected: true });
    expect(hits).toHaveLength(1);
    expect(resolved).toEqual(['hooks.rebind.example', 'hooks.rebind.example']);
  });

  it('refuses literal private addresses and credentials at delivery time, without connecting', async () => {
    expect(await post(url(), { allowPrivate: false })).toMatchObject({ connected: false, error: expect.stringMatching(/^refused: 127\.0\.0\.1 is a loopback address/) });
    expect(await post(`http://user:secret@127.0.0.1:${port}/hook`)).toMatchObject({ connected: false, error: expect.stringMatching(/^refused: .*credentials/) });
    expect(hits).toHaveLength(0);
  });
});

// ---- through the deliverer and the API, on both databases ----

let db: TestDatabase;
let realm: Awaited<ReturnType<typeof createUsageRealm>>;
const deliverers: QuotaDeliverer[] = [];
const hanging: ServerResponse[] = [];

function deliverer(options: QuotaDelivererOptions = {}) {
  const d = new QuotaDeliverer(db.prisma, { onError: (error) => console.error(error), ...options });
  deliverers.push(d);
  return d;
}

async function ruleTo(webhookUrl: string) {
  return db.prisma.quotaRule.create({
    data: { realmId: realm.realm.id, featureId: realm.features.tx.id, period: 'DAY', thresholdQuantity: '1', webhookUrl, webhookSecret: newWebhookSecret() },
  });
}
let day = 0;
async function alertOf(ruleId: string) {
  return createQueuedAlert(db.prisma, realm.realm.id, ruleId, new Date(Date.UTC(2026, 6, 1 + day++)), new Date(Date.now() - 1000), 'over');
}
const row = (id: string) => db.prisma.alert.findUniqueOrThrow({ where: { id } });

describe('webhook delivery safety', () => {
  beforeAll(async () => {
    db = await createTestDatabase();
    realm = await createUsageRealm(db.prisma, 'UTC');
  });
  beforeEach(() => configureQuotaDelivery({ retryDelaysMs: [10, 10], timeoutMs: 2000 }));
  afterEach(async () => {
    await Promise.all(deliverers.splice(0).map((d) => d.stop(200)));
    for (const res of hanging.splice(0)) res.destroy();
    configureQuotaDelivery();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it('createQuotaRule refuses loopback, private and odd webhook URLs with INVALID_URL saying what is allowed', async () => {
    const app = createApp({ prisma: db.prisma });
    const create = async (webhookUrl: string) => {
      const { body } = await graphql(app, `mutation ($input: CreateQuotaRuleInput!) { createQuotaRule(input: $input) { quotaRule { id } userErrors { field code message } } }`, {
        key: realm.admin.key,
        variables: { input: { featureId: encodeId('Feature', realm.features.tx.id), period: 'DAY', quantity: '1', webhookUrl } },
      });
      expect(body.errors).toBeUndefined();
      return body.data.createQuotaRule;
    };
    for (const webhookUrl of [...LOOPBACK_SPELLINGS, 'http://10.1.2.3/', 'http://169.254.169.254/', 'http://[fe80::1]/', 'http://user:pass@hooks.example.com/', 'http:/hooks.example.com', ' https://hooks.example.com/']) {
      const payload = await create(webhookUrl);
      expect({ webhookUrl, payload }).toMatchObject({ webhookUrl, payload: { quotaRule: null, userErrors: [{ field: ['input', 'webhookUrl'], code: 'INVALID_URL' }] } });
      expect(payload.userErrors[0].message).toContain('public host');
    }
    expect((await create('https://hooks.example.com/quota')).userErrors).toEqual([]);
    configureQuotaDelivery({ allowPrivateDestinations: true });
    expect((await create(url())).userErrors).toEqual([]);
  });

  it('refuses to deliver to a private address stored before URLs were checked (the receiver is never reached)', async () => {
    const rule = await ruleTo(url());
    const alert = await alertOf(rule.id);
    await deliverer({ retryDelaysMs: [] }).runOnce();
    expect(hits).toHaveLength(0);
    const after = await row(alert.id);
    expect(after).toMatchObject({ deliveredAt: null, deliveryAttempts: 1, nextDeliveryAt: null });
    expect(after.lastDeliveryError).toMatch(/^refused: 127\.0\.0\.1 is a loopback address/);
  });

  it('refuses a host name resolving to a private address at delivery time', async () => {
    const rule = await ruleTo(`http://hooks.rebind.example:${port}/hook`);
    const alert = await alertOf(rule.id);
    await deliverer({ retryDelaysMs: [], resolve: async () => [{ address: '127.0.0.1', family: 4 }] }).runOnce();
    expect(hits).toHaveLength(0);
    expect((await row(alert.id)).lastDeliveryError).toBe('refused: hooks.rebind.example resolves to 127.0.0.1, a loopback address');
  });

  it('records a redirect as a failed attempt with its status, and does not follow it', async () => {
    configureQuotaDelivery({ retryDelaysMs: [], timeoutMs: 2000, allowPrivateDestinations: true });
    behave = (req, res) => (req.url === '/hook' ? res.writeHead(302, { location: url('/elsewhere') }).end() : res.writeHead(204).end());
    const alert = await alertOf((await ruleTo(url())).id);
    await deliverer().runOnce();
    expect(await row(alert.id)).toMatchObject({ deliveredAt: null, deliveryAttempts: 1, lastDeliveryError: 'HTTP 302: redirects are not followed', nextDeliveryAt: null });
    expect(hits.map((h) => h.path)).toEqual(['/hook']);
  });

  it('a huge reply ends its attempt as the status says, without reading it', async () => {
    configureQuotaDelivery({ retryDelaysMs: [], timeoutMs: 5000, allowPrivateDestinations: true });
    behave = (_req, res) => {
      res.writeHead(200);
      stream(res, Buffer.alloc(64 * 1024, 'x'), 50 * 1024 * 1024);
    };
    const alert = await alertOf((await ruleTo(url())).id);
    const before = isolateMemory();
    await deliverer().runOnce();
    expect(isolateMemory() - before).toBeLessThan(20 * 1024 * 1024);
    expect(await row(alert.id)).toMatchObject({ deliveryAttempts: 1, lastDeliveryError: null, nextDeliveryAt: null });
    expect((await row(alert.id)).deliveredAt).toBeInstanceOf(Date);
  });

  it('counts an attempt when it is claimed: an alert whose delivery kills its process is given up after its attempts', async () => {
    configureQuotaDelivery({ retryDelaysMs: [10, 10], timeoutMs: 60_000, leaseMs: 30_000, allowPrivateDestinations: true });
    behave = (_req, res) => void hanging.push(res); // the attempt never ends: as if the process hung or died
    const alert = await alertOf((await ruleTo(url())).id);
    let clock = new Date();
    // Three "processes", each claiming the alert and dying mid-attempt (their lease expires unrecorded).
    for (let life = 1; life <= 3; life++) {
      const dying = deliverer({ now: () => clock });
      void dying.runOnce();
      await vi.waitFor(() => expect(hits).toHaveLength(life), { timeout: 5000, interval: 5 });
      expect(await row(alert.id)).toMatchObject({ deliveryAttempts: life, deliveredAt: null });
      clock = new Date(clock.getTime() + 60_000 + 5_001); // past the lease: timeoutMs + 5 s
    }
    // The next process finds the lease expired and every attempt used: it gives up instead of sending.
    expect(await deliverer({ now: () => clock }).runOnce()).toBe(0);
    expect(hits).toHaveLength(3);
    const given = await row(alert.id);
    expect(given).toMatchObject({ deliveredAt: null, deliveryAttempts: 3, nextDeliveryAt: null });
    expect(given.lastDeliveryError).toBe('given up: no outcome was recorded for attempt 3 (its gateway stopped during it)');
    // The hung attempts end later: their lease is not theirs any more, they change nothing.
    await Promise.all(deliverers.splice(0).map((d) => d.stop(50)));
    expect(await row(alert.id)).toEqual(given);
  });
});

import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createRedisRateLimiter, type RateLimiter } from '../../src/rate-limit/limiter.js';
import { createApp, type App } from '../../src/yoga.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { seedWorld, type World } from './fixture.js';
import { request } from './gateway.js';
import { assertNoProblems, serverErrors } from './rules.js';

// Redis stopped under a gateway that shares its rate limits there: requests keep their answers
// (limits counted per process meanwhile), never a 500, and the gateway uses Redis again once back.
// The Redis is this test's own (another port, nothing saved): the shared one is never stopped.

const hasRedis = (() => {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.runIf(hasRedis)('Redis stopped', () => {
  let db: TestDatabase;
  let world: World;
  let app: App;
  let limiter: RateLimiter;
  let port: number;
  let ready = 0;
  let failures = 0;
  const startRedis = () => execFileSync('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no', '--daemonize', 'yes'], { stdio: 'ignore' });
  const stopRedis = () => execFileSync('redis-cli', ['-p', String(port), 'shutdown', 'nosave'], { stdio: 'ignore' });
  const redisAnswers = () => {
    try {
      return execFileSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).includes('PONG');
    } catch {
      return false;
    }
  };

  beforeAll(async () => {
    port = await freePort();
    startRedis();
    await waitFor(redisAnswers, 'redis-server to start');
    db = await createTestDatabase();
    world = await seedWorld(db.prisma);
    limiter = createRedisRateLimiter({ redis: `redis://127.0.0.1:${port}`, keyPrefix: `adv-${port}`, onRedisReady: () => ready++, onRedisError: () => failures++ });
    app = createApp({ prisma: db.prisma, rateLimiter: limiter });
    await waitFor(() => ready > 0, 'the limiter to connect');
  });

  afterAll(async () => {
    await limiter?.close().catch(() => {});
    if (port && redisAnswers()) stopRedis();
    await db?.destroy();
  });

  const ask = (key: string | null) => request(app, '/graphql', { method: 'POST', key, contentType: 'application/json', body: JSON.stringify({ query: '{ viewer { scopes } }' }) });
  const phases = ['Redis up', 'Redis stopped', 'Redis back'] as const;
  for (const phase of phases) {
    it(`${phase}: a valid key gets 200 and a missing key 401, never a 500`, async () => {
      if (phase === 'Redis stopped') {
        stopRedis();
        await waitFor(() => failures > 0, 'the limiter to notice');
      }
      if (phase === 'Redis back') {
        const before = ready;
        startRedis();
        await waitFor(() => ready > before, 'the limiter to reconnect');
      }
      const admin = world.callers[0]!.key!;
      const answers = await Promise.all([ask(admin), ask(admin), ask(null)]);
      const problems = answers.flatMap(serverErrors);
      if (answers[0]!.status !== 200 || answers[1]!.status !== 200) problems.push(`valid key: HTTP ${answers[0]!.status}/${answers[1]!.status} ${answers[0]!.text.slice(0, 200)}`);
      if (answers[2]!.status !== 401) problems.push(`no key: HTTP ${answers[2]!.status}`);
      assertNoProblems(problems, answers.map((a) => a.text.slice(0, 200)).join('\n'));
    });
  }
});

import { Redis, type RedisOptions } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

/** The outcome of one `consume`: the key's window after this request's cost was counted. */
export interface RateLimitState {
  /** Points allowed per window. */
  limit: number;
  /** Points left in the window (0 when over the limit). */
  remaining: number;
  /** When the window ends and the counter starts from 0 again. */
  resetAt: Date;
  /** What this request cost. */
  cost: number;
  /** False: over the limit, answer RATE_LIMITED. */
  allowed: boolean;
  /** Whole seconds until the window resets (at least 1): `RateLimit-Reset` and `Retry-After`. */
  resetSeconds: number;
}

export interface RateLimiterOptions {
  /** The length of a fixed window in seconds (default 60: limits are per minute). */
  windowSeconds?: number;
  /** Failed authentications per client address and window before answering 429 (default 20). */
  authFailureLimit?: number;
  /** Prefix of every counter's key (Redis: separates deployments and test runs). */
  keyPrefix?: string;
}

export interface RedisRateLimiterOptions extends RateLimiterOptions {
  /** A client (the caller closes it) or a `redis://` URL (the limiter opens and closes its client). */
  redis: Redis | string;
  /** Told about Redis errors (the limiter then counts in memory, per process, until Redis is back). */
  onRedisError?: (error: Error) => void;
  /** Told when the connection (of a client opened from a URL) is ready, at the start and after an outage. */
  onRedisReady?: () => void;
}

export const DEFAULT_WINDOW_SECONDS = 60;
export const DEFAULT_AUTH_FAILURE_LIMIT = 20;
const DEFAULT_KEY_PREFIX = 'ugw:rl';

/**
 * Fixed-window counters per key (rate-limiter-flexible: in memory, or in Redis to share them
 * between processes). The limit is the caller's: one counter per key whatever the limit, so a
 * key that changes tier keeps its count for the rest of the window.
 */
export class RateLimiter {
  readonly windowSeconds: number;
  readonly authFailureLimit: number;
  readonly kind: 'memory' | 'redis';
  private readonly closeStore: () => Promise<void>;

  constructor(
    private readonly store: RateLimiterAbstract,
    options: RateLimiterOptions & { kind: 'memory' | 'redis'; close?: () => Promise<void> },
  ) {
    this.windowSeconds = options.windowSeconds ?? DEFAULT_WINDOW_SECONDS;
    this.authFailureLimit = options.authFailureLimit ?? DEFAULT_AUTH_FAILURE_LIMIT;
    this.kind = options.kind;
    this.closeStore = options.close ?? (async () => {});
  }

  /** Counts `cost` points (a whole number ≥ 0) against `key`'s window; `allowed` says whether it fits `limit`. */
  async consume(key: string, limit: number, cost = 1): Promise<RateLimitState> {
    if (!Number.isSafeInteger(cost) || cost < 0) throw new RangeError(`rate-limit cost must be a whole number ≥ 0 (got ${cost})`);
    return this.stateOf(await this.settle(this.store.consume(key, cost)), limit, cost);
  }

  /** The window of `key` without counting anything (a key not seen in this window: all of `limit` left). */
  async peek(key: string, limit: number): Promise<RateLimitState> {
    const res = await this.settle(this.store.get(key));
    return this.stateOf(res ?? new RateLimiterRes(limit, this.windowSeconds * 1000, 0, false), limit, 0);
  }

  close(): Promise<void> {
    return this.closeStore();
  }

  /** The store's points are unlimited: it never rejects for the count, only for a store error. */
  private async settle<T extends RateLimiterRes | null>(promise: Promise<T>): Promise<T> {
    try {
      return await promise;
    } catch (error) {
      if (error instanceof RateLimiterRes) return error as T;
      throw error;
    }
  }

  private stateOf(res: RateLimiterRes, limit: number, cost: number): RateLimitState {
    const consumed = res.consumedPoints;
    // A key seen for the first time in a window whose TTL is not known yet reads as a whole window.
    const msLeft = res.msBeforeNext >= 0 ? res.msBeforeNext : this.windowSeconds * 1000;
    return {
      limit,
      remaining: Math.max(0, limit - consumed),
      resetAt: new Date(Date.now() + msLeft),
      cost,
      allowed: consumed <= limit,
      resetSeconds: Math.max(1, Math.ceil(msLeft / 1000)),
    };
  }
}

/** The limit is the caller's (`consume`'s argument): the store itself never says no. */
const UNLIMITED = Number.MAX_SAFE_INTEGER;

/** Counters in this process: each gateway process has its own limits. */
export function createMemoryRateLimiter(options: RateLimiterOptions = {}): RateLimiter {
  const duration = options.windowSeconds ?? DEFAULT_WINDOW_SECONDS;
  const store = new RateLimiterMemory({ points: UNLIMITED, duration, keyPrefix: options.keyPrefix ?? DEFAULT_KEY_PREFIX });
  return new RateLimiter(store, { ...options, kind: 'memory' });
}

/** Options for a Redis client that suit rate limiting: fail fast, never queue a request behind a reconnect. */
export const RATE_LIMIT_REDIS_OPTIONS: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: 1000,
  connectTimeout: 5000,
};

/**
 * Counters in Redis: every process with the same Redis and `keyPrefix` shares one limit. While
 * Redis cannot be reached, each process counts in memory (rate-limiter-flexible's insurance limiter).
 */
export function createRedisRateLimiter(options: RedisRateLimiterOptions): RateLimiter {
  const duration = options.windowSeconds ?? DEFAULT_WINDOW_SECONDS;
  const keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  const ownsClient = typeof options.redis === 'string';
  const client = typeof options.redis === 'string' ? new Redis(options.redis, RATE_LIMIT_REDIS_OPTIONS) : options.redis;
  if (ownsClient) {
    // An 'error' listener is needed anyway: without one, ioredis prints every failed reconnect.
    client.on('error', (error: Error) => options.onRedisError?.(error));
    client.on('ready', () => options.onRedisReady?.());
  }
  const store = new RateLimiterRedis({
    storeClient: client,
    points: UNLIMITED,
    duration,
    keyPrefix,
    insuranceLimiter: new RateLimiterMemory({ points: UNLIMITED, duration, keyPrefix }),
  });
  return new RateLimiter(store, {
    ...options,
    kind: 'redis',
    close: async () => {
      if (!ownsClient) return;
      await client.quit().catch(() => client.disconnect());
    },
  });
}

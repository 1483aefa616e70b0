import pg from 'pg';
import type { DatabaseTarget } from '../db/adapters.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import { backgroundError } from '../observability.js';

/*
 * The live events behind `Subscription.usageChanged` and `Subscription.alertRaised`, delivered to
 * every gateway process of a database.
 *
 * PostgreSQL: each process's hub holds one connection of its own that LISTENs on LIVE_CHANNEL;
 * a process that commits usage or raises an alert NOTIFYs that channel, so every process (itself
 * included) hears it once. Notifications carry ids only (PostgreSQL caps a payload at 8000 bytes):
 * each subscription reads what its key may see of them from the database.
 *
 * PGlite: one process owns the database, so the hub hands events to its subscribers in process.
 * (PGlite implements LISTEN/NOTIFY on its one connection, but no second process can open the same
 * directory, so there is nobody else to tell; the in-process hub avoids a statement per batch on
 * that single connection.)
 *
 * Events are best effort, like any push: one published by a process that dies between its commit
 * and its NOTIFY is lost. `usageRevisions(since:)` is the durable feed to re-sync from.
 */

export const LIVE_CHANNEL = 'ugw_live';
/** Ids per NOTIFY: 150 UUIDs and the envelope stay well under PostgreSQL's 8000-byte payload limit. */
export const IDS_PER_NOTIFICATION = 150;

export type LiveEvent =
  /** Hourly buckets (UsageHourly ids) that a committed batch wrote to. */
  | { type: 'usage'; realmId: string; bucketIds: string[] }
  | { type: 'alert'; realmId: string; alertId: string };

type Listener = (event: LiveEvent) => void;

/** Hubs per database client of this process: publishers find theirs by the client they wrote with. */
const hubs = new Map<PrismaClient, Set<LiveHub>>();

export function hubsOf(prisma: PrismaClient): LiveHub[] {
  return [...(hubs.get(prisma) ?? [])];
}

export interface LiveHubOptions {
  /** How often the keys of open subscriptions are checked for revocation and suspension (default 5 s). */
  keyCheckIntervalMs?: number;
}

export const DEFAULT_KEY_CHECK_INTERVAL_MS = 5_000;

export class LiveHub {
  private readonly listeners = new Set<Listener>();
  private readonly onCloseCallbacks = new Set<() => void>();
  private closed = false;
  readonly keyCheckIntervalMs: number;

  constructor(
    readonly prisma: PrismaClient,
    /** null: events stay in this process (PGlite, or an app without a LISTEN connection). */
    private client: pg.Client | null,
    options: LiveHubOptions = {},
  ) {
    this.keyCheckIntervalMs = options.keyCheckIntervalMs ?? DEFAULT_KEY_CHECK_INTERVAL_MS;
    let set = hubs.get(prisma);
    if (!set) hubs.set(prisma, (set = new Set()));
    set.add(this);
  }

  /** 'postgres': events reach every process LISTENing on the database; 'memory': this process only. */
  get transport(): 'postgres' | 'memory' {
    return this.client ? 'postgres' : 'memory';
  }

  /** Calls `listener` with every event of the database from now on; returns the unsubscribe. */
  listen(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called when the hub closes (the gateway stops): open streams end. Returns the unregister. */
  onClose(callback: () => void): () => void {
    this.onCloseCallbacks.add(callback);
    return () => this.onCloseCallbacks.delete(callback);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  /** Hands an event to this process's listeners. */
  deliver(event: LiveEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        backgroundError('a live subscriber failed', error);
      }
    }
  }

  /** Sends an event to every process of the database (PostgreSQL), or to this one (in memory). */
  async publish(event: LiveEvent): Promise<void> {
    if (this.closed) return;
    if (!this.client) {
      this.deliver(event);
      return;
    }
    const payloads = event.type === 'usage' ? chunk(event.bucketIds, IDS_PER_NOTIFICATION).map((ids) => encode({ ...event, bucketIds: ids })) : [encode(event)];
    await this.client.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [LIVE_CHANNEL, payloads]);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** After a lost LISTEN connection: the new one (startLiveHub). */
  replaceConnection(client: pg.Client): void {
    this.client = client;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    hubs.get(this.prisma)?.delete(this);
    if (hubs.get(this.prisma)?.size === 0) hubs.delete(this.prisma);
    for (const callback of this.onCloseCallbacks) callback();
    this.onCloseCallbacks.clear();
    this.listeners.clear();
    await this.client?.end().catch(() => {});
  }
}

/** Short field names: the payload limit is in bytes. */
function encode(event: LiveEvent): string {
  return JSON.stringify(event.type === 'usage' ? { t: 'u', r: event.realmId, b: event.bucketIds } : { t: 'a', r: event.realmId, a: event.alertId });
}

export function decode(payload: string): LiveEvent | null {
  try {
    const raw = JSON.parse(payload) as { t?: string; r?: string; b?: string[]; a?: string };
    if (raw.t === 'u' && typeof raw.r === 'string' && Array.isArray(raw.b)) return { type: 'usage', realmId: raw.r, bucketIds: raw.b.map(String) };
    if (raw.t === 'a' && typeof raw.r === 'string' && typeof raw.a === 'string') return { type: 'alert', realmId: raw.r, alertId: raw.a };
  } catch {
    // Not ours: ignored.
  }
  return null;
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

/** An in-process hub (PGlite, tests, or an app given no hub). */
export function memoryLiveHub(prisma: PrismaClient, options?: LiveHubOptions): LiveHub {
  return new LiveHub(prisma, null, options);
}

/**
 * The hub of a gateway process: on PostgreSQL a dedicated connection LISTENs (reconnecting after a
 * lost connection; events sent meanwhile are missed), on PGlite events stay in process.
 */
export async function startLiveHub(prisma: PrismaClient, target: DatabaseTarget, options: LiveHubOptions & { onError?: (error: unknown) => void } = {}): Promise<LiveHub> {
  if (target.kind === 'pglite') return memoryLiveHub(prisma, options);
  const onError = options.onError ?? ((error) => backgroundError('the live LISTEN connection failed', error));
  const connect = async (): Promise<pg.Client> => {
    const url = new URL(target.url);
    url.searchParams.delete('schema');
    const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 5_000 });
    await client.connect();
    await client.query(`LISTEN ${LIVE_CHANNEL}`);
    return client;
  };
  const client = await connect();
  const hub = new LiveHub(prisma, client, options);
  const attach = (c: pg.Client) => {
    c.on('notification', (message) => {
      if (message.channel !== LIVE_CHANNEL || !message.payload) return;
      const event = decode(message.payload);
      if (event) hub.deliver(event);
    });
    c.on('error', (error) => {
      onError(error);
      void reconnect();
    });
  };
  let reconnecting = false;
  const reconnect = async () => {
    if (reconnecting) return;
    reconnecting = true;
    for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
      if (hub.isClosed) return;
      try {
        const fresh = await connect();
        if (hub.isClosed) {
          await fresh.end().catch(() => {});
          return;
        }
        hub.replaceConnection(fresh);
        attach(fresh);
        reconnecting = false;
        return;
      } catch (error) {
        onError(error);
      }
    }
  };
  attach(client);
  return hub;
}

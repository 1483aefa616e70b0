import { promises as dns, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { checkWebhookUrl, describeRange, nonPublicRange } from './webhook-url.js';

/**
 * One webhook POST whatever the receiver does. The URL is checked again (rules stored before a
 * check existed, or under WEBHOOK_ALLOW_PRIVATE), the host is resolved once and every address is
 * checked, and the socket connects only to those checked addresses (the `lookup` of the request),
 * so DNS rebinding cannot swap them. Redirects are not followed. The reply is never decompressed
 * (`Accept-Encoding: identity`; node:http does not inflate) and at most MAX_REPLY_BYTES of its body
 * are read before the connection is closed. One timer bounds the whole attempt (resolution,
 * connection, headers and body), so a receiver that trickles bytes cannot stretch it.
 */

export const MAX_REPLY_BYTES = 64 * 1024;

/** All addresses of a host name (the system resolver by default; tests map names of their own). */
export type HostResolver = (hostname: string) => Promise<LookupAddress[]>;

export const systemResolver: HostResolver = (hostname) => dns.lookup(hostname, { all: true, verbatim: true });

export interface WebhookPostOptions {
  /** The whole attempt, from resolution to the last byte read. */
  timeoutMs: number;
  /** WEBHOOK_ALLOW_PRIVATE. */
  allowPrivate: boolean;
  /** Ends the attempt at once (the gateway is stopping). */
  signal?: AbortSignal;
  resolve?: HostResolver;
  maxReplyBytes?: number;
}

export interface WebhookOutcome {
  /** The receiver's HTTP status, when one arrived. */
  status: number | null;
  /** null: delivered (a 2xx whose reply ended, or reached the read bound, in time); otherwise why not, for `lastDeliveryError`. */
  error: string | null;
  /**
   * Body bytes of the reply that reached this process. Reading stops once `maxReplyBytes` are in,
   * so this is at most `maxReplyBytes` plus the one socket read that crossed it.
   */
  replyBytesReceived: number;
  /** False when the attempt was refused before any connection was made. */
  connected: boolean;
}

class DestinationRefused extends Error {
  override name = 'DestinationRefused';
}

function statusError(status: number): string | null {
  if (status >= 200 && status < 300) return null;
  if (status >= 300 && status < 400) return `HTTP ${status}: redirects are not followed`;
  return `HTTP ${status}`;
}

function describeError(error: unknown): string {
  if (error instanceof DestinationRefused) return error.message;
  const { code, message } = error as NodeJS.ErrnoException;
  if (code === 'ECONNRESET') return 'the receiver reset the connection';
  if (code === 'ECONNREFUSED') return 'the receiver refused the connection';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `the host name does not resolve (${code})`;
  if (code === 'HPE_HEADER_OVERFLOW') return 'the reply headers are too large';
  if (code?.startsWith('HPE_')) return `the reply is not valid HTTP (${code})`;
  return String(message ?? error);
}

/** A `lookup` for the request's socket: resolves once, refuses non-public addresses, hands back only what it checked. */
function checkedLookup(resolve: HostResolver, allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname)
      .then((all) => {
        if (!allowPrivate) {
          for (const { address } of all) {
            const range = nonPublicRange(address);
            if (range) throw new DestinationRefused(`refused: ${hostname} resolves to ${address}, ${describeRange(range)} address`);
          }
        }
        const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
        const addresses = family ? all.filter((a) => a.family === family) : all;
        if (!addresses.length) throw Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' });
        if (options.all) callback(null, addresses);
        else callback(null, addresses[0]!.address, addresses[0]!.family);
      })
      .catch((error: NodeJS.ErrnoException) => callback(error, '', 0));
  };
}

/** POSTs `body` to `target` with `headers`; never throws, never takes longer than `timeoutMs`. */
export function postWebhook(target: string, body: string, headers: Record<string, string>, options: WebhookPostOptions): Promise<WebhookOutcome> {
  const checked = checkWebhookUrl(target, { allowPrivate: options.allowPrivate });
  if (!checked.ok) return Promise.resolve({ status: null, error: `refused: ${checked.reason}`, replyBytesReceived: 0, connected: false });
  const maxReplyBytes = options.maxReplyBytes ?? MAX_REPLY_BYTES;
  const url = checked.url;
  const client = url.protocol === 'https:' ? https : http;

  return new Promise((resolve) => {
    let status: number | null = null;
    let received = 0;
    let connected = false;
    let settled = false;
    const finish = (error: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      request.destroy();
      resolve({ status, error, replyBytesReceived: received, connected });
    };
    const onAbort = () => finish(`aborted: ${String((options.signal?.reason as Error)?.message ?? options.signal?.reason)}`);
    const timer = setTimeout(() => finish(`timed out after ${options.timeoutMs} ms`), options.timeoutMs);

    const request = client.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)), 'accept-encoding': 'identity', connection: 'close' },
        agent: false,
        lookup: checkedLookup(options.resolve ?? systemResolver, options.allowPrivate),
      },
      (response) => {
        status = response.statusCode ?? null;
        const outcome = () => (status === null ? 'the reply has no status' : statusError(status));
        response.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received >= maxReplyBytes) finish(outcome());
        });
        response.on('end', () => finish(outcome()));
        response.on('error', (error) => finish(describeError(error)));
        response.on('close', () => {
          if (!response.complete) finish('the receiver closed the connection before its reply ended');
        });
      },
    );
    request.on('socket', (socket) => socket.once('connect', () => (connected = true)));
    request.on('error', (error) => finish(describeError(error)));
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    request.end(body);
  });
}

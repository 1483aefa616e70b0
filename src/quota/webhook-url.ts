import ipaddr from 'ipaddr.js';
import { isIP } from 'node:net';

/**
 * Which webhook URLs and destination addresses the gateway POSTs to. A rule's URL is checked when
 * the rule is created and again before every attempt; the addresses its host resolves to are
 * checked at connection time (./webhook-post.ts), so a name cannot point at the gateway's own
 * network. WHATWG URL parsing normalizes every spelling of an IPv4 address (`127.1`,
 * `2130706433`, `0x7f.1`) and of an IPv6 one (`[::ffff:127.0.0.1]`) before the address is classified.
 */

export const MAX_WEBHOOK_URL_LENGTH = 2000;

export const WEBHOOK_URL_RULES =
  'A webhook URL is an absolute http:// or https:// URL to a public host, written without spaces or credentials ' +
  '(no user:password@), and not to a private, loopback, link-local, shared (CGNAT), multicast, reserved or unspecified ' +
  'address (a gateway started with WEBHOOK_ALLOW_PRIVATE=true accepts private addresses).';

export interface WebhookUrlPolicy {
  /** WEBHOOK_ALLOW_PRIVATE: private, loopback and other non-public destinations are accepted. */
  allowPrivate: boolean;
}

export type WebhookUrlCheck = { ok: true; url: URL } | { ok: false; reason: string };

/**
 * The kind of a non-public address (`loopback`, `private`, `linkLocal`, …), or null for a public
 * unicast address. Only ipaddr.js's `unicast` range is public: documentation, benchmarking,
 * 6to4/Teredo/NAT64 (which can embed any IPv4 address) and every other special range are not.
 */
export function nonPublicRange(address: string): string | null {
  if (!ipaddr.isValid(address)) return 'invalid';
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  const range = parsed.range();
  return range === 'unicast' ? null : range;
}

const SPECIAL_NAMES = /(^|\.)(localhost|localdomain|local|internal|home\.arpa)\.?$/i;

/** `http:/host`, `http:\\host`, spaces, tabs, control characters: forms browsers repair but a URL field must not hold. */
const WELL_FORMED = /^https?:\/\/[^\s\\/?#@]/i;
const UNSAFE_CHARACTER = /[\s\\\u0000-\u001f\u007f]/;

/** Checks a webhook URL as written (pure): its form, its scheme, its credentials and, for an IP literal, its address. */
export function checkWebhookUrl(raw: string, policy: WebhookUrlPolicy): WebhookUrlCheck {
  const refuse = (why: string): WebhookUrlCheck => ({ ok: false, reason: `${why} ${WEBHOOK_URL_RULES}` });
  if (raw.length > MAX_WEBHOOK_URL_LENGTH) return refuse(`The URL is longer than ${MAX_WEBHOOK_URL_LENGTH} characters.`);
  if (UNSAFE_CHARACTER.test(raw)) return refuse('The URL contains spaces, backslashes or control characters.');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return refuse('This is not an absolute URL.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return refuse(`The scheme ${url.protocol} is not allowed.`);
  const authority = raw.replace(/^[a-z]+:\/*/i, '').split(/[/?#]/)[0]!;
  if (url.username || url.password || authority.includes('@')) return refuse('The URL carries credentials (user:password@).');
  if (!WELL_FORMED.test(raw)) return refuse('The URL must start with http:// or https:// followed by its host.');
  if (url.port === '0') return refuse('Port 0 is not a port.');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!host) return refuse('The URL has no host.');
  if (policy.allowPrivate) return { ok: true, url };
  if (isIP(host)) {
    const range = nonPublicRange(host);
    if (range) return refuse(`${url.hostname} is ${describeRange(range)} address.`);
  } else if (SPECIAL_NAMES.test(host)) {
    return refuse(`${url.hostname} names a local host.`);
  }
  return { ok: true, url };
}

/** `a loopback`, `an unspecified`, … (for messages). */
export function describeRange(range: string): string {
  const names: Record<string, string> = {
    loopback: 'a loopback',
    private: 'a private',
    uniqueLocal: 'a private (unique local)',
    linkLocal: 'a link-local',
    carrierGradeNat: 'a shared (CGNAT)',
    multicast: 'a multicast',
    broadcast: 'a broadcast',
    unspecified: 'an unspecified',
    invalid: 'an invalid',
  };
  return names[range] ?? `a non-public (${range})`;
}

/**
 * Where webhook deliveries may go and how they are signed: https only (http with
 * webhooks.allowHttp), no credentials in the URL, public addresses only unless
 * webhooks.allowPrivateNetworks — checked when the admin API creates a subscription
 * (src/graphql/admin.ts) and again by the dispatcher for every delivery (src/feeds/webhooks.ts),
 * whose connections also refuse hosts that later resolve elsewhere. These are the rules for sending
 * personal data out of the gateway, so they sit in the privacy layer, below both of their users.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { lookup as lookupCb } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { z } from 'zod';
import { RostergateError } from '../errors.ts';

/** The webhooks config keys these rules read (part of webhooks: in the config, src/feeds/webhooks.ts). */
export const endpointRulesShape = {
    /** Accept http:// endpoints (tests, local development). */
    allowHttp: z.boolean().default(false),
    /** Accept endpoints on loopback, private, link-local and other non-public addresses. */
    allowPrivateNetworks: z.boolean().default(false),
};
export type EndpointRules = z.infer<z.ZodObject<typeof endpointRulesShape>>;

/** Standard Webhooks signature header value for a message. */
export function sign(secret: string, msgId: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${msgId}.${timestamp}.${body}`).digest('base64')}`;
}

export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded, a trailing dotted IPv4 converted), or undefined. */
function ipv6Groups(ip: string): number[] | undefined {
  let v = ip.toLowerCase().replace(/%.*$/, '');
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(v);
  if (dotted) {
    if (isIP(dotted[2]!) !== 4) return undefined;
    const [a, b, c, d] = dotted[2]!.split('.').map(Number) as [number, number, number, number];
    v = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = v.split('::');
  if (halves.length > 2) return undefined;
  const part = (s: string | undefined) => (s ? s.split(':').map((h) => parseInt(h, 16)) : []);
  const head = part(halves[0]);
  const tail = part(halves[1]);
  const groups = halves.length === 2 ? [...head, ...Array<number>(8 - head.length - tail.length).fill(0), ...tail] : head;
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

const ipv4Of = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

/**
 * Loopback, private (RFC 1918, ULA), link-local, site-local, CGNAT, benchmarking, unspecified,
 * reserved and multicast addresses — and IPv6 forms that carry an IPv4 address (IPv4-mapped
 * `::ffff:7f00:1`, IPv4-compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`), judged by the IPv4
 * address inside: a URL parser writes `[::ffff:127.0.0.1]` as `[::ffff:7f00:1]`, which reaches
 * 127.0.0.1 all the same. Anything unreadable counts as non-public.
 */
export function isNonPublicAddress(ip: string): boolean {
  if (isIP(ip) === 4) {
    const [a, b, c] = ip.split('.').map(Number) as [number, number, number];
    return a === 10 || a === 127 || a === 0 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) ||
      (a === 100 && b >= 64 && b <= 127) || (a === 192 && b === 0 && c === 0) || (a === 198 && (b === 18 || b === 19)) || a >= 224;
  }
  const g = ipv6Groups(ip);
  if (!g) return true;
  const zeros = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeros(5) && g[5] === 0xffff) return isNonPublicAddress(ipv4Of(g[6]!, g[7]!)); // IPv4-mapped
  if (zeros(6)) return true; // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d
  if (g[0] === 0x64 && g[1] === 0xff9b) return g.slice(2, 6).every((x) => x === 0) ? isNonPublicAddress(ipv4Of(g[6]!, g[7]!)) : true; // NAT64
  if (g[0] === 0x2002) return isNonPublicAddress(ipv4Of(g[1]!, g[2]!)); // 6to4
  if (g[0] === 0x100 && g.slice(1, 4).every((x) => x === 0)) return true; // discard-only 100::/64
  return (g[0]! & 0xfe00) === 0xfc00 || (g[0]! & 0xffc0) === 0xfe80 || (g[0]! & 0xffc0) === 0xfec0 || (g[0]! & 0xff00) === 0xff00;
}

/** Checks an endpoint URL against the policy; resolves the host so a name cannot hide a private address. */
export async function checkEndpoint(url: string, cfg: EndpointRules): Promise<URL> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RostergateError('CONFIG_INVALID', `not a URL: ${url}`);
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && cfg.allowHttp)) {
    throw new RostergateError('CONFIG_INVALID', `webhook URLs must use https (http is allowed only with webhooks.allowHttp)`);
  }
  if (u.username || u.password) throw new RostergateError('CONFIG_INVALID', 'webhook URLs must not carry credentials');
  if (!cfg.allowPrivateNetworks) {
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const addrs = isIP(host) ? [host] : (await lookup(host, { all: true }).catch(() => [])).map((a) => a.address);
    if (addrs.length === 0) throw new RostergateError('CONFIG_INVALID', `cannot resolve ${host}`);
    const bad = addrs.find(isNonPublicAddress);
    if (bad) throw new RostergateError('CONFIG_INVALID', `webhook host ${host} is on a loopback or private address (${bad}); allow it with webhooks.allowPrivateNetworks`);
  }
  return u;
}

/**
 * A DNS lookup for the delivery connections that refuses non-public addresses, so a host name
 * checked when the webhook was created cannot later resolve to an internal service (DNS rebinding).
 */
export function publicOnlyLookup(): LookupFunction {
  return (hostname, options, callback) => {
    lookupCb(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const bad = addresses.find((a) => isNonPublicAddress(a.address));
      if (bad || addresses.length === 0) {
        const e = Object.assign(new Error(`webhook host ${hostname} resolves to a non-public address${bad ? ` (${bad.address})` : ''}`), { code: 'ERR_WEBHOOK_NON_PUBLIC_ADDRESS' });
        return callback(e, '', 0);
      }
      if (options.all) (callback as unknown as (e: null, a: typeof addresses) => void)(null, addresses);
      else callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

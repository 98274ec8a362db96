import ipaddr from "ipaddr.js";

/**
 * Who a request comes from, for per-client budgets: the peer address, or, when the peer is one of TRUSTED_PROXIES,
 * the first address in `X-Forwarded-For` (from the right) that is not a trusted proxy. Everything left of that hop
 * was written by the client and is ignored, so a client cannot pick its own identity. IPv6 clients are keyed by
 * their /64 (one subscriber's prefix), or anyone with a prefix could spread a flood over 2^64 budgets.
 */
export type TrustedProxies = readonly [ipaddr.IPv4 | ipaddr.IPv6, number][];

/** TRUSTED_PROXIES entries (validated by libs/config): addresses or CIDR ranges (`10.0.0.0/8`, `127.0.0.1`, `fd00::/8`). */
export function parseTrustedProxies(entries: readonly string[]): TrustedProxies {
  return entries.map((entry) => {
    if (entry.includes("/")) return ipaddr.parseCIDR(entry);
    const address = normalize(ipaddr.parse(entry));
    return [address, address.kind() === "ipv4" ? 32 : 128];
  });
}

/** The budget key of a request's client. */
export function clientKey(peer: string | undefined, forwardedFor: string | string[] | undefined, trusted: TrustedProxies): string {
  const client = clientAddress(peer, forwardedFor, trusted);
  if (!client) return peer ?? "unknown";
  if (client.kind() === "ipv6") return `${(ipaddr.IPv6.networkAddressFromCIDR(`${client.toString()}/64`) as ipaddr.IPv6).toString()}/64`;
  return client.toString();
}

function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, trusted: TrustedProxies) {
  const from = peer && ipaddr.isValid(peer) ? normalize(ipaddr.parse(peer)) : undefined;
  if (!from || !isTrusted(from, trusted) || !forwardedFor) return from;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor).split(",").map((hop) => hop.trim());
  let nearest = from;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    // A hop our proxy wrote that is not an address: the proxy chain is misconfigured; the last good hop is the client.
    if (!ipaddr.isValid(hop)) return nearest;
    nearest = normalize(ipaddr.parse(hop));
    if (!isTrusted(nearest, trusted)) return nearest;
  }
  return nearest;
}

function isTrusted(address: ipaddr.IPv4 | ipaddr.IPv6, trusted: TrustedProxies): boolean {
  return trusted.some(([range, bits]) => range.kind() === address.kind() && address.match(range as never, bits));
}

/** `::ffff:1.2.3.4` (how a dual-stack socket reports IPv4 peers) is 1.2.3.4. */
function normalize(address: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  return address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress() ? (address as ipaddr.IPv6).toIPv4Address() : address;
}

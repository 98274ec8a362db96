import { describe, expect, it } from "vitest";
import { clientKey, parseTrustedProxies } from "./client-address.js";
import { budgetOf } from "./rate-limits.js";

describe("clientKey: who a request is from", () => {
  const proxies = parseTrustedProxies(["10.0.0.0/8", "127.0.0.1", "fd00::/8"]);

  it("is the peer address when the peer is not a trusted proxy, whatever X-Forwarded-For says", () => {
    expect(clientKey("198.51.100.7", "1.2.3.4", proxies)).toBe("198.51.100.7");
    expect(clientKey("198.51.100.7", undefined, [])).toBe("198.51.100.7");
    expect(clientKey("::ffff:198.51.100.7", "1.2.3.4", proxies)).toBe("198.51.100.7"); // dual-stack socket
  });

  it("behind trusted proxies, is the first untrusted hop from the right; what the client wrote further left is ignored", () => {
    expect(clientKey("127.0.0.1", "203.0.113.9", proxies)).toBe("203.0.113.9");
    expect(clientKey("10.1.2.3", "6.6.6.6, 203.0.113.9, 10.9.9.9", proxies)).toBe("203.0.113.9");
    expect(clientKey("10.1.2.3", ["6.6.6.6, 203.0.113.9", "10.9.9.9"], proxies)).toBe("203.0.113.9");
    expect(clientKey("10.1.2.3", "10.0.0.5, 10.0.0.6", proxies)).toBe("10.0.0.5"); // all trusted: the furthest
    expect(clientKey("10.1.2.3", "garbage, 203.0.113.9", proxies)).toBe("203.0.113.9");
    expect(clientKey("10.1.2.3", "203.0.113.9, garbage", proxies)).toBe("10.1.2.3"); // the proxy wrote nonsense
  });

  it("keys IPv6 clients by their /64", () => {
    expect(clientKey("2001:db8:1:2:aaaa::1", undefined, proxies)).toBe("2001:db8:1:2::/64");
    expect(clientKey("2001:db8:1:2:bbbb::9", undefined, proxies)).toBe("2001:db8:1:2::/64");
    expect(clientKey("fd00::1", "2001:db8:7:7::5", proxies)).toBe("2001:db8:7:7::/64");
  });
});

describe("budgetOf: which budget a request spends", () => {
  const request = (method: string, url: string, headers: Record<string, string> = {}) => ({ method, url, headers });

  it("unpaid without a payment credential, paid with one, none for /healthz", () => {
    expect(budgetOf(request("POST", "/x402/v1/chat/completions", { "content-length": "80" }))).toBe("unpaid");
    expect(budgetOf(request("GET", "/v1/models"))).toBe("unpaid");
    expect(budgetOf(request("POST", "/v1/chat/completions", { authorization: "Payment eyJ..." }))).toBe("paid");
    expect(budgetOf(request("POST", "/v1/chat/completions", { authorization: "Bearer sk-..." }))).toBe("unpaid");
    expect(budgetOf(request("GET", "/healthz"))).toBeUndefined();
    expect(budgetOf(request("GET", "/healthz?x=1"))).toBeUndefined();
  });

  it("session control: HEAD or a bodiless POST on the session endpoint; a POST with a body there is a request", () => {
    const path = "/x402/v1/chat/completions/stream";
    expect(budgetOf(request("HEAD", path))).toBe("session");
    expect(budgetOf(request("POST", path, { authorization: "Payment eyJ..." }))).toBe("session");
    expect(budgetOf(request("POST", path, { "content-length": "0" }))).toBe("session");
    expect(budgetOf(request("POST", path, { "content-length": "120", authorization: "Payment eyJ..." }))).toBe("paid");
    expect(budgetOf(request("POST", path, { "transfer-encoding": "chunked" }))).toBe("unpaid");
  });
});

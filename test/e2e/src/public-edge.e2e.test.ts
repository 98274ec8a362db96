import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { mppxClient, useTestSystem } from "./harness.js";

/**
 * What the gateway's public port shows and allows to anyone on the internet, with two gateway replicas on one Redis
 * (as behind a load balancer) and small rate limits. Every test speaks as its own client through X-Forwarded-For
 * (the test's connections come from 127.0.0.1, a trusted proxy here), so the tests' budgets never mix.
 */
const LIMITS = { RATE_LIMIT_UNPAID: "6", RATE_LIMIT_PAID: "3", RATE_LIMIT_SESSION: "2", RATE_LIMIT_WINDOW_SECONDS: "60" };
const BOUNDS = {
  MAX_MESSAGES: "5",
  MAX_PROMPT_CHARS: "2000",
  HTTP_HEADERS_TIMEOUT_MS: "1000",
  HTTP_REQUEST_TIMEOUT_MS: "2000",
  HTTP_KEEP_ALIVE_TIMEOUT_MS: "1000",
};
// A Redis namespace of its own: other files of the run send from 127.0.0.1 too, and their requests count in the
// namespace's budgets (their limits are only set out of reach). The run's teardown removes it with the run's.
const REDIS_NAMESPACE = `${process.env.REDIS_NAMESPACE}-edge`;
const e2e = useTestSystem({ ...LIMITS, ...BOUNDS, TRUSTED_PROXIES: "127.0.0.1", REDIS_NAMESPACE }, undefined, { replicas: { gateway: 2 } });

const chat = (gateway: string, client: string, headers: Record<string, string> = {}) =>
  fetch(`${gateway}/x402/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-forwarded-for": client, ...headers },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `hello from ${client}` }] }),
  });

describe("private by default", () => {
  it("the public port answers 404 for /metrics and /readyz, and /healthz tells nothing but ok", async () => {
    const gateway = e2e.system.gatewayUrl;
    for (const path of ["/metrics", "/readyz"]) {
      const response = await fetch(`${gateway}${path}`);
      expect(response.status, path).toBe(404);
      const text = await response.text();
      expect(text, path).not.toContain("wr_");
      expect(text, path).not.toContain("postgres");
    }
    const health = await fetch(`${gateway}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
  });

  it("the internal listener (METRICS_HOST:METRICS_PORT) serves readiness and the Prometheus metrics", async () => {
    const gateway = e2e.system.replicas.gateway[0]!;
    expect(new URL(gateway.internalUrl).port).not.toBe(new URL(gateway.url).port);
    expect(new URL(gateway.internalUrl).hostname).toBe("127.0.0.1");
    const ready = await fetch(`${gateway.internalUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { checks: Record<string, unknown> }).checks).toHaveProperty("paymentVerifier");
    const metrics = await fetch(`${gateway.internalUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("wr_http_requests_total");
  });
});

describe("rate limits across replicas", () => {
  it("one client's unpaid budget holds across both gateways: 6 answers, then 429 problem+json with Retry-After", async () => {
    const [first, second] = e2e.system.gatewayUrls as [string, string];
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await chat(i % 2 ? second : first, "203.0.113.1")).status);
    expect(statuses).toEqual([402, 402, 402, 402, 402, 402, 429, 429, 429, 429]);

    const refused = await chat(second, "203.0.113.1");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await refused.json()).toMatchObject({
      type: "https://worldrouter.dev/problems/rate-limited",
      title: "Too Many Requests",
      status: 429,
      budget: "unpaid",
      error: { type: "rate_limit_error", code: "rate_limit_exceeded" },
    });
    // Another client is not affected.
    expect((await chat(first, "203.0.113.99")).status).toBe(402);
  });

  it("unpaid, paid and session control are separate budgets", async () => {
    const [first, second] = e2e.system.gatewayUrls as [string, string];
    const client = "203.0.113.2";
    for (let i = 0; i < 6; i++) expect((await chat(i % 2 ? second : first, client)).status).toBe(402);
    expect((await chat(first, client)).status).toBe(429);
    // Credentials (bogus ones here) spend the paid budget, untouched so far: 3 reach the verifier, then 429.
    const paid: number[] = [];
    for (let i = 0; i < 4; i++)
      paid.push((await chat(i % 2 ? second : first, client, { authorization: "Payment bm90LWEtY3JlZGVudGlhbA" })).status);
    expect(paid.slice(0, 3).every((status) => status !== 429 && status < 500)).toBe(true);
    expect(paid[3]).toBe(429);
    // Session control (HEAD on the session endpoint) has its own budget of 2.
    const session: number[] = [];
    for (let i = 0; i < 3; i++)
      session.push(
        (
          await fetch(`${i % 2 ? second : first}/x402/v1/chat/completions/stream`, {
            method: "HEAD",
            headers: { "x-forwarded-for": client },
          })
        ).status,
      );
    expect(session.slice(0, 2).every((status) => status !== 429)).toBe(true);
    expect(session[2]).toBe(429);
  });

  it("a client within its budgets pays and is served while another is limited", async () => {
    const [first, second] = e2e.system.gatewayUrls as [string, string];
    for (let i = 0; i < 8; i++) await chat(first, "203.0.113.3");
    expect((await chat(second, "203.0.113.3")).status).toBe(429);
    const cacheHits = async () => {
      const metrics = await (await fetch(`${e2e.system.replicas.gateway[1]!.internalUrl}/metrics`)).text();
      return Number(/wr_quote_cache_total\{[^}]*outcome="hit"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0);
    };
    const hitsBefore = await cacheHits();
    const { mppx } = mppxClient(e2e.system.world, 0);
    const response = await mppx.fetch(`${second}/x402/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-forwarded-for": "203.0.113.4" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "paying under limits" }] }),
    });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(response.headers.get("payment-receipt")).toBeTruthy();
    // The paid retry (same body bytes, same digest) was priced from the 402's quote, without counting tokens again.
    expect(await cacheHits()).toBe(hitsBefore + 1);
  });
});

/**
 * A raw TCP client that sends `head` at once, then one byte of `drip` every 200 ms, and reports when the server closed
 * the connection and what it answered (gives up, still open, after `giveUpMs`).
 */
function slowClient(gateway: string, head: string, drip: string, giveUpMs = 10_000) {
  const { hostname, port } = new URL(gateway);
  return new Promise<{ closedAfterMs: number | undefined; answer: string }>((resolve) => {
    const socket = connect(Number(port), hostname);
    const started = Date.now();
    let answer = "";
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    socket.setEncoding("utf8").on("data", (chunk: string) => void (answer += chunk));
    socket.on("connect", () => {
      socket.write(head);
      timer = setInterval(() => {
        if (sent < drip.length && socket.writable) socket.write(drip[sent++]!);
      }, 200);
    });
    const finish = (closedAfterMs: number | undefined) => {
      clearInterval(timer);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ closedAfterMs, answer });
    };
    socket.on("close", () => finish(Date.now() - started));
    socket.on("error", () => {});
    const giveUp = setTimeout(() => finish(undefined), giveUpMs);
  });
}

describe("bounded unpaid work", () => {
  const body = (messages: unknown[]) =>
    fetch(`${e2e.system.gatewayUrl}/x402/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-forwarded-for": "203.0.113.20" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages }),
    });

  it("more than MAX_MESSAGES messages: 400 too-many-messages; more than MAX_PROMPT_CHARS: 413 prompt-too-large", async () => {
    const many = await body(Array.from({ length: 6 }, (_, i) => ({ role: "user", content: `m${i}` })));
    expect(many.status).toBe(400);
    expect(await many.json()).toMatchObject({
      type: "https://worldrouter.dev/problems/too-many-messages",
      status: 400,
      param: "messages",
      limit: 5,
      error: { code: "too_many_messages" },
    });
    const large = await body([
      { role: "user", content: "x".repeat(1500) },
      { role: "user", content: [{ type: "text", text: "y".repeat(600) }] },
    ]);
    expect(large.status).toBe(413);
    expect(await large.json()).toMatchObject({ type: "https://worldrouter.dev/problems/prompt-too-large", status: 413, limit: 2000 });
    // At the limits, a quote.
    expect((await body(Array.from({ length: 5 }, () => ({ role: "user", content: "z".repeat(400) })))).status).toBe(402);
  });

  it("slow-loris: headers dripped byte by byte are cut off after HTTP_HEADERS_TIMEOUT_MS", async () => {
    const { closedAfterMs, answer } = await slowClient(
      e2e.system.gatewayUrl,
      "POST /x402/v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n",
      "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    );
    expect(closedAfterMs, "the server kept the connection open").toBeDefined();
    expect(closedAfterMs!).toBeLessThan(4_000);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it("slow-loris: a body dripped byte by byte is cut off after HTTP_REQUEST_TIMEOUT_MS", async () => {
    const { closedAfterMs, answer } = await slowClient(
      e2e.system.gatewayUrl,
      "POST /x402/v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
      `{"model":"gpt-4o-mini","messages":[${" ".repeat(80)}`,
    );
    expect(closedAfterMs, "the server kept the connection open").toBeDefined();
    expect(closedAfterMs!).toBeLessThan(5_000);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it("an idle keep-alive connection is closed after HTTP_KEEP_ALIVE_TIMEOUT_MS", async () => {
    const { closedAfterMs, answer } = await slowClient(e2e.system.gatewayUrl, "GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n", "");
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(closedAfterMs, "the server kept the idle connection open").toBeDefined();
    expect(closedAfterMs!).toBeLessThan(4_000);
  });
});

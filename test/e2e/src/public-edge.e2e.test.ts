import { describe, expect, it } from "vitest";
import { useTestSystem } from "./harness.js";

/** What the gateway's public port shows to anyone on the internet, against what its internal listener shows to operators. */
const e2e = useTestSystem();

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

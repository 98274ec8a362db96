#!/usr/bin/env node
/**
 * The public edge's per-client rate limiter (services/gateway/dist/http/rate-limits.js, rate-limiter-flexible on
 * ioredis against this machine's Redis): gateway-process CPU per admitted request, and per refused request once a
 * flooding client is blocked in memory. Measured in-process (process.cpuUsage over sequential admits), so it is the
 * limiter's own cost on the gateway's event loop; Redis' server CPU is not the gateway's and is not counted.
 * Target (issue 14): ≤ 50 µs of gateway CPU per request.
 *
 * Not measured here yet: the 402/s with and without the limiter through a whole gateway, and the noisy-neighbour
 * scenario (see docs/performance.md).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "@worldrouter/config";
import { deleteRedisNamespace } from "@worldrouter/runtime";
import { log, ROOT, round, table } from "./support/common.mjs";

const { RateLimits } = await import(join(ROOT, "services/gateway/dist/http/rate-limits.js"));
const N = Number(process.env.EDGE_BENCH_N ?? 20_000);
const TARGET_US = 50;
const namespace = `wrbench-edge-${Date.now().toString(36)}`;

const config = loadConfig({
  ...process.env,
  WORLD_FILE: "/nonexistent",
  PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa",
  REDIS_NAMESPACE: namespace,
  RATE_LIMIT_UNPAID: "1000",
  RATE_LIMIT_WINDOW_SECONDS: "600",
});
const limits = new RateLimits(config);

/** CPU µs and wall µs per call of `fn(i)`, over `n` sequential calls. */
async function measure(n, fn) {
  const cpu = process.cpuUsage();
  const wall = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  const used = process.cpuUsage(cpu);
  return { cpuUs: round((used.user + used.system) / n, 2), wallUs: round(((performance.now() - wall) * 1000) / n, 2) };
}

try {
  // Connected first: until then (enableOfflineQueue off) every request would be counted by the in-memory insurance limiter.
  while (limits.redis.status !== "ready") await new Promise((resolve) => setTimeout(resolve, 10));
  await limits.admit("unpaid", "warm-up");
  // Within budget: each request is one EVALSHA round trip (a fresh client every 500 requests keeps all within budget).
  await measure(2_000, (i) => limits.admit("unpaid", `198.51.100.${i % 200}`));
  const admitted = await measure(N, (i) => limits.admit("unpaid", `203.0.${Math.floor(i / 500)}.1`));
  // A flooding client past its budget: refused from process memory, no Redis call.
  for (let i = 0; i < 1_001; i++) await limits.admit("unpaid", "192.0.2.66");
  const refused = await measure(N, () => limits.admit("unpaid", "192.0.2.66"));
  const baseline = await measure(N, async () => undefined);
  const [, keys] = await limits.redis.scan("0", "MATCH", `${namespace}:ratelimit:*`, "COUNT", 10_000);
  if (keys.length < N / 500) throw new Error(`only ${keys.length} budgets in Redis: the limiter did not use Redis`);

  const rows = [
    ["case", "CPU µs / request", "wall µs / request", `target ≤ ${TARGET_US} µs CPU`],
    ["admitted (Redis round trip)", admitted.cpuUs, admitted.wallUs, admitted.cpuUs <= TARGET_US ? "met" : "MISSED"],
    ["refused (blocked in memory)", refused.cpuUs, refused.wallUs, refused.cpuUs <= TARGET_US ? "met" : "MISSED"],
    ["loop alone (subtracted: no)", baseline.cpuUs, baseline.wallUs, ""],
  ];
  process.stdout.write(`\nedge bench: rate limiter cost on the gateway, ${N} sequential requests per case\n${table(rows)}\n`);
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(
    join(ROOT, "bench/results/edge.json"),
    `${JSON.stringify(
      {
        at: new Date().toISOString(),
        n: N,
        limiter: { admitted, refused, loopAlone: baseline },
        verdict: { limiterCpuPerRequest: admitted.cpuUs <= TARGET_US ? "met" : "missed" },
        notMeasured: ["402/s with vs without the limiter through a gateway", "noisy neighbour: paying client's p99 under floods"],
      },
      null,
      2,
    )}\n`,
  );
} finally {
  limits.onApplicationShutdown();
  await deleteRedisNamespace(config.redis.url, namespace);
}
log("edge bench done");

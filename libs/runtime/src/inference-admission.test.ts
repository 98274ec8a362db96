import { randomUUID } from "node:crypto";
import { inferenceAdmissionKey } from "@worldrouter/contracts";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { InferenceAdmissions, redisOptions } from "./index.js";

const namespace = process.env.REDIS_NAMESPACE!;
// Three processes' worth: a gateway, a worker, settlement; separate connections, one Redis.
const connections = [0, 1, 2].map(() => new Redis(redisOptions(process.env.REDIS_URL!)));
const [gateway, worker, settlement] = connections.map(
  (redis) => new InferenceAdmissions(redis, namespace, { settlement: { orphanedPaymentMinutes: 15 } }),
);
afterAll(() => {
  for (const redis of connections) redis.disconnect();
});

const job = (deadline = Date.now() + 60_000) => ({ requestId: `wr_${randomUUID()}`, deadline });

describe("InferenceAdmissions (real Redis)", () => {
  it("runs a job nobody decided on before its deadline, once: a second read of it is a duplicate", async () => {
    const queued = job();
    expect(await worker!.admit(queued)).toBe("run");
    expect(await worker!.admit(queued)).toBe("duplicate");
    expect(await gateway!.decide(queued.requestId, "expired")).toEqual({ verdict: "admitted", decided: false });
    expect(await settlement!.decide(queued.requestId, "swept")).toEqual({ verdict: "admitted", decided: false });
  });

  it("drops a job past its deadline even when no verdict was recorded (its gateway may be gone)", async () => {
    const late = job(Date.now() - 1);
    expect(await worker!.admit(late)).toBe("expired");
    expect(await connections[0]!.get(inferenceAdmissionKey(namespace, late.requestId))).toBe("expired");
    // The deadline is inclusive: at it, the gateway answers 504.
    const now = Date.now();
    expect(await worker!.admit({ requestId: `wr_${randomUUID()}`, deadline: now }, now)).toBe("expired");
  });

  it.each([
    ["expired", "expired"],
    ["client-gone", "client-gone"],
    ["swept", "swept"],
  ] as const)("drops a job whose verdict is already %s, whatever its deadline", async (verdict, reason) => {
    const queued = job();
    const decider = verdict === "swept" ? settlement! : gateway!;
    expect(await decider.decide(queued.requestId, verdict)).toEqual({ verdict, decided: true });
    expect(await worker!.admit(queued)).toBe(reason);
  });

  it("keeps the verdict for the orphan-sweep window only", async () => {
    const queued = job();
    await gateway!.decide(queued.requestId, "client-gone");
    const ttl = await connections[0]!.pttl(inferenceAdmissionKey(namespace, queued.requestId));
    expect(ttl).toBeGreaterThan(14 * 60_000);
    expect(ttl).toBeLessThanOrEqual(15 * 60_000);
  });

  it("a worker admitting and the sweep or the gateway giving up at the same moment: exactly one verdict wins, everyone sees it", async () => {
    for (let i = 0; i < 50; i++) {
      const queued = job();
      const [admission, swept, expired] = await Promise.all([
        worker!.admit(queued),
        settlement!.decide(queued.requestId, "swept"),
        gateway!.decide(queued.requestId, i % 2 ? "expired" : "client-gone"),
      ]);
      const winners = [admission === "run", swept.decided, expired.decided].filter(Boolean);
      expect(winners).toHaveLength(1);
      const stored = await connections[0]!.get(inferenceAdmissionKey(namespace, queued.requestId));
      expect(swept.verdict).toBe(stored);
      expect(expired.verdict).toBe(stored);
      expect(admission === "run" ? "admitted" : admission).toBe(stored);
    }
  });

  it("reads a verdict it does not know as `swept`: a job is never run on a doubtful record", async () => {
    const queued = job();
    await connections[0]!.set(inferenceAdmissionKey(namespace, queued.requestId), "something-else");
    expect(await worker!.admit(queued)).toBe("swept");
  });
});

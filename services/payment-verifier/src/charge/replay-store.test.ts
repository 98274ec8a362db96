import { loadConfig } from "@worldrouter/config";
import { afterAll, describe, expect, it } from "vitest";
import { RedisReplayStore } from "./replay-store.js";

const config = loadConfig({ ...process.env, WORLD_FILE: "/nonexistent", PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa" });
const store = new RedisReplayStore(config);
const other = new RedisReplayStore(config); // a second verifier replica on the same Redis
afterAll(async () => {
  await store.onApplicationShutdown();
  await other.onApplicationShutdown();
});

describe("RedisReplayStore (real Redis)", () => {
  it("claims a key exactly once across concurrent callers and replicas", async () => {
    const key = `claim-${Date.now()}-${Math.random()}`;
    const expires = Date.now() + 60_000;
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? store : other).tryClaim(key, expires)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it("update is an atomic read-modify-write, within a process and across replicas", async () => {
    const key = `counter-${Date.now()}-${Math.random()}`;
    const increment = (current: unknown) => ({ op: "set" as const, value: ((current as number | null) ?? 0) + 1, result: undefined });
    await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 3 ? store : other).update(key, increment)));
    expect(await store.get(key)).toBe(60);
    expect(await store.update(key, () => ({ op: "delete", result: "gone" }))).toBe("gone");
    expect(await other.get(key)).toBeNull();
  });
});

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

  it("a released claim can be claimed again; it expires with its deadline", async () => {
    const key = `release-${Date.now()}-${Math.random()}`;
    expect(await store.tryClaim(key, Date.now() + 60_000)).toBe(true);
    expect(await other.tryClaim(key, Date.now() + 60_000)).toBe(false);
    await store.delete(key);
    expect(await other.tryClaim(key, Date.now() + 1_000)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await store.tryClaim(key, Date.now() + 60_000)).toBe(true);
  });

  it("claims several keys together or none: a held key makes the others free again", async () => {
    const [a, b, c] = ["a", "b", "c"].map((k) => `all-${k}-${Date.now()}-${Math.random()}`) as [string, string, string];
    const expires = Date.now() + 60_000;
    expect(await store.tryClaimAll([a, b], expires)).toEqual([]);
    expect(await other.tryClaimAll([c, b], expires)).toEqual([b]);
    expect(await other.tryClaim(c, expires)).toBe(true); // c was given back by the failed attempt
    const raced = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? store : other).tryClaimAll([`${a}-x`, `${b}-x`], expires)),
    );
    expect(raced.filter((held) => held.length === 0)).toHaveLength(1);
  });
});

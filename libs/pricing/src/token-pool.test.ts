import { afterAll, describe, expect, it } from "vitest";
import { TokenCounterPool, TokenizerBusyError } from "./token-pool.js";

// Large enough that a count is still running when the next one arrives.
const big = ["word ".repeat(200_000)];
const pool = new TokenCounterPool(1, { maxQueued: 3, maxQueuedPerClient: 2 });
afterAll(() => pool.close());

describe("TokenCounterPool queue bounds", () => {
  it("refuses a client's third job while two of its own wait, and anyone's beyond three in all; frees the slots after", async () => {
    const a1 = pool.countTexts(big, "a");
    const a2 = pool.countTexts(big, "a");
    await expect(pool.countTexts(big, "a")).rejects.toMatchObject({ name: "TokenizerBusyError", scope: "client" });
    const b1 = pool.countTexts(big, "b");
    await expect(pool.countTexts(big, "c")).rejects.toBeInstanceOf(TokenizerBusyError);
    await expect(pool.countTexts(big, "c")).rejects.toMatchObject({ scope: "overall" });
    const counts = await Promise.all([a1, a2, b1]);
    expect(new Set(counts).size).toBe(1);
    expect(counts[0]).toBeGreaterThan(100_000);
    // Everything finished: the bounds are free again.
    await expect(pool.countTexts(["hello world"], "a")).resolves.toBe(2);
  });
});

import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { ChannelBalances, redisOptions } from "./index.js";

const namespace = process.env.REDIS_NAMESPACE!;
// Two connections: two gateway replicas spending from one channel.
const a = new Redis(redisOptions(process.env.REDIS_URL!));
const b = new Redis(redisOptions(process.env.REDIS_URL!));
const first = new ChannelBalances(a, namespace);
const second = new ChannelBalances(b, namespace);
afterAll(() => {
  a.disconnect();
  b.disconnect();
});

const newChannel = async (accepted: bigint, deposit = 1_000_000n) => {
  const id = `0x${randomBytes(32).toString("hex")}`;
  await first.open(id, { accepted, deposit, spent: 0n, closing: false, payer: "0xpayer", signer: "0xsigner", readAt: 0 });
  return id;
};

describe("ChannelBalances (real Redis, Lua)", () => {
  it("1,000 concurrent reservations over two connections: exactly the ones the accepted cumulative covers succeed", async () => {
    const price = 7n;
    const covered = 137n;
    const channel = await newChannel(price * covered + price - 1n);
    const outcomes = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => (i % 2 ? first : second).reserve(channel, `req-${i}`, price)),
    );
    expect(outcomes.filter((o) => o.ok)).toHaveLength(Number(covered));
    expect(outcomes.filter((o) => !o.ok).every((o) => !o.ok && o.reason === "insufficient")).toBe(true);
    await Promise.all(outcomes.map((o, i) => (o.ok ? first.commit(channel, `req-${i}`, price) : undefined)));
    const state = (await second.get(channel))!;
    expect(state).toMatchObject({ spent: price * covered, reserved: 0n });
    expect(state.spent).toBeLessThanOrEqual(state.accepted);
  });

  it("commits at most what a request reserved, once; releases the rest; a voucher raises the balance, never lowers it", async () => {
    const channel = await newChannel(100n);
    expect(await first.reserve(channel, "r", 60n)).toEqual({ ok: true });
    expect(await first.reserve(channel, "r", 30n)).toEqual({ ok: true }); // grows the same reservation to 90
    expect(await second.reserve(channel, "other", 20n)).toMatchObject({ ok: false, reason: "insufficient", reserved: 90n });
    expect(await first.commit(channel, "r", 500n)).toMatchObject({ spentNow: 90n, spent: 90n });
    expect(await first.commit(channel, "r", 500n)).toMatchObject({ spentNow: 0n, spent: 90n });
    await first.accept(channel, { accepted: 50n, deposit: 10n });
    expect(await first.get(channel)).toMatchObject({ accepted: 100n, deposit: 1_000_000n });
    await first.accept(channel, { accepted: 200n });
    expect(await second.reserve(channel, "other", 110n)).toEqual({ ok: true });
    await second.release(channel, "other");
    expect(await first.get(channel)).toMatchObject({ spent: 90n, reserved: 0n, accepted: 200n });
  });

  it("refuses every reservation once the channel is closing, and reports what is still reserved", async () => {
    const channel = await newChannel(100n);
    await first.reserve(channel, "running", 10n);
    expect(await second.markClosing(channel)).toMatchObject({ reserved: 10n });
    expect(await first.reserve(channel, "late", 1n)).toMatchObject({ ok: false, reason: "closing" });
    expect(await first.reserve(`0x${"00".repeat(32)}`, "x", 1n)).toMatchObject({ ok: false, reason: "missing" });
  });
});

import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { LeaseBusyError, LeaseLostError, Leases } from "./index.js";

const url = process.env.REDIS_URL!;
const namespace = process.env.REDIS_NAMESPACE!;

// Two processes' worth of leases: separate connections and holder ids, one Redis.
const first = new Leases(url, namespace);
const second = new Leases(url, namespace);
afterAll(async () => {
  await first.close();
  await second.close();
});

describe("Lease (real Redis)", () => {
  it("has one holder at a time; the next grant after a release carries a larger token", async () => {
    const name = `test-${randomUUID()}`;
    const a = await first.lease(name, 30_000).tryAcquire();
    expect(a).not.toBeNull();
    expect(await second.lease(name, 30_000).tryAcquire()).toBeNull();
    await expect(second.lease(name, 30_000).acquire(100)).rejects.toBeInstanceOf(LeaseBusyError);
    await a!.assertHeld();

    expect(await a!.release()).toBe(true);
    const b = await second.lease(name, 30_000).tryAcquire();
    expect(b!.token).toBeGreaterThan(a!.token);
    await b!.release();
  });

  it("expires: a holder that stops renewing loses it, and its stale token is refused afterwards", async () => {
    const name = `test-${randomUUID()}`;
    const stale = await first.lease(name, 100).tryAcquire();
    expect(stale).not.toBeNull();
    // Nobody renews: the other process gets the lease once it has expired.
    const current = await second.lease(name, 30_000).acquire(10_000);
    expect(current.token).toBeGreaterThan(stale!.token);

    await expect(stale!.assertHeld()).rejects.toBeInstanceOf(LeaseLostError);
    expect(await stale!.release()).toBe(false); // a stale release does not free the new holder's lease
    await current.assertHeld();
    expect(await first.lease(name, 30_000).tryAcquire()).toBeNull();
    await current.release();
  });

  it("withLease runs work exclusively across holders and releases when the work throws", async () => {
    const name = `test-${randomUUID()}`;
    let inside = 0;
    let overlapped = false;
    const work = (leases: Leases) =>
      leases.lease(name, 30_000).withLease(10_000, async (grant) => {
        inside++;
        if (inside > 1) overlapped = true;
        await grant.assertHeld();
        await new Promise((resolve) => setImmediate(resolve));
        inside--;
        return grant.token;
      });
    const tokens = await Promise.all([work(first), work(second), work(first), work(second)]);
    expect(overlapped).toBe(false);
    expect(new Set(tokens).size).toBe(4);

    await expect(
      first.lease(name, 30_000).withLease(1_000, async () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await second.lease(name, 30_000).tryAcquire()).not.toBeNull();
  });
});

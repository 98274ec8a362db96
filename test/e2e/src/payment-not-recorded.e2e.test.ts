import { afterAll, describe, expect, it } from "vitest";
import { mppxClient, tokenBalance, useTestSystem } from "./harness.js";

/**
 * Postgres refuses the payment's record after the money moved on-chain: the client is told not to pay again
 * (503, no new challenge), and the payment is recorded once Postgres is back (then refunded by the orphan sweep,
 * since nothing was served).
 */
const e2e = useTestSystem();

describe("a charge that settles on-chain while Postgres refuses its record", () => {
  afterAll(async () => {
    await e2e.db.query(`DROP TRIGGER IF EXISTS "e2e_refuse_payments" ON "charge_payments"`);
  });

  it("answers 503 without a challenge, then records the payment from the durable queue", async () => {
    // Refuse to record any charge payment as verified until the trigger is dropped (the `pending` row written before
    // the broadcast goes through: the money moves, then its record is refused).
    await e2e.db.query(
      `CREATE OR REPLACE FUNCTION e2e_refuse_payments() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'e2e: postgres refuses'; END $$ LANGUAGE plpgsql`,
    );
    await e2e.db.query(
      `CREATE OR REPLACE TRIGGER "e2e_refuse_payments" BEFORE INSERT OR UPDATE ON "charge_payments" FOR EACH ROW WHEN (NEW."status" = 'verified') EXECUTE FUNCTION e2e_refuse_payments()`,
    );
    const { mppx, account } = mppxClient(e2e.system.world, 1);
    const before = await tokenBalance(e2e.system.world, account.address);
    const response = await mppx.fetch(`${e2e.system.gatewayUrl}/x402/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "record me later" }] }),
    });
    const problem = (await response.json()) as { detail: string };
    expect(response.status, JSON.stringify(problem)).toBe(503);
    expect(response.headers.get("www-authenticate")).toBeNull();
    expect(problem).toMatchObject({
      type: "https://worldrouter.dev/problems/payment-not-recorded",
      status: 503,
      detail: expect.stringMatching(/do not pay this challenge again/),
    });
    const txHash = /transaction (0x[0-9a-f]{64})/.exec(problem.detail)![1];
    expect(await tokenBalance(e2e.system.world, account.address)).toBeLessThan(before); // the money did move

    await e2e.db.query(`DROP TRIGGER "e2e_refuse_payments" ON "charge_payments"`);
    await expect
      .poll(async () => (await e2e.db.query(`SELECT status, payer FROM charge_payments WHERE "txHash" = $1`, [txHash])).rows, {
        timeout: 20_000,
        interval: 250,
      })
      .toEqual([{ status: "verified", payer: account.address.toLowerCase() }]);
    // Its payments event reached settlement: the on-chain settlement is on the ledger.
    await expect
      .poll(async () => (await e2e.db.query(`SELECT status FROM settlements WHERE "txHash" = $1`, [txHash])).rows, {
        timeout: 10_000,
        interval: 250,
      })
      .toEqual([{ status: "confirmed" }]);
  }, 60_000);
});

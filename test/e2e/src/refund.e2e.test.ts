import { describe, expect, it } from "vitest";
import { mppxClient, useTestSystem, tokenBalance } from "./harness.js";

/** The provider is down (every upstream call answers 500): a paid request must not lose the payer's money. */
// MIN_CHARGE 1: the dust test needs a charge below the local chain's refund gas, which the production floor (2500,
// chosen from mainnet gas) may not be on this chain.
const e2e = useTestSystem({ UPSTREAM_MAX_RETRIES: "1", MIN_CHARGE: "1" }, { fault: "500" });

describe("inference fails after payment", () => {
  it("answers 502, records the failure, and refunds the payer on-chain with a balanced ledger", async () => {
    const { mppx, account } = mppxClient(e2e.system.world, 0);
    const before = await tokenBalance(e2e.system.world, account.address);
    const response = await mppx.fetch(`${e2e.system.gatewayUrl}/x402/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      // Priced well above the gas a refund costs (else it is kept as dust: see below).
      body: JSON.stringify({ model: "gpt-5.4-pro", messages: [{ role: "user", content: "the provider is down ".repeat(300) }] }),
    });
    const problem = await response.json();
    expect(response.status, JSON.stringify(problem)).toBe(502);
    expect(response.headers.get("payment-receipt")).toBeTruthy();
    const requestId = response.headers.get("x-request-id")!;
    const payment = (await e2e.db.query(`SELECT * FROM charge_payments WHERE "requestId" = $1`, [requestId])).rows[0];
    const paid = BigInt(payment.amount);
    expect(await tokenBalance(e2e.system.world, account.address)).toBe(before - paid);

    await expect
      .poll(async () => (await e2e.db.query(`SELECT status FROM charge_payments WHERE id = $1`, [payment.id])).rows[0].status, {
        timeout: 30_000,
        interval: 250,
      })
      .toBe("refunded");
    expect(await tokenBalance(e2e.system.world, account.address)).toBe(before);
    const request = (await e2e.db.query(`SELECT * FROM inference_requests WHERE id = $1`, [requestId])).rows[0];
    expect(request).toMatchObject({ status: "failed", completionTokens: 0 });
    const refund = (await e2e.db.query(`SELECT * FROM settlements WHERE kind = 'refund' AND "chargePaymentId" = $1`, [payment.id])).rows[0];
    expect(refund).toMatchObject({ status: "confirmed", amount: payment.amount });
    const lines = (
      await e2e.db.query(
        `SELECT e.account, e.amount FROM ledger_entries e JOIN ledger_transactions t ON t.id = e."transactionId" WHERE t.reference = $1`,
        [payment.id],
      )
    ).rows;
    const prepaid = lines
      .filter((l) => l.account === `liability:payer_prepaid:${payment.payer}`)
      .reduce((s, l) => s + BigInt(l.amount), 0n);
    expect(prepaid).toBe(0n);
  });

  it("a payment smaller than the gas its refund would cost is not sent back but booked as dust", async () => {
    const { mppx, account } = mppxClient(e2e.system.world, 1);
    const response = await mppx.fetch(`${e2e.system.gatewayUrl}/x402/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      // A few completion tokens: the charge covers the largest completion allowed, so the limit keeps it tiny.
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "tiny" }], max_tokens: 16 }),
    });
    expect(response.status).toBe(502);
    const requestId = response.headers.get("x-request-id")!;
    const payment = (await e2e.db.query(`SELECT * FROM charge_payments WHERE "requestId" = $1`, [requestId])).rows[0];
    const afterPaying = await tokenBalance(e2e.system.world, account.address);
    await expect
      .poll(async () => (await e2e.db.query(`SELECT status FROM charge_payments WHERE id = $1`, [payment.id])).rows[0].status, {
        timeout: 30_000,
        interval: 250,
      })
      .toBe("kept_as_dust");
    expect(await tokenBalance(e2e.system.world, account.address)).toBe(afterPaying);
    expect(
      (await e2e.db.query(`SELECT count(*)::int AS n FROM settlements WHERE kind = 'refund' AND "chargePaymentId" = $1`, [payment.id]))
        .rows[0].n,
    ).toBe(0);
    const lines = (
      await e2e.db.query(
        `SELECT e.account, e.amount::text FROM ledger_entries e JOIN ledger_transactions t ON t.id = e."transactionId" WHERE t.reference = $1 AND t.kind = 'charge.refund_dust'`,
        [payment.id],
      )
    ).rows;
    expect(Object.fromEntries(lines.map((l) => [l.account, l.amount]))).toEqual({
      [`liability:payer_prepaid:${payment.payer}`]: payment.amount,
      "revenue:refund_dust": `-${payment.amount}`,
    });
  });
});

import { describe, expect, it } from "vitest";
import { currentBlock, mppxClient, reconcile, tokenBalance, useTestSystem } from "./harness.js";

/**
 * Two processes of every service on one Redis, one Postgres and one chain (REPLICAS=2): two gateways, two
 * verifiers, two workers, two settlement replicas. Charges spread over both gateways with the unmodified mppx client.
 */
const e2e = useTestSystem({}, undefined, { replicas: 2 });

const CHARGES = 20;
const WALLETS = 5;

describe("every service as two replicas", () => {
  it("starts two processes per service, the gateways on distinct ports", () => {
    for (const processes of Object.values(e2e.system.replicas)) expect(processes).toHaveLength(2);
    expect(new Set(e2e.system.gatewayUrls).size).toBe(2);
    expect(new Set(e2e.system.services.map((s) => s.url)).size).toBe(8);
  });

  it(`${CHARGES} charges over both gateways: each served once, each payer debited exactly its price once, the ledger equals the chain`, async () => {
    const { world } = e2e.system;
    const fromBlock = await currentBlock(world);
    const payers = Array.from({ length: WALLETS }, (_, i) => mppxClient(world, i));
    const before = await Promise.all(payers.map((p) => tokenBalance(world, p.account.address)));

    const results = await Promise.all(
      Array.from({ length: CHARGES }, async (_, i) => {
        const gateway = e2e.system.gatewayUrls[i % 2]!;
        const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `replica charge ${i}` }] });
        const init = { method: "POST", headers: { "content-type": "application/json" }, body };
        const quoted = (await (await fetch(`${gateway}/x402/v1/chat/completions`, init)).json()) as { price: { amount: string } };
        const response = await payers[i % WALLETS]!.mppx.fetch(`${gateway}/x402/v1/chat/completions`, init);
        const text = await response.text();
        return {
          payer: i % WALLETS,
          status: response.status,
          text,
          price: BigInt(quoted.price.amount),
          requestId: response.headers.get("x-request-id"),
        };
      }),
    );
    for (const r of results) expect(r.status, r.text).toBe(200);

    const requestIds = results.map((r) => r.requestId!);
    const { rows } = await e2e.db.query<{ requestId: string; amount: string }>(
      `SELECT "requestId", amount::text FROM charge_payments WHERE "requestId" = ANY($1)`,
      [requestIds],
    );
    expect(rows).toHaveLength(CHARGES); // one payment per request, none paid twice
    const after = await Promise.all(payers.map((p) => tokenBalance(world, p.account.address)));
    payers.forEach((_, w) => {
      const owed = results.filter((r) => r.payer === w).reduce((sum, r) => sum + r.price, 0n);
      expect(before[w]! - after[w]!).toBe(owed);
    });

    // Every request billed once by one of the two settlement replicas.
    await expect
      .poll(
        async () =>
          (
            await e2e.db.query(`SELECT count(*)::int AS n FROM inference_requests WHERE id = ANY($1) AND status = 'succeeded'`, [
              requestIds,
            ])
          ).rows[0].n,
        { timeout: 30_000, interval: 250 },
      )
      .toBe(CHARGES);
    const billed = await e2e.db.query(
      `SELECT count(*)::int AS n FROM ledger_transactions WHERE kind = 'charge.usage' AND reference = ANY($1)`,
      [requestIds],
    );
    expect(billed.rows[0].n).toBe(CHARGES);

    const reconciliation = await reconcile(e2e.system, e2e.db, fromBlock);
    expect(
      reconciliation,
      JSON.stringify(reconciliation, (_, v) => (typeof v === "bigint" ? v.toString() : v)),
    ).toMatchObject({
      ok: true,
      missingInLedger: [],
      missingOnChain: [],
    });
    expect(reconciliation.recordedTotal).toBe(results.reduce((sum, r) => sum + r.price, 0n));
  });
});

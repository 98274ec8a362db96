import { freePort, type RunningService, spawnService, stopService, waitUntilReady } from "@worldrouter/dev-runner";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mppxClient, tokenBalance, useTestSystem } from "./harness.js";

const e2e = useTestSystem();

/** Charges per payer wallet; the payers pay in parallel, each one charge after the other. */
const CHARGES_PER_PAYER = 6;

describe("two payment-verifier replicas", () => {
  let second: RunningService;
  const secondLogs: string[] = [];
  beforeAll(async () => {
    const healthPort = await freePort();
    second = spawnService(
      "payment-verifier",
      { index: 1, label: "payment-verifier#2", url: `http://127.0.0.1:${healthPort}` },
      { ...e2e.system.env, PAYMENT_VERIFIER_HEALTH_PORT: String(healthPort) },
      (_, line) => secondLogs.push(line),
    );
    await waitUntilReady(`http://127.0.0.1:${healthPort}/readyz`, second);
  }, 120_000);
  afterAll(async () => {
    if (second) await stopService(second);
  });

  it("each paid charge is verified by one replica only: every payer debited exactly once per charge", async () => {
    const { world } = e2e.system;
    const payers = world.wallets.map((_, index) => mppxClient(world, index));
    const before = await Promise.all(payers.map(({ account }) => tokenBalance(world, account.address)));
    const payeeBefore = await tokenBalance(world, world.payee.address);

    const requestIds = (
      await Promise.all(
        payers.map(async ({ mppx }, payer) => {
          const ids: string[] = [];
          for (let i = 0; i < CHARGES_PER_PAYER; i++) {
            const response = await mppx.fetch(`${e2e.system.gatewayUrl}/x402/v1/chat/completions`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `payer ${payer}, charge ${i}` }] }),
            });
            const text = await response.text();
            expect(response.status, text).toBe(200);
            ids.push(response.headers.get("x-request-id")!);
          }
          return ids;
        }),
      )
    ).flat();
    const charges = payers.length * CHARGES_PER_PAYER;
    expect(new Set(requestIds).size).toBe(charges);

    const { rows } = await e2e.db.query<{ requestId: string; payer: string; amount: string }>(
      `SELECT "requestId", "payer", "amount"::text FROM "charge_payments" WHERE "requestId" = ANY($1)`,
      [requestIds],
    );
    expect(rows).toHaveLength(charges);
    // Nothing else was paid meanwhile: no second payment for a request (a duplicate verification answers 402 and
    // the client pays again), and each payer's balance fell by exactly what its recorded charges say.
    const all = await e2e.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "charge_payments"`);
    expect(all.rows[0]!.n).toBe(charges);
    let total = 0n;
    for (const [index, { account }] of payers.entries()) {
      const own = rows.filter((row) => row.payer === account.address.toLowerCase());
      expect(own).toHaveLength(CHARGES_PER_PAYER);
      const paid = own.reduce((sum, row) => sum + BigInt(row.amount), 0n);
      total += paid;
      expect(await tokenBalance(world, account.address)).toBe(before[index]! - paid);
    }
    expect(await tokenBalance(world, world.payee.address)).toBe(payeeBefore + total);

    // Both replicas took part, and between them verified each charge once.
    const verifiedBy = (lines: string[]) => lines.filter((line) => line.includes('"charge verified"')).length;
    const first = verifiedBy(e2e.system.logs.filter((line) => line.startsWith("payment-verifier |")));
    const other = verifiedBy(secondLogs);
    expect(first + other).toBe(charges);
    expect(first).toBeGreaterThan(0);
    expect(other).toBeGreaterThan(0);
  });
});

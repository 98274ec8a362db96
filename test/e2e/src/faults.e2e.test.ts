import { afterAll, describe, expect, it } from "vitest";
import { currentBlock, mppxClient, reconcile, startPrivateRedis, tokenBalance, useTestSystem } from "./harness.js";

/**
 * Faults under load, two processes of every service: the Redis they share is killed (-9) and restarted with its
 * append-only file mid-load, then one verifier, one worker and one settlement replica are killed (-9) mid-load.
 * The unmodified mppx client pays throughout. After recovery: no request paid twice, nothing served unpaid, every
 * recorded payment in the ledger (no money event lost, none applied twice), the ledger equals the chain.
 */
const redis = await startPrivateRedis();
afterAll(() => redis.stop());
const e2e = useTestSystem({ REDIS_URL: redis.url, RPC_RECLAIM_IDLE_MS: "2000" }, undefined, { replicas: 2 });

const WALLETS = 5; // the local world funds five payers
const payerAddress = (w: number) => mppxClient(e2e.system.world, w).account.address;

interface Outcome {
  payer: number;
  status: number | "network-error";
  requestId: string | null;
  price: bigint;
  detail: string;
}

/** Outcomes for an assertion message. */
const describeOutcomes = (outcomes: Outcome[]) => JSON.stringify(outcomes.map((o) => [o.status, o.requestId, o.detail.slice(0, 160)]));

/** `total` charges over both gateways, `concurrency` at a time; `during(done)` is called after each one finishes. */
async function chargeLoad(total: number, concurrency: number, label: string, during: (finished: number) => void): Promise<Outcome[]> {
  const { world, gatewayUrls } = e2e.system;
  const payers = Array.from({ length: WALLETS }, (_, i) => mppxClient(world, i));
  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const gateway = gatewayUrls[i % gatewayUrls.length]!;
      const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `${label} ${i}` }] });
      const init = { method: "POST", headers: { "content-type": "application/json" }, body };
      const outcome: Outcome = { payer: i % WALLETS, status: "network-error", requestId: null, price: 0n, detail: "" };
      try {
        const quote = await fetch(`${gateway}/x402/v1/chat/completions`, init);
        if (quote.status === 402) outcome.price = BigInt(((await quote.json()) as { price: { amount: string } }).price.amount);
        const response = await payers[outcome.payer]!.mppx.fetch(`${gateway}/x402/v1/chat/completions`, init);
        outcome.status = response.status;
        outcome.requestId = response.headers.get("x-request-id");
        outcome.detail = (await response.text()).slice(0, 300);
      } catch (err) {
        outcome.detail = (err as Error).message;
      }
      outcomes.push(outcome);
      during(outcomes.length);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return outcomes;
}

/** Rows of every payment the ledger recorded since `since`, with what happened to its request. */
async function paymentsSince(since: Date) {
  const { rows } = await e2e.db.query<{
    id: string;
    requestId: string;
    payer: string;
    amount: string;
    status: string;
    applied: boolean;
    inference: string | null;
    usagePostings: number;
  }>(
    `SELECT c.id, c."requestId", c.payer, c.amount::text, c.status::text,
       EXISTS (SELECT 1 FROM settlements s WHERE s."chargePaymentId" = c.id AND s.kind = 'charge') AS applied,
       (SELECT r.status::text FROM inference_requests r WHERE r."chargePaymentId" = c.id) AS inference,
       (SELECT count(*)::int FROM ledger_transactions t WHERE t.kind = 'charge.usage' AND t.reference = c."requestId") AS "usagePostings"
     FROM charge_payments c WHERE c."createdAt" >= $1`,
    [since],
  );
  return rows;
}

/**
 * What must hold after any fault, once the system has recovered: every payment applied once, every 200 billed
 * once, nothing served without a payment, each payer debited exactly what the ledger recorded, ledger = chain.
 */
async function expectMoneyIntact(outcomes: Outcome[], since: Date, fromBlock: bigint, balancesBefore: bigint[]) {
  const served = outcomes.filter((o) => o.status === 200);
  // Settlement catches up: every recorded payment's charge.verified applied, every served request billed.
  // Offenders are listed (not counted), so a failure says which payment is stuck in which state.
  await expect
    .poll(
      async () => {
        const rows = await paymentsSince(since);
        return [
          // A `failed` payment paid nothing (never broadcast, e.g. its verifier was killed first, or reverted): it has no
          // money event to apply. That it really moved nothing is checked below (balances, ledger = chain).
          ...rows
            .filter((r) => !r.applied && r.status !== "failed")
            .map((r) => ({ unapplied: r.requestId, status: r.status, inference: r.inference })),
          ...served.filter((o) => !rows.some((r) => r.requestId === o.requestId && r.inference)).map((o) => ({ unbilled: o.requestId })),
        ];
      },
      { timeout: 60_000, interval: 500 },
    )
    .toEqual([]);
  await expect
    .poll(
      async () => {
        const rows = await paymentsSince(since);
        return served.filter((o) => rows.find((r) => r.requestId === o.requestId)?.status !== "consumed").map((o) => o.requestId);
      },
      { timeout: 60_000, interval: 500 },
    )
    .toEqual([]);
  // No payment left between states: a request whose worker died is settled from what its gateway relayed.
  await expect
    .poll(async () => (await paymentsSince(since)).filter((p) => p.status === "verified" && p.inference !== null), {
      timeout: 60_000,
      interval: 500,
    })
    .toEqual([]);
  const payments = await paymentsSince(since);
  for (const o of served) {
    const payment = payments.find((p) => p.requestId === o.requestId);
    expect(payment, `served ${o.requestId} has its payment`).toBeDefined();
    expect(payment!.amount).toBe(o.price.toString());
    expect(payment!.inference).toBe("succeeded");
    expect(payment!.usagePostings, `${o.requestId} billed once`).toBe(1);
  }
  // Nothing billed twice, nothing served (succeeded) without its payment consumed.
  for (const p of payments.filter((p) => p.status === "failed")) {
    expect(p.inference, `failed payment ${p.requestId} never served`).toBeNull();
    expect(served.some((o) => o.requestId === p.requestId)).toBe(false);
  }
  for (const p of payments) {
    expect(p.usagePostings, `${p.requestId} billed at most once`).toBeLessThanOrEqual(1);
    if (p.inference === "succeeded") expect(p.status).toBe("consumed");
  }
  const { rows: unpaid } = await e2e.db.query(
    `SELECT id FROM inference_requests WHERE "createdAt" >= $1 AND intent = 'charge' AND status = 'succeeded' AND "chargePaymentId" IS NULL`,
    [since],
  );
  expect(unpaid).toEqual([]);

  // Each payer was debited exactly what the ledger recorded for it (no payment the ledger does not know).
  const balancesAfter = await balances();
  const { rows: refunded } = await e2e.db.query<{ payer: string; amount: string }>(
    `SELECT c.payer, s.amount::text FROM settlements s JOIN charge_payments c ON c.id = s."chargePaymentId"
     WHERE s.kind = 'refund' AND s.status = 'confirmed' AND c."createdAt" >= $1`,
    [since],
  );
  for (let w = 0; w < WALLETS; w++) {
    const address = payerAddress(w).toLowerCase();
    const paid = payments
      .filter((p) => p.payer.toLowerCase() === address && p.status !== "failed")
      .reduce((sum, p) => sum + BigInt(p.amount), 0n);
    const back = refunded.filter((r) => r.payer.toLowerCase() === address).reduce((sum, r) => sum + BigInt(r.amount), 0n);
    expect(balancesBefore[w]! - balancesAfter[w]!, `payer ${w} debited what the ledger recorded`).toBe(paid - back);
  }
  const reconciliation = await reconcile(e2e.system, e2e.db, fromBlock);
  expect(
    reconciliation,
    JSON.stringify(reconciliation, (_, v) => (typeof v === "bigint" ? v.toString() : v)),
  ).toMatchObject({ ok: true, missingInLedger: [], missingOnChain: [] });
}

async function balances() {
  const { world } = e2e.system;
  return Promise.all(Array.from({ length: WALLETS }, (_, w) => tokenBalance(world, payerAddress(w))));
}

describe("faults under load, two replicas of every service", () => {
  it("Redis killed -9 and restarted (AOF) mid-load, with money events not yet applied: nothing lost once the services reconnect", async () => {
    const since = new Date();
    const fromBlock = await currentBlock(e2e.system.world);
    const before = await balances();
    // Settlement frozen first (SIGSTOP), so the crash finds money events in the stream that no one has applied yet.
    const settlements = e2e.system.replicas.settlement;
    let crash: Promise<void> | undefined;
    const outcomes = await chargeLoad(40, 8, "redis-restart", (finished) => {
      if (finished === 8) for (const s of settlements) s.child.kill("SIGSTOP");
      if (finished === 24)
        crash = (async () => {
          await redis.kill();
          await new Promise((r) => setTimeout(r, 1_500));
          await redis.start();
          for (const s of settlements) s.child.kill("SIGCONT");
        })();
    });
    await crash;
    // Some requests in flight at the crash may fail; the others are served.
    expect(outcomes.filter((o) => o.status === 200).length, describeOutcomes(outcomes.filter((o) => o.status !== 200))).toBeGreaterThan(20);
    // Once reconnected, the system serves again.
    const after = await chargeLoad(8, 4, "after-redis-restart", () => {});
    expect(
      after.map((o) => o.status),
      JSON.stringify(after.filter((o) => o.status !== 200)),
    ).toEqual(Array(8).fill(200));
    await expectMoneyIntact([...outcomes, ...after], since, fromBlock, before);
  });
  it("one verifier, one worker and one settlement replica killed -9 during 200 charges: none paid twice, none served unpaid, ledger = chain", async () => {
    const since = new Date();
    const fromBlock = await currentBlock(e2e.system.world);
    const before = await balances();
    const { replicas } = e2e.system;
    const victims = [replicas["payment-verifier"][1]!, replicas["inference-worker"][1]!, replicas.settlement[1]!];
    const outcomes = await chargeLoad(200, 16, "replica-kill", (finished) => {
      if (finished === 40) victims[0]!.child.kill("SIGKILL");
      if (finished === 80) victims[1]!.child.kill("SIGKILL");
      if (finished === 120) victims[2]!.child.kill("SIGKILL");
    });
    await Promise.all(victims.map((v) => v.exited));
    const failed = outcomes.filter((o) => o.status !== 200);
    // Only requests caught on a killed replica may fail.
    expect(failed.length, describeOutcomes(failed)).toBeLessThanOrEqual(16 * 3);
    await expectMoneyIntact(outcomes, since, fromBlock, before);
  }, 300_000);
});

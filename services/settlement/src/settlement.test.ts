import "reflect-metadata";
import { randomBytes, randomUUID } from "node:crypto";
import type { INestApplicationContext } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { loadConfig } from "@worldrouter/config";
import { deduplicationId, type ChargeVerifiedEvent, type UsageEvent } from "@worldrouter/contracts";
import { accountBalance, createPrismaClient, Prisma, type PrismaClient } from "@worldrouter/db";
import { newRequestId } from "@worldrouter/observability";
import { JobQueues, Leases } from "@worldrouter/runtime";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { chargeReceived, chargeRefund, chargeUsage } from "./ledger/charge-postings.js";
import { RecordChargePaymentUseCase } from "./payments/record-charge-payment.use-case.js";
import { SettlementModule } from "./settlement.module.js";
import { SweepOrphanedChargesUseCase } from "./sweeps/sweep-orphaned-charges.use-case.js";
import { RecordUsageUseCase } from "./usage/record-usage.use-case.js";

const hex = (bytes: number) => `0x${randomBytes(bytes).toString("hex")}`;
const token = "0x20c0000000000000000000000000000000000abc";

describe("charge postings", () => {
  it("every posting sums to zero, including a loss when actual cost exceeds the estimate", () => {
    const postings = [
      chargeReceived({ paymentId: "p", payer: "0xa", token, amount: 150n }),
      chargeUsage({ requestId: "r", payer: "0xa", paid: 150n, actualCost: 100n }),
      chargeUsage({ requestId: "r2", payer: "0xa", paid: 150n, actualCost: 400n }),
      chargeRefund({ paymentId: "p", payer: "0xa", token, amount: 150n }),
    ];
    for (const posting of postings) expect(posting.lines.reduce((s, l) => s + l.amount, 0n)).toBe(0n);
    expect(postings[2]!.lines.find((l) => l.account === "revenue:estimate_variance")!.amount).toBe(250n);
  });
});

describe("settlement ledger (real Postgres)", () => {
  let app: INestApplicationContext;
  let db: PrismaClient;
  const config = loadConfig({
    ...process.env,
    WORLD_FILE: "/nonexistent",
    PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa",
    LOG_LEVEL: "silent",
  });

  beforeAll(async () => {
    app = await NestFactory.createApplicationContext(SettlementModule.forRoot(config), { logger: false });
    db = createPrismaClient(config.databaseUrl);
  });
  afterAll(async () => {
    await app?.close();
    await db?.$disconnect();
  });

  /** The refund job queued for a payment (found by its deduplication id while it waits or runs). */
  async function refundJob(paymentId: string) {
    const queue = app.get(JobQueues).queue("settlement");
    const id = await queue.getDeduplicationJobId(deduplicationId.settlement({ kind: "refund", reference: paymentId, requestedAt: 0 }));
    return id ? queue.getJob(id) : undefined;
  }

  async function paidRequest(amount: bigint, status: "verified" | "refunding" | "refunded" = "verified") {
    const payer = hex(20);
    const requestId = newRequestId();
    const payment = await db.chargePayment.create({
      data: {
        challengeId: randomUUID(),
        txHash: hex(32),
        requestId,
        payer,
        recipient: config.chain.payee!,
        token,
        chainId: 4217,
        amount: new Prisma.Decimal(amount.toString()),
        status,
      },
    });
    const event: ChargeVerifiedEvent = {
      kind: "charge.verified",
      paymentId: payment.id,
      challengeId: payment.challengeId,
      requestId,
      txHash: payment.txHash as `0x${string}`,
      payer,
      recipient: config.chain.payee!,
      token,
      chainId: 4217,
      amount: amount.toString(),
      blockNumber: "7",
      verifiedAt: Date.now(),
    };
    return { payer, requestId, payment, event };
  }

  const usage = (p: { requestId: string; payer: string; paymentId: string }, overrides: Partial<UsageEvent> = {}): UsageEvent => ({
    requestId: p.requestId,
    model: "gpt-4o-mini",
    provider: "openai",
    intent: "charge",
    payer: p.payer,
    chargePaymentId: p.paymentId,
    status: "succeeded",
    promptTokens: 1000,
    completionTokens: 2000,
    cachedTokens: 0,
    cacheWriteTokens: 0,
    estimatedCost: "225",
    chargedCost: "225",
    finishReason: "stop",
    errorClass: null,
    ttftMs: 12,
    latencyMs: 80,
    completedAt: Date.now(),
    ...overrides,
  });

  it("records a payment once and bills usage at actual cost, the variance visible, the ledger balanced", async () => {
    const { payer, requestId, payment, event } = await paidRequest(225n);
    const recordPayment = app.get(RecordChargePaymentUseCase);
    await recordPayment.record(event);
    await recordPayment.record(event);
    expect(await accountBalance(db, `liability:payer_prepaid:${payer}`)).toBe(-225n);
    expect(await db.settlement.count({ where: { chargePaymentId: payment.id, kind: "charge", status: "confirmed" } })).toBe(1);

    const recordUsage = app.get(RecordUsageUseCase);
    await recordUsage.record(usage({ requestId, payer, paymentId: payment.id }));
    await recordUsage.record(usage({ requestId, payer, paymentId: payment.id }));
    // gpt-4o-mini: 1000 × $0.15/1M + 2000 × $0.60/1M = 150 + 1200 = 1350 base units; paid 225 → variance −1125 (a loss).
    const row = await db.inferenceRequest.findUniqueOrThrow({ where: { id: requestId } });
    expect(row.actualCost?.toFixed()).toBe("1350");
    expect(row.estimatedCost.toFixed()).toBe("225");
    expect(await accountBalance(db, `liability:payer_prepaid:${payer}`)).toBe(0n);
    const lines = await db.ledgerEntry.findMany({ where: { transaction: { reference: requestId } } });
    expect(Object.fromEntries(lines.map((l) => [l.account, l.amount.toFixed()]))).toEqual({
      [`liability:payer_prepaid:${payer}`]: "225",
      "revenue:usage": "-1350",
      "revenue:estimate_variance": "1125",
    });
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe("consumed");
    const totals = await db.$queryRaw<{ total: string }[]>`SELECT COALESCE(SUM(amount),0)::text AS total FROM ledger_entries`;
    expect(totals[0]?.total).toBe("0");
  });

  it("does not bill a paid request that served nothing: it is marked for an on-chain refund", async () => {
    const { payer, requestId, payment, event } = await paidRequest(300n);
    await app.get(RecordChargePaymentUseCase).record(event);
    await app
      .get(RecordUsageUseCase)
      .record(
        usage(
          { requestId, payer, paymentId: payment.id },
          { status: "failed", completionTokens: 0, finishReason: null, errorClass: "upstream_unavailable" },
        ),
      );
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe("refunding");
    expect(await db.ledgerTransaction.count({ where: { reference: requestId } })).toBe(0);
    expect(await accountBalance(db, `liability:payer_prepaid:${payer}`)).toBe(-300n);
    expect((await db.inferenceRequest.findUniqueOrThrow({ where: { id: requestId } })).status).toBe("failed");
  });

  it("refunds a verified charge that never reached an inference, and a late usage event cannot bill it too", async () => {
    const { payer, requestId, payment, event } = await paidRequest(500n);
    await app.get(RecordChargePaymentUseCase).record(event);
    const fresh = await paidRequest(700n);
    await db.$executeRaw`UPDATE charge_payments SET "createdAt" = now() - interval '1 hour' WHERE id = ${payment.id}::uuid`;

    const swept = await app.get(SweepOrphanedChargesUseCase).sweep();
    expect(swept).toContain(payment.id);
    expect(swept).not.toContain(fresh.payment.id);
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe("refunding");
    expect((await refundJob(payment.id))?.data).toMatchObject({ kind: "refund", reference: payment.id });
    expect(await app.get(SweepOrphanedChargesUseCase).sweep()).not.toContain(payment.id);

    await app.get(RecordUsageUseCase).record(usage({ requestId, payer, paymentId: payment.id }));
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe("refunding");
    expect(await db.ledgerTransaction.count({ where: { reference: requestId } })).toBe(0);
  });

  const ledgerTransactions = (reference: string) => db.ledgerTransaction.count({ where: { reference } });

  it("a payment left refunding without its refund job (crash before the enqueue) gets one; a refund that gave up does not", async () => {
    const lost = await paidRequest(600n, "refunding");
    const gaveUp = await paidRequest(700n, "refunding");
    await db.settlement.create({
      data: {
        kind: "refund",
        chainId: 4217,
        amount: gaveUp.payment.amount,
        chargePaymentId: gaveUp.payment.id,
        status: "failed",
        error: "x",
      },
    });
    await db.$executeRaw`UPDATE charge_payments SET "updatedAt" = now() - interval '1 hour' WHERE id IN (${lost.payment.id}::uuid, ${gaveUp.payment.id}::uuid)`;
    expect(await refundJob(lost.payment.id)).toBeUndefined();

    const requeued = await app.get(SweepOrphanedChargesUseCase).requeueLostRefunds();
    expect(requeued).toContain(lost.payment.id);
    expect(requeued).not.toContain(gaveUp.payment.id);
    expect((await refundJob(lost.payment.id))?.data).toMatchObject({ kind: "refund", reference: lost.payment.id });
  });

  it("two replicas' sweep ticks never overlap: while one holds the sweep lease the other skips", async () => {
    const sweeper = app.get(SweepOrphanedChargesUseCase);
    const other = app.get(Leases).lease("charges-sweep", 30_000);
    const held = await other.tryAcquire();
    expect(held).not.toBeNull();
    const { payment, event } = await paidRequest(800n);
    await app.get(RecordChargePaymentUseCase).record(event);
    await db.$executeRaw`UPDATE charge_payments SET "createdAt" = now() - interval '1 hour' WHERE id = ${payment.id}::uuid`;
    try {
      expect(await sweeper.sweepExclusively()).toEqual([]);
      expect((await db.chargePayment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe("verified");
    } finally {
      await held!.release();
    }
    expect(await sweeper.sweepExclusively()).toContain(payment.id);
  });

  it("a redelivered payment event posts once, also when both deliveries race", async () => {
    const { payer, payment, event } = await paidRequest(400n);
    const recordPayment = app.get(RecordChargePaymentUseCase);
    expect(await Promise.all([recordPayment.record(event), recordPayment.record(event)])).toEqual(expect.arrayContaining([true, false]));
    expect(await recordPayment.record(event)).toBe(false);
    expect(await ledgerTransactions(payment.id)).toBe(1);
    expect(await db.settlement.count({ where: { chargePaymentId: payment.id } })).toBe(1);
    expect(await accountBalance(db, `liability:payer_prepaid:${payer}`)).toBe(-400n);
  });

  it("a redelivered usage event posts once, also when both deliveries race", async () => {
    const { payer, requestId, payment, event } = await paidRequest(225n);
    await app.get(RecordChargePaymentUseCase).record(event);
    const recordUsage = app.get(RecordUsageUseCase);
    const u = usage({ requestId, payer, paymentId: payment.id });
    await Promise.all([recordUsage.record(u), recordUsage.record(u)]);
    await recordUsage.record(u);
    expect(await ledgerTransactions(requestId)).toBe(1);
    expect(await db.inferenceRequest.count({ where: { id: requestId } })).toBe(1);
    expect(await accountBalance(db, `liability:payer_prepaid:${payer}`)).toBe(0n);
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe("consumed");
  });

  it.each(["refunding", "refunded"] as const)("usage for a payment already %s bills nothing and leaves it as it is", async (status) => {
    const { payer, requestId, payment, event } = await paidRequest(500n, status);
    await app.get(RecordChargePaymentUseCase).record(event);
    await app.get(RecordUsageUseCase).record(usage({ requestId, payer, paymentId: payment.id }));
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe(status);
    expect(await ledgerTransactions(requestId)).toBe(0);
    expect(await accountBalance(db, `liability:payer_prepaid:${payer}`)).toBe(-500n);
    expect((await db.inferenceRequest.findUniqueOrThrow({ where: { id: requestId } })).actualCost?.toFixed()).toBe("1350");
  });

  it("served nothing: the payment goes to `refunding` and its refund is queued, also on redelivery after a crash before the enqueue", async () => {
    const { payer, requestId, payment, event } = await paidRequest(300n);
    await app.get(RecordChargePaymentUseCase).record(event);
    const failed = usage(
      { requestId, payer, paymentId: payment.id },
      { status: "failed", completionTokens: 0, finishReason: null, errorClass: "upstream_unavailable" },
    );
    const queues = app.get(JobQueues);
    const enqueue = vi.spyOn(queues, "enqueue").mockRejectedValueOnce(new Error("process died before the enqueue"));
    try {
      await expect(app.get(RecordUsageUseCase).record(failed)).rejects.toThrow(/process died/);
      expect((await db.chargePayment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe("refunding");
      expect(await refundJob(payment.id)).toBeUndefined();

      await app.get(RecordUsageUseCase).record(failed);
      expect((await refundJob(payment.id))?.data).toMatchObject({ kind: "refund", reference: payment.id });
      expect(enqueue).toHaveBeenCalledTimes(2);
    } finally {
      enqueue.mockRestore();
    }
    expect(await ledgerTransactions(requestId)).toBe(0);
    expect(await db.inferenceRequest.count({ where: { id: requestId } })).toBe(1);
  });

  it("bills what the payment row says was paid when the event's charged amount disagrees", async () => {
    const { payer, requestId, payment, event } = await paidRequest(2000n);
    await app.get(RecordChargePaymentUseCase).record(event);
    await app
      .get(RecordUsageUseCase)
      .record(usage({ requestId, payer, paymentId: payment.id }, { estimatedCost: "1500", chargedCost: "1500" }));
    const lines = await db.ledgerEntry.findMany({ where: { transaction: { reference: requestId } } });
    expect(Object.fromEntries(lines.map((l) => [l.account, l.amount.toFixed()]))).toEqual({
      [`liability:payer_prepaid:${payer}`]: "2000",
      "revenue:usage": "-1350",
      "revenue:estimate_variance": "-650",
    });
    expect(await accountBalance(db, `liability:payer_prepaid:${payer}`)).toBe(0n);
    const request = await db.inferenceRequest.findUniqueOrThrow({ where: { id: requestId } });
    expect(request.estimatedCost.toFixed()).toBe("1500");
    expect(request.chargedCost?.toFixed()).toBe("1500");
  });

  it("records a session request's usage without touching charge payments or the ledger", async () => {
    const requestId = newRequestId();
    await app
      .get(RecordUsageUseCase)
      .record(
        usage(
          { requestId, payer: hex(20), paymentId: randomUUID() },
          { intent: "session", chargePaymentId: undefined, channelId: hex(32) },
        ),
      );
    const row = await db.inferenceRequest.findUniqueOrThrow({ where: { id: requestId } });
    expect(row.intent).toBe("session");
    expect(row.chargePaymentId).toBeNull();
    expect(await ledgerTransactions(requestId)).toBe(0);
  });
});

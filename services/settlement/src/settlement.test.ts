import "reflect-metadata";
import { randomBytes, randomUUID } from "node:crypto";
import type { INestApplicationContext } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { loadConfig } from "@worldrouter/config";
import {
  deduplicationId,
  MONEY_EVENT_FIELD,
  MONEY_EVENTS_GROUP,
  moneyEventStreamKey,
  type ChargeVerifiedEvent,
  type InferenceStartedEvent,
  type MoneyEvent,
  type UsageEvent,
} from "@worldrouter/contracts";
import { accountBalance, createPrismaClient, Prisma, type PrismaClient } from "@worldrouter/db";
import { newRequestId } from "@worldrouter/observability";
import { ensureConsumerGroup, InferenceAdmissions, JobQueues, Leases, redisOptions } from "@worldrouter/runtime";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import { chargeReceived, chargeRefund, chargeUsage } from "./ledger/charge-postings.js";
import { ApplyMoneyEventsUseCase } from "./money-events/apply-money-events.use-case.js";
import { MoneyEventConsumer } from "./money-events/money-event-consumer.js";
import { SettlementModule } from "./settlement.module.js";
import { SweepOrphanedChargesUseCase } from "./sweeps/sweep-orphaned-charges.use-case.js";

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

  const apply = (...events: MoneyEvent[]) => app.get(ApplyMoneyEventsUseCase).apply(events);

  const usage = (p: { requestId: string; payer: string; paymentId: string }, overrides: Partial<UsageEvent> = {}): UsageEvent => ({
    kind: "inference.usage",
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
    await apply(event);
    await apply(event);
    expect(await accountBalance(db, `liability:payer_prepaid:${payer}`)).toBe(-225n);
    expect(await db.settlement.count({ where: { chargePaymentId: payment.id, kind: "charge", status: "confirmed" } })).toBe(1);

    await apply(usage({ requestId, payer, paymentId: payment.id }));
    await apply(usage({ requestId, payer, paymentId: payment.id }));
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
    await apply(event);
    await apply(
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
    await apply(event);
    const fresh = await paidRequest(700n);
    await db.$executeRaw`UPDATE charge_payments SET "createdAt" = now() - interval '1 hour' WHERE id = ${payment.id}::uuid`;

    const swept = await app.get(SweepOrphanedChargesUseCase).sweep();
    expect(swept).toContain(payment.id);
    expect(swept).not.toContain(fresh.payment.id);
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe("refunding");
    expect((await refundJob(payment.id))?.data).toMatchObject({ kind: "refund", reference: payment.id });
    expect(await app.get(SweepOrphanedChargesUseCase).sweep()).not.toContain(payment.id);

    await apply(usage({ requestId, payer, paymentId: payment.id }));
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe("refunding");
    expect(await db.ledgerTransaction.count({ where: { reference: requestId } })).toBe(0);
  });

  const started = (p: { requestId: string; payer: string; paymentId: string }): InferenceStartedEvent => ({
    kind: "inference.started",
    requestId: p.requestId,
    model: "gpt-4o-mini",
    provider: "openai",
    intent: "charge",
    payer: p.payer,
    chargePaymentId: p.paymentId,
    estimatedCost: "225",
    chargedCost: "225",
    startedAt: Date.now(),
  });
  const age = (paymentId: string) =>
    db.$executeRaw`UPDATE charge_payments SET "createdAt" = now() - interval '1 hour' WHERE id = ${paymentId}::uuid`;

  it("never refunds a payment served to a retry of its credential (an inference under servedRequestId, not the first request id)", async () => {
    const paid = await paidRequest(500n);
    const retryId = newRequestId();
    await db.$executeRaw`UPDATE charge_payments SET "servedRequestId" = ${retryId}, "servedAt" = now() WHERE id = ${paid.payment.id}::uuid`;
    await apply(paid.event, started({ requestId: retryId, payer: paid.payer, paymentId: paid.payment.id }));
    await age(paid.payment.id);
    expect(await app.get(SweepOrphanedChargesUseCase).sweep()).not.toContain(paid.payment.id);
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: paid.payment.id } })).status).toBe("verified");
  });

  it("takes the `swept` verdict before refunding, so no worker starts the job later; leaves a payment whose job a worker admitted", async () => {
    const redis = new Redis(redisOptions(config.redis.url));
    onTestFinished(() => redis.disconnect());
    const admissions = new InferenceAdmissions(redis, config.redis.namespace, config);
    const queued = await paidRequest(500n);
    const admitted = await paidRequest(600n);
    await apply(queued.event, admitted.event);
    await age(queued.payment.id);
    await age(admitted.payment.id);
    // A worker started `admitted`'s job a moment ago: its `inference.started` is not applied yet.
    expect(await admissions.admit({ requestId: admitted.requestId, deadline: Date.now() + 60_000 })).toBe("run");

    const swept = await app.get(SweepOrphanedChargesUseCase).sweep();
    expect(swept).toContain(queued.payment.id);
    expect(swept).not.toContain(admitted.payment.id);
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: admitted.payment.id } })).status).toBe("verified");
    // The swept payment's job, still queued and within its deadline, is never run.
    expect(await admissions.admit({ requestId: queued.requestId, deadline: Date.now() + 60_000 })).toBe("swept");
    // Its dropped job's cancelled usage bills nothing and leaves the payment to its one refund.
    await apply(
      usage(
        { requestId: queued.requestId, payer: queued.payer, paymentId: queued.payment.id },
        { status: "cancelled", promptTokens: 0, completionTokens: 0, finishReason: null, errorClass: "InferencePaymentSwept" },
      ),
    );
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: queued.payment.id } })).status).toBe("refunding");
    expect(await db.ledgerTransaction.count({ where: { reference: queued.requestId } })).toBe(0);
  });

  it("never refunds a payment whose inference started (a long stream, no usage yet); refunds one that never started", async () => {
    const serving = await paidRequest(500n);
    const orphan = await paidRequest(600n);
    await apply(serving.event, orphan.event, started({ ...serving, paymentId: serving.payment.id }));
    await age(serving.payment.id);
    await age(orphan.payment.id);

    const swept = await app.get(SweepOrphanedChargesUseCase).sweep();
    expect(swept).toContain(orphan.payment.id);
    expect(swept).not.toContain(serving.payment.id);
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: serving.payment.id } })).status).toBe("verified");
    const row = await db.inferenceRequest.findUniqueOrThrow({ where: { id: serving.requestId } });
    expect(row).toMatchObject({ status: "pending", completedAt: null });
    expect(row.startedAt).not.toBeNull();

    // The stream ends: billed as usual, its start kept.
    await apply(usage({ requestId: serving.requestId, payer: serving.payer, paymentId: serving.payment.id }));
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: serving.payment.id } })).status).toBe("consumed");
    const done = await db.inferenceRequest.findUniqueOrThrow({ where: { id: serving.requestId } });
    expect(done.status).toBe("succeeded");
    expect(done.startedAt).toEqual(row.startedAt);
    expect(await accountBalance(db, `liability:payer_prepaid:${serving.payer}`)).toBe(0n);
  });

  it("does not sweep while money events wait unapplied (settlement down past the window); sweeps once they are in", async () => {
    const orphan = await paidRequest(800n);
    await age(orphan.payment.id);
    // A settlement replica took the orphan's start 2 minutes ago and died before applying it.
    const own = loadConfig({
      ...process.env,
      WORLD_FILE: "/nonexistent",
      PAYEE_ADDRESS: config.chain.payee!,
      LOG_LEVEL: "silent",
      REDIS_NAMESPACE: `${config.redis.namespace}-guard`,
    });
    const redis = new Redis(redisOptions(own.redis.url));
    const stream = moneyEventStreamKey(own.redis.namespace);
    await ensureConsumerGroup(redis, stream, MONEY_EVENTS_GROUP);
    const event = started({ requestId: orphan.requestId, payer: orphan.payer, paymentId: orphan.payment.id });
    await redis.xadd(stream, `${Date.now() - 120_000}-0`, MONEY_EVENT_FIELD, JSON.stringify(event));
    await redis.xreadgroup("GROUP", MONEY_EVENTS_GROUP, "dead-replica", "COUNT", 10, "STREAMS", stream, ">");
    const second = await NestFactory.createApplicationContext(SettlementModule.forRoot(own), { logger: false });
    try {
      expect(await second.get(SweepOrphanedChargesUseCase).sweep()).toEqual([]);
      expect((await db.chargePayment.findUniqueOrThrow({ where: { id: orphan.payment.id } })).status).toBe("verified");

      expect(await second.get(MoneyEventConsumer).reclaim(0)).toBe(1);
      expect(await second.get(SweepOrphanedChargesUseCase).sweep()).not.toContain(orphan.payment.id);
      expect((await db.chargePayment.findUniqueOrThrow({ where: { id: orphan.payment.id } })).status).toBe("verified");
    } finally {
      await second.close();
      redis.disconnect();
    }
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
    await apply(event);
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
    await Promise.all([apply(event), apply(event)]);
    await apply(event);
    expect(await ledgerTransactions(payment.id)).toBe(1);
    expect(await db.settlement.count({ where: { chargePaymentId: payment.id } })).toBe(1);
    expect(await accountBalance(db, `liability:payer_prepaid:${payer}`)).toBe(-400n);
  });

  it("a redelivered usage event posts once, also when both deliveries race", async () => {
    const { payer, requestId, payment, event } = await paidRequest(225n);
    await apply(event);
    const u = usage({ requestId, payer, paymentId: payment.id });
    await Promise.all([apply(u), apply(u)]);
    await apply(u);
    expect(await ledgerTransactions(requestId)).toBe(1);
    expect(await db.inferenceRequest.count({ where: { id: requestId } })).toBe(1);
    expect(await accountBalance(db, `liability:payer_prepaid:${payer}`)).toBe(0n);
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe("consumed");
  });

  it.each(["refunding", "refunded"] as const)("usage for a payment already %s bills nothing and leaves it as it is", async (status) => {
    const { payer, requestId, payment, event } = await paidRequest(500n, status);
    await apply(event);
    await apply(usage({ requestId, payer, paymentId: payment.id }));
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe(status);
    expect(await ledgerTransactions(requestId)).toBe(0);
    expect(await accountBalance(db, `liability:payer_prepaid:${payer}`)).toBe(-500n);
    expect((await db.inferenceRequest.findUniqueOrThrow({ where: { id: requestId } })).actualCost?.toFixed()).toBe("1350");
  });

  it("served nothing: the payment goes to `refunding` and its refund is queued, also on redelivery after a crash before the enqueue", async () => {
    const { payer, requestId, payment, event } = await paidRequest(300n);
    await apply(event);
    const failed = usage(
      { requestId, payer, paymentId: payment.id },
      { status: "failed", completionTokens: 0, finishReason: null, errorClass: "upstream_unavailable" },
    );
    const queues = app.get(JobQueues);
    const enqueue = vi.spyOn(queues, "enqueue").mockRejectedValueOnce(new Error("process died before the enqueue"));
    try {
      await expect(apply(failed)).rejects.toThrow(/process died/);
      expect((await db.chargePayment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe("refunding");
      expect(await refundJob(payment.id)).toBeUndefined();

      await apply(failed);
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
    await apply(event);
    await apply(usage({ requestId, payer, paymentId: payment.id }, { estimatedCost: "1500", chargedCost: "1500" }));
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
    await apply(
      usage({ requestId, payer: hex(20), paymentId: randomUUID() }, { intent: "session", chargePaymentId: undefined, channelId: hex(32) }),
    );
    const row = await db.inferenceRequest.findUniqueOrThrow({ where: { id: requestId } });
    expect(row.intent).toBe("session");
    expect(row.chargePaymentId).toBeNull();
    expect(await ledgerTransactions(requestId)).toBe(0);
  });
});

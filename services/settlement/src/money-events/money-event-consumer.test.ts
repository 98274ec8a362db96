import "reflect-metadata";
import { randomBytes, randomUUID } from "node:crypto";
import type { INestApplicationContext } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { loadConfig, type Config } from "@worldrouter/config";
import {
  MONEY_EVENT_FIELD,
  MONEY_EVENTS_GROUP,
  moneyEventStreamKey,
  parkedMoneyEventStreamKey,
  type ChargeVerifiedEvent,
  type MoneyEvent,
  type UsageEvent,
} from "@worldrouter/contracts";
import { accountBalance, createPrismaClient, Prisma, type PrismaClient } from "@worldrouter/db";
import { newRequestId } from "@worldrouter/observability";
import { ensureConsumerGroup, redisOptions } from "@worldrouter/runtime";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SettlementModule } from "../settlement.module.js";
import { MoneyEventConsumer } from "./money-event-consumer.js";
import { MoneyEventStream } from "./money-event-stream.js";

const hex = (bytes: number) => `0x${randomBytes(bytes).toString("hex")}`;
const token = "0x20c0000000000000000000000000000000000abc";
let db: PrismaClient;
let redis: Redis;
let base: Config;
const apps: INestApplicationContext[] = [];
let lane = 0;

beforeAll(() => {
  base = loadConfig({
    ...process.env,
    WORLD_FILE: "/nonexistent",
    PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa",
    LOG_LEVEL: "silent",
  });
  db = createPrismaClient(base.databaseUrl);
  redis = new Redis(redisOptions(base.redis.url));
});
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});
afterAll(async () => {
  redis.disconnect();
  await db.$disconnect();
});

/** Each test its own stream (a namespace of its own), shared database. */
function lane_(): { config: Config; stream: string; parked: string } {
  const namespace = `${base.redis.namespace}-pipeline-${++lane}`;
  const config = { ...base, redis: { ...base.redis, namespace } };
  return { config, stream: moneyEventStreamKey(namespace), parked: parkedMoneyEventStreamKey(namespace) };
}

async function settlement(config: Config): Promise<INestApplicationContext> {
  const app = await NestFactory.createApplicationContext(SettlementModule.forRoot(config), { logger: false });
  apps.push(app);
  return app;
}

async function paid(amount: bigint) {
  const payer = hex(20);
  const requestId = newRequestId();
  const payment = await db.chargePayment.create({
    data: {
      challengeId: randomUUID(),
      txHash: hex(32),
      requestId,
      payer,
      recipient: base.chain.payee!,
      token,
      chainId: 4217,
      amount: new Prisma.Decimal(amount.toString()),
      status: "verified",
    },
  });
  const verified: ChargeVerifiedEvent = {
    kind: "charge.verified",
    paymentId: payment.id,
    challengeId: payment.challengeId,
    requestId,
    txHash: payment.txHash,
    payer,
    recipient: base.chain.payee!,
    token,
    chainId: 4217,
    amount: amount.toString(),
    blockNumber: "7",
    verifiedAt: Date.now(),
  };
  const usage: UsageEvent = {
    kind: "inference.usage",
    requestId,
    model: "gpt-4o-mini",
    provider: "openai",
    intent: "charge",
    payer,
    chargePaymentId: payment.id,
    status: "succeeded",
    promptTokens: 1000,
    completionTokens: 2000,
    cachedTokens: 0,
    cacheWriteTokens: 0,
    estimatedCost: amount.toString(),
    chargedCost: amount.toString(),
    finishReason: "stop",
    errorClass: null,
    ttftMs: 5,
    latencyMs: 20,
    completedAt: Date.now(),
  };
  return { payer, requestId, payment, verified, usage };
}

const publish = (stream: string, ...events: (MoneyEvent | string)[]) =>
  Promise.all(events.map((e) => redis.xadd(stream, "*", MONEY_EVENT_FIELD, typeof e === "string" ? e : JSON.stringify(e))));

/** gpt-4o-mini, 1000 prompt + 2000 completion tokens: 1350 base units. */
async function expectBilledOnce(p: Awaited<ReturnType<typeof paid>>) {
  expect((await db.chargePayment.findUniqueOrThrow({ where: { id: p.payment.id } })).status).toBe("consumed");
  expect(await db.ledgerTransaction.count({ where: { reference: { in: [p.payment.id, p.requestId] } } })).toBe(2);
  expect(await db.settlement.count({ where: { chargePaymentId: p.payment.id, kind: "charge" } })).toBe(1);
  expect(await accountBalance(db, `liability:payer_prepaid:${p.payer}`)).toBe(0n);
  expect((await db.inferenceRequest.findUniqueOrThrow({ where: { id: p.requestId } })).actualCost?.toFixed()).toBe("1350");
}

const pendingCount = async (stream: string) => ((await redis.xpending(stream, MONEY_EVENTS_GROUP)) as [number])[0];

describe("money-event consumer (real Redis + Postgres)", () => {
  it("applies a batch of mixed events once; the same entries again change nothing", async () => {
    const { config, stream } = lane_();
    const requests = await Promise.all([1, 2, 3, 4, 5].map((n) => paid(200n + BigInt(n))));
    await publish(stream, ...requests.flatMap((r) => [r.verified, r.usage]));
    const app = await settlement(config);
    await expect.poll(() => app.get(MoneyEventStream).backlog(), { timeout: 10_000 }).toMatchObject({ undelivered: false, pending: 0 });
    for (const r of requests) await expectBilledOnce(r);

    // Redelivery: the very same entries handed to the consumer again.
    const entries = (await redis.xrange(stream, "-", "+")).map(([id, fields]) => ({ id, fields }));
    await app.get(MoneyEventConsumer).applyEntries(entries);
    for (const r of requests) await expectBilledOnce(r);
  });

  it("parks a poison event with its error while the rest of its batch applies", async () => {
    const { config, stream, parked } = lane_();
    const good = await paid(300n);
    // Valid by schema, refused by Postgres alone (integer out of range): found by replaying the batch one by one.
    const poison: UsageEvent = {
      ...good.usage,
      requestId: newRequestId(),
      intent: "session",
      chargePaymentId: undefined,
      promptTokens: 3e9,
    };
    await publish(stream, good.verified, "{not json", poison, good.usage);
    const app = await settlement(config);
    await expect.poll(() => redis.xlen(parked), { timeout: 10_000 }).toBe(2);
    await expect.poll(() => app.get(MoneyEventStream).backlog()).toMatchObject({ undelivered: false, pending: 0 });
    await expectBilledOnce(good);
    const dead = (await redis.xrange(parked, "-", "+")).map(([, f]) => Object.fromEntries([0, 2, 4].map((i) => [f[i], f[i + 1]])));
    expect(dead).toEqual([
      expect.objectContaining({ event: "{not json", error: expect.stringMatching(/not JSON/) }),
      expect.objectContaining({ event: JSON.stringify(poison), error: expect.stringMatching(/^22003: .*out of range/) }),
    ]);
    expect(await db.inferenceRequest.count({ where: { id: poison.requestId } })).toBe(0);
  });

  it("a consumer that died holding a batch: another reclaims it and applies it once", async () => {
    const { config, stream } = lane_();
    const requests = await Promise.all([1, 2, 3].map((n) => paid(400n + BigInt(n))));
    await ensureConsumerGroup(redis, stream, MONEY_EVENTS_GROUP);
    await publish(stream, ...requests.flatMap((r) => [r.verified, r.usage]));
    // The dead replica read them (pending on it) and never acknowledged.
    await redis.xreadgroup("GROUP", MONEY_EVENTS_GROUP, "dead-replica", "COUNT", 100, "STREAMS", stream, ">");
    const app = await settlement(config);
    expect(await pendingCount(stream)).toBe(6);
    expect(await db.inferenceRequest.count({ where: { id: { in: requests.map((r) => r.requestId) } } })).toBe(0);
    expect(await app.get(MoneyEventConsumer).reclaim(0)).toBe(6);
    expect(await pendingCount(stream)).toBe(0);
    for (const r of requests) await expectBilledOnce(r);
    // The dead replica's own late COMMIT replayed: still once.
    await app.get(MoneyEventConsumer).applyEntries((await redis.xrange(stream, "-", "+")).map(([id, fields]) => ({ id, fields })));
    for (const r of requests) await expectBilledOnce(r);
  });

  it("two settlement replicas on one stream apply every event exactly once", async () => {
    const { config, stream } = lane_();
    const [one, two] = [await settlement(config), await settlement(config)];
    const requests = await Promise.all(Array.from({ length: 40 }, (_, n) => paid(500n + BigInt(n))));
    // Usage events of the first half land before their payments (other replica, reclaim): retried, not parked.
    await publish(
      stream,
      ...requests.slice(0, 20).flatMap((r) => [r.usage, r.verified]),
      ...requests.slice(20).flatMap((r) => [r.verified, r.usage]),
    );
    await expect
      .poll(
        async () =>
          (await one.get(MoneyEventStream).backlog()).pending === 0 &&
          (await db.chargePayment.count({
            where: { id: { in: requests.map((r) => r.payment.id) }, status: "consumed" },
          })) === 40,
        { timeout: 20_000 },
      )
      .toBe(true);
    for (const r of requests) await expectBilledOnce(r);
    const consumers = (await redis.xinfo("CONSUMERS", stream, MONEY_EVENTS_GROUP)) as unknown[][];
    expect(consumers.map((c) => c[1]).sort()).toEqual([one.get(MoneyEventConsumer).consumer, two.get(MoneyEventConsumer).consumer].sort());
  });

  it("a usage arriving before its payment waits (pending, not parked) and is billed once the payment arrives", async () => {
    const { config, stream, parked } = lane_();
    const p = await paid(700n);
    await publish(stream, p.usage);
    const app = await settlement(config);
    await expect.poll(() => redis.xpending(stream, MONEY_EVENTS_GROUP).then((r) => (r as [number])[0]), { timeout: 10_000 }).toBe(1);
    expect(await db.inferenceRequest.count({ where: { id: p.requestId } })).toBe(0);
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: p.payment.id } })).status).toBe("verified");
    await publish(stream, p.verified);
    await expect.poll(() => pendingCount(stream), { timeout: 10_000 }).toBe(0);
    await expectBilledOnce(p);
    expect(await redis.exists(parked)).toBe(0);
    expect(app).toBeDefined();
  });

  it("trimming never removes an unacknowledged entry, and does remove acknowledged ones", async () => {
    const { config, stream } = lane_();
    const stream_ = new MoneyEventStream(config, { warn: () => undefined } as never);
    try {
      await stream_.connect();
      await ensureConsumerGroup(redis, stream, MONEY_EVENTS_GROUP);
      await ensureConsumerGroup(redis, stream, "audit");
      const ids = (await publish(stream, ...["a", "b", "c", "d", "e", "f"].map((x) => `"${x}"`))) as string[];
      // settlement: reads all, acknowledges all but the 2nd. audit: reads the first 4, acknowledges them.
      await redis.xreadgroup("GROUP", MONEY_EVENTS_GROUP, "s1", "COUNT", 100, "STREAMS", stream, ">");
      await redis.xack(stream, MONEY_EVENTS_GROUP, ...ids.filter((_, i) => i !== 1));
      await redis.xreadgroup("GROUP", "audit", "a1", "COUNT", 4, "STREAMS", stream, ">");
      await redis.xack(stream, "audit", ...ids.slice(0, 4));
      expect(await stream_.trimAcknowledged()).toBe(1);
      expect((await redis.xrange(stream, "-", "+")).map(([id]) => id)).toEqual(ids.slice(1));
      await redis.xack(stream, MONEY_EVENTS_GROUP, ids[1]!);
      expect(await stream_.trimAcknowledged()).toBe(2);
      // The audit group has not read the last two; its last delivered entry (acknowledged) stays as the floor.
      expect((await redis.xrange(stream, "-", "+")).map(([id]) => id)).toEqual(ids.slice(3));
    } finally {
      await stream_.onApplicationShutdown();
    }
  });
});

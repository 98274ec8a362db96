import "reflect-metadata";
import { Injectable, Module, type INestApplicationContext } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { loadConfig, type Config } from "@worldrouter/config";
import { MONEY_EVENT_FIELD, moneyEventStreamKey } from "@worldrouter/contracts";
import { newRequestId } from "@worldrouter/observability";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CoreModule,
  JobConsumersModule,
  JobHandler,
  JobQueues,
  MissingJobHandlerError,
  MoneyEventPublisher,
  MoneyEventsModule,
  QueuesModule,
  redisOptions,
  type JobPayload,
} from "./index.js";

const config: Config = loadConfig({
  ...process.env,
  WORLD_FILE: "/nonexistent",
  PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa",
  LOG_LEVEL: "silent",
});

describe("BullMQ between services", () => {
  const received: JobPayload<"settlement">[] = [];
  let producer: INestApplicationContext;
  let consumer: INestApplicationContext;

  @Injectable()
  class SettlementSink {
    @JobHandler("settlement")
    async onSettlement(job: JobPayload<"settlement">) {
      received.push(job);
    }
  }

  beforeAll(async () => {
    @Module({ imports: [CoreModule.forRoot("producer", config), QueuesModule.forRoot(config, ["settlement"])] })
    class ProducerModule {}
    @Module({
      imports: [CoreModule.forRoot("consumer", config), JobConsumersModule.forRoot({ consumes: ["settlement"] })],
      providers: [SettlementSink],
    })
    class ConsumerModule {}
    producer = await NestFactory.createApplicationContext(ProducerModule, { logger: false });
    consumer = await NestFactory.createApplicationContext(ConsumerModule, { logger: false });
  });
  afterAll(async () => {
    await producer.close();
    await consumer.close();
  });

  it("delivers a schema-checked job from one app to another, once per job id", async () => {
    const job: JobPayload<"settlement"> = { kind: "refund", reference: newRequestId(), requestedAt: Date.now() };
    const queues = producer.get(JobQueues);
    await queues.enqueue("settlement", job);
    await queues.enqueue("settlement", job); // same job id: deduplicated by BullMQ
    await expect.poll(() => received.find((e) => e.reference === job.reference), { timeout: 10_000 }).toBeDefined();
    await new Promise((r) => setTimeout(r, 300));
    expect(received.filter((e) => e.reference === job.reference)).toHaveLength(1);
  });

  it("refuses to enqueue a payload that breaks the contract", async () => {
    await expect(producer.get(JobQueues).enqueue("settlement", { kind: "x" } as never)).rejects.toThrow(/kind|Invalid/);
  });
});

describe("money-event publisher", () => {
  let app: INestApplicationContext;
  beforeAll(async () => {
    @Module({ imports: [CoreModule.forRoot("publisher", config), MoneyEventsModule.forRoot()] })
    class PublisherModule {}
    app = await NestFactory.createApplicationContext(PublisherModule, { logger: false });
  });
  afterAll(() => app.close());

  it("adds a schema-checked event to the money-event stream and returns once Redis has it", async () => {
    const redis = new Redis(redisOptions(config.redis.url));
    try {
      const id = await app.get(MoneyEventPublisher).publish({
        kind: "charge.verified",
        paymentId: "00000000-0000-4000-8000-000000000001",
        challengeId: "c",
        requestId: newRequestId(),
        txHash: `0x${"ab".repeat(32)}`,
        payer: "0x00000000000000000000000000000000000000bb",
        recipient: "0x00000000000000000000000000000000000000aa",
        token: "0x20c0000000000000000000000000000000000abc",
        chainId: 4217,
        amount: "10",
        blockNumber: "1",
        verifiedAt: Date.now(),
      });
      const [entry] = await redis.xrange(moneyEventStreamKey(config.redis.namespace), id, id);
      expect(entry?.[1][0]).toBe(MONEY_EVENT_FIELD);
      expect(JSON.parse(entry![1][1]!)).toMatchObject({ kind: "charge.verified", amount: "10" });
      await expect(app.get(MoneyEventPublisher).publish({ kind: "inference.usage" } as never)).rejects.toThrow(/requestId|Invalid/);
    } finally {
      redis.disconnect();
    }
  });
});

describe("typed job registry", () => {
  it("fails the boot when a consumed queue has no handler", async () => {
    @Module({ imports: [CoreModule.forRoot("broken", config), JobConsumersModule.forRoot({ consumes: ["settlement", "charge-records"] })] })
    class BrokenModule {}
    await expect(
      NestFactory.createApplicationContext(BrokenModule, { logger: false, abortOnError: false }).then((app) => app.init()),
    ).rejects.toBeInstanceOf(MissingJobHandlerError);
  });
});

import "reflect-metadata";
import { Injectable, Module, type INestApplicationContext } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { loadConfig, type Config } from "@worldrouter/config";
import { newRequestId } from "@worldrouter/observability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoreModule, JobConsumersModule, JobHandler, JobQueues, MissingJobHandlerError, QueuesModule, type JobPayload } from "./index.js";

const config: Config = loadConfig({
  ...process.env,
  WORLD_FILE: "/nonexistent",
  PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa",
  LOG_LEVEL: "silent",
});

describe("BullMQ between services", () => {
  const received: JobPayload<"usage">[] = [];
  let producer: INestApplicationContext;
  let consumer: INestApplicationContext;

  @Injectable()
  class UsageSink {
    @JobHandler("usage")
    async onUsage(event: JobPayload<"usage">) {
      received.push(event);
    }
  }

  beforeAll(async () => {
    @Module({ imports: [CoreModule.forRoot("producer", config), QueuesModule.forRoot(config, ["usage"])] })
    class ProducerModule {}
    @Module({
      imports: [CoreModule.forRoot("consumer", config), JobConsumersModule.forRoot({ consumes: ["usage"] })],
      providers: [UsageSink],
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
    const event: JobPayload<"usage"> = {
      requestId: newRequestId(),
      model: "gpt-4o-mini",
      provider: "openai",
      intent: "charge",
      payer: "0x00000000000000000000000000000000000000bb",
      status: "succeeded",
      promptTokens: 10,
      completionTokens: 5,
      cachedTokens: 0,
      cacheWriteTokens: 0,
      estimatedCost: "3",
      chargedCost: "3",
      finishReason: "stop",
      errorClass: null,
      ttftMs: 12,
      latencyMs: 40,
      completedAt: Date.now(),
    };
    const queues = producer.get(JobQueues);
    await queues.enqueue("usage", event);
    await queues.enqueue("usage", event); // same job id: deduplicated by BullMQ
    await expect.poll(() => received.find((e) => e.requestId === event.requestId), { timeout: 10_000 }).toBeDefined();
    await new Promise((r) => setTimeout(r, 300));
    expect(received.filter((e) => e.requestId === event.requestId)).toHaveLength(1);
  });

  it("refuses to enqueue a payload that breaks the contract", async () => {
    await expect(producer.get(JobQueues).enqueue("usage", { requestId: "x" } as never)).rejects.toThrow(/requestId|Invalid/);
  });
});

describe("typed job registry", () => {
  it("fails the boot when a consumed queue has no handler", async () => {
    @Module({ imports: [CoreModule.forRoot("broken", config), JobConsumersModule.forRoot({ consumes: ["usage", "payments"] })] })
    class BrokenModule {}
    await expect(
      NestFactory.createApplicationContext(BrokenModule, { logger: false, abortOnError: false }).then((app) => app.init()),
    ).rejects.toBeInstanceOf(MissingJobHandlerError);
  });
});

import "reflect-metadata";
import { Controller, Injectable, Module, type INestApplicationContext, type INestMicroservice } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { MessagePattern, Payload } from "@nestjs/microservices";
import { loadConfig, type Config } from "@worldrouter/config";
import { newRequestId } from "@worldrouter/observability";
import { firstValueFrom, timeout } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CoreModule,
  createRpcClient,
  createRpcServer,
  JobConsumersModule,
  JobHandler,
  JobQueues,
  MissingJobHandlerError,
  QueuesModule,
  type JobPayload,
} from "./index.js";

const config: Config = loadConfig({
  ...process.env,
  WORLD_FILE: "/nonexistent",
  PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa",
  LOG_LEVEL: "silent",
});

@Controller()
class EchoController {
  @MessagePattern("test.echo")
  echo(@Payload() message: { n: number }) {
    return { doubled: message.n * 2 };
  }
}

describe("Redis transport RPC (namespaced)", () => {
  let server: INestMicroservice;
  beforeAll(async () => {
    @Module({ imports: [CoreModule.forRoot("rpc-server", config)], controllers: [EchoController] })
    class ServerModule {}
    server = await NestFactory.createMicroservice(ServerModule, { strategy: createRpcServer(config), logger: false });
    await server.listen();
  });
  afterAll(() => server.close());

  it("round-trips a request between two Nest apps", async () => {
    const client = createRpcClient(config);
    await client.connect();
    try {
      const replies = await Promise.all([1, 2, 3].map((n) => firstValueFrom(client.send("test.echo", { n }))));
      expect(replies).toEqual([{ doubled: 2 }, { doubled: 4 }, { doubled: 6 }]);
    } finally {
      await client.close();
    }
  });

  it("is invisible to a client in another namespace", async () => {
    const other = createRpcClient({ ...config, redis: { ...config.redis, namespace: `${config.redis.namespace}-other` } });
    await other.connect();
    try {
      await expect(firstValueFrom(other.send("test.echo", { n: 1 }).pipe(timeout(500)))).rejects.toThrow(/timeout/i);
    } finally {
      await other.close();
    }
  });
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

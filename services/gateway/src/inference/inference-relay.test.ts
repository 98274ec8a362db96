import "reflect-metadata";
import { Module, type INestApplicationContext } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { loadConfig, type Config } from "@worldrouter/config";
import { MONEY_EVENT_FIELD, moneyEventStreamKey, type MoneyEvent, type StreamMessage, type UsageEvent } from "@worldrouter/contracts";
import { startFakeUpstream, type FakeUpstream } from "@worldrouter/fake-upstream";
import { newRequestId } from "@worldrouter/observability";
import { CoreModule, MoneyEventsModule, redisOptions } from "@worldrouter/runtime";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The worker runs in-process so the test drives the real dispatch stream and reply stream end to end.
import { InferenceWorkerModule } from "../../../inference-worker/src/inference-worker.module.js";
import { modelRegistryProvider } from "../pricing/model-registry.provider.js";
import { InferenceRelay, type InferenceRequest } from "./inference-relay.js";

const PAYER = "0x00000000000000000000000000000000000000bb";
let fast: FakeUpstream;
let slow: FakeUpstream;
let config: Config;
let gateway: INestApplicationContext;
let worker: INestApplicationContext;
let relay: InferenceRelay;
let redis: Redis;

beforeAll(async () => {
  fast = await startFakeUpstream({ port: 0, defaults: { completionTokens: 24 } });
  slow = await startFakeUpstream({ port: 0, defaults: { completionTokens: 400, latencyMs: 10 } });
  config = loadConfig({
    ...process.env,
    WORLD_FILE: "/nonexistent",
    PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa",
    LOG_LEVEL: "silent",
    OPENAI_BASE_URL: `${fast.url}/v1`,
    OPENAI_API_KEY: "test",
    ANTHROPIC_BASE_URL: slow.url,
    ANTHROPIC_API_KEY: "test",
  });
  @Module({
    imports: [CoreModule.forRoot("gateway", config), MoneyEventsModule.forRoot()],
    providers: [InferenceRelay, modelRegistryProvider],
  })
  class GatewaySideModule {}
  gateway = await NestFactory.createApplicationContext(GatewaySideModule, { logger: false });
  worker = await NestFactory.createApplicationContext(InferenceWorkerModule.forRoot(config), { logger: false });
  await Promise.all([gateway.init(), worker.init()]);
  relay = gateway.get(InferenceRelay);
  redis = new Redis(redisOptions(config.redis.url));
});
afterAll(async () => {
  redis.disconnect();
  await gateway.close();
  await worker.close();
  await fast.close();
  await slow.close();
});

function request(model: string, body: Record<string, unknown> = {}): InferenceRequest {
  return {
    requestId: newRequestId(),
    model,
    intent: "charge",
    payer: PAYER,
    body: { model, messages: [{ role: "user", content: "Tell me about relays." }], ...body },
    stream: body.stream === true,
    promptTokens: 12,
    estimatedCost: "50",
    chargedCost: "50",
  };
}

async function collect(messages: AsyncIterable<StreamMessage>): Promise<StreamMessage[]> {
  const out: StreamMessage[] = [];
  for await (const message of messages) out.push(message);
  return out;
}

async function usageOf(requestId: string): Promise<UsageEvent> {
  let usage: MoneyEvent | undefined;
  await expect
    .poll(
      async () =>
        (usage = (await redis.xrange(moneyEventStreamKey(config.redis.namespace), "-", "+"))
          .map(([, fields]) => JSON.parse(fields[fields.indexOf(MONEY_EVENT_FIELD) + 1]!) as MoneyEvent)
          .find((event) => event.kind === "inference.usage" && event.requestId === requestId)),
      { timeout: 10_000 },
    )
    .toBeDefined();
  return usage as UsageEvent;
}

describe("InferenceRelay", () => {
  it("sees the live inference worker (readiness), and none once it is gone", async () => {
    expect(await relay.liveWorkers()).toBe(1);
    const other = loadConfig({
      ...process.env,
      WORLD_FILE: "/nonexistent",
      PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa",
      LOG_LEVEL: "silent",
      REDIS_NAMESPACE: `${config.redis.namespace}-idle`,
    });
    @Module({
      imports: [CoreModule.forRoot("gateway", other), MoneyEventsModule.forRoot()],
      providers: [InferenceRelay, modelRegistryProvider],
    })
    class IdleGatewayModule {}
    const idle = await NestFactory.createApplicationContext(IdleGatewayModule, { logger: false });
    await idle.init();
    try {
      expect(await idle.get(InferenceRelay).liveWorkers()).toBe(0);
    } finally {
      await idle.close();
    }
  });

  it("runs a streamed request through the dispatch stream and the worker, yielding chunks then end", async () => {
    const req = request("gpt-4o-mini", { stream: true, stream_options: { include_usage: true } });
    const messages = await collect(relay.run(req, new AbortController().signal));
    expect(messages.at(-1)).toEqual({ type: "end" });
    const chunks = messages.slice(0, -1).map((m) => (m.type === "chunk" ? JSON.parse(m.data) : m));
    expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true);
    expect(chunks.at(-1).usage.completion_tokens).toBe(24);
    expect(await usageOf(req.requestId)).toMatchObject({
      status: "succeeded",
      provider: "openai",
      completionTokens: 24,
      promptTokens: chunks.at(-1).usage.prompt_tokens,
    });
    expect(relay.inFlight).toBe(0);
  });

  it("relays a non-streamed completion", async () => {
    const req = request("gpt-4o-mini");
    const messages = await collect(relay.run(req, new AbortController().signal));
    expect(messages.map((m) => m.type)).toEqual(["completion"]); // a completion is final: iteration ends there, no cancel is sent
    expect(JSON.parse((messages[0] as { data: string }).data).object).toBe("chat.completion");
  });

  it("keeps concurrent requests apart on the one reply stream", async () => {
    const requests = Array.from({ length: 40 }, (_, i) =>
      request("gpt-4o-mini", { stream: true, messages: [{ role: "user", content: `Request number ${i}` }] }),
    );
    const results = await Promise.all(requests.map((req) => collect(relay.run(req, new AbortController().signal))));
    const ids = results.map((messages) => {
      expect(messages.at(-1)).toEqual({ type: "end" });
      const chunkIds = new Set(messages.flatMap((m) => (m.type === "chunk" ? [JSON.parse(m.data).id] : [])));
      expect(chunkIds.size).toBe(1);
      return [...chunkIds][0];
    });
    expect(new Set(ids).size).toBe(requests.length);
    expect(relay.inFlight).toBe(0);
  });

  it("returns a provider error as the terminal message", async () => {
    const messages = await collect(relay.run(request("gpt-4o-mini", { n: 0 }), new AbortController().signal));
    expect(messages).toEqual([
      { type: "error", status: 400, code: "invalid_value", message: expect.stringContaining("'n'"), streamed: false },
    ]);
  });

  it("cancels the worker's upstream call when the client aborts; usage says cancelled", async () => {
    const req = request("claude-haiku-4-5", { stream: true });
    const abort = new AbortController();
    let chunks = 0;
    for await (const message of relay.run(req, abort.signal)) {
      if (message.type === "chunk" && ++chunks === 3) abort.abort();
    }
    expect(chunks).toBe(3);
    await expect.poll(() => slow.stats.clientAborts, { timeout: 5_000 }).toBe(1);
    const usage = await usageOf(req.requestId);
    expect(usage).toMatchObject({ status: "cancelled", provider: "anthropic", errorClass: "InferenceCancelledError" });
    expect(usage.completionTokens).toBeGreaterThan(0);
    expect(usage.completionTokens).toBeLessThan(400);
    expect(relay.inFlight).toBe(0);
  });

  it("cancels when the consumer stops iterating early", async () => {
    const req = request("claude-haiku-4-5", { stream: true });
    for await (const message of relay.run(req, new AbortController().signal)) {
      if (message.type === "chunk") break;
    }
    expect((await usageOf(req.requestId)).status).toBe("cancelled");
  });
});

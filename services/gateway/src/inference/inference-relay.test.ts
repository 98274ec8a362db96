import "reflect-metadata";
import { Module, type INestApplicationContext } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { loadConfig, type Config } from "@worldrouter/config";
import {
  inferenceAdmissionKey,
  MONEY_EVENT_FIELD,
  moneyEventStreamKey,
  type MoneyEvent,
  type StreamMessage,
  type UsageEvent,
} from "@worldrouter/contracts";
import { startFakeUpstream, type FakeUpstream } from "@worldrouter/fake-upstream";
import { newRequestId } from "@worldrouter/observability";
import { CoreModule, MoneyEventsModule, redisOptions } from "@worldrouter/runtime";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The worker runs in-process so the test drives the real dispatch stream and reply stream end to end.
import { InferenceWorkerModule } from "../../../inference-worker/src/inference-worker.module.js";
import { modelRegistryProvider } from "../pricing/model-registry.provider.js";
import { INFERENCE_REPLY_TIMEOUT, InferenceRelay, type InferenceRequest } from "./inference-relay.js";

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

async function usageOf(requestId: string, namespace = config.redis.namespace): Promise<UsageEvent> {
  let usage: MoneyEvent | undefined;
  await expect
    .poll(
      async () =>
        (usage = (await redis.xrange(moneyEventStreamKey(namespace), "-", "+"))
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

describe("job deadline and admission (a gateway whose jobs no worker takes yet)", () => {
  let queued: Config;
  let queuedGateway: INestApplicationContext;
  let queuedRelay: InferenceRelay;
  beforeAll(async () => {
    queued = loadConfig({
      ...process.env,
      WORLD_FILE: "/nonexistent",
      PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa",
      LOG_LEVEL: "silent",
      OPENAI_BASE_URL: `${fast.url}/v1`,
      OPENAI_API_KEY: "test",
      REDIS_NAMESPACE: `${config.redis.namespace}-queued`,
      INFERENCE_REPLY_TIMEOUT_MS: "1000",
    });
    @Module({
      imports: [CoreModule.forRoot("gateway", queued), MoneyEventsModule.forRoot()],
      providers: [InferenceRelay, modelRegistryProvider],
    })
    class QueuedGatewayModule {}
    queuedGateway = await NestFactory.createApplicationContext(QueuedGatewayModule, { logger: false });
    await queuedGateway.init();
    queuedRelay = queuedGateway.get(InferenceRelay);
  });
  afterAll(async () => {
    await queuedGateway.close();
  });

  /** A worker on the queued namespace: it reads what waited, then is closed. */
  async function drainQueueWithAWorker(requestIds: string[]): Promise<UsageEvent[]> {
    const late = await NestFactory.createApplicationContext(InferenceWorkerModule.forRoot(queued), { logger: false });
    await late.init();
    try {
      return await Promise.all(requestIds.map((id) => usageOf(id, queued.redis.namespace)));
    } finally {
      await late.close();
    }
  }

  it("no worker starts the job by its deadline: 504 reply timeout, verdict `expired`; a worker reading it later drops it (cancelled, no tokens, never sent upstream)", async () => {
    const req = request("gpt-4o-mini", { stream: true });
    const upstreamBefore = fast.stats.requests.chatCompletions;
    const started = Date.now();
    const messages = await collect(queuedRelay.run(req, new AbortController().signal));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(messages).toEqual([{ type: "error", status: 504, code: INFERENCE_REPLY_TIMEOUT, message: expect.any(String), streamed: false }]);
    expect(await redis.get(inferenceAdmissionKey(queued.redis.namespace, req.requestId))).toBe("expired");
    const [usage] = await drainQueueWithAWorker([req.requestId]);
    expect(usage).toMatchObject({ status: "cancelled", promptTokens: 0, completionTokens: 0, errorClass: "InferenceDeadlinePassed" });
    expect(fast.stats.requests.chatCompletions).toBe(upstreamBefore);
  });

  it("the client leaves before its job started: verdict `client-gone`, the job is dropped when read, even before its deadline", async () => {
    const req = request("gpt-4o-mini");
    const abort = new AbortController();
    const run = collect(queuedRelay.run(req, abort.signal));
    await new Promise((r) => setTimeout(r, 100));
    abort.abort();
    expect(await run).toEqual([]);
    await expect.poll(() => redis.get(inferenceAdmissionKey(queued.redis.namespace, req.requestId))).toBe("client-gone");
    const upstreamBefore = fast.stats.requests.chatCompletions;
    const [usage] = await drainQueueWithAWorker([req.requestId]);
    expect(usage).toMatchObject({ status: "cancelled", completionTokens: 0, errorClass: "InferenceClientGone" });
    expect(fast.stats.requests.chatCompletions).toBe(upstreamBefore);
  });

  it("a job a worker admitted keeps running past the reply deadline (the idle timeout applies from then)", async () => {
    const req = request("gpt-4o-mini");
    const late = await NestFactory.createApplicationContext(InferenceWorkerModule.forRoot(queued), { logger: false });
    await late.init();
    try {
      const messages = await collect(queuedRelay.run(req, new AbortController().signal));
      expect(messages.map((m) => m.type)).toEqual(["completion"]);
      expect(await redis.get(inferenceAdmissionKey(queued.redis.namespace, req.requestId))).toBe("admitted");
      expect((await usageOf(req.requestId, queued.redis.namespace)).status).toBe("succeeded");
    } finally {
      await late.close();
    }
  });
});

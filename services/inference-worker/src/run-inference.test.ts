import "reflect-metadata";
import type { INestApplicationContext } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { loadConfig, type Config } from "@worldrouter/config";
import {
  cancelChannel,
  decodeReplyEntry,
  encodeReplyEntry,
  INFERENCE_CONSUMER_GROUP,
  INFERENCE_WORKER_LOST,
  inferenceAdmissionKey,
  inferenceJobStreamKey,
  inferenceWorkersKey,
  MONEY_EVENT_FIELD,
  moneyEventStreamKey,
  type MoneyEvent,
  type InferenceJob,
  type StreamMessage,
  type UsageEvent,
} from "@worldrouter/contracts";
import { newRequestId } from "@worldrouter/observability";
import { countCompletionTokens, countPromptTokens, createModelRegistry, getModel, type ChatMessage } from "@worldrouter/pricing";
import { InferenceAdmissions, MoneyEventPublisher, redisOptions } from "@worldrouter/runtime";
import { Redis } from "ioredis";
import { afterAll, beforeAll, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { InferenceJobConsumer } from "./inference-job-consumer.js";
import { InferenceWorkerModule } from "./inference-worker.module.js";
import { ModelUnavailableError } from "./providers/errors.js";
import { ProviderRouter } from "./providers/provider-router.js";
import { RunInference } from "./run-inference.use-case.js";
import { startUpstreams, USER_MESSAGES, type Upstreams } from "./test-support/upstreams.js";

const PAYER = "0x00000000000000000000000000000000000000bb";
let up: Upstreams;
let config: Config;
let app: INestApplicationContext;
let redis: Redis;
let published: MockInstance<MoneyEventPublisher["publish"]>;

/** What a production deployment sets (no local world). */
const PRODUCTION_ENV = {
  NODE_ENV: "production",
  MPP_SECRET_KEY: "a-production-secret-of-at-least-thirty-two-bytes",
  OPS_TOKEN: "a-production-ops-token-of-some-length",
  OPS_READER_PASSWORD: "a-reader-password",
  CHAIN_RPC_URL: "https://rpc.example.invalid",
  CHAIN_ID: "4217",
  TOKEN_ADDRESS: "0x20c000000000000000000000b9537d11c60e8b50",
  PAYEE_ADDRESS: "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", // the payee key's address, as production requires
  PAYEE_PRIVATE_KEY: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  FEE_PAYER_PRIVATE_KEY: "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
};

function testConfig(env: Record<string, string>): Config {
  return loadConfig({
    ...process.env,
    WORLD_FILE: "/nonexistent",
    PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa",
    LOG_LEVEL: "silent",
    ...env,
  });
}

beforeAll(async () => {
  up = await startUpstreams();
  config = testConfig({
    OPENAI_BASE_URL: `${up.proxy.url}/v1`,
    OPENAI_API_KEY: "test",
    ANTHROPIC_BASE_URL: up.proxy.url,
    ANTHROPIC_API_KEY: "test",
    UPSTREAM_MAX_RETRIES: "2",
  });
  app = await NestFactory.createApplicationContext(
    InferenceWorkerModule.forRoot(config, { retryBackoffMs: 5, fallbacks: { "gpt-4.1": ["claude-haiku-4-5"] } }),
    { logger: false },
  );
  await app.init();
  published = vi.spyOn(app.get(MoneyEventPublisher), "publish");
  redis = new Redis(redisOptions(config.redis.url));
});
afterAll(async () => {
  redis.disconnect();
  await app.close();
  await up.close();
});
beforeEach(() => {
  up.proxy.reset();
  up.fake.resetStats();
});

function inferenceJob(model: string, body: Record<string, unknown>, overrides: Partial<InferenceJob> = {}): InferenceJob {
  const found = getModel(model);
  return {
    requestId: newRequestId(),
    model,
    intent: "charge",
    payer: PAYER,
    body: { model, messages: USER_MESSAGES, ...body },
    stream: body.stream === true,
    promptTokens: found ? countPromptTokens(found, USER_MESSAGES as ChatMessage[]) : 0,
    estimatedCost: "100",
    chargedCost: "100",
    replyTo: `${config.redis.namespace}:replies:test-${newRequestId()}`,
    enqueuedAt: Date.now(),
    deadline: Date.now() + 60_000,
    ...overrides,
  };
}

/** The job's reply stream decoded as the gateway's relay decodes it (a chunk entry may carry several `data`). */
async function replies(job: InferenceJob): Promise<StreamMessage[]> {
  const entries = await redis.xrange(job.replyTo, "-", "+");
  return entries.flatMap(([, fields]): StreamMessage[] => {
    const data: string[] = [];
    let type = "";
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i] === "requestId") expect(fields[i + 1]).toBe(job.requestId);
      else if (fields[i] === "type") type = fields[i + 1]!;
      else if (fields[i] === "data") data.push(fields[i + 1]!);
    }
    if (type === "chunk") return data.map((chunk) => ({ type: "chunk", data: chunk }));
    if (type === "completion") return [{ type: "completion", data: data[0]! }];
    if (type === "error") return [{ type: "error", ...JSON.parse(data[0]!) }];
    return [{ type: "end" }];
  });
}

/** The one usage event of a request (fails if there were zero or several). */
function usageOf(requestId: string): UsageEvent {
  const events = published.mock.calls.filter(([event]) => event.kind === "inference.usage" && event.requestId === requestId);
  expect(events).toHaveLength(1);
  return events[0]![0] as UsageEvent;
}

const chunkData = (messages: StreamMessage[]) => messages.flatMap((m) => (m.type === "chunk" ? [JSON.parse(m.data)] : []));
const streamedText = (messages: StreamMessage[]) =>
  chunkData(messages)
    .map((c) => c.choices[0]?.delta?.content ?? "")
    .join("");

describe("RunInference", () => {
  it("streams chunks then end, and reports the provider's usage exactly once", async () => {
    up.proxy.fake = { tokens: "20", "cached-tokens": "3", "reasoning-tokens": "4" };
    const job = inferenceJob("gpt-4o-mini", { stream: true, stream_options: { include_usage: true } });
    await app.get(RunInference).run(job);

    const messages = await replies(job);
    expect(messages.at(-1)).toEqual({ type: "end" });
    expect(messages.slice(0, -1).every((m) => m.type === "chunk")).toBe(true);
    // The first chunk leaves alone (TTFT); the rest of the same upstream read shares entries.
    expect((await redis.xlen(job.replyTo)) < messages.length / 2).toBe(true);
    const reported = chunkData(messages).at(-1).usage;
    const usage = usageOf(job.requestId);
    expect(usage).toMatchObject({
      status: "succeeded",
      provider: "openai",
      model: "gpt-4o-mini",
      promptTokens: reported.prompt_tokens,
      completionTokens: 24,
      cachedTokens: 3,
      cacheWriteTokens: 0,
      finishReason: "stop",
      errorClass: null,
      payer: PAYER,
      estimatedCost: "100",
      chargedCost: "100",
    });
    expect(usage.ttftMs).not.toBeNull();
    expect(usage.latencyMs).toBeGreaterThanOrEqual(usage.ttftMs!);
    const inStream = (await redis.xrange(moneyEventStreamKey(config.redis.namespace), "-", "+"))
      .map(([, fields]) => JSON.parse(fields[fields.indexOf(MONEY_EVENT_FIELD) + 1]!) as MoneyEvent)
      .filter((event) => event.requestId === job.requestId);
    expect(inStream.map((event) => event.kind)).toEqual(["inference.started", "inference.usage"]);
    expect(inStream[1]).toMatchObject({ completionTokens: 24 });
  });

  it.each([true, false])(
    "relays nothing before the inference's start (streamed) or whole usage (not streamed) is in Redis (stream: %s)",
    async (stream) => {
      up.proxy.fake = { tokens: "5" };
      const job = inferenceJob("gpt-4o-mini", { stream });
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const publisher = app.get(MoneyEventPublisher);
      // The prototype's method is the real one (the spy sits on the instance).
      const publish = (event: MoneyEvent) => MoneyEventPublisher.prototype.publish.call(publisher, event);
      let startedCalls = 0;
      published.mockImplementation(async (event) => {
        if (event.kind === (stream ? "inference.started" : "inference.usage") && event.requestId === job.requestId) {
          startedCalls++;
          await held;
        }
        return publish(event);
      });
      try {
        const run = app.get(RunInference).run(job);
        await expect.poll(() => startedCalls).toBe(1);
        expect(await redis.xlen(job.replyTo)).toBe(0);
        release();
        await run;
      } finally {
        published.mockRestore();
        published = vi.spyOn(publisher, "publish");
      }
      expect((await replies(job)).length).toBeGreaterThan(0);
    },
  );

  it("ends a stream only once its usage is in Redis (a worker dying after the last chunk has billed it)", async () => {
    up.proxy.fake = { tokens: "5" };
    const job = inferenceJob("gpt-4o-mini", { stream: true });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const publisher = app.get(MoneyEventPublisher);
    const publish = (event: MoneyEvent) => MoneyEventPublisher.prototype.publish.call(publisher, event);
    let usageCalls = 0;
    published.mockImplementation(async (event) => {
      if (event.kind === "inference.usage" && event.requestId === job.requestId) {
        usageCalls++;
        await held;
      }
      return publish(event);
    });
    try {
      const run = app.get(RunInference).run(job);
      await expect.poll(() => usageCalls).toBe(1);
      await new Promise((r) => setTimeout(r, 100));
      const before = (await replies(job)).map((m) => m.type);
      expect(before).toContain("chunk");
      expect(before).not.toContain("end");
      release();
      await run;
    } finally {
      published.mockRestore();
      published = vi.spyOn(publisher, "publish");
    }
    expect((await replies(job)).at(-1)?.type).toBe("end");
  });

  it("writes one completion then end for a non-streamed Anthropic request, with cache-aware usage", async () => {
    up.proxy.fake = { tokens: "8", "cached-tokens": "5", "cache-write-tokens": "2" };
    const job = inferenceJob("claude-sonnet-4-5", { temperature: 0.1 });
    await app.get(RunInference).run(job);

    const messages = await replies(job);
    expect(messages.map((m) => m.type)).toEqual(["completion"]); // final by itself: no `end` follows
    const completion = JSON.parse((messages[0] as { data: string }).data);
    expect(completion.object).toBe("chat.completion");
    expect(usageOf(job.requestId)).toMatchObject({
      status: "succeeded",
      provider: "anthropic",
      promptTokens: completion.usage.prompt_tokens,
      completionTokens: 8,
      cachedTokens: 5,
      cacheWriteTokens: 2,
    });
  });

  it("retries a 429 and succeeds", async () => {
    up.proxy.fake = { fault: "429", "fail-times": "1", "retry-after": "0" };
    const job = inferenceJob("gpt-4o-mini", { stream: true });
    await app.get(RunInference).run(job);
    expect((await replies(job)).at(-1)).toEqual({ type: "end" });
    expect(up.proxy.requests).toHaveLength(2);
    expect(usageOf(job.requestId).status).toBe("succeeded");
  });

  it("answers a persistent 500 with a 502 error after the retries, billing nothing", async () => {
    up.proxy.fake = { fault: "500" };
    const job = inferenceJob("gpt-4o-mini", { stream: true });
    await app.get(RunInference).run(job);
    expect(await replies(job)).toEqual([
      { type: "error", status: 502, code: "upstream_unavailable", message: expect.stringContaining("500"), streamed: false },
    ]);
    expect(up.proxy.requests).toHaveLength(3);
    expect(usageOf(job.requestId)).toMatchObject({
      status: "failed",
      errorClass: "UpstreamUnavailableError",
      promptTokens: 0,
      completionTokens: 0,
      ttftMs: null,
    });
  });

  it("passes a provider 400 through with its status and message", async () => {
    const job = inferenceJob("gpt-4o-mini", { n: 0 });
    await app.get(RunInference).run(job);
    expect(await replies(job)).toEqual([
      {
        type: "error",
        status: 400,
        code: "invalid_value",
        message: "Invalid 'n': expected an integer between 1 and 128.",
        streamed: false,
      },
    ]);
    expect(usageOf(job.requestId)).toMatchObject({ status: "failed", errorClass: "UpstreamRejectedError" });
  });

  it("ends a stream that broke mid-way with an error and bills the tokens actually streamed", async () => {
    up.proxy.fake = { "disconnect-after": "6", tokens: "30" };
    const job = inferenceJob("gpt-4o-mini", { stream: true });
    await app.get(RunInference).run(job);

    const messages = await replies(job);
    expect(messages.filter((m) => m.type === "chunk")).toHaveLength(6);
    expect(messages.at(-1)).toEqual({
      type: "error",
      status: 502,
      code: "upstream_stream_failed",
      message: expect.any(String),
      streamed: true,
    });
    const text = streamedText(messages);
    expect(text.length).toBeGreaterThan(0);
    expect(usageOf(job.requestId)).toMatchObject({
      status: "failed",
      errorClass: "UpstreamStreamError",
      promptTokens: job.promptTokens,
      completionTokens: countCompletionTokens(getModel("gpt-4o-mini")!, text),
    });
  });

  it("cancels on a message on the cancel channel: the upstream sees the abort, usage says cancelled", async () => {
    up.proxy.fake = { "latency-ms": "15", tokens: "400" };
    const job = inferenceJob("gpt-4o-mini", { stream: true });
    const running = app.get(RunInference).run(job);
    await expect.poll(async () => (await replies(job)).length, { interval: 10 }).toBeGreaterThanOrEqual(4);
    await redis.publish(cancelChannel(config.redis.namespace), job.requestId);
    const usage = await running;

    await expect.poll(() => up.fake.stats.clientAborts).toBe(1);
    const messages = await replies(job);
    expect(messages.at(-1)).toMatchObject({ type: "error", code: "request_cancelled", streamed: true });
    expect(usage).toBe(usageOf(job.requestId));
    expect(usage).toMatchObject({ status: "cancelled", errorClass: "InferenceCancelledError", promptTokens: job.promptTokens });
    expect(usage.completionTokens).toBe(countCompletionTokens(getModel("gpt-4o-mini")!, streamedText(messages)));
    expect(usage.completionTokens).toBeLessThan(400);
  });

  it("honours a cancel that arrived before the job started", async () => {
    const job = inferenceJob("gpt-4o-mini", { stream: true });
    await redis.publish(cancelChannel(config.redis.namespace), job.requestId);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await app.get(RunInference).run(job);
    expect(up.proxy.requests).toHaveLength(0);
    expect(usageOf(job.requestId)).toMatchObject({ status: "cancelled", promptTokens: 0, completionTokens: 0 });
  });

  it("falls back to the next model when the provider is unavailable before streaming", async () => {
    up.proxy.fake = { fault: "500", "fail-times": "3", "request-key": newRequestId() };
    const job = inferenceJob("gpt-4.1", { stream: true });
    await app.get(RunInference).run(job);
    expect((await replies(job)).at(-1)).toEqual({ type: "end" });
    expect(up.proxy.requests.map((r) => r.path)).toEqual([
      "/v1/chat/completions",
      "/v1/chat/completions",
      "/v1/chat/completions",
      "/v1/messages",
    ]);
    expect(usageOf(job.requestId)).toMatchObject({ status: "succeeded", provider: "anthropic", model: "claude-haiku-4-5" });
  });

  it("reports an unknown model as 404 without calling anyone", async () => {
    const job = inferenceJob("no-such-model", {});
    await app.get(RunInference).run(job);
    expect(await replies(job)).toEqual([
      { type: "error", status: 404, code: "model_not_found", message: "model not served: no-such-model", streamed: false },
    ]);
    expect(usageOf(job.requestId)).toMatchObject({ status: "failed", provider: "none", errorClass: "ModelNotServedError" });
  });

  it("runs jobs taken from the dispatch stream, and acknowledges and deletes each entry", async () => {
    const job = inferenceJob("claude-haiku-4-5", { stream: true });
    await dispatch(config, job);
    await expect.poll(async () => (await replies(job)).at(-1), { timeout: 10_000 }).toEqual({ type: "end" });
    await expect
      .poll(() => published.mock.calls.some(([event]) => event.kind === "inference.usage" && event.requestId === job.requestId))
      .toBe(true);
    expect(usageOf(job.requestId).provider).toBe("anthropic");
    expect(await redis.pttl(job.replyTo)).toBeGreaterThan(0); // a dead gateway's reply stream expires
    await expect.poll(() => redis.xlen(inferenceJobStreamKey(config.redis.namespace))).toBe(0);
    const [pending] = (await redis.xpending(inferenceJobStreamKey(config.redis.namespace), INFERENCE_CONSUMER_GROUP)) as [number];
    expect(pending).toBe(0);
  });

  it("takes several waiting jobs at once, up to its concurrency", async () => {
    up.proxy.fake = { "latency-ms": "50" };
    const jobs = Array.from({ length: 6 }, () => inferenceJob("gpt-4o-mini", {}));
    await Promise.all(jobs.map((job) => dispatch(config, job)));
    const consumer = app.get(InferenceJobConsumer);
    await expect.poll(() => consumer.inFlight, { interval: 5 }).toBe(6);
    for (const job of jobs) await expect.poll(async () => (await replies(job)).at(-1)?.type, { timeout: 10_000 }).toBe("completion");
  });

  it("keeps taking jobs after its stream and group vanished (Redis flushed)", async () => {
    await redis.del(inferenceJobStreamKey(config.redis.namespace));
    const job = inferenceJob("gpt-4o-mini", {});
    // The worker recreates the group; a job dispatched meanwhile (stream recreated by XADD) is read from "0".
    await expect
      .poll(
        async () =>
          (await redis.exists(inferenceJobStreamKey(config.redis.namespace)))
            ? ((await redis.xinfo("GROUPS", inferenceJobStreamKey(config.redis.namespace))) as unknown[]).length
            : 0,
        { timeout: 10_000, interval: 50 },
      )
      .toBe(1);
    await dispatch(config, job);
    await expect.poll(async () => (await replies(job)).at(-1)?.type, { timeout: 10_000 }).toBe("completion");
  });

  it("drops, never reruns, the jobs of a worker that died, and forgets that worker", async () => {
    // Its own namespace, so the suite's worker cannot take the jobs.
    const own = testConfig({
      OPENAI_BASE_URL: `${up.proxy.url}/v1`,
      OPENAI_API_KEY: "test",
      REDIS_NAMESPACE: `${config.redis.namespace}-reaper`,
    });
    const key = inferenceJobStreamKey(own.redis.namespace);
    const dead = inferenceJob("gpt-4o-mini", {}, { replyTo: `${own.redis.namespace}:replies:dead` });
    const alive = inferenceJob("gpt-4o-mini", {}, { replyTo: `${own.redis.namespace}:replies:alive` });
    await redis.xgroup("CREATE", key, INFERENCE_CONSUMER_GROUP, "0", "MKSTREAM");
    // Two workers took a job each; only "busy-worker" still heart-beats.
    for (const [consumer, job] of [
      ["dead-worker", dead],
      ["busy-worker", alive],
    ] as const) {
      await dispatch(own, job);
      await redis.xreadgroup("GROUP", INFERENCE_CONSUMER_GROUP, consumer, "COUNT", 1, "STREAMS", key, ">");
    }
    await redis.zadd(inferenceWorkersKey(own.redis.namespace), Date.now(), "busy-worker", Date.now() - 120_000, "dead-worker");
    // The dead job's gateway still waits on its reply stream (an entry of another request is on it).
    await redis.xadd(dead.replyTo, "*", "requestId", "wr_other", ...encodeReplyEntry({ type: "end" }));
    const worker = await NestFactory.createApplicationContext(InferenceWorkerModule.forRoot(own), { logger: false });
    await worker.init();
    try {
      expect(await worker.get(InferenceJobConsumer).reapAbandoned()).toBe(1);
      const pending = (await redis.xpending(key, INFERENCE_CONSUMER_GROUP, "-", "+", 10)) as [string, string][];
      expect(pending.map(([, consumer]) => consumer)).toEqual(["busy-worker"]);
      expect(await redis.xlen(key)).toBe(1);
      const consumers = ((await redis.xinfo("CONSUMERS", key, INFERENCE_CONSUMER_GROUP)) as unknown[][]).map((c) => c[1]);
      expect(consumers).not.toContain("dead-worker");
      expect(consumers).toContain("busy-worker");
      // The dead worker left the live set; this one and the busy one are in it.
      expect(await redis.zrange(inferenceWorkersKey(own.redis.namespace), "0", "-1")).toEqual(
        expect.arrayContaining(["busy-worker", worker.get(InferenceJobConsumer).consumer]),
      );
      expect(await redis.zscore(inferenceWorkersKey(own.redis.namespace), "dead-worker")).toBeNull();
      // Never rerun: nothing was sent upstream; the waiting gateway is told the worker was lost (it bills what it relayed).
      const told = (await redis.xrange(dead.replyTo, "-", "+")).map(([, fields]) => decodeReplyEntry(fields));
      expect(told).toHaveLength(2);
      expect(told[1]).toMatchObject({ requestId: dead.requestId, messages: [{ type: "error", status: 502, code: INFERENCE_WORKER_LOST }] });
      expect(up.proxy.requests).toHaveLength(0);
    } finally {
      await worker.close();
    }
  });
});

/** What the gateway's relay does to start an inference. */
async function dispatch(target: Config, job: InferenceJob): Promise<void> {
  await redis.xadd(inferenceJobStreamKey(target.redis.namespace), "*", "job", JSON.stringify(job));
}

describe("ProviderRouter", () => {
  it("serves a provider without key or base URL with the local provider", () => {
    const bare = testConfig({ OPENAI_API_KEY: "sk-real" });
    const router = new ProviderRouter(bare, createModelRegistry(), {});
    expect(router.routes("gpt-4o")[0]!.adapter.name).toBe("openai");
    expect(router.routes("claude-opus-4-5")[0]!.adapter.name).toBe("local");
    expect(router.routes("claude-opus-4-5-20251101")[0]!.model.id).toBe("claude-opus-4-5");
  });

  it("in production never serves with the local provider: an unconfigured provider's model is unavailable", () => {
    const production = testConfig({ ...PRODUCTION_ENV, OPENAI_API_KEY: "sk-real" });
    const router = new ProviderRouter(production, createModelRegistry(), { fallbacks: { "claude-opus-4-5": ["gpt-4o"] } });
    expect(router.routes("gpt-4o").map((route) => route.adapter.name)).toEqual(["openai"]);
    expect(() => router.routes("claude-sonnet-4-5")).toThrow(ModelUnavailableError);
    // A fallback on a configured provider still serves it; the unconfigured model itself is skipped.
    expect(router.routes("claude-opus-4-5").map((route) => [route.model.id, route.adapter.name])).toEqual([["gpt-4o", "openai"]]);
  });
});

describe("shutdown", () => {
  it("drains in-flight inference before closing its connections", async () => {
    // Its own namespace, so the suite's worker cannot take the job.
    const own = testConfig({
      OPENAI_BASE_URL: `${up.proxy.url}/v1`,
      OPENAI_API_KEY: "test",
      REDIS_NAMESPACE: `${config.redis.namespace}-shutdown`,
    });
    const worker = await NestFactory.createApplicationContext(InferenceWorkerModule.forRoot(own), { logger: false });
    await worker.init();
    const usage = vi.spyOn(worker.get(MoneyEventPublisher), "publish");
    up.proxy.fake = { "latency-ms": "5", tokens: "40" };
    const job = inferenceJob("gpt-4o-mini", { stream: true }, { replyTo: `${own.redis.namespace}:replies:test` });
    await dispatch(own, job);
    await expect.poll(async () => (await replies(job)).length, { interval: 5 }).toBeGreaterThan(0);
    await worker.close();
    expect((await replies(job)).at(-1)).toEqual({ type: "end" });
    expect(usage.mock.calls.filter(([event]) => event.kind === "inference.usage")).toHaveLength(1);
  });
});

describe("admission", () => {
  it("drops, never runs, a job past its deadline, one whose client left, one whose payment was swept: a cancelled usage without tokens each, the waiting gateway told", async () => {
    const admissions = new InferenceAdmissions(redis, config.redis.namespace, config);
    const expired = inferenceJob("gpt-4o-mini", { stream: true }, { deadline: Date.now() - 1 });
    const gone = inferenceJob("gpt-4o-mini", {});
    const swept = inferenceJob("gpt-4o-mini", {});
    await admissions.decide(gone.requestId, "client-gone");
    await admissions.decide(swept.requestId, "swept");
    for (const job of [expired, gone, swept]) await dispatch(config, job);
    for (const [job, errorClass, code] of [
      [expired, "InferenceDeadlinePassed", "inference_reply_timeout"],
      [gone, "InferenceClientGone", "request_cancelled"],
      [swept, "InferencePaymentSwept", "payment_refunded"],
    ] as const) {
      await expect.poll(async () => (await replies(job)).length, { timeout: 10_000 }).toBe(1);
      expect(usageOf(job.requestId)).toMatchObject({
        status: "cancelled",
        errorClass,
        promptTokens: 0,
        completionTokens: 0,
        chargedCost: "100",
        ttftMs: null,
      });
      // No `inference.started`: nothing ran.
      expect(published.mock.calls.filter(([e]) => e.requestId === job.requestId).map(([e]) => e.kind)).toEqual(["inference.usage"]);
      expect(await replies(job)).toEqual([
        { type: "error", status: expect.any(Number), code, message: expect.any(String), streamed: false },
      ]);
    }
    expect(await redis.get(inferenceAdmissionKey(config.redis.namespace, expired.requestId))).toBe("expired");
    expect(up.proxy.requests).toHaveLength(0);
  });

  it("records its own `admitted` verdict before running a job", async () => {
    up.proxy.fake = { tokens: "3" };
    const job = inferenceJob("gpt-4o-mini", {});
    await dispatch(config, job);
    await expect.poll(async () => (await replies(job)).at(-1)?.type, { timeout: 10_000 }).toBe("completion");
    expect(await redis.get(inferenceAdmissionKey(config.redis.namespace, job.requestId))).toBe("admitted");
  });
});

describe("drain", () => {
  async function drainingWorker(suffix: string, env: Record<string, string> = {}) {
    const own = testConfig({
      OPENAI_BASE_URL: `${up.proxy.url}/v1`,
      OPENAI_API_KEY: "test",
      REDIS_NAMESPACE: `${config.redis.namespace}-${suffix}`,
      ...env,
    });
    const worker = await NestFactory.createApplicationContext(InferenceWorkerModule.forRoot(own), { logger: false });
    await worker.init();
    return { own, worker, usage: vi.spyOn(worker.get(MoneyEventPublisher), "publish") };
  }

  it("keeps heart-beating while an in-flight stream finishes after SIGTERM (no other worker reaps it), takes no new job, then bills it in full", async () => {
    const { own, worker, usage } = await drainingWorker("drain-heartbeat");
    const consumer = worker.get(InferenceJobConsumer).consumer;
    up.proxy.fake = { "latency-ms": "50", tokens: "100" }; // ≈ 5 s of stream: longer than a heartbeat period
    const job = inferenceJob("gpt-4o-mini", { stream: true }, { replyTo: `${own.redis.namespace}:replies:test` });
    await dispatch(own, job);
    await expect.poll(async () => (await replies(job)).length, { interval: 5 }).toBeGreaterThan(0);
    const closing = Date.now();
    const closed = worker.close();
    // A heartbeat newer than the SIGTERM while the stream still runs.
    await expect
      .poll(async () => Number(await redis.zscore(inferenceWorkersKey(own.redis.namespace), consumer)), { timeout: 10_000, interval: 200 })
      .toBeGreaterThan(closing);
    expect((await replies(job)).at(-1)?.type).toBe("chunk");
    const late = inferenceJob("gpt-4o-mini", {}, { replyTo: `${own.redis.namespace}:replies:test` });
    await dispatch(own, late);
    await closed;
    expect((await replies(job)).at(-1)).toEqual({ type: "end" });
    const usages = usage.mock.calls.filter(([event]) => event.kind === "inference.usage").map(([event]) => event as UsageEvent);
    expect(usages).toEqual([expect.objectContaining({ requestId: job.requestId, status: "succeeded", completionTokens: 100 })]);
    // The job dispatched during the drain was not taken: it waits for another worker.
    expect(await redis.xlen(inferenceJobStreamKey(own.redis.namespace))).toBe(1);
    expect(await redis.get(inferenceAdmissionKey(own.redis.namespace, late.requestId))).toBeNull();
  });

  it("cancels what still runs at WORKER_DRAIN_MS: the stream ends with an error and bills what it delivered", async () => {
    const { own, worker, usage } = await drainingWorker("drain-limit", { WORKER_DRAIN_MS: "300" });
    up.proxy.fake = { "latency-ms": "50", tokens: "200" }; // ≈ 10 s of stream
    const job = inferenceJob("gpt-4o-mini", { stream: true }, { replyTo: `${own.redis.namespace}:replies:test` });
    await dispatch(own, job);
    await expect.poll(async () => (await replies(job)).length, { interval: 5 }).toBeGreaterThan(0);
    const closing = performance.now();
    await worker.close();
    expect(performance.now() - closing).toBeLessThan(5_000);
    const messages = await replies(job);
    expect(messages.at(-1)).toMatchObject({ type: "error", streamed: true });
    const [billed] = usage.mock.calls.filter(([event]) => event.kind === "inference.usage").map(([event]) => event as UsageEvent);
    expect(billed).toMatchObject({ requestId: job.requestId, status: "cancelled" });
    expect(billed!.completionTokens).toBe(countCompletionTokens(getModel("gpt-4o-mini")!, streamedText(messages)));
    expect(billed!.completionTokens).toBeGreaterThan(0);
    expect(billed!.completionTokens).toBeLessThan(200);
  });
});

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { chunkBodies, collect, contentOf, providerCall, startUpstreams, USER_MESSAGES, type Upstreams } from "../test-support/upstreams.js";
import {
  InferenceCancelledError,
  UpstreamRejectedError,
  UpstreamStreamError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from "./errors.js";
import { OpenAiProvider } from "./openai.js";

let up: Upstreams;
let openai: OpenAiProvider;
const settings = (overrides: Partial<ConstructorParameters<typeof OpenAiProvider>[0]> = {}) => ({
  apiKey: "sk-test",
  baseUrl: `${up.proxy.url}/v1`,
  timeoutMs: 5_000,
  maxRetries: 2,
  backoffMs: 5,
  ...overrides,
});

beforeAll(async () => {
  up = await startUpstreams();
  openai = new OpenAiProvider(settings());
});
afterAll(() => up.close());
beforeEach(() => {
  up.proxy.reset();
  up.fake.resetStats();
});

describe("OpenAI provider", () => {
  it("passes every request parameter through untouched (non-stream) and returns the response as sent", async () => {
    const body = {
      messages: USER_MESSAGES,
      temperature: 0.3,
      top_p: 0.9,
      max_completion_tokens: 40,
      stop: ["\n\n\n"],
      seed: 7,
      n: 2,
      presence_penalty: 0.1,
      frequency_penalty: 0.2,
      logit_bias: { "50256": -100 },
      logprobs: true,
      top_logprobs: 2,
      user: "user-1",
      metadata: { team: "a" },
      response_format: { type: "json_object" },
      service_tier: "auto",
      reasoning_effort: "low",
      store: false,
      prediction: null,
      stream_options: { include_usage: true },
    };
    const completion = await openai.complete(providerCall("gpt-4o-mini", body));

    expect(up.proxy.requests).toHaveLength(1);
    const sent = up.proxy.requests[0]!;
    expect(sent.path).toBe("/v1/chat/completions");
    expect(sent.headers.authorization).toBe("Bearer sk-test");
    const { stream_options: _dropped, ...rest } = body; // stream_options is refused without stream
    expect(sent.body).toEqual({ ...rest, model: "gpt-4o-mini", stream: false });

    const response = JSON.parse(completion.data);
    expect(response.object).toBe("chat.completion");
    expect(response.choices).toHaveLength(2);
    expect(response.system_fingerprint).toBe("fp_fake"); // fields we do not model survive
    expect(completion.usage).toEqual({
      promptTokens: response.usage.prompt_tokens,
      completionTokens: response.usage.completion_tokens,
      cachedTokens: 0,
      cacheWriteTokens: 0,
    });
    expect(completion.finishReason).toBe(response.choices[0].finish_reason);
  });

  it("streams, always asking for usage, and forwards the usage chunk only when the client asked", async () => {
    up.proxy.fake = { tokens: "12" };
    const plain = await collect(openai.stream(providerCall("gpt-4o-mini", { messages: USER_MESSAGES, stream: true, temperature: 0.5 })));
    expect(up.proxy.requests[0]!.body).toEqual({
      model: "gpt-4o-mini",
      messages: USER_MESSAGES,
      stream: true,
      temperature: 0.5,
      stream_options: { include_usage: true },
    });
    const bodies = chunkBodies(plain);
    expect(bodies.every((chunk) => chunk.choices.length > 0)).toBe(true);
    expect(bodies.at(-1)!.choices[0].finish_reason).toBe("stop");
    const usage = Object.assign({}, ...plain.map((chunk) => chunk.usage ?? {}));
    expect(usage.completionTokens).toBe(12);
    expect(plain.map((chunk) => chunk.text).join("")).toBe(contentOf(plain));

    const withUsage = await collect(
      openai.stream(
        providerCall("gpt-4o-mini", { messages: USER_MESSAGES, stream: true, temperature: 0.5, stream_options: { include_usage: true } }),
      ),
    );
    const last = chunkBodies(withUsage).at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage.completion_tokens).toBe(12);
    expect(contentOf(withUsage)).toBe(contentOf(plain));
  });

  it("preserves cached and reasoning token details, and reports usage exactly as the provider did", async () => {
    up.proxy.fake = { "cached-tokens": "6", "reasoning-tokens": "5", tokens: "10" };
    const chunks = await collect(
      openai.stream(providerCall("gpt-4o-mini", { messages: USER_MESSAGES, stream: true, stream_options: { include_usage: true } })),
    );
    const reported = chunkBodies(chunks).at(-1)!.usage;
    expect(reported.prompt_tokens_details.cached_tokens).toBe(6);
    expect(reported.completion_tokens_details.reasoning_tokens).toBe(5);
    expect(reported.completion_tokens).toBe(15);
    const usage = Object.assign({}, ...chunks.map((chunk) => chunk.usage ?? {}));
    expect(usage).toEqual({ promptTokens: reported.prompt_tokens, completionTokens: 15, cachedTokens: 6, cacheWriteTokens: 0 });

    const completion = await openai.complete(providerCall("gpt-4o-mini", { messages: USER_MESSAGES }));
    expect(JSON.parse(completion.data).usage.completion_tokens_details.reasoning_tokens).toBe(5);
    expect(completion.usage).toEqual(usage);
  });

  it("streams tool calls as the provider sent them", async () => {
    const tools = [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather in a city",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
    ];
    const body = {
      messages: USER_MESSAGES,
      stream: true,
      tools,
      tool_choice: { type: "function", function: { name: "get_weather" } },
      parallel_tool_calls: false,
    };
    const chunks = await collect(openai.stream(providerCall("gpt-4o-mini", body)));
    expect(up.proxy.requests[0]!.body).toMatchObject({ tools, tool_choice: body.tool_choice, parallel_tool_calls: false });
    const bodies = chunkBodies(chunks);
    const calls = bodies.flatMap((chunk) => chunk.choices[0]?.delta?.tool_calls ?? []);
    expect(calls[0]).toMatchObject({ index: 0, type: "function", function: { name: "get_weather" } });
    expect(JSON.parse(calls.map((call: any) => call.function.arguments).join(""))).toHaveProperty("city");
    expect(bodies.at(-1)!.choices[0].finish_reason).toBe("tool_calls");
  });

  it("retries a 429 (honouring Retry-After) and then succeeds", async () => {
    up.proxy.fake = { fault: "429", "fail-times": "1", "retry-after": "0" };
    const completion = await openai.complete(providerCall("gpt-4o-mini", { messages: USER_MESSAGES }));
    expect(JSON.parse(completion.data).object).toBe("chat.completion");
    expect(up.proxy.requests).toHaveLength(2);
    expect(up.fake.stats.faultsInjected).toBe(1);
  });

  it("gives up on a 500 after UPSTREAM_MAX_RETRIES retries with a 502", async () => {
    up.proxy.fake = { fault: "500" };
    const error = await openai.complete(providerCall("gpt-4o-mini", { messages: USER_MESSAGES })).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect((error as UpstreamUnavailableError).status).toBe(502);
    expect(up.proxy.requests).toHaveLength(3);
  });

  it("passes a 400 through with the provider's status and message, without retrying", async () => {
    const error = await openai.complete(providerCall("gpt-4o-mini", { messages: USER_MESSAGES, n: 0 })).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(UpstreamRejectedError);
    expect(error).toMatchObject({
      status: 400,
      code: "invalid_value",
      clientMessage: "Invalid 'n': expected an integer between 1 and 128.",
    });
    expect(up.proxy.requests).toHaveLength(1);
  });

  it("reports a stream that breaks mid-way as UpstreamStreamError after the chunks that arrived", async () => {
    up.proxy.fake = { "disconnect-after": "4", tokens: "20" };
    const received: unknown[] = [];
    const error = await (async () => {
      for await (const chunk of openai.stream(providerCall("gpt-4o-mini", { messages: USER_MESSAGES, stream: true }))) received.push(chunk);
    })().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(UpstreamStreamError);
    expect(received).toHaveLength(4);
    expect(up.proxy.requests).toHaveLength(1); // never retried once streaming
  });

  it("times out a silent upstream with a 504", async () => {
    up.proxy.fake = { "ttft-ms": "400" };
    const impatient = new OpenAiProvider(settings({ timeoutMs: 100, maxRetries: 0 }));
    const error = await collect(impatient.stream(providerCall("gpt-4o-mini", { messages: USER_MESSAGES, stream: true }))).catch(
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(UpstreamTimeoutError);
    expect((error as UpstreamTimeoutError).status).toBe(504);
  });

  it("aborts the upstream request when cancelled mid-stream", async () => {
    up.proxy.fake = { "latency-ms": "20", tokens: "200" };
    const cancel = new AbortController();
    let received = 0;
    const error = await (async () => {
      for await (const _chunk of openai.stream(providerCall("gpt-4o-mini", { messages: USER_MESSAGES, stream: true }, cancel.signal))) {
        if (++received === 3) cancel.abort();
      }
    })().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(InferenceCancelledError);
    await expect.poll(() => up.fake.stats.clientAborts).toBe(1);
  });
});

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  chunkBodies,
  collect,
  contentOf,
  model,
  providerCall,
  startUpstreams,
  USER_MESSAGES,
  type Upstreams,
} from "../test-support/upstreams.js";
import { AnthropicProvider, AnthropicStreamTranslator, finishReasonOf, fromAnthropicMessage, toAnthropicRequest } from "./anthropic.js";
import { UnsupportedRequestError, UpstreamRejectedError, UpstreamStreamError, UpstreamUnavailableError } from "./errors.js";

const sonnet = model("claude-sonnet-4-5");
const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

describe("OpenAI → Anthropic request translation", () => {
  it("translates system, multi-part content, tools, tool calls, tool results and sampling parameters", () => {
    const request = toAnthropicRequest(
      {
        model: "claude-sonnet-4-5",
        messages: [
          { role: "system", content: "Be brief." },
          { role: "developer", content: [{ type: "text", text: "Use metric units." }] },
          {
            role: "user",
            content: [
              { type: "text", text: "What is in these pictures, and the weather in Paris?" },
              { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
              { type: "image_url", image_url: { url: "https://example.com/cat.jpg", detail: "low" } },
            ],
          },
          {
            role: "assistant",
            content: "Let me check.",
            tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }],
          },
          { role: "tool", tool_call_id: "call_1", content: "18°C, sunny" },
          { role: "user", content: "Thanks!" },
        ],
        tools: [WEATHER_TOOL],
        tool_choice: "required",
        parallel_tool_calls: false,
        stop: "END",
        temperature: 0.2,
        top_p: 0.8,
        user: "user-1",
      },
      sonnet,
      true,
    );
    expect(request).toEqual({
      model: "claude-sonnet-4-5-20250929",
      max_tokens: 4096,
      system: "Be brief.\n\nUse metric units.",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is in these pictures, and the weather in Paris?" },
            { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
            { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
          ],
        },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Let me check." },
            { type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Paris" } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "call_1", content: "18°C, sunny" },
            { type: "text", text: "Thanks!" },
          ],
        },
      ],
      tools: [{ name: "get_weather", description: "Weather in a city", input_schema: WEATHER_TOOL.function.parameters }],
      tool_choice: { type: "any", disable_parallel_tool_use: true },
      stop_sequences: ["END"],
      temperature: 0.2,
      top_p: 0.8,
      stream: true,
      metadata: { user_id: "user-1" },
    });
  });

  it("maps every tool_choice form and max token parameter", () => {
    const base = { messages: [{ role: "user", content: "hi" }], tools: [WEATHER_TOOL] };
    expect(toAnthropicRequest({ ...base, tool_choice: "auto" }, sonnet, false).tool_choice).toEqual({ type: "auto" });
    expect(toAnthropicRequest({ ...base, tool_choice: "none" }, sonnet, false).tool_choice).toEqual({ type: "none" });
    expect(
      toAnthropicRequest({ ...base, tool_choice: { type: "function", function: { name: "get_weather" } } }, sonnet, false).tool_choice,
    ).toEqual({ type: "tool", name: "get_weather" });
    expect(toAnthropicRequest(base, sonnet, false).tool_choice).toBeUndefined();
    expect(toAnthropicRequest({ ...base, max_tokens: 100 }, sonnet, false).max_tokens).toBe(100);
    expect(toAnthropicRequest({ ...base, max_tokens: 100, max_completion_tokens: 50 }, sonnet, false).max_tokens).toBe(50);
    // Without a limit: 4096, never the model's maximum (64,000 for Sonnet), which the charge would not cover.
    expect(toAnthropicRequest(base, sonnet, false).max_tokens).toBe(4096);
    expect(toAnthropicRequest({ ...base, stop: ["a", "b"] }, sonnet, false).stop_sequences).toEqual(["a", "b"]);
  });

  it("refuses what Anthropic cannot do", () => {
    expect(() => toAnthropicRequest({ messages: [{ role: "user", content: "hi" }], n: 2 }, sonnet, false)).toThrow(UnsupportedRequestError);
    expect(() =>
      toAnthropicRequest({ messages: [{ role: "user", content: [{ type: "input_audio", input_audio: {} }] }] }, sonnet, false),
    ).toThrow(UnsupportedRequestError);
    expect(() =>
      toAnthropicRequest(
        { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png,raw" } }] }] },
        sonnet,
        false,
      ),
    ).toThrow(UnsupportedRequestError);
  });
});

describe("Anthropic → OpenAI response translation", () => {
  it("maps stop reasons to finish reasons", () => {
    expect(["end_turn", "stop_sequence", "max_tokens", "tool_use"].map(finishReasonOf)).toEqual(["stop", "stop", "length", "tool_calls"]);
  });

  it("turns a message into a chat.completion with tool calls and cache-aware usage", () => {
    const completion = fromAnthropicMessage(
      {
        content: [
          { type: "text", text: "Checking." },
          { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
        ],
        stop_reason: "tool_use",
        usage: { input_tokens: 10, output_tokens: 7, cache_read_input_tokens: 100, cache_creation_input_tokens: 20 },
      },
      "wr_abcdefgh",
      "claude-sonnet-4-5",
    );
    expect(JSON.parse(completion.data)).toMatchObject({
      id: "chatcmpl-wr_abcdefgh",
      object: "chat.completion",
      model: "claude-sonnet-4-5",
      choices: [
        {
          index: 0,
          finish_reason: "tool_calls",
          message: {
            role: "assistant",
            content: "Checking.",
            tool_calls: [{ id: "toolu_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }],
          },
        },
      ],
      usage: { prompt_tokens: 130, completion_tokens: 7, total_tokens: 137, prompt_tokens_details: { cached_tokens: 100 } },
    });
    expect(completion.usage).toEqual({ promptTokens: 130, completionTokens: 7, cachedTokens: 100, cacheWriteTokens: 20 });
  });

  it("translates stream events to chunks, tool-call deltas included", () => {
    const translator = new AnthropicStreamTranslator("wr_abcdefgh", "claude-sonnet-4-5", true);
    const events = [
      {
        type: "message_start",
        message: { usage: { input_tokens: 5, cache_read_input_tokens: 3, cache_creation_input_tokens: 2, output_tokens: 1 } },
      },
      { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
      { type: "ping" },
      { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hi" } },
      { type: "content_block_stop", index: 0 },
      { type: "content_block_start", index: 1, content_block: { type: "tool_use", id: "toolu_1", name: "get_weather", input: {} } },
      { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: '{"city":' } },
      { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: '"Paris"}' } },
      { type: "message_delta", delta: { stop_reason: "tool_use" }, usage: { output_tokens: 9 } },
      { type: "message_stop" },
    ].map((payload) => translator.translate({ event: payload.type, data: JSON.stringify(payload) }));
    const chunks = events.filter((chunk) => chunk?.data).map((chunk) => JSON.parse(chunk!.data!));
    expect(chunks.map((chunk) => chunk.choices[0]?.delta)).toEqual([
      { role: "assistant", content: "" },
      { content: "Hi" },
      { tool_calls: [{ index: 0, id: "toolu_1", type: "function", function: { name: "get_weather", arguments: "" } }] },
      { tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] },
      { tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] },
      {},
      undefined,
    ]);
    expect(chunks.at(-2).choices[0].finish_reason).toBe("tool_calls");
    expect(chunks.at(-1).usage).toEqual({
      prompt_tokens: 10,
      completion_tokens: 9,
      total_tokens: 19,
      prompt_tokens_details: { cached_tokens: 3 },
    });
    expect(translator.stopped).toBe(true);
  });

  it("fails the stream on an error event", () => {
    const translator = new AnthropicStreamTranslator("wr_abcdefgh", "claude-sonnet-4-5", false);
    expect(() =>
      translator.translate({ event: "error", data: '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}' }),
    ).toThrow(UpstreamStreamError);
  });
});

describe("Anthropic provider against the fake upstream", () => {
  let up: Upstreams;
  let anthropic: AnthropicProvider;
  beforeAll(async () => {
    up = await startUpstreams();
    anthropic = new AnthropicProvider({ apiKey: "sk-ant-test", baseUrl: up.proxy.url, timeoutMs: 5_000, maxRetries: 1, backoffMs: 5 });
  });
  afterAll(() => up.close());
  beforeEach(() => {
    up.proxy.reset();
    up.fake.resetStats();
  });

  it("sends a translated Messages request and returns a chat.completion with exact usage", async () => {
    up.proxy.fake = { tokens: "9", "cached-tokens": "4", "cache-write-tokens": "3" };
    const completion = await anthropic.complete(
      providerCall("claude-sonnet-4-5", { messages: USER_MESSAGES, temperature: 0.4, stop: ["zzz"], max_completion_tokens: 700 }),
    );
    const sent = up.proxy.requests[0]!;
    expect(sent.path).toBe("/v1/messages");
    expect(sent.headers["x-api-key"]).toBe("sk-ant-test");
    expect(sent.headers["anthropic-version"]).toBe("2023-06-01");
    expect(sent.body).toEqual({
      model: "claude-sonnet-4-5-20250929",
      max_tokens: 700,
      system: "You are terse.",
      messages: [{ role: "user", content: [{ type: "text", text: "Say something about payment channels." }] }],
      temperature: 0.4,
      stop_sequences: ["zzz"],
    });
    const response = JSON.parse(completion.data);
    expect(response.choices[0]).toMatchObject({ finish_reason: "stop", message: { role: "assistant" } });
    expect(response.choices[0].message.content.length).toBeGreaterThan(0);
    expect(completion.usage.completionTokens).toBe(9);
    expect(completion.usage.cachedTokens).toBe(4);
    expect(completion.usage.cacheWriteTokens).toBe(3);
    expect(response.usage.prompt_tokens).toBe(completion.usage.promptTokens);
    expect(response.usage.prompt_tokens_details.cached_tokens).toBe(4);
  });

  it("streams text as chat.completion.chunk with the same content as the non-streamed answer", async () => {
    up.proxy.fake = { tokens: "15", "cached-tokens": "2" };
    const whole = await anthropic.complete(providerCall("claude-sonnet-4-5", { messages: USER_MESSAGES }));
    const chunks = await collect(
      anthropic.stream(
        providerCall("claude-sonnet-4-5", { messages: USER_MESSAGES, stream: true, stream_options: { include_usage: true } }),
      ),
    );
    expect(up.proxy.requests[1]!.body.stream).toBe(true);
    expect(contentOf(chunks)).toBe(JSON.parse(whole.data).choices[0].message.content);
    const bodies = chunkBodies(chunks);
    expect(bodies.every((chunk) => chunk.object === "chat.completion.chunk")).toBe(true);
    expect(bodies.at(-2)!.choices[0].finish_reason).toBe("stop");
    expect(bodies.at(-1)!.usage).toEqual(JSON.parse(whole.data).usage);
    const usage = Object.assign({}, ...chunks.map((chunk) => chunk.usage ?? {}));
    expect(usage).toEqual(whole.usage);
  });

  it("streams a tool call with arguments that join into JSON, and max_tokens ends with length", async () => {
    const chunks = await collect(
      anthropic.stream(
        providerCall("claude-sonnet-4-5", { messages: USER_MESSAGES, stream: true, tools: [WEATHER_TOOL], tool_choice: "required" }),
      ),
    );
    expect(up.proxy.requests[0]!.body).toMatchObject({
      tool_choice: { type: "any" },
      tools: [{ name: "get_weather", input_schema: WEATHER_TOOL.function.parameters }],
    });
    const bodies = chunkBodies(chunks);
    const calls = bodies.flatMap((chunk) => chunk.choices[0]?.delta?.tool_calls ?? []);
    expect(calls[0]).toMatchObject({ index: 0, type: "function", function: { name: "get_weather", arguments: "" } });
    expect(JSON.parse(calls.map((call: any) => call.function.arguments).join(""))).toHaveProperty("city");
    expect(bodies.at(-1)!.choices[0].finish_reason).toBe("tool_calls");

    const cut = await anthropic.complete(providerCall("claude-sonnet-4-5", { messages: USER_MESSAGES, max_tokens: 3 }));
    expect(cut.finishReason).toBe("length");
    expect(cut.usage.completionTokens).toBe(3);
  });

  it("passes a 400 through, retries a 529 and then reports 502", async () => {
    const rejected = await anthropic
      .complete(providerCall("claude-sonnet-4-5", { messages: USER_MESSAGES, max_tokens: 0 }))
      .catch((err: unknown) => err);
    expect(rejected).toBeInstanceOf(UpstreamRejectedError);
    expect(rejected).toMatchObject({
      status: 400,
      code: "invalid_request_error",
      clientMessage: "max_tokens: Input should be an integer greater than or equal to 1",
    });

    up.proxy.reset();
    up.proxy.fake = { fault: "overloaded" };
    const overloaded = await anthropic
      .complete(providerCall("claude-sonnet-4-5", { messages: USER_MESSAGES }))
      .catch((err: unknown) => err);
    expect(overloaded).toBeInstanceOf(UpstreamUnavailableError);
    expect(up.proxy.requests).toHaveLength(2);
  });
});

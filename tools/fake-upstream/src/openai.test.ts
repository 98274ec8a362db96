import { countPromptTokens, getModel, listModels } from "@worldrouter/pricing";
import type OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "./server.js";
import { openAiClient, postChat } from "./test-support/clients.js";
import { parseSse } from "./test-support/sse.js";

let upstream: FakeUpstream;
let client: OpenAI;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  client = openAiClient(upstream);
});
afterAll(() => upstream.close());

const messages: OpenAI.ChatCompletionMessageParam[] = [
  { role: "system", content: "You are a helpful assistant." },
  { role: "user", content: "Tell me about rivers." },
];
const weatherTool: OpenAI.ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get the weather for a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
      required: ["city"],
    },
  },
};
const o200k = { tokenizer: "o200k_base" } as const;

describe("POST /v1/chat/completions (non-stream)", () => {
  it("returns a chat.completion with usage counted by the real tokenizer", async () => {
    const completion = await client.chat.completions.create({ model: "gpt-4o-mini", messages });
    expect(completion).toMatchObject({ object: "chat.completion", model: "gpt-4o-mini" });
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.created).toBeGreaterThan(1_700_000_000);
    const [choice] = completion.choices;
    expect(choice).toMatchObject({ index: 0, finish_reason: "stop", message: { role: "assistant" } });
    expect(choice!.message.content!.length).toBeGreaterThan(0);
    expect(completion.usage).toEqual({
      prompt_tokens: countPromptTokens(o200k, messages as never),
      completion_tokens: 32,
      total_tokens: countPromptTokens(o200k, messages as never) + 32,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    });
  });

  it("counts prompt tokens with the catalogue model's tokenizer (Anthropic approximation for claude models)", async () => {
    const completion = await client.chat.completions.create({ model: "claude-sonnet-4-5", messages });
    expect(completion.usage!.prompt_tokens).toBe(countPromptTokens(getModel("claude-sonnet-4-5")!, messages as never));
  });

  it("is deterministic: same model and messages → same text, stream or not", async () => {
    const a = await client.chat.completions.create({ model: "gpt-5", messages });
    const b = await client.chat.completions.create({ model: "gpt-5", messages, temperature: 1.5 });
    const other = await client.chat.completions.create({ model: "gpt-5", messages: [{ role: "user", content: "Something else." }] });
    expect(b.choices[0]!.message.content).toBe(a.choices[0]!.message.content);
    expect(other.choices[0]!.message.content).not.toBe(a.choices[0]!.message.content);
    expect(b.id).not.toBe(a.id);
    let streamed = "";
    for await (const chunk of await client.chat.completions.create({ model: "gpt-5", messages, stream: true }))
      streamed += chunk.choices[0]?.delta.content ?? "";
    expect(streamed).toBe(a.choices[0]!.message.content);
  });

  it("returns n different choices", async () => {
    const completion = await client.chat.completions.create({ model: "gpt-4o", messages, n: 3 });
    expect(completion.choices.map((choice) => choice.index)).toEqual([0, 1, 2]);
    expect(new Set(completion.choices.map((choice) => choice.message.content)).size).toBe(3);
    expect(completion.usage!.completion_tokens).toBe(3 * 32);
  });

  it("truncates at max_tokens / max_completion_tokens with finish_reason length", async () => {
    for (const limit of [{ max_tokens: 5 }, { max_completion_tokens: 5 }]) {
      const completion = await client.chat.completions.create({ model: "gpt-4o", messages, ...limit });
      expect(completion.choices[0]!.finish_reason).toBe("length");
      expect(completion.usage!.completion_tokens).toBe(5);
    }
  });

  it("cuts at a stop sequence with finish_reason stop", async () => {
    const full = (await client.chat.completions.create({ model: "gpt-4o", messages })).choices[0]!.message.content!;
    const stop = full.split(" ").slice(5, 7).join(" ");
    const completion = await client.chat.completions.create({ model: "gpt-4o", messages, stop: ["never-there", stop] });
    expect(completion.choices[0]!.finish_reason).toBe("stop");
    expect(completion.choices[0]!.message.content).toBe(full.slice(0, full.indexOf(stop)));
    expect(completion.usage!.completion_tokens).toBeLessThan(32);
  });

  it("emits valid JSON for response_format json_object and json_schema", async () => {
    const object = await client.chat.completions.create({ model: "gpt-4.1", messages, response_format: { type: "json_object" } });
    expect(JSON.parse(object.choices[0]!.message.content!)).toHaveProperty("answer");
    const schema = await client.chat.completions.create({
      model: "gpt-4.1",
      messages,
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "river",
          schema: { type: "object", properties: { name: { type: "string" }, length_km: { type: "integer", minimum: 1 } } },
        },
      },
    });
    const parsed = JSON.parse(schema.choices[0]!.message.content!);
    expect(typeof parsed.name).toBe("string");
    expect(Number.isInteger(parsed.length_km)).toBe(true);
  });

  it("calls a tool when tools are given, with JSON arguments and finish_reason tool_calls", async () => {
    const completion = await client.chat.completions.create({ model: "gpt-4o", messages, tools: [weatherTool] });
    const choice = completion.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    const call = choice.message.tool_calls![0]!;
    expect(call).toMatchObject({ type: "function", function: { name: "get_weather" } });
    expect(call.id).toMatch(/^call_/);
    if (call.type !== "function") throw new Error("expected a function call");
    const args = JSON.parse(call.function.arguments);
    expect(typeof args.city).toBe("string");
    expect(["celsius", "fahrenheit"]).toContain(args.unit);
    expect(completion.usage!.prompt_tokens).toBe(countPromptTokens(o200k, messages as never, [weatherTool] as never));
  });

  it("answers with text when tool_choice is none or x-fake-tool-call is off", async () => {
    const none = await client.chat.completions.create({ model: "gpt-4o", messages, tools: [weatherTool], tool_choice: "none" });
    expect(none.choices[0]!.finish_reason).toBe("stop");
    const off = await client.chat.completions.create(
      { model: "gpt-4o", messages, tools: [weatherTool] },
      { headers: { "x-fake-tool-call": "off" } },
    );
    expect(off.choices[0]!.message.content!.length).toBeGreaterThan(0);
  });

  it("reports cached and reasoning tokens on request", async () => {
    const completion = await client.chat.completions.create(
      { model: "o3", messages },
      { headers: { "x-fake-cached-tokens": "10", "x-fake-reasoning-tokens": "100", "x-fake-tokens": "4" } },
    );
    expect(completion.usage!.prompt_tokens_details!.cached_tokens).toBe(10);
    expect(completion.usage!.completion_tokens_details!.reasoning_tokens).toBe(100);
    expect(completion.usage!.completion_tokens).toBe(104);
    const capped = await client.chat.completions.create({ model: "o3", messages }, { headers: { "x-fake-cached-tokens": "100000" } });
    expect(capped.usage!.prompt_tokens_details!.cached_tokens).toBe(capped.usage!.prompt_tokens);
  });

  it("takes controls from a model suffix and answers with the bare model", async () => {
    const completion = await client.chat.completions.create({ model: "gpt-4o-mini:tokens=3", messages });
    expect(completion.model).toBe("gpt-4o-mini");
    expect(completion.usage!.completion_tokens).toBe(3);
  });
});

describe("POST /v1/chat/completions (stream)", () => {
  it("streams chunks in OpenAI's format: role, content deltas, finish, usage, [DONE]", async () => {
    const response = await postChat(
      upstream,
      { model: "gpt-4o-mini", messages, stream: true, stream_options: { include_usage: true } },
      { "x-fake-tokens": "5" },
    );
    expect(response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const events = parseSse(await response.text());
    expect(events.every((event) => event.event === null)).toBe(true);
    expect(events.at(-1)!.data).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event.data));
    expect(chunks).toHaveLength(1 + 5 + 1 + 1);
    for (const chunk of chunks) expect(chunk).toMatchObject({ object: "chat.completion.chunk", model: "gpt-4o-mini", id: chunks[0].id });
    expect(chunks[0].choices).toEqual([
      { index: 0, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null },
    ]);
    expect(chunks[0].usage).toBeNull();
    for (const chunk of chunks.slice(1, 6)) expect(Object.keys(chunk.choices[0].delta)).toEqual(["content"]);
    expect(chunks[6].choices).toEqual([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]);
    expect(chunks[7].choices).toEqual([]);
    expect(chunks[7].usage).toMatchObject({
      prompt_tokens: countPromptTokens(o200k, messages as never),
      completion_tokens: 5,
      total_tokens: chunks[7].usage.prompt_tokens + 5,
    });
  });

  it("omits usage without include_usage", async () => {
    const response = await postChat(upstream, { model: "gpt-4o-mini", messages, stream: true }, { "x-fake-tokens": "2" });
    const chunks = parseSse(await response.text())
      .slice(0, -1)
      .map((event) => JSON.parse(event.data));
    expect(chunks).toHaveLength(4);
    for (const chunk of chunks) expect(chunk).not.toHaveProperty("usage");
  });

  it("works with the SDK's stream, including usage and chunk-tokens", async () => {
    const stream = await client.chat.completions.create(
      { model: "gpt-5.2", messages, stream: true, stream_options: { include_usage: true } },
      { headers: { "x-fake-tokens": "12", "x-fake-chunk-tokens": "4" } },
    );
    const contents: string[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      const content = chunk.choices[0]?.delta.content;
      if (content) contents.push(content);
      if (chunk.usage) usage = chunk.usage;
    }
    expect(contents).toHaveLength(3);
    expect(usage!.completion_tokens).toBe(12);
  });

  it("interleaves n choices and ends each", async () => {
    const stream = await client.chat.completions.create(
      { model: "gpt-4o", messages, n: 2, stream: true },
      { headers: { "x-fake-tokens": "3" } },
    );
    const text: Record<number, string> = { 0: "", 1: "" };
    const finishes: Record<number, string | null> = {};
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        text[choice.index] += choice.delta.content ?? "";
        if (choice.finish_reason) finishes[choice.index] = choice.finish_reason;
      }
    }
    expect(finishes).toEqual({ 0: "stop", 1: "stop" });
    const nonStream = await client.chat.completions.create({ model: "gpt-4o", messages, n: 2 }, { headers: { "x-fake-tokens": "3" } });
    expect([text[0], text[1]]).toEqual(nonStream.choices.map((choice) => choice.message.content));
  });

  it("streams a tool call as tool_calls deltas the SDK can assemble", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o",
      messages,
      tools: [weatherTool],
      tool_choice: "required",
      stream: true,
    });
    let name = "";
    let args = "";
    let id = "";
    let finish: string | null = null;
    let first = true;
    for await (const chunk of stream) {
      const choice = chunk.choices[0]!;
      if (first) {
        expect(choice.delta).toMatchObject({ role: "assistant", content: null });
        first = false;
      }
      for (const call of choice.delta.tool_calls ?? []) {
        expect(call.index).toBe(0);
        id ||= call.id ?? "";
        name += call.function?.name ?? "";
        args += call.function?.arguments ?? "";
      }
      finish = choice.finish_reason ?? finish;
    }
    expect(finish).toBe("tool_calls");
    expect(name).toBe("get_weather");
    expect(id).toMatch(/^call_/);
    const nonStream = await client.chat.completions.create({ model: "gpt-4o", messages, tools: [weatherTool], tool_choice: "required" });
    const call = nonStream.choices[0]!.message.tool_calls![0]!;
    if (call.type !== "function") throw new Error("expected a function call");
    expect(args).toBe(call.function.arguments);
    expect(JSON.parse(args)).toHaveProperty("city");
  });

  it("stops streaming at max_tokens with finish_reason length", async () => {
    const response = await postChat(upstream, {
      model: "gpt-4o",
      messages,
      stream: true,
      max_tokens: 2,
      stream_options: { include_usage: true },
    });
    const chunks = parseSse(await response.text())
      .slice(0, -1)
      .map((event) => JSON.parse(event.data));
    expect(chunks.at(-2).choices[0].finish_reason).toBe("length");
    expect(chunks.at(-1).usage.completion_tokens).toBe(2);
  });
});

describe("OpenAI errors", () => {
  it("requires a bearer token", async () => {
    const response = await fetch(`${upstream.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ model: "gpt-4o", messages }),
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({
      error: { message: expect.stringContaining("API key"), type: "invalid_request_error", param: null, code: null },
    });
  });

  it.each([
    [{ messages }, null, null],
    [{ model: "gpt-4o" }, "messages", "missing_required_parameter"],
    [{ model: "gpt-4o", messages: [] }, "messages", "empty_array"],
    [{ model: "gpt-4o", messages: [{ role: "robot", content: "hi" }] }, "messages[0].role", "invalid_value"],
    [{ model: "gpt-4o", messages, n: 0 }, "n", "invalid_value"],
    [{ model: "gpt-4o", messages, max_tokens: 0 }, "max_tokens", "invalid_value"],
    [{ model: "gpt-4o", messages, stream_options: { include_usage: true } }, "stream_options", "invalid_value"],
    [
      { model: "gpt-4o", messages, tools: [weatherTool], tool_choice: { type: "function", function: { name: "nope" } } },
      "tool_choice",
      "invalid_value",
    ],
  ])("rejects %j with a 400 in OpenAI format", async (body, param, code) => {
    const response = await postChat(upstream, body);
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: Record<string, unknown> };
    expect(error).toEqual({ message: expect.any(String), type: "invalid_request_error", param, code });
  });

  it("rejects malformed JSON and unknown controls", async () => {
    const bad = await fetch(`${upstream.url}/v1/chat/completions`, { method: "POST", headers: { authorization: "Bearer x" }, body: "{" });
    expect(bad.status).toBe(400);
    const control = await postChat(upstream, { model: "gpt-4o:latency=5", messages });
    expect(control.status).toBe(400);
    expect(((await control.json()) as { error: { message: string } }).error.message).toContain("unknown fake control");
  });

  it("surfaces as typed SDK errors", async () => {
    await expect(client.chat.completions.create({ model: "gpt-4o", messages: [] })).rejects.toMatchObject({
      status: 400,
      code: "empty_array",
      param: "messages",
    });
  });

  it("answers 404 for unknown routes", async () => {
    const response = await fetch(`${upstream.url}/v1/embeddings`, { method: "POST", body: "{}" });
    expect(response.status).toBe(404);
  });
});

describe("GET /v1/models", () => {
  it("lists the catalogue in OpenAI's list format", async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(listModels().map((model) => model.id));
  });
});

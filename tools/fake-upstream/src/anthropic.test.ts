import { countPromptTokens, getModel } from "@worldrouter/pricing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asChatMessages, parseMessagesRequest } from "./anthropic.js";
import { startFakeUpstream, type FakeUpstream } from "./server.js";
import { ANTHROPIC_HEADERS, postMessages } from "./test-support/clients.js";
import { parseSse } from "./test-support/sse.js";

let upstream: FakeUpstream;
beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(() => upstream.close());

const request = {
  model: "claude-sonnet-4-5",
  max_tokens: 1024,
  system: "You are a helpful assistant.",
  messages: [{ role: "user", content: "Tell me about rivers." }],
};
const weatherTool = {
  name: "get_weather",
  description: "Get the weather for a city",
  input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};
const claude = getModel("claude-sonnet-4-5")!;
const promptTokensOf = (body: object) => {
  const { messages, tools } = asChatMessages(parseMessagesRequest(body));
  return countPromptTokens(claude, messages, tools);
};

type Json = Record<string, any>;

describe("POST /v1/messages (non-stream)", () => {
  it("returns a message with a text block and usage", async () => {
    const response = await postMessages(upstream, request);
    expect(response.status).toBe(200);
    expect(response.headers.get("request-id")).toMatch(/^req_/);
    const message = (await response.json()) as Json;
    expect(message).toMatchObject({
      type: "message",
      role: "assistant",
      model: "claude-sonnet-4-5",
      stop_reason: "end_turn",
      stop_sequence: null,
    });
    expect(message.id).toMatch(/^msg_/);
    expect(message.content).toEqual([{ type: "text", text: expect.any(String) }]);
    expect(message.usage).toEqual({
      input_tokens: promptTokensOf(request),
      output_tokens: 32,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      service_tier: "standard",
    });
  });

  it("counts the system prompt and content blocks like the gateway's estimate", async () => {
    const blocks = {
      ...request,
      system: [{ type: "text", text: "You are a helpful assistant." }],
      messages: [{ role: "user", content: [{ type: "text", text: "Tell me about rivers." }] }],
    };
    const message = (await (await postMessages(upstream, blocks)).json()) as Json;
    expect(message.usage.input_tokens).toBe(promptTokensOf(request));
  });

  it("is deterministic and matches the streamed text", async () => {
    const a = (await (await postMessages(upstream, request)).json()) as Json;
    const b = (await (await postMessages(upstream, { ...request, temperature: 0.2 })).json()) as Json;
    expect(b.content[0].text).toBe(a.content[0].text);
    const events = parseSse(await (await postMessages(upstream, { ...request, stream: true })).text());
    const streamed = events
      .filter((event) => event.event === "content_block_delta")
      .map((event) => JSON.parse(event.data).delta.text)
      .join("");
    expect(streamed).toBe(a.content[0].text);
  });

  it("stops at max_tokens and at stop sequences", async () => {
    const short = (await (await postMessages(upstream, { ...request, max_tokens: 4 })).json()) as Json;
    expect(short).toMatchObject({ stop_reason: "max_tokens", usage: { output_tokens: 4 } });
    const full = ((await (await postMessages(upstream, request)).json()) as Json).content[0].text as string;
    const stop = full.split(" ").slice(4, 6).join(" ");
    const stopped = (await (await postMessages(upstream, { ...request, stop_sequences: [stop] })).json()) as Json;
    expect(stopped).toMatchObject({ stop_reason: "stop_sequence", stop_sequence: stop });
    expect(stopped.content[0].text).toBe(full.slice(0, full.indexOf(stop)));
  });

  it("uses a tool: text then tool_use with auto, tool_use only when forced", async () => {
    const auto = (await (await postMessages(upstream, { ...request, tools: [weatherTool] })).json()) as Json;
    expect(auto.stop_reason).toBe("tool_use");
    expect(auto.content.map((block: Json) => block.type)).toEqual(["text", "tool_use"]);
    expect(auto.content[1]).toMatchObject({ name: "get_weather", input: { city: expect.any(String) } });
    expect(auto.content[1].id).toMatch(/^toolu_/);
    expect(auto.usage.input_tokens).toBe(promptTokensOf({ ...request, tools: [weatherTool] }));

    const forced = (await (
      await postMessages(upstream, { ...request, tools: [weatherTool], tool_choice: { type: "tool", name: "get_weather" } })
    ).json()) as Json;
    expect(forced.content.map((block: Json) => block.type)).toEqual(["tool_use"]);
    const none = (await (await postMessages(upstream, { ...request, tools: [weatherTool], tool_choice: { type: "none" } })).json()) as Json;
    expect(none.stop_reason).toBe("end_turn");
  });

  it("reports cache reads and writes on request, out of the same prompt total", async () => {
    const message = (await (
      await postMessages(upstream, request, { "x-fake-cached-tokens": "5", "x-fake-cache-write-tokens": "3" })
    ).json()) as Json;
    expect(message.usage).toMatchObject({
      cache_read_input_tokens: 5,
      cache_creation_input_tokens: 3,
      input_tokens: promptTokensOf(request) - 8,
    });
  });

  it("counts tool_use and tool_result history", async () => {
    const history = {
      ...request,
      tools: [weatherTool],
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "18°C and sunny" }] },
      ],
    };
    const message = (await (await postMessages(upstream, history, { "x-fake-tool-call": "off" })).json()) as Json;
    expect(message.usage.input_tokens).toBe(promptTokensOf(history));
    expect(message.stop_reason).toBe("end_turn");
  });
});

describe("POST /v1/messages (stream)", () => {
  it("sends Anthropic's exact event sequence", async () => {
    const response = await postMessages(upstream, { ...request, stream: true }, { "x-fake-tokens": "3" });
    expect(response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const events = parseSse(await response.text());
    expect(events.map((event) => event.event)).toEqual([
      "message_start",
      "content_block_start",
      "ping",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const data = events.map((event) => JSON.parse(event.data) as Json);
    data.forEach((payload, i) => expect(payload.type).toBe(events[i]!.event));
    expect(data[0]!.message).toMatchObject({
      type: "message",
      role: "assistant",
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: promptTokensOf(request), cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
    });
    expect(data[1]).toEqual({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
    expect(data[3]).toEqual({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: expect.any(String) } });
    expect(data[6]).toEqual({ type: "content_block_stop", index: 0 });
    expect(data[7]).toEqual({
      type: "message_delta",
      delta: { stop_reason: "end_turn", stop_sequence: null },
      usage: { output_tokens: 3 },
    });
    expect(data[8]).toEqual({ type: "message_stop" });
  });

  it("streams a tool_use block as input_json_delta after the text block", async () => {
    const events = parseSse(await (await postMessages(upstream, { ...request, stream: true, tools: [weatherTool] })).text());
    const data = events.map((event) => JSON.parse(event.data) as Json);
    const starts = data.filter((payload) => payload.type === "content_block_start");
    expect(starts.map((start) => [start.index, start.content_block.type])).toEqual([
      [0, "text"],
      [1, "tool_use"],
    ]);
    expect(starts[1]!.content_block).toMatchObject({ name: "get_weather", input: {}, id: expect.stringMatching(/^toolu_/) });
    const json = data
      .filter((payload) => payload.type === "content_block_delta" && payload.index === 1)
      .map((payload) => {
        expect(payload.delta.type).toBe("input_json_delta");
        return payload.delta.partial_json as string;
      })
      .join("");
    const nonStream = (await (await postMessages(upstream, { ...request, tools: [weatherTool] })).json()) as Json;
    expect(JSON.parse(json)).toEqual(nonStream.content[1].input);
    expect(data.find((payload) => payload.type === "message_delta")!.delta.stop_reason).toBe("tool_use");
    expect(data.find((payload) => payload.type === "message_delta")!.usage.output_tokens).toBe(nonStream.usage.output_tokens);
  });
});

describe("Anthropic errors", () => {
  it("requires x-api-key and anthropic-version", async () => {
    const noKey = await fetch(`${upstream.url}/v1/messages`, {
      method: "POST",
      headers: { "anthropic-version": "2023-06-01" },
      body: JSON.stringify(request),
    });
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toEqual({ type: "error", error: { type: "authentication_error", message: expect.any(String) } });
    const noVersion = await fetch(`${upstream.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": "k" },
      body: JSON.stringify(request),
    });
    expect(noVersion.status).toBe(400);
    expect(((await noVersion.json()) as Json).error.type).toBe("invalid_request_error");
  });

  it.each([
    [{ ...request, model: undefined }, "model"],
    [{ ...request, max_tokens: undefined }, "max_tokens"],
    [{ ...request, messages: undefined }, "messages"],
    [{ ...request, messages: [{ role: "system", content: "x" }] }, "messages.0.role"],
    [{ ...request, tools: [{ name: "x" }] }, "tools.0.input_schema"],
  ])("rejects %j in Anthropic format", async (body, field) => {
    const response = await postMessages(upstream, body);
    expect(response.status).toBe(400);
    const error = (await response.json()) as Json;
    expect(error).toEqual({ type: "error", error: { type: "invalid_request_error", message: expect.stringContaining(field) } });
  });

  it("rejects malformed JSON", async () => {
    const response = await fetch(`${upstream.url}/v1/messages`, { method: "POST", headers: ANTHROPIC_HEADERS, body: "not json" });
    expect(response.status).toBe(400);
    expect(((await response.json()) as Json).type).toBe("error");
  });
});

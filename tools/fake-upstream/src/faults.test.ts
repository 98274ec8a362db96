import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "./server.js";
import { openAiClient, postChat, postMessages } from "./test-support/clients.js";
import { readSseUntilError } from "./test-support/sse.js";

let upstream: FakeUpstream;
beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(() => upstream.close());
beforeEach(() => upstream.resetStats());

const messages = [{ role: "user" as const, content: "Tell me about rivers." }];
const chat = { model: "gpt-4o-mini", messages };
const claude = { model: "claude-haiku-4-5", max_tokens: 256, messages };

type Json = Record<string, any>;

describe("HTTP faults", () => {
  it("429 with retry-after, in each provider's format", async () => {
    const openai = await postChat(upstream, chat, { "x-fake-fault": "429", "x-fake-retry-after": "7" });
    expect(openai.status).toBe(429);
    expect(openai.headers.get("retry-after")).toBe("7");
    expect(((await openai.json()) as Json).error).toMatchObject({ type: "requests", code: "rate_limit_exceeded" });

    const anthropic = await postMessages(upstream, claude, { "x-fake-fault": "429" });
    expect(anthropic.status).toBe(429);
    expect(anthropic.headers.get("retry-after")).toBe("1");
    expect(await anthropic.json()).toEqual({ type: "error", error: { type: "rate_limit_error", message: expect.any(String) } });
    expect(upstream.stats.faultsInjected).toBe(2);
    expect(upstream.stats.responses.clientError).toBe(2);
  });

  it("500: server_error / api_error", async () => {
    const openai = await postChat(upstream, chat, { "x-fake-fault": "500" });
    expect(openai.status).toBe(500);
    expect(((await openai.json()) as Json).error.type).toBe("server_error");
    const anthropic = await postMessages(upstream, claude, { "x-fake-fault": "500" });
    expect(anthropic.status).toBe(500);
    expect(((await anthropic.json()) as Json).error.type).toBe("api_error");
  });

  it("overloaded: OpenAI 503, Anthropic 529 overloaded_error", async () => {
    const openai = await postChat(upstream, chat, { "x-fake-fault": "overloaded" });
    expect(openai.status).toBe(503);
    expect(((await openai.json()) as Json).error.type).toBe("server_error");
    const anthropic = await postMessages(upstream, claude, { "x-fake-fault": "overloaded" });
    expect(anthropic.status).toBe(529);
    expect(await anthropic.json()).toEqual({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } });
  });

  it("is selectable by model suffix for clients that cannot set headers", async () => {
    const client = openAiClient(upstream);
    await expect(client.chat.completions.create({ ...chat, model: "gpt-4o-mini:fault=429" })).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    await expect(client.chat.completions.create({ ...chat, model: "gpt-4o-mini:fault=500" })).rejects.toBeInstanceOf(
      OpenAI.InternalServerError,
    );
    const anthropic = await postMessages(upstream, { ...claude, model: "claude-haiku-4-5:fault=overloaded" });
    expect(anthropic.status).toBe(529);
  });
});

describe("fail the first N attempts", () => {
  it("lets the SDK's retries succeed on the third attempt (key = request body)", async () => {
    const client = openAiClient(upstream, { maxRetries: 2 });
    const completion = await client.chat.completions.create({ ...chat, model: "gpt-4o-mini:fail-times=2:fault=429:retry-after=0" });
    expect(completion.choices[0]!.finish_reason).toBe("stop");
    expect(upstream.stats.requests.chatCompletions).toBe(3);
    expect(upstream.stats.faultsInjected).toBe(2);
    // The key has used up its failures: the next identical request succeeds at once.
    await client.chat.completions.create({ ...chat, model: "gpt-4o-mini:fail-times=2:fault=429:retry-after=0" });
    expect(upstream.stats.requests.chatCompletions).toBe(4);
  });

  it("groups attempts by x-fake-request-key and defaults to a 500", async () => {
    const headers = { "x-fake-fail-times": "1", "x-fake-request-key": "job-42" };
    const first = await postMessages(upstream, claude, headers);
    expect(first.status).toBe(500);
    const retryWithOtherBody = await postMessages(upstream, { ...claude, max_tokens: 100 }, headers);
    expect(retryWithOtherBody.status).toBe(200);
    const otherKey = await postMessages(upstream, claude, { ...headers, "x-fake-request-key": "job-43" });
    expect(otherKey.status).toBe(500);
  });

  it("forgets attempts on resetStats", async () => {
    const headers = { "x-fake-fail-times": "1", "x-fake-request-key": "reset-me" };
    expect((await postChat(upstream, chat, headers)).status).toBe(500);
    upstream.resetStats();
    expect((await postChat(upstream, chat, headers)).status).toBe(500);
  });
});

describe("disconnects", () => {
  it("drops the connection without a response (fault=disconnect)", async () => {
    await expect(postChat(upstream, chat, { "x-fake-fault": "disconnect" })).rejects.toThrow();
    await expect(postMessages(upstream, { ...claude, model: "claude-haiku-4-5:fault=disconnect" })).rejects.toThrow();
    expect(upstream.stats.disconnectsInjected).toBe(2);
    expect(upstream.stats.clientAborts).toBe(0);
  });

  it("breaks an OpenAI stream after K events", async () => {
    const response = await postChat(upstream, { ...chat, stream: true }, { "x-fake-disconnect-after": "3", "x-fake-tokens": "10" });
    expect(response.status).toBe(200);
    const { events, error } = await readSseUntilError(response);
    expect(error).not.toBeNull();
    expect(events).toHaveLength(3);
    expect(JSON.parse(events[0]!.data).choices[0].delta.role).toBe("assistant");
    expect(upstream.stats.disconnectsInjected).toBe(1);
  });

  it("breaks an OpenAI stream the SDK is reading", async () => {
    const client = openAiClient(upstream);
    const stream = await client.chat.completions.create({ ...chat, model: "gpt-4o-mini:disconnect-after=4:latency-ms=5", stream: true });
    const received: string[] = [];
    await expect(
      (async () => {
        for await (const chunk of stream) received.push(chunk.choices[0]?.delta.content ?? "");
      })(),
    ).rejects.toThrow();
    expect(received).toHaveLength(4);
  });

  it("breaks an Anthropic stream after K events", async () => {
    const response = await postMessages(
      upstream,
      { ...claude, stream: true },
      { "x-fake-disconnect-after": "5", "x-fake-latency-ms": "2" },
    );
    const { events, error } = await readSseUntilError(response);
    expect(error).not.toBeNull();
    expect(events.map((event) => event.event)).toEqual([
      "message_start",
      "content_block_start",
      "ping",
      "content_block_delta",
      "content_block_delta",
    ]);
  });

  it("drops a non-stream request after its generation time", async () => {
    await expect(postChat(upstream, chat, { "x-fake-disconnect-after": "0" })).rejects.toThrow();
    expect(upstream.stats.disconnectsInjected).toBe(1);
  });
});

describe("timing and client aborts", () => {
  it("waits ttft before a non-stream response and ttft + latency per event in a stream", async () => {
    let start = performance.now();
    await postChat(upstream, chat, { "x-fake-ttft-ms": "60" }).then((response) => response.json());
    expect(performance.now() - start).toBeGreaterThanOrEqual(55);

    start = performance.now();
    const response = await postChat(
      upstream,
      { ...chat, stream: true },
      { "x-fake-ttft-ms": "20", "x-fake-latency-ms": "15", "x-fake-tokens": "4" },
    );
    await response.text();
    // role, 4 content, finish, [DONE]: the first after ttft, six more 15 ms apart. Lower bounds only: timers never
    // fire early, but a loaded machine may fire them late.
    expect(performance.now() - start).toBeGreaterThanOrEqual(20 + 6 * 15 - 5);
  });

  it("applies server defaults", async () => {
    const slow = await startFakeUpstream({ defaults: { ttftMs: 40, completionTokens: 2 } });
    try {
      const start = performance.now();
      const completion = await openAiClient(slow).chat.completions.create(chat);
      expect(performance.now() - start).toBeGreaterThanOrEqual(35);
      expect(completion.usage!.completion_tokens).toBe(2);
      const fast = await openAiClient(slow).chat.completions.create(chat, { headers: { "x-fake-ttft-ms": "0", "x-fake-tokens": "5" } });
      expect(fast.usage!.completion_tokens).toBe(5);
    } finally {
      await slow.close();
    }
  });

  it("counts a client abort mid-stream", async () => {
    const response = await postChat(upstream, { ...chat, stream: true }, { "x-fake-latency-ms": "20", "x-fake-tokens": "200" });
    const reader = response.body!.getReader();
    await reader.read();
    expect(upstream.stats.inFlight).toBe(1);
    await reader.cancel();
    await vi.waitFor(() => expect(upstream.stats.clientAborts).toBe(1));
    expect(upstream.stats.inFlight).toBe(0);
    expect(upstream.stats.disconnectsInjected).toBe(0);
  });

  it("counts a client abort while the response is still being generated", async () => {
    const controller = new AbortController();
    const pending = fetch(`${upstream.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer x", "x-fake-ttft-ms": "5000" },
      body: JSON.stringify(chat),
      signal: controller.signal,
    });
    await vi.waitFor(() => expect(upstream.stats.inFlight).toBe(1));
    controller.abort();
    await expect(pending).rejects.toThrow();
    await vi.waitFor(() => expect(upstream.stats.clientAborts).toBe(1));
    expect(upstream.stats.responses.ok).toBe(0);
  });
});

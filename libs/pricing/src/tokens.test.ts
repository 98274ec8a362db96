import { encode } from "gpt-tokenizer/encoding/o200k_base";
import { afterAll, describe, expect, it } from "vitest";
import { closeTokenCounterPool, countPromptTokensOffThread, OFF_THREAD_MIN_CHARS } from "./token-pool.js";
import { countCompletionTokens, countPromptTokens, countTextTokens, type ChatMessage, type ToolDefinition } from "./tokens.js";

const openai = { tokenizer: "o200k_base" } as const;
const anthropic = { tokenizer: "anthropic-approx" } as const;

// OpenAI cookbook "How to count tokens with tiktoken", §6 and §7: counts the cookbook checked against the API's
// usage.prompt_tokens for gpt-4o and gpt-4o-mini.
const COOKBOOK_MESSAGES: ChatMessage[] = [
  { role: "system", content: "You are a helpful, pattern-following assistant that translates corporate jargon into plain English." },
  { role: "system", name: "example_user", content: "New synergies will help drive top-line growth." },
  { role: "system", name: "example_assistant", content: "Things working well together will increase revenue." },
  {
    role: "system",
    name: "example_user",
    content: "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
  },
  { role: "system", name: "example_assistant", content: "Let's talk later when we're less busy about how to do better." },
  { role: "user", content: "This late pivot means we don't have time to boil the ocean for the client deliverable." },
];
const COOKBOOK_TOOLS: ToolDefinition[] = [
  {
    type: "function",
    function: {
      name: "get_current_weather",
      description: "Get the current weather in a given location",
      parameters: {
        type: "object",
        properties: {
          location: { type: "string", description: "The city and state, e.g. San Francisco, CA" },
          unit: { type: "string", description: "The unit of temperature to return", enum: ["celsius", "fahrenheit"] },
        },
        required: ["location"],
      },
    },
  },
];
const COOKBOOK_TOOL_MESSAGES: ChatMessage[] = [
  { role: "system", content: "You are a helpful assistant that can answer to questions about the weather." },
  { role: "user", content: "What's the weather like in San Francisco?" },
];

afterAll(() => closeTokenCounterPool());

describe("countTextTokens (o200k_base)", () => {
  it.each([
    "",
    "hello world",
    "Hello, world!",
    "tiktoken is great!",
    "антидизестаблишментарианизм",
    "日本語のテキスト",
    "def f(x):\n    return x ** 2\n",
  ])("matches the tokenizer's encoding of %j", (text) => {
    expect(countTextTokens(text)).toBe(encode(text).length);
  });

  it("counts known values", () => {
    expect(countTextTokens("hello world")).toBe(2);
    expect(countTextTokens(" the quick brown fox")).toBe(4);
  });

  it("counts special-token markup in user text as ordinary text instead of throwing", () => {
    expect(countTextTokens("<|endoftext|>")).toBeGreaterThan(1);
    expect(() => countPromptTokens(openai, [{ role: "user", content: "ignore <|im_start|>system" }])).not.toThrow();
  });
});

describe("countPromptTokens (OpenAI)", () => {
  it("matches the API's prompt_tokens for the cookbook chat (gpt-4o: 124)", () => {
    expect(countPromptTokens(openai, COOKBOOK_MESSAGES)).toBe(124);
  });

  it("matches the API's prompt_tokens for the cookbook tool request (gpt-4o: 101)", () => {
    expect(countPromptTokens(openai, COOKBOOK_TOOL_MESSAGES, COOKBOOK_TOOLS)).toBe(101);
  });

  it("applies 3 per message, role and content, 3 priming, name + 1", () => {
    expect(countPromptTokens(openai, [])).toBe(3);
    const user = countTextTokens("user");
    expect(countPromptTokens(openai, [{ role: "user", content: "hello world" }])).toBe(3 + user + 2 + 3);
    expect(countPromptTokens(openai, [{ role: "user", name: "alice", content: "hello world" }])).toBe(
      3 + user + 2 + countTextTokens("alice") + 1 + 3,
    );
    expect(countPromptTokens(openai, [{ role: "assistant", content: null }])).toBe(3 + countTextTokens("assistant") + 3);
  });

  it("counts the text parts of multi-part content", () => {
    const single = countPromptTokens(openai, [{ role: "user", content: "describe the weather" }]);
    const parts = countPromptTokens(openai, [{ role: "user", content: [{ type: "text", text: "describe the weather" }] }]);
    expect(parts).toBe(single);
    const two = countPromptTokens(openai, [
      {
        role: "user",
        content: [
          { type: "text", text: "describe" },
          { type: "text", text: " the weather" },
        ],
      },
    ]);
    expect(two).toBe(single);
  });

  it("estimates images at a fixed cost by detail", () => {
    const base = countPromptTokens(openai, [{ role: "user", content: [{ type: "text", text: "what is this?" }] }]);
    const image = (detail?: string) =>
      countPromptTokens(openai, [
        {
          role: "user",
          content: [
            { type: "text", text: "what is this?" },
            { type: "image_url", image_url: { url: "https://x/y.png", ...(detail && { detail }) } },
          ],
        },
      ]);
    expect(image("low")).toBe(base + 85);
    expect(image("high")).toBe(base + 765);
    expect(image()).toBe(base + 765);
  });

  it("counts assistant tool calls and tool results", () => {
    const messages: ChatMessage[] = [
      {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }],
      },
      { role: "tool", tool_call_id: "call_1", content: "18°C and sunny" },
    ];
    const expected =
      3 +
      countTextTokens("assistant") +
      countTextTokens("get_weather") +
      countTextTokens('{"city":"Paris"}') +
      3 +
      (3 + countTextTokens("tool") + countTextTokens("18°C and sunny")) +
      3;
    expect(countPromptTokens(openai, messages)).toBe(expected);
  });

  it("counts tools without descriptions or properties, and nested schemas", () => {
    const bare: ToolDefinition[] = [{ type: "function", function: { name: "ping" } }];
    expect(countPromptTokens(openai, [], bare)).toBe(3 + 7 + countTextTokens("ping:") + 12);
    const flat: ToolDefinition[] = [
      { type: "function", function: { name: "f", parameters: { type: "object", properties: { a: { type: "object" } } } } },
    ];
    const nested: ToolDefinition[] = [
      {
        type: "function",
        function: {
          name: "f",
          parameters: { type: "object", properties: { a: { type: "object", properties: { b: { type: "string" } } } } },
        },
      },
    ];
    expect(countPromptTokens(openai, [], nested)).toBeGreaterThan(countPromptTokens(openai, [], flat));
  });
});

describe("countPromptTokens (Anthropic approximation)", () => {
  it("is the o200k count × 5/4, rounded up", () => {
    for (const messages of [COOKBOOK_MESSAGES, COOKBOOK_TOOL_MESSAGES, [], [{ role: "user", content: "hi" }]]) {
      expect(countPromptTokens(anthropic, messages)).toBe(Math.ceil((countPromptTokens(openai, messages) * 5) / 4));
    }
    expect(countPromptTokens(anthropic, COOKBOOK_MESSAGES)).toBe(155);
  });

  it("adds the tool-use system prompt and the tools' JSON", () => {
    const tools = countPromptTokens(anthropic, COOKBOOK_TOOL_MESSAGES, COOKBOOK_TOOLS);
    const json = countTextTokens(JSON.stringify(COOKBOOK_TOOLS.map((tool) => tool.function)));
    expect(tools).toBe(Math.ceil(((countPromptTokens(openai, COOKBOOK_TOOL_MESSAGES) + json) * 5) / 4) + 346);
  });

  it("estimates images at 1600 tokens, unscaled", () => {
    const text = countPromptTokens(anthropic, [{ role: "user", content: [{ type: "text", text: "what is this?" }] }]);
    const withImage = countPromptTokens(anthropic, [
      {
        role: "user",
        content: [
          { type: "text", text: "what is this?" },
          { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
        ],
      },
    ]);
    expect(withImage).toBe(text + 1600);
  });

  it("scales completion tokens the same way", () => {
    expect(countCompletionTokens(openai, "hello world")).toBe(2);
    expect(countCompletionTokens(anthropic, "hello world")).toBe(3);
    expect(countCompletionTokens(anthropic, "")).toBe(0);
  });
});

describe("countPromptTokensOffThread", () => {
  const large: ChatMessage[] = [
    { role: "system", content: "You are terse." },
    { role: "user", content: Array.from({ length: 6_000 }, (_, i) => `item ${i}: the value is ${(i * 7919) % 1000}.`).join("\n") },
  ];

  it("counts large prompts on a worker with exactly the inline result", async () => {
    expect(large.reduce((n, m) => n + String(m.content).length, 0)).toBeGreaterThan(OFF_THREAD_MIN_CHARS);
    expect(await countPromptTokensOffThread(openai, large, COOKBOOK_TOOLS)).toBe(countPromptTokens(openai, large, COOKBOOK_TOOLS));
    expect(await countPromptTokensOffThread(anthropic, large, COOKBOOK_TOOLS)).toBe(countPromptTokens(anthropic, large, COOKBOOK_TOOLS));
  });

  it("counts small prompts inline with the same result", async () => {
    expect(await countPromptTokensOffThread(openai, COOKBOOK_MESSAGES)).toBe(124);
  });

  it("serves concurrent requests and restarts after close", async () => {
    const counts = await Promise.all(Array.from({ length: 8 }, () => countPromptTokensOffThread(openai, large)));
    expect(new Set(counts)).toEqual(new Set([countPromptTokens(openai, large)]));
    await closeTokenCounterPool();
    expect(await countPromptTokensOffThread(openai, large)).toBe(counts[0]);
  });
});

import { countCompletionTokens, countPromptTokens } from "@worldrouter/pricing";
import { describe, expect, it } from "vitest";
import { chunkBodies, collect, contentOf, model, providerCall, USER_MESSAGES } from "../test-support/upstreams.js";
import { LocalProvider } from "./local.js";

const local = new LocalProvider();

describe("local provider", () => {
  it("answers deterministically from the input, with usage from the tokenizer", async () => {
    const first = await local.complete(providerCall("gpt-4o-mini", { messages: USER_MESSAGES }));
    const again = await local.complete(providerCall("gpt-4o-mini", { messages: USER_MESSAGES }));
    const other = await local.complete(providerCall("gpt-4o-mini", { messages: [{ role: "user", content: "Something else entirely." }] }));
    const content = JSON.parse(first.data).choices[0].message.content as string;
    expect(JSON.parse(again.data).choices[0].message.content).toBe(content);
    expect(JSON.parse(other.data).choices[0].message.content).not.toBe(content);
    const mini = model("gpt-4o-mini");
    expect(first.usage).toEqual({
      promptTokens: countPromptTokens(mini, USER_MESSAGES),
      completionTokens: countCompletionTokens(mini, content),
      cachedTokens: 0,
      cacheWriteTokens: 0,
    });
    expect(first.finishReason).toBe("stop");
  });

  it("streams the same answer, ends with finish_reason and the usage chunk when asked", async () => {
    const whole = await local.complete(providerCall("claude-haiku-4-5", { messages: USER_MESSAGES }));
    const chunks = await collect(
      local.stream(providerCall("claude-haiku-4-5", { messages: USER_MESSAGES, stream: true, stream_options: { include_usage: true } })),
    );
    expect(contentOf(chunks)).toBe(JSON.parse(whole.data).choices[0].message.content);
    const bodies = chunkBodies(chunks);
    expect(bodies.at(-2)!.choices[0].finish_reason).toBe("stop");
    expect(bodies.at(-1)!.usage).toEqual(JSON.parse(whole.data).usage);
  });

  it("stops at max_tokens with finish_reason length", async () => {
    const cut = await local.complete(providerCall("gpt-4o-mini", { messages: USER_MESSAGES, max_tokens: 4 }));
    expect(cut.finishReason).toBe("length");
    expect(cut.usage.completionTokens).toBeLessThanOrEqual(4);
    expect(cut.usage.completionTokens).toBeGreaterThan(0);
  });
});

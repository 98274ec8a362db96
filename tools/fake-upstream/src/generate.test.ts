import { countTextTokens } from "@worldrouter/pricing";
import { describe, expect, it } from "vitest";
import { planCompletion } from "./completion.js";
import { fragments, OPENER_PIECES, PUNCTUATION_PIECES, random, seedOf, textPieces, valueForSchema, WORD_PIECES } from "./generate.js";

describe("text pieces", () => {
  it("are each exactly one o200k_base token", () => {
    for (const piece of [...OPENER_PIECES, ...WORD_PIECES, ...PUNCTUATION_PIECES]) expect(countTextTokens(piece), piece).toBe(1);
  });

  it("never merge: N pieces are N tokens by the real tokenizer", () => {
    for (let seed = 0; seed < 200; seed++) {
      for (const tokens of [0, 1, 2, 3, 5, 17, 64, 300]) {
        const pieces = textPieces(seed, tokens);
        expect(pieces).toHaveLength(tokens);
        expect(countTextTokens(pieces.join(""))).toBe(tokens);
      }
    }
  });

  it("are deterministic per seed and differ across seeds", () => {
    expect(textPieces(7, 50)).toEqual(textPieces(7, 50));
    expect(textPieces(7, 50).join("")).not.toBe(textPieces(8, 50).join(""));
    expect(textPieces(7, 20).slice(0, 19)).toEqual(textPieces(7, 50).slice(0, 19));
    expect(seedOf("gpt-4o", "[]")).toBe(seedOf("gpt-4o", "[]"));
    expect(seedOf("gpt-4o", "[]")).not.toBe(seedOf("gpt-4o-mini", "[]"));
  });
});

describe("valueForSchema", () => {
  it("satisfies types, enums, bounds and nesting", () => {
    const value = valueForSchema(
      {
        type: "object",
        properties: {
          city: { type: "string" },
          unit: { type: "string", enum: ["celsius", "fahrenheit"] },
          days: { type: "integer", minimum: 1, maximum: 7 },
          ok: { type: "boolean" },
          tags: { type: "array", items: { type: "string" } },
          nested: { type: "object", properties: { level: { type: ["number", "null"] } } },
          fixed: { const: 42 },
        },
      },
      random(1),
    ) as Record<string, unknown>;
    expect(typeof value.city).toBe("string");
    expect(["celsius", "fahrenheit"]).toContain(value.unit);
    expect(value.days).toBeGreaterThanOrEqual(1);
    expect(value.days).toBeLessThanOrEqual(7);
    expect(Number.isInteger(value.days)).toBe(true);
    expect(typeof value.ok).toBe("boolean");
    expect(Array.isArray(value.tags)).toBe(true);
    expect(typeof (value.nested as Record<string, unknown>).level).toBe("number");
    expect(value.fixed).toBe(42);
  });

  it("splits JSON into fragments that rejoin to it", () => {
    const json = JSON.stringify({ location: "San Francisco, CA", days: 3, list: [true, null] });
    expect(fragments(json).join("")).toBe(json);
    expect(fragments(json).length).toBeGreaterThanOrEqual(countTextTokens(json));
  });
});

describe("planCompletion", () => {
  const text = { kind: "text" } as const;

  it("ends naturally, by length or at a stop sequence, counting real tokens", () => {
    const full = planCompletion({ seed: 3, mode: text, tokens: 40, maxTokens: undefined, stop: [] });
    expect(full).toMatchObject({ end: "end", tokens: 40 });
    const cut = planCompletion({ seed: 3, mode: text, tokens: 40, maxTokens: 10, stop: [] });
    expect(cut).toMatchObject({ end: "length", tokens: 10 });
    expect(cut.content).toEqual(full.content.slice(0, 10));

    const stop = full.content.slice(20, 22).join("").trim();
    const stopped = planCompletion({ seed: 3, mode: text, tokens: 40, maxTokens: undefined, stop: ["zzz", stop] });
    const before = full.content.join("").slice(0, full.content.join("").indexOf(stop));
    expect(stopped).toMatchObject({ end: "stop_sequence", stopSequence: stop });
    expect(stopped.content.join("")).toBe(before);
    expect(stopped.tokens).toBe(countTextTokens(before));
  });

  it("reports length when max_tokens comes before the stop sequence", () => {
    const full = planCompletion({ seed: 3, mode: text, tokens: 40, maxTokens: undefined, stop: [] });
    const stop = full.content.slice(30, 32).join("");
    expect(planCompletion({ seed: 3, mode: text, tokens: 40, maxTokens: 5, stop: [stop] })).toMatchObject({ end: "length", tokens: 5 });
  });

  it("emits valid JSON in json mode and counts it with the tokenizer", () => {
    const plan = planCompletion({ seed: 9, mode: { kind: "json" }, tokens: 20, maxTokens: undefined, stop: [] });
    const content = plan.content.join("");
    expect(JSON.parse(content)).toHaveProperty("answer");
    expect(plan.tokens).toBe(countTextTokens(content));
    const cut = planCompletion({ seed: 9, mode: { kind: "json" }, tokens: 20, maxTokens: 4, stop: [] });
    expect(cut.end).toBe("length");
    expect(cut.tokens).toBeLessThanOrEqual(4);
  });
});

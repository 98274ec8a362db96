import { describe, expect, it } from "vitest";
import { CATALOGUE, PRICE_SOURCES } from "./catalogue.js";
import { getModel, listModels } from "./registry.js";

/** Base units per 1M tokens: [input, output, cached input / cache read, cache write]. */
const EXPECTED: Record<string, readonly [bigint, bigint, bigint | null, bigint | null]> = {
  // Advertised seed prices.
  "gpt-5": [125_000n, 1_000_000n, 12_500n, null],
  "gpt-5.1": [125_000n, 1_000_000n, 12_500n, null],
  "gpt-5.2": [175_000n, 1_400_000n, 17_500n, null],
  "gpt-5.4": [250_000n, 1_500_000n, 25_000n, null],
  "gpt-5-pro": [1_500_000n, 12_000_000n, null, null],
  "gpt-5.1-codex": [125_000n, 1_000_000n, 12_500n, null],
  "gpt-5.1-codex-max": [125_000n, 1_000_000n, 12_500n, null],
  "gpt-5.2-codex": [175_000n, 1_400_000n, 17_500n, null],
  "gpt-5.3-codex": [175_000n, 1_400_000n, 17_500n, null],
  // OpenAI list prices.
  "gpt-5.4-pro": [30_000_000n, 180_000_000n, null, null],
  "gpt-5-mini": [250_000n, 2_000_000n, 25_000n, null],
  "gpt-5-nano": [50_000n, 400_000n, 5_000n, null],
  "gpt-4.1": [2_000_000n, 8_000_000n, 500_000n, null],
  "gpt-4.1-mini": [400_000n, 1_600_000n, 100_000n, null],
  "gpt-4.1-nano": [100_000n, 400_000n, 25_000n, null],
  "gpt-4o": [2_500_000n, 10_000_000n, 1_250_000n, null],
  "gpt-4o-mini": [150_000n, 600_000n, 75_000n, null],
  o3: [2_000_000n, 8_000_000n, 500_000n, null],
  "o3-pro": [20_000_000n, 80_000_000n, null, null],
  "o4-mini": [1_100_000n, 4_400_000n, 275_000n, null],
  "o3-mini": [1_100_000n, 4_400_000n, 550_000n, null],
  o1: [15_000_000n, 60_000_000n, 7_500_000n, null],
  // Anthropic list prices.
  "claude-opus-4-6": [5_000_000n, 25_000_000n, 500_000n, 6_250_000n],
  "claude-opus-4-5": [5_000_000n, 25_000_000n, 500_000n, 6_250_000n],
  "claude-opus-4-1": [15_000_000n, 75_000_000n, 1_500_000n, 18_750_000n],
  "claude-opus-4": [15_000_000n, 75_000_000n, 1_500_000n, 18_750_000n],
  "claude-sonnet-4-5": [3_000_000n, 15_000_000n, 300_000n, 3_750_000n],
  "claude-sonnet-4": [3_000_000n, 15_000_000n, 300_000n, 3_750_000n],
  "claude-haiku-4-5": [1_000_000n, 5_000_000n, 100_000n, 1_250_000n],
  "claude-3-5-haiku": [800_000n, 4_000_000n, 80_000n, 1_000_000n],
  "claude-3-haiku": [250_000n, 1_250_000n, 30_000n, 300_000n],
};

describe("catalogue", () => {
  it("sells at least 30 models, each listed in this test", () => {
    expect(CATALOGUE.length).toBeGreaterThanOrEqual(30);
    expect(CATALOGUE.map((entry) => entry.id).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(Object.entries(EXPECTED))("%s has exactly its advertised / list prices", (id, [input, output, cached, cacheWrite]) => {
    const { prices } = getModel(id)!;
    expect(prices.input.perMillion).toBe(input);
    expect(prices.output.perMillion).toBe(output);
    expect(prices.cachedInput?.perMillion ?? null).toBe(cached);
    expect(prices.cacheWrite?.perMillion ?? null).toBe(cacheWrite);
  });

  it("has unique ids and aliases", () => {
    const ids = CATALOGUE.flatMap((entry) => [entry.id, ...(entry.aliases ?? [])]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("gives every price a dated source from the source table", () => {
    const sources = new Set<unknown>(Object.values(PRICE_SOURCES));
    for (const model of listModels()) {
      for (const price of Object.values(model.prices)) {
        expect(sources.has(price.source), `${model.id}: ${price.source.id}`).toBe(true);
        expect(price.source.asOf).toMatch(/^\d{4}-\d{2}-\d{2}$/);
        expect(price.source.title.length).toBeGreaterThan(0);
      }
    }
  });

  it("prices the seed models from the advertised list", () => {
    for (const id of [
      "gpt-5",
      "gpt-5.1",
      "gpt-5.2",
      "gpt-5.4",
      "gpt-5-pro",
      "gpt-5.1-codex",
      "gpt-5.1-codex-max",
      "gpt-5.2-codex",
      "gpt-5.3-codex",
    ]) {
      const { prices } = getModel(id)!;
      expect(prices.input.source).toBe(PRICE_SOURCES.advertised);
      expect(prices.output.source).toBe(PRICE_SOURCES.advertised);
    }
  });

  it("has sane limits and price relations", () => {
    for (const model of listModels()) {
      expect(model.contextWindow).toBeGreaterThan(model.maxOutputTokens);
      expect(model.maxOutputTokens).toBeGreaterThan(0);
      expect(model.prices.input.perMillion).toBeGreaterThan(0n);
      expect(model.prices.output.perMillion).toBeGreaterThanOrEqual(model.prices.input.perMillion);
      if (model.prices.cachedInput) expect(model.prices.cachedInput.perMillion).toBeLessThan(model.prices.input.perMillion);
      if (model.prices.cacheWrite) expect(model.prices.cacheWrite.perMillion).toBeGreaterThan(model.prices.input.perMillion);
    }
  });

  it("assigns provider, upstream id and tokenizer", () => {
    expect(getModel("gpt-4o")).toMatchObject({ provider: "openai", upstreamModel: "gpt-4o", tokenizer: "o200k_base" });
    expect(getModel("claude-sonnet-4-5")).toMatchObject({
      provider: "anthropic",
      upstreamModel: "claude-sonnet-4-5-20250929",
      tokenizer: "anthropic-approx",
    });
    for (const model of listModels()) {
      expect(model.tokenizer).toBe(model.provider === "openai" ? "o200k_base" : "anthropic-approx");
      if (model.provider === "openai") expect(model.prices.cacheWrite).toBeUndefined();
    }
  });
});

import { describe, expect, it } from "vitest";
import { actualCost, estimateCost } from "./cost.js";
import { InvalidUsageError } from "./errors.js";
import type { Model } from "./model.js";
import { formatUsd } from "./money.js";
import { parseRatio, ratio } from "./ratio.js";
import { getModel } from "./registry.js";

const model = (id: string): Model => getModel(id)!;
const gpt5 = model("gpt-5"); // $0.125 / $1.00 per 1M, cached $0.0125

describe("actualCost", () => {
  it("charges nothing for nothing", () => {
    expect(actualCost({ model: gpt5, promptTokens: 0n, completionTokens: 0n })).toBe(0n);
  });

  it("rounds a fraction of a base unit up: 1 token at $0.125/1M costs 1 base unit", () => {
    expect(actualCost({ model: gpt5, promptTokens: 1n, completionTokens: 0n })).toBe(1n);
  });

  it.each([
    [7n, 1n], // 0.875 → 1
    [8n, 1n], // exactly 1
    [9n, 2n], // 1.125 → 2
    [16n, 2n],
    [17n, 3n],
    [1_000_000n, 125_000n],
    [1_000_001n, 125_001n],
  ])("%s prompt tokens of gpt-5 cost %s base units", (promptTokens, expected) => {
    expect(actualCost({ model: gpt5, promptTokens, completionTokens: 0n })).toBe(expected);
  });

  it("prices completion tokens at the output price: 1 token of $1.00/1M costs 1 base unit, 1M cost $1", () => {
    expect(actualCost({ model: gpt5, promptTokens: 0n, completionTokens: 1n })).toBe(1n);
    expect(actualCost({ model: gpt5, promptTokens: 0n, completionTokens: 1_000_000n })).toBe(1_000_000n);
  });

  it("rounds once, over the sum, not per token class", () => {
    // 4 × 0.125 + 4 × 0.0125 = 0.55 base units → 1 (per-class ceilings would give 2).
    expect(actualCost({ model: gpt5, promptTokens: 8n, cachedTokens: 4n, completionTokens: 0n })).toBe(1n);
  });

  it("bills cached input at the cached price (OpenAI)", () => {
    // gpt-4o: 600 × $2.50 + 400 × $1.25 + 100 × $10 per 1M = $0.003
    const cost = actualCost({ model: model("gpt-4o"), promptTokens: 1000n, cachedTokens: 400n, completionTokens: 100n });
    expect(cost).toBe(3_000n);
    expect(formatUsd(cost)).toBe("$0.003");
  });

  it("bills Anthropic cache reads and writes at their prices", () => {
    // claude-sonnet-4-5: 5000 × $3 + 2000 × $0.30 + 3000 × $3.75 + 1000 × $15 per 1M = $0.04185
    const cost = actualCost({
      model: model("claude-sonnet-4-5"),
      promptTokens: 10_000n,
      cachedTokens: 2_000n,
      cacheWriteTokens: 3_000n,
      completionTokens: 1_000n,
    });
    expect(cost).toBe(41_850n);
  });

  it("bills cached tokens as input where the model has no cached price", () => {
    const pro = model("gpt-5-pro");
    expect(actualCost({ model: pro, promptTokens: 1000n, cachedTokens: 1000n, completionTokens: 0n })).toBe(
      actualCost({ model: pro, promptTokens: 1000n, completionTokens: 0n }),
    );
    expect(actualCost({ model: gpt5, promptTokens: 10n, cacheWriteTokens: 10n, completionTokens: 0n })).toBe(2n);
  });

  it("keeps full precision at 10^12 tokens", () => {
    const tera = 10n ** 12n;
    expect(actualCost({ model: model("gpt-4o"), promptTokens: tera, completionTokens: tera })).toBe(
      2_500_000_000_000n + 10_000_000_000_000n,
    );
    expect(actualCost({ model: gpt5, promptTokens: tera + 1n, completionTokens: 0n })).toBe(125_000_000_000n + 1n);
    expect(actualCost({ model: model("gpt-5.4-pro"), promptTokens: 0n, completionTokens: tera + 7n })).toBe(180_000_000_000_000n + 1_260n);
  });

  it("rejects impossible usage", () => {
    expect(() => actualCost({ model: gpt5, promptTokens: -1n, completionTokens: 0n })).toThrow(InvalidUsageError);
    expect(() => actualCost({ model: gpt5, promptTokens: 1n, completionTokens: -1n })).toThrow(InvalidUsageError);
    expect(() => actualCost({ model: gpt5, promptTokens: 5n, cachedTokens: 3n, cacheWriteTokens: 3n, completionTokens: 0n })).toThrow(
      InvalidUsageError,
    );
  });
});

describe("estimateCost", () => {
  it("is prompt × input × 1.5 by default, rounded up", () => {
    expect(estimateCost({ model: gpt5, promptTokens: 0n })).toBe(0n);
    expect(estimateCost({ model: gpt5, promptTokens: 1n })).toBe(1n); // 0.1875 → 1
    expect(estimateCost({ model: gpt5, promptTokens: 1_000_000n })).toBe(187_500n);
    expect(estimateCost({ model: model("gpt-4o"), promptTokens: 1_000n })).toBe(3_750n);
  });

  it.each([
    [5n, 1n], // 0.9375
    [6n, 2n], // 1.125
    [16n, 3n], // exactly 3
    [17n, 4n], // 3.1875
  ])("%s prompt tokens of gpt-5 estimate to %s base units", (promptTokens, expected) => {
    expect(estimateCost({ model: gpt5, promptTokens })).toBe(expected);
  });

  it("uses an explicit overhead exactly", () => {
    expect(estimateCost({ model: gpt5, promptTokens: 1_000_000n, overhead: ratio(1n, 1n) })).toBe(125_000n);
    expect(estimateCost({ model: gpt5, promptTokens: 1_000_000n, overhead: parseRatio("1.333333") })).toBe(166_667n); // 166666.625
    expect(estimateCost({ model: gpt5, promptTokens: 3n, overhead: ratio(1n, 3n) })).toBe(1n);
  });

  it("uses the model's overhead when none is given", () => {
    const cheap: Model = { ...gpt5, overhead: ratio(1n, 1n) };
    expect(estimateCost({ model: cheap, promptTokens: 8n })).toBe(1n);
  });

  it("never goes below the minimum charge", () => {
    expect(estimateCost({ model: gpt5, promptTokens: 0n, minimumCharge: 1n })).toBe(1n);
    expect(estimateCost({ model: gpt5, promptTokens: 1n, minimumCharge: 100n })).toBe(100n);
    expect(estimateCost({ model: gpt5, promptTokens: 1_000_000n, minimumCharge: 100n })).toBe(187_500n);
  });

  it("keeps full precision at 10^12 tokens", () => {
    expect(estimateCost({ model: model("gpt-4o"), promptTokens: 10n ** 12n })).toBe(3_750_000_000_000n);
    expect(estimateCost({ model: gpt5, promptTokens: 10n ** 12n + 1n })).toBe(187_500_000_000n + 1n);
  });

  it("is the least integer ≥ the exact rational cost (seeded sweep)", () => {
    let seed = 42n;
    const next = (bound: bigint) => {
      seed = (seed * 6_364_136_223_846_793_005n + 1_442_695_040_888_963_407n) % 2n ** 64n;
      return seed % bound;
    };
    for (let i = 0; i < 2_000; i++) {
      const promptTokens = next(10n ** 13n);
      const overhead = ratio(next(5_000_000n), 1_000_000n + next(1_000_000n));
      const price = next(200_000_000n);
      const priced: Model = { ...gpt5, prices: { ...gpt5.prices, input: { ...gpt5.prices.input, perMillion: price } } };
      const cost = estimateCost({ model: priced, promptTokens, overhead });
      const exact = promptTokens * price * overhead.numerator;
      const scale = 1_000_000n * overhead.denominator;
      expect(cost * scale >= exact).toBe(true);
      expect(cost === 0n || (cost - 1n) * scale < exact).toBe(true);
    }
  });

  it("rejects negative token counts", () => {
    expect(() => estimateCost({ model: gpt5, promptTokens: -1n })).toThrow(InvalidUsageError);
  });
});

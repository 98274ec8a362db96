import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { completionLimit, priceCharge } from "./charge-price.js";
import { actualCost, estimateCost } from "./cost.js";
import { InvalidUsageError } from "./errors.js";
import type { Model } from "./model.js";
import { ratio } from "./ratio.js";
import { getModel, listModels } from "./registry.js";

const model = (id: string): Model => getModel(id)!;

describe("completionLimit", () => {
  const gpt4o = model("gpt-4o"); // max output 16,384
  it("takes max_completion_tokens, else max_tokens, else the default", () => {
    expect(completionLimit({ model: gpt4o, maxCompletionTokens: 100, maxTokens: 200, defaultMaxTokens: 4096 })).toBe(100);
    expect(completionLimit({ model: gpt4o, maxCompletionTokens: null, maxTokens: 200, defaultMaxTokens: 4096 })).toBe(200);
    expect(completionLimit({ model: gpt4o, defaultMaxTokens: 4096 })).toBe(4096);
  });

  it("caps every source at the model's max output", () => {
    expect(completionLimit({ model: gpt4o, maxCompletionTokens: 1_000_000, defaultMaxTokens: 4096 })).toBe(gpt4o.maxOutputTokens);
    expect(completionLimit({ model: gpt4o, maxTokens: 1_000_000, defaultMaxTokens: 4096 })).toBe(gpt4o.maxOutputTokens);
    expect(completionLimit({ model: gpt4o, defaultMaxTokens: 1_000_000 })).toBe(gpt4o.maxOutputTokens);
  });
});

describe("priceCharge", () => {
  it("covers the issue's repro cases (gpt-4o n=64 'hi'; claude-opus-4-1 without max_tokens; gpt-5 with 8000)", () => {
    // gpt-4o: (8 × $2.50 + 64 × 4096 × $10 per 1M) × 1.5 = (20 + 2,621,440) × 1.5 = 3,932,190 base units
    expect(priceCharge({ model: model("gpt-4o"), promptTokens: 8n, choices: 64n, completionLimit: 4096n })).toBe(3_932_190n);
    // claude-opus-4-1: cache write ($18.75) is its dearest input class; 4096 × $75 output.
    const opus = model("claude-opus-4-1");
    expect(priceCharge({ model: opus, promptTokens: 10n, choices: 1n, completionLimit: 4096n })).toBe(
      ((10n * opus.prices.cacheWrite!.perMillion + 4096n * opus.prices.output.perMillion) * 3n) / 2_000_000n + 1n,
    );
    // gpt-5: 8000 × $1.00 × 1.5 = 12,000 base units, + 9 prompt tokens × $0.125 × 1.5 = 1.6875 → 12,002.
    expect(priceCharge({ model: model("gpt-5"), promptTokens: 9n, choices: 1n, completionLimit: 8000n })).toBe(12_002n);
  });

  it("is never below the published seed estimate, nor below the minimum charge", () => {
    const gpt5 = model("gpt-5");
    const seed = estimateCost({ model: gpt5, promptTokens: 1_000_000n });
    expect(priceCharge({ model: gpt5, promptTokens: 1_000_000n, choices: 1n, completionLimit: 0n })).toBe(seed);
    expect(priceCharge({ model: gpt5, promptTokens: 0n, choices: 1n, completionLimit: 0n, minimumCharge: 1_000n })).toBe(1_000n);
  });

  it("rounds up once over the exact sum", () => {
    // gpt-5, overhead 1: 1 prompt token ($0.125) + 1 output token ($1.00) = 1.125 base units → 2 (not 1 + 1 + …).
    expect(priceCharge({ model: model("gpt-5"), promptTokens: 1n, choices: 1n, completionLimit: 1n, overhead: ratio(1n, 1n) })).toBe(2n);
    expect(priceCharge({ model: model("gpt-5"), promptTokens: 8n, choices: 1n, completionLimit: 0n, overhead: ratio(1n, 1n) })).toBe(1n);
  });

  it("a lower limit pays less", () => {
    const gpt4o = model("gpt-4o");
    const price = (limit: bigint) => priceCharge({ model: gpt4o, promptTokens: 100n, choices: 1n, completionLimit: limit });
    expect(price(100n)).toBeLessThan(price(4096n));
  });

  it("rejects zero choices and negative limits", () => {
    const gpt5 = model("gpt-5");
    expect(() => priceCharge({ model: gpt5, promptTokens: 1n, choices: 0n, completionLimit: 1n })).toThrow(InvalidUsageError);
    expect(() => priceCharge({ model: gpt5, promptTokens: 1n, choices: 1n, completionLimit: -1n })).toThrow(InvalidUsageError);
  });

  it("covers the actual cost of any usage the request allows, for every catalogue model (property)", () => {
    const models = listModels();
    const usage = fc
      .record({
        index: fc.nat({ max: models.length - 1 }),
        promptTokens: fc.bigInt({ min: 0n, max: 2_000_000n }),
        choices: fc.bigInt({ min: 1n, max: 128n }),
        requested: fc.integer({ min: 1, max: 200_000 }),
        cachedShare: fc.double({ min: 0, max: 1, noNaN: true }),
        writeShare: fc.double({ min: 0, max: 1, noNaN: true }),
        usedShare: fc.double({ min: 0, max: 1, noNaN: true }),
      })
      .map(({ index, promptTokens, choices, requested, cachedShare, writeShare, usedShare }) => {
        const m = models[index]!;
        const limit = BigInt(completionLimit({ model: m, maxCompletionTokens: requested, defaultMaxTokens: 4096 }));
        const cachedTokens = BigInt(Math.floor(Number(promptTokens) * cachedShare));
        const cacheWriteTokens = BigInt(Math.floor(Number(promptTokens - cachedTokens) * writeShare));
        const completionTokens = BigInt(Math.floor(Number(choices * limit) * usedShare));
        return { model: m, promptTokens, choices, limit, cachedTokens, cacheWriteTokens, completionTokens };
      });
    fc.assert(
      fc.property(usage, (u) => {
        const paid = priceCharge({ model: u.model, promptTokens: u.promptTokens, choices: u.choices, completionLimit: u.limit });
        const served = actualCost(u);
        const most = actualCost({ ...u, cachedTokens: 0n, cacheWriteTokens: u.promptTokens, completionTokens: u.choices * u.limit });
        return served <= paid && most <= paid;
      }),
      { numRuns: 5_000 },
    );
  });
});

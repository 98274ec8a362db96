import { describe, expect, it } from "vitest";
import { createModelRegistry } from "./registry.js";
import { pricePerOutputToken, SessionMeter } from "./session-meter.js";

const models = createModelRegistry();
const nano = models.getModel("gpt-5-nano")!;

describe("SessionMeter", () => {
  it("accrues fractional per-token prices exactly and rounds up once per request", () => {
    // gpt-5-nano: $0.05 input, $0.40 output per 1M tokens = 0.05 and 0.4 base units per token.
    expect(nano.prices.input.perMillion).toBe(50_000n);
    expect(nano.prices.output.perMillion).toBe(400_000n);
    const meter = new SessionMeter(nano, 10);
    expect(meter.subUnits).toBe(500_000n);
    expect(meter.cost).toBe(1n);
    for (let i = 0; i < 10; i++) meter.addCompletionTokens(1);
    // 0.5 + 10 × 0.4 = 4.5 base units → 5, where rounding each token up would have billed 10 + 1.
    expect(meter.subUnits).toBe(4_500_000n);
    expect(meter.cost).toBe(5n);
    expect(meter.costWith(2)).toBe(6n); // 5.3 → 6
  });

  it("takes the provider's usage over the streamed count once it arrives", () => {
    const meter = new SessionMeter(nano, 10);
    meter.addCompletionTokens(7);
    meter.setUsage({ promptTokens: 12, completionTokens: 5 });
    expect(meter.completionTokenCount).toBe(5);
    expect(meter.subUnits).toBe(12n * 50_000n + 5n * 400_000n);
    expect(meter.cost).toBe(3n); // 2.6 → 3
  });

  it("prices one output token in whole base units, rounded up, for the challenge", () => {
    expect(pricePerOutputToken(nano)).toBe(1n);
    expect(pricePerOutputToken(models.getModel("gpt-4o")!)).toBe(10n);
  });
});

import { describe, expect, it } from "vitest";
import { CATALOGUE } from "./catalogue.js";
import { UnknownModelError } from "./errors.js";
import { DEFAULT_OVERHEAD, ratio } from "./ratio.js";
import { createModelRegistry, getModel, listModels } from "./registry.js";

describe("model registry", () => {
  it("finds models by id and by snapshot alias", () => {
    expect(getModel("claude-opus-4-5-20251101")).toBe(getModel("claude-opus-4-5"));
    expect(getModel("claude-3-haiku-20240307")?.id).toBe("claude-3-haiku");
    expect(getModel("gpt-4o")?.id).toBe("gpt-4o");
    expect(getModel("gpt-9")).toBeUndefined();
    expect(listModels().map((model) => model.id)).toEqual(CATALOGUE.map((entry) => entry.id));
  });

  it("requireModel throws a typed error", () => {
    const registry = createModelRegistry();
    expect(() => registry.requireModel("nope")).toThrow(UnknownModelError);
    expect(registry.requireModel("o3").id).toBe("o3");
  });

  it("applies per-model price overrides and labels their source", () => {
    const registry = createModelRegistry({
      overrides: { "gpt-4o": { input: 1n, cachedInput: 0n }, "claude-haiku-4-5": { cacheWrite: 2_000_000n } },
    });
    const gpt4o = registry.requireModel("gpt-4o");
    expect(gpt4o.prices.input).toMatchObject({ perMillion: 1n, source: { id: "config-override" } });
    expect(gpt4o.prices.cachedInput?.perMillion).toBe(0n);
    expect(gpt4o.prices.output).toBe(getModel("gpt-4o")!.prices.output);
    expect(registry.requireModel("claude-haiku-4-5").prices.cacheWrite?.perMillion).toBe(2_000_000n);
    expect(registry.requireModel("gpt-4o-mini")).toEqual(getModel("gpt-4o-mini"));
  });

  it("can add a cached price a model lacks", () => {
    const registry = createModelRegistry({ overrides: { "gpt-5-pro": { cachedInput: 150_000n } } });
    expect(registry.requireModel("gpt-5-pro").prices.cachedInput?.perMillion).toBe(150_000n);
  });

  it("rejects overrides of unknown models (a config typo fails boot)", () => {
    expect(() => createModelRegistry({ overrides: { "gpt-4o-typo": { input: 1n } } })).toThrow(UnknownModelError);
  });

  it("resolves overhead: override > catalogue entry > global default", () => {
    expect(getModel("gpt-5")!.overhead).toEqual(DEFAULT_OVERHEAD);
    const base = CATALOGUE.find((entry) => entry.id === "gpt-5")!;
    const registry = createModelRegistry({
      catalogue: [
        { ...base, id: "with-own-overhead", overhead: ratio(6n, 5n) },
        { ...base, id: "plain" },
        { ...base, id: "overridden", overhead: ratio(6n, 5n) },
      ],
      defaultOverhead: ratio(2n, 1n),
      overrides: { overridden: { overhead: ratio(1n, 1n) } },
    });
    expect(registry.requireModel("with-own-overhead").overhead).toEqual(ratio(6n, 5n));
    expect(registry.requireModel("plain").overhead).toEqual(ratio(2n, 1n));
    expect(registry.requireModel("overridden").overhead).toEqual(ratio(1n, 1n));
  });

  it("returns frozen models", () => {
    expect(Object.isFrozen(getModel("gpt-5"))).toBe(true);
  });
});

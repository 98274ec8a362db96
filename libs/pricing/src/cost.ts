/**
 * Cost of a request in base units. Products of bigint token counts and per-1M prices are summed exactly and
 * rounded up once, so a request is never charged less than it cost.
 */
import { InvalidUsageError } from "./errors.js";
import type { Model } from "./model.js";
import { ceilDiv, TOKENS_PER_PRICE_UNIT } from "./money.js";
import type { Ratio } from "./ratio.js";

export interface EstimateCostInput {
  readonly model: Model;
  readonly promptTokens: bigint;
  /** Defaults to the model's overhead (catalogue, override or global default). */
  readonly overhead?: Ratio;
  /** Floor of the result, e.g. config MIN_CHARGE. */
  readonly minimumCharge?: bigint;
}

/** Charge-intent price: ceil(prompt × input × overhead), at least minimumCharge. */
export function estimateCost({ model, promptTokens, overhead = model.overhead, minimumCharge = 0n }: EstimateCostInput): bigint {
  assertTokens("promptTokens", promptTokens);
  const cost = ceilDiv(promptTokens * model.prices.input.perMillion * overhead.numerator, TOKENS_PER_PRICE_UNIT * overhead.denominator);
  return cost > minimumCharge ? cost : minimumCharge;
}

export interface ActualCostInput {
  readonly model: Model;
  /**
   * Every prompt token, cached and cache-written ones included (OpenAI's `prompt_tokens`; for Anthropic,
   * input_tokens + cache_read_input_tokens + cache_creation_input_tokens).
   */
  readonly promptTokens: bigint;
  /** Reasoning tokens included: they are billed as output. */
  readonly completionTokens: bigint;
  /** OpenAI cached_tokens / Anthropic cache_read_input_tokens. */
  readonly cachedTokens?: bigint;
  /** Anthropic cache_creation_input_tokens. */
  readonly cacheWriteTokens?: bigint;
}

/** What the request cost from its real usage: each token class at its price, one ceil at the end. */
export function actualCost({ model, promptTokens, completionTokens, cachedTokens = 0n, cacheWriteTokens = 0n }: ActualCostInput): bigint {
  assertTokens("promptTokens", promptTokens);
  assertTokens("completionTokens", completionTokens);
  assertTokens("cachedTokens", cachedTokens);
  assertTokens("cacheWriteTokens", cacheWriteTokens);
  const uncached = promptTokens - cachedTokens - cacheWriteTokens;
  if (uncached < 0n) {
    throw new InvalidUsageError(
      "cached tokens exceed prompt tokens",
      `prompt ${promptTokens}, cached ${cachedTokens}, cache write ${cacheWriteTokens}`,
    );
  }
  const { input, output, cachedInput = input, cacheWrite = input } = model.prices;
  const total =
    uncached * input.perMillion +
    cachedTokens * cachedInput.perMillion +
    cacheWriteTokens * cacheWrite.perMillion +
    completionTokens * output.perMillion;
  return ceilDiv(total, TOKENS_PER_PRICE_UNIT);
}

function assertTokens(name: string, tokens: bigint): void {
  if (tokens < 0n) throw new InvalidUsageError("negative token count", `${name} = ${tokens}`);
}

/**
 * The charge-intent price: what one payment must cover before anything is served. A charge is paid once, up
 * front, so it covers the largest completion the request allows, not the prompt alone.
 */
import { estimateCost } from "./cost.js";
import { InvalidUsageError } from "./errors.js";
import type { Model } from "./model.js";
import { ceilDiv, TOKENS_PER_PRICE_UNIT } from "./money.js";
import type { Ratio } from "./ratio.js";

export interface CompletionLimitInput {
  readonly model: Model;
  /** The request's `max_completion_tokens` (wins over `max_tokens`, as at OpenAI). */
  readonly maxCompletionTokens?: number | null;
  readonly maxTokens?: number | null;
  /** Config CHARGE_DEFAULT_MAX_TOKENS: the limit of a request that sets none. */
  readonly defaultMaxTokens: number;
}

/**
 * Completion tokens one choice may produce: `max_completion_tokens` ?? `max_tokens` ?? the default, capped at the
 * model's max output. The provider is called with this limit, so it can never produce more than was priced.
 */
export function completionLimit({ model, maxCompletionTokens, maxTokens, defaultMaxTokens }: CompletionLimitInput): number {
  const requested = maxCompletionTokens ?? maxTokens ?? defaultMaxTokens;
  return Math.max(1, Math.min(requested, model.maxOutputTokens));
}

export interface ChargePriceInput {
  readonly model: Model;
  readonly promptTokens: bigint;
  /** Choices asked for (`n`). */
  readonly choices: bigint;
  /** Completion tokens per choice (`completionLimit`). */
  readonly completionLimit: bigint;
  /** Defaults to the model's overhead. */
  readonly overhead?: Ratio;
  /** Floor of the result, e.g. config MIN_CHARGE. */
  readonly minimumCharge?: bigint;
}

/**
 * price = max(seed estimate ceil(prompt × input × overhead),
 *             ceil((prompt × dearest input class + choices × limit × output) × overhead)), at least minimumCharge.
 * The dearest input class (input, cache read, cache write) covers however the provider bills the prompt; reasoning
 * tokens are output and count within the limit. One ceil over the exact sum.
 */
export function priceCharge({
  model,
  promptTokens,
  choices,
  completionLimit,
  overhead = model.overhead,
  minimumCharge = 0n,
}: ChargePriceInput): bigint {
  if (choices < 1n) throw new InvalidUsageError("at least one choice", `choices = ${choices}`);
  if (completionLimit < 0n) throw new InvalidUsageError("negative completion limit", `completionLimit = ${completionLimit}`);
  const seed = estimateCost({ model, promptTokens, overhead, minimumCharge });
  const { input, output, cachedInput, cacheWrite } = model.prices;
  let dearestInput = input.perMillion;
  for (const price of [cachedInput, cacheWrite]) if (price && price.perMillion > dearestInput) dearestInput = price.perMillion;
  const largest = ceilDiv(
    (promptTokens * dearestInput + choices * completionLimit * output.perMillion) * overhead.numerator,
    TOKENS_PER_PRICE_UNIT * overhead.denominator,
  );
  // bigints: Math.max does not take them.
  if (largest > seed) return largest;
  return seed;
}

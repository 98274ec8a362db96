/**
 * Session metering: what a streamed request has cost so far, exactly. Per-token prices are often fractions of a base
 * unit (gpt-5-nano output: 0.4 base units per token), so cost accrues in sub-units — millionths of a base unit, i.e.
 * tokens × price per 1M tokens, with no rounding — and is turned into whole base units (rounded up) once, for the
 * request as a whole: never per token or per chunk.
 */
import { ceilDiv, TOKENS_PER_PRICE_UNIT } from "./money.js";
import type { Model } from "./model.js";

export interface MeteredUsage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens?: number;
  cacheWriteTokens?: number;
}

export class SessionMeter {
  private promptSubUnits: bigint;
  private completionTokens = 0n;
  private usage: MeteredUsage | undefined;

  constructor(
    private readonly model: Model,
    promptTokens: number,
  ) {
    this.promptSubUnits = BigInt(promptTokens) * model.prices.input.perMillion;
  }

  /** Completion tokens delivered (counted from the streamed text until the provider's usage arrives). */
  addCompletionTokens(tokens: number): void {
    this.completionTokens += BigInt(tokens);
  }

  /** The provider's own usage: from here on the cost is computed from it (cached and cache-write prices included). */
  setUsage(usage: MeteredUsage): void {
    this.usage = usage;
  }

  get completionTokenCount(): number {
    return this.usage ? this.usage.completionTokens : Number(this.completionTokens);
  }

  /** Exact accrued cost in millionths of a base unit. */
  get subUnits(): bigint {
    const { input, output, cachedInput = input, cacheWrite = input } = this.model.prices;
    if (!this.usage) return this.promptSubUnits + this.completionTokens * output.perMillion;
    const cached = BigInt(this.usage.cachedTokens ?? 0);
    const written = BigInt(this.usage.cacheWriteTokens ?? 0);
    const uncached = BigInt(this.usage.promptTokens) - cached - written;
    return (
      (uncached > 0n ? uncached : 0n) * input.perMillion +
      cached * cachedInput.perMillion +
      written * cacheWrite.perMillion +
      BigInt(this.usage.completionTokens) * output.perMillion
    );
  }

  /** The cost in whole base units: the exact cost rounded up once. */
  get cost(): bigint {
    return ceilDiv(this.subUnits, TOKENS_PER_PRICE_UNIT);
  }

  /** What `tokens` more completion tokens would bring the request's cost to (whole base units). */
  costWith(tokens: number): bigint {
    return ceilDiv(this.subUnits + BigInt(tokens) * this.model.prices.output.perMillion, TOKENS_PER_PRICE_UNIT);
  }
}

/** Whole base units one unit (an output token) costs at most: the session challenge's per-unit `amount`. */
export function pricePerOutputToken(model: Model): bigint {
  return ceilDiv(model.prices.output.perMillion, TOKENS_PER_PRICE_UNIT);
}

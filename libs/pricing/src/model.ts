import type { Ratio } from "./ratio.js";

export type Provider = "openai" | "anthropic";

/**
 * How prompt tokens are counted: OpenAI's o200k_base exactly, or an approximation for Anthropic models, whose
 * tokenizer is not public (see tokens.ts).
 */
export type TokenizerId = "o200k_base" | "anthropic-approx";

/** Where a price comes from, so every number in the catalogue can be checked against its origin. */
export interface PriceSource {
  readonly id: string;
  readonly title: string;
  readonly url: string | null;
  /** Date (YYYY-MM-DD) the price was published or read. */
  readonly asOf: string;
  readonly note?: string;
}

export interface Price {
  /** Base units (USDC.e, 6 decimals) per 1M tokens. */
  readonly perMillion: bigint;
  readonly source: PriceSource;
}

export interface ModelPrices {
  readonly input: Price;
  readonly output: Price;
  /** OpenAI cached input / Anthropic cache read. Absent: cached tokens are billed as input. */
  readonly cachedInput?: Price;
  /** Anthropic cache write (5-minute TTL). Absent: cache-write tokens are billed as input. */
  readonly cacheWrite?: Price;
}

/** One row of the catalogue data file. */
export interface CatalogueEntry {
  readonly id: string;
  readonly provider: Provider;
  /** Model id sent to the provider. */
  readonly upstreamModel: string;
  /** Other ids clients may use for the same model (dated snapshots). */
  readonly aliases?: readonly string[];
  readonly contextWindow: number;
  readonly maxOutputTokens: number;
  readonly prices: ModelPrices;
  /** Charge-intent overhead for this model; the registry default applies when absent. */
  readonly overhead?: Ratio;
}

/** A model as served: catalogue entry with overrides applied and every default resolved. */
export interface Model {
  readonly id: string;
  readonly provider: Provider;
  readonly upstreamModel: string;
  readonly aliases: readonly string[];
  readonly contextWindow: number;
  readonly maxOutputTokens: number;
  readonly tokenizer: TokenizerId;
  readonly prices: ModelPrices;
  readonly overhead: Ratio;
}

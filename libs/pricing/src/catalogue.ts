/**
 * The catalogue: every model WorldRouter sells, with its limits and prices. This file is the only place prices
 * live; config may override them per model at boot (registry.ts). Amounts are written in dollars per 1M tokens
 * for review and converted once, exactly, to base units.
 */
import type { CatalogueEntry, Price, PriceSource } from "./model.js";
import { usdToBaseUnits } from "./money.js";

export const PRICE_SOURCES = {
  advertised: {
    id: "worldrouter-advertised",
    title: "WorldRouter advertised price list (seed prices of the product)",
    url: null,
    asOf: "2026-11-25",
    note: "The GPT-5.x and codex prices the product advertises, 1/10 of OpenAI's list price.",
  },
  advertisedCached: {
    id: "worldrouter-advertised-cached",
    title: "Advertised input price × OpenAI's cached-input ratio for the GPT-5 family (10%)",
    url: "https://developers.openai.com/api/docs/pricing",
    asOf: "2026-11-25",
    note: "OpenAI bills GPT-5.x cached input at 10% of input; the same ratio is applied to the advertised input price.",
  },
  openai2025: {
    id: "openai-pricing-2025",
    title: "OpenAI API pricing (standard tier)",
    url: "https://platform.openai.com/docs/pricing",
    asOf: "2025-08-07",
    note: "List prices of the GPT-4o, GPT-4.1, o-series and GPT-5 mini/nano models as published at the GPT-5 launch.",
  },
  openai2026: {
    id: "openai-pricing-2026",
    title: "OpenAI API pricing (standard tier, context ≤ 272K)",
    url: "https://developers.openai.com/api/docs/pricing",
    asOf: "2026-06-01",
    note: "gpt-5.4-pro $30 / $180 per 1M, no cached-input price; cross-checked with morphllm.com/openai-api-pricing (June 2026).",
  },
  anthropic: {
    id: "anthropic-pricing",
    title: "Anthropic Claude API pricing (base input, 5-minute cache write, cache read, output)",
    url: "https://platform.claude.com/docs/en/about-claude/pricing",
    asOf: "2026-02-05",
    note: "Cache write (5 min) = 1.25 × input, cache read = 0.1 × input.",
  },
} as const satisfies Record<string, PriceSource>;

function usd(amount: string, source: PriceSource): Price {
  return { perMillion: usdToBaseUnits(amount), source };
}

const S = PRICE_SOURCES;

/** An OpenAI model at an advertised seed price, its cached input derived at 10%. */
function advertisedOpenAi(input: string, output: string, cached: string | null) {
  return {
    input: usd(input, S.advertised),
    output: usd(output, S.advertised),
    ...(cached === null ? {} : { cachedInput: usd(cached, S.advertisedCached) }),
  };
}

function listOpenAi(source: PriceSource, input: string, output: string, cached: string | null) {
  return {
    input: usd(input, source),
    output: usd(output, source),
    ...(cached === null ? {} : { cachedInput: usd(cached, source) }),
  };
}

function listAnthropic(input: string, output: string, cacheWrite: string, cacheRead: string) {
  return {
    input: usd(input, S.anthropic),
    output: usd(output, S.anthropic),
    cacheWrite: usd(cacheWrite, S.anthropic),
    cachedInput: usd(cacheRead, S.anthropic),
  };
}

const GPT5_LIMITS = { contextWindow: 400_000, maxOutputTokens: 128_000 } as const;
const GPT54_LIMITS = { contextWindow: 1_050_000, maxOutputTokens: 128_000 } as const;
const GPT41_LIMITS = { contextWindow: 1_047_576, maxOutputTokens: 32_768 } as const;
const GPT4O_LIMITS = { contextWindow: 128_000, maxOutputTokens: 16_384 } as const;
const O_SERIES_LIMITS = { contextWindow: 200_000, maxOutputTokens: 100_000 } as const;

function openai(id: string, limits: { contextWindow: number; maxOutputTokens: number }, prices: CatalogueEntry["prices"]): CatalogueEntry {
  return { id, provider: "openai", upstreamModel: id, ...limits, prices };
}

function anthropic(id: string, upstreamModel: string, maxOutputTokens: number, prices: CatalogueEntry["prices"]): CatalogueEntry {
  return {
    id,
    provider: "anthropic",
    upstreamModel,
    ...(upstreamModel === id ? {} : { aliases: [upstreamModel] }),
    contextWindow: 200_000,
    maxOutputTokens,
    prices,
  };
}

export const CATALOGUE: readonly CatalogueEntry[] = [
  // OpenAI GPT-5 family at advertised prices.
  openai("gpt-5", GPT5_LIMITS, advertisedOpenAi("0.125", "1.00", "0.0125")),
  openai("gpt-5.1", GPT5_LIMITS, advertisedOpenAi("0.125", "1.00", "0.0125")),
  openai("gpt-5.2", GPT5_LIMITS, advertisedOpenAi("0.175", "1.40", "0.0175")),
  openai("gpt-5.4", GPT54_LIMITS, advertisedOpenAi("0.25", "1.50", "0.025")),
  openai("gpt-5-pro", { contextWindow: 400_000, maxOutputTokens: 272_000 }, advertisedOpenAi("1.50", "12.00", null)),
  openai("gpt-5.1-codex", GPT5_LIMITS, advertisedOpenAi("0.125", "1.00", "0.0125")),
  openai("gpt-5.1-codex-max", GPT5_LIMITS, advertisedOpenAi("0.125", "1.00", "0.0125")),
  openai("gpt-5.2-codex", GPT5_LIMITS, advertisedOpenAi("0.175", "1.40", "0.0175")),
  openai("gpt-5.3-codex", GPT5_LIMITS, advertisedOpenAi("0.175", "1.40", "0.0175")),
  // OpenAI at list prices.
  openai("gpt-5.4-pro", GPT54_LIMITS, listOpenAi(S.openai2026, "30.00", "180.00", null)),
  openai("gpt-5-mini", GPT5_LIMITS, listOpenAi(S.openai2025, "0.25", "2.00", "0.025")),
  openai("gpt-5-nano", GPT5_LIMITS, listOpenAi(S.openai2025, "0.05", "0.40", "0.005")),
  openai("gpt-4.1", GPT41_LIMITS, listOpenAi(S.openai2025, "2.00", "8.00", "0.50")),
  openai("gpt-4.1-mini", GPT41_LIMITS, listOpenAi(S.openai2025, "0.40", "1.60", "0.10")),
  openai("gpt-4.1-nano", GPT41_LIMITS, listOpenAi(S.openai2025, "0.10", "0.40", "0.025")),
  openai("gpt-4o", GPT4O_LIMITS, listOpenAi(S.openai2025, "2.50", "10.00", "1.25")),
  openai("gpt-4o-mini", GPT4O_LIMITS, listOpenAi(S.openai2025, "0.15", "0.60", "0.075")),
  openai("o3", O_SERIES_LIMITS, listOpenAi(S.openai2025, "2.00", "8.00", "0.50")),
  openai("o3-pro", O_SERIES_LIMITS, listOpenAi(S.openai2025, "20.00", "80.00", null)),
  openai("o4-mini", O_SERIES_LIMITS, listOpenAi(S.openai2025, "1.10", "4.40", "0.275")),
  openai("o3-mini", O_SERIES_LIMITS, listOpenAi(S.openai2025, "1.10", "4.40", "0.55")),
  openai("o1", O_SERIES_LIMITS, listOpenAi(S.openai2025, "15.00", "60.00", "7.50")),
  // Anthropic at list prices; the API snapshot id is the upstream model and an accepted alias.
  anthropic("claude-opus-4-6", "claude-opus-4-6", 128_000, listAnthropic("5", "25", "6.25", "0.50")),
  anthropic("claude-opus-4-5", "claude-opus-4-5-20251101", 64_000, listAnthropic("5", "25", "6.25", "0.50")),
  anthropic("claude-opus-4-1", "claude-opus-4-1-20250805", 32_000, listAnthropic("15", "75", "18.75", "1.50")),
  anthropic("claude-opus-4", "claude-opus-4-20250514", 32_000, listAnthropic("15", "75", "18.75", "1.50")),
  anthropic("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", 64_000, listAnthropic("3", "15", "3.75", "0.30")),
  anthropic("claude-sonnet-4", "claude-sonnet-4-20250514", 64_000, listAnthropic("3", "15", "3.75", "0.30")),
  anthropic("claude-haiku-4-5", "claude-haiku-4-5-20251001", 64_000, listAnthropic("1", "5", "1.25", "0.10")),
  anthropic("claude-3-5-haiku", "claude-3-5-haiku-20241022", 8_192, listAnthropic("0.80", "4", "1.00", "0.08")),
  anthropic("claude-3-haiku", "claude-3-haiku-20240307", 4_096, listAnthropic("0.25", "1.25", "0.30", "0.03")),
];

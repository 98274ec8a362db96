import { Controller, Get, Header, Inject } from "@nestjs/common";
import { isProviderConfigured, type Config } from "@worldrouter/config";
import { formatUsd, type Model, type ModelRegistry, type Price, type Provider } from "@worldrouter/pricing";
import { CONFIG } from "@worldrouter/runtime";
import { MODEL_REGISTRY } from "../pricing/model-registry.provider.js";

/** One `/v1/models` entry: OpenAI's fields, then what a paying client needs to know. */
export interface ModelEntry {
  id: string;
  object: "model";
  /** Unix seconds of the model's input price (the catalogue has no release dates). */
  created: number;
  owned_by: Provider;
  aliases: readonly string[];
  context_length: number;
  max_output_tokens: number;
  /** Who answers now: the real provider, or `local` (built-in, deterministic) when it is not configured (never in production). */
  served_by: Provider | "local";
  intents: readonly ["charge", "session"];
  pricing: {
    currency: string;
    decimals: 6;
    /** Dollars per 1M tokens, exact decimal strings. */
    usd_per_million_tokens: PriceColumns;
    /** Token base units (USDC.e, 6 decimals) per 1M tokens. */
    base_units_per_million_tokens: PriceColumns;
    /** Charge intent: estimated cost = prompt tokens × input price × this. */
    charge_overhead: string;
  };
}

interface PriceColumns {
  input: string;
  output: string;
  /** null: cached prompt tokens are billed as input. */
  cached_input: string | null;
  cache_write: string | null;
}

export interface ModelList {
  object: "list";
  data: ModelEntry[];
}

export function servedBy(config: Config, provider: Provider): Provider | "local" {
  return isProviderConfigured(config, provider) ? provider : "local";
}

/** The models sold: in production only those whose provider is configured (no fake completions for money). */
export function servedModels(registry: ModelRegistry, config: Config): readonly Model[] {
  const models = registry.listModels();
  return config.env === "production" ? models.filter((model) => isProviderConfigured(config, model.provider)) : models;
}

export function modelList(models: readonly Model[], config: Config): ModelList {
  return { object: "list", data: models.map((model) => modelEntry(model, config)) };
}

function modelEntry(model: Model, config: Config): ModelEntry {
  const { input, output, cachedInput, cacheWrite } = model.prices;
  const columns = (format: (price: Price) => string): PriceColumns => ({
    input: format(input),
    output: format(output),
    cached_input: cachedInput ? format(cachedInput) : null,
    cache_write: cacheWrite ? format(cacheWrite) : null,
  });
  return {
    id: model.id,
    object: "model",
    created: Math.floor(Date.parse(input.source.asOf) / 1000),
    owned_by: model.provider,
    aliases: model.aliases,
    context_length: model.contextWindow,
    max_output_tokens: model.maxOutputTokens,
    served_by: servedBy(config, model.provider),
    intents: ["charge", "session"],
    pricing: {
      currency: config.chain.token,
      decimals: 6,
      usd_per_million_tokens: columns((price) => formatUsd(price.perMillion).replace("$", "")),
      base_units_per_million_tokens: columns((price) => price.perMillion.toString()),
      charge_overhead: (Number(model.overhead.numerator) / Number(model.overhead.denominator)).toString(),
    },
  };
}

/** The model catalogue with prices, in OpenAI's list format (any OpenAI SDK's `models.list()` reads it). */
@Controller()
export class ModelsController {
  private readonly list: ModelList;

  constructor(@Inject(MODEL_REGISTRY) registry: ModelRegistry, @Inject(CONFIG) config: Config) {
    // Catalogue and config are fixed at boot: build the answer once.
    this.list = modelList(servedModels(registry, config), config);
  }

  @Get(["v1/models", "x402/v1/models"])
  @Header("cache-control", "public, max-age=60")
  listModels(): ModelList {
    return this.list;
  }
}

/**
 * Model lookup. A registry is the catalogue with config overrides applied once at boot; lookups accept the
 * catalogue id or an alias (dated snapshot id).
 */
import { CATALOGUE } from "./catalogue.js";
import { UnknownModelError } from "./errors.js";
import type { CatalogueEntry, Model, ModelPrices, Price, PriceSource, Provider, TokenizerId } from "./model.js";
import { DEFAULT_OVERHEAD, type Ratio } from "./ratio.js";

/** Per-model replacement prices (base units per 1M tokens) and overhead, e.g. from config. */
export interface PriceOverride {
  readonly input?: bigint;
  readonly output?: bigint;
  readonly cachedInput?: bigint;
  readonly cacheWrite?: bigint;
  readonly overhead?: Ratio;
}

export type PriceOverrides = Readonly<Record<string, PriceOverride>>;

export interface ModelRegistryOptions {
  /** Keyed by catalogue id; an unknown id throws so a typo in config fails boot. */
  readonly overrides?: PriceOverrides;
  /** Overhead of models whose catalogue entry and override set none. Default 1.5. */
  readonly defaultOverhead?: Ratio;
  /** Models to serve instead of the built-in catalogue (tests). */
  readonly catalogue?: readonly CatalogueEntry[];
}

export interface ModelRegistry {
  getModel(id: string): Model | undefined;
  /** Like getModel, but throws UnknownModelError. */
  requireModel(id: string): Model;
  listModels(): readonly Model[];
}

const TOKENIZER: Record<Provider, TokenizerId> = { openai: "o200k_base", anthropic: "anthropic-approx" };

export function createModelRegistry(options: ModelRegistryOptions = {}): ModelRegistry {
  const catalogue = options.catalogue ?? CATALOGUE;
  const overrides = options.overrides ?? {};
  const known = new Set(catalogue.map((entry) => entry.id));
  for (const id of Object.keys(overrides)) if (!known.has(id)) throw new UnknownModelError(id);

  const overrideSource: PriceSource = {
    id: "config-override",
    title: "Per-model price override from configuration",
    url: null,
    asOf: new Date().toISOString().slice(0, 10),
  };
  const models = catalogue.map((entry) => resolve(entry, overrides[entry.id], options.defaultOverhead ?? DEFAULT_OVERHEAD, overrideSource));
  const byId = new Map<string, Model>();
  for (const model of models) for (const id of [model.id, ...model.aliases]) byId.set(id, model);

  return {
    getModel: (id) => byId.get(id),
    requireModel(id) {
      const model = byId.get(id);
      if (!model) throw new UnknownModelError(id);
      return model;
    },
    listModels: () => models,
  };
}

function resolve(entry: CatalogueEntry, override: PriceOverride | undefined, defaultOverhead: Ratio, source: PriceSource): Model {
  const price = (catalogued: Price | undefined, perMillion: bigint | undefined): Price | undefined =>
    perMillion === undefined ? catalogued : { perMillion, source };
  const cachedInput = price(entry.prices.cachedInput, override?.cachedInput);
  const cacheWrite = price(entry.prices.cacheWrite, override?.cacheWrite);
  const prices: ModelPrices = {
    input: price(entry.prices.input, override?.input)!,
    output: price(entry.prices.output, override?.output)!,
    ...(cachedInput && { cachedInput }),
    ...(cacheWrite && { cacheWrite }),
  };
  return Object.freeze({
    id: entry.id,
    provider: entry.provider,
    upstreamModel: entry.upstreamModel,
    aliases: entry.aliases ?? [],
    contextWindow: entry.contextWindow,
    maxOutputTokens: entry.maxOutputTokens,
    tokenizer: TOKENIZER[entry.provider],
    prices,
    overhead: override?.overhead ?? entry.overhead ?? defaultOverhead,
  });
}

const builtIn = createModelRegistry();

/** The built-in catalogue without overrides. Services build their own registry from config. */
export const getModel = (id: string): Model | undefined => builtIn.getModel(id);
export const listModels = (): readonly Model[] => builtIn.listModels();

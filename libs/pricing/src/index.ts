export { CATALOGUE, PRICE_SOURCES } from "./catalogue.js";
export { completionLimit, priceCharge, type ChargePriceInput, type CompletionLimitInput } from "./charge-price.js";
export { actualCost, estimateCost, type ActualCostInput, type EstimateCostInput } from "./cost.js";
export { InvalidAmountError, InvalidUsageError, PricingError, UnknownModelError } from "./errors.js";
export type { CatalogueEntry, Model, ModelPrices, Price, PriceSource, Provider, TokenizerId } from "./model.js";
export { BASE_UNITS_PER_USD, ceilDiv, formatUsd, TOKENS_PER_PRICE_UNIT, USD_DECIMALS, usdToBaseUnits } from "./money.js";
export { DEFAULT_OVERHEAD, parseRatio, ratio, type Ratio } from "./ratio.js";
export {
  createModelRegistry,
  getModel,
  listModels,
  type ModelRegistry,
  type ModelRegistryOptions,
  type PriceOverride,
  type PriceOverrides,
} from "./registry.js";
export {
  closeTokenCounterPool,
  countPromptTokensOffThread,
  limitTokenCounterQueue,
  OFF_THREAD_MIN_CHARS,
  TokenCounterPool,
  TokenizerBusyError,
  type TokenCounterLimits,
} from "./token-pool.js";
export {
  countCompletionTokens,
  countPromptTokens,
  countTextTokens,
  type ChatContentPart,
  type ChatMessage,
  type ChatToolCall,
  type JsonSchema,
  type TokenizedModel,
  type ToolDefinition,
} from "./tokens.js";
export * from "./session-meter.js";

import type { Provider } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { createModelRegistry, parseRatio } from "@worldrouter/pricing";
import { CONFIG } from "@worldrouter/runtime";

/** The model catalogue with PRICE_OVERHEAD applied, built once at boot. */
export const MODEL_REGISTRY = Symbol("ModelRegistry");

export const modelRegistryProvider: Provider = {
  provide: MODEL_REGISTRY,
  inject: [CONFIG],
  useFactory: (config: Config) => createModelRegistry({ defaultOverhead: parseRatio(config.pricing.overhead) }),
};

import { Inject, Injectable, type OnApplicationShutdown } from "@nestjs/common";
import { isProviderConfigured, type Config } from "@worldrouter/config";
import type { Model, ModelRegistry, Provider } from "@worldrouter/pricing";
import { CONFIG } from "@worldrouter/runtime";
import { Agent } from "undici";
import { ANTHROPIC_DEFAULT_BASE_URL, AnthropicProvider } from "./anthropic.js";
import { ModelNotServedError, ModelUnavailableError } from "./errors.js";
import { LocalProvider } from "./local.js";
import { OPENAI_DEFAULT_BASE_URL, OpenAiProvider } from "./openai.js";
import type { ProviderAdapter } from "./provider.js";
import { MODEL_REGISTRY, WORKER_OPTIONS, type InferenceWorkerOptions } from "../tokens.js";

export interface Route {
  model: Model;
  adapter: ProviderAdapter;
}

/** Model → provider adapter, from the catalogue and the upstream config. */
@Injectable()
export class ProviderRouter implements OnApplicationShutdown {
  /** Absent: the provider is not configured and this is production, where the local provider does not exist. */
  private readonly adapters: Partial<Record<Provider, ProviderAdapter>>;
  /** Keep-alive connections to the providers; our own deadlines fire before undici's. */
  private readonly pool: Agent;

  constructor(
    @Inject(CONFIG) config: Config,
    @Inject(MODEL_REGISTRY) private readonly registry: ModelRegistry,
    @Inject(WORKER_OPTIONS) private readonly options: InferenceWorkerOptions,
  ) {
    const local = config.env === "production" ? undefined : new LocalProvider();
    const undiciTimeoutMs = config.upstream.timeoutMs + 5_000;
    this.pool = new Agent({ headersTimeout: undiciTimeoutMs, bodyTimeout: undiciTimeoutMs });
    const settings = (provider: Provider, defaultBaseUrl: string) => ({
      apiKey: config.upstream[provider].apiKey,
      baseUrl: config.upstream[provider].baseUrl ?? defaultBaseUrl,
      timeoutMs: config.upstream.timeoutMs,
      maxRetries: config.upstream.maxRetries,
      backoffMs: options.retryBackoffMs,
      dispatcher: this.pool,
    });
    this.adapters = {
      openai: isProviderConfigured(config, "openai") ? new OpenAiProvider(settings("openai", OPENAI_DEFAULT_BASE_URL)) : local,
      anthropic: isProviderConfigured(config, "anthropic")
        ? new AnthropicProvider(settings("anthropic", ANTHROPIC_DEFAULT_BASE_URL))
        : local,
    };
  }

  async onApplicationShutdown() {
    await this.pool.close();
  }

  /** The model's route first, then its fallbacks (tried only when a provider is unavailable before streaming). */
  routes(modelId: string): Route[] {
    const model = this.registry.getModel(modelId);
    if (!model) throw new ModelNotServedError(modelId);
    const fallbacks = (this.options.fallbacks?.[model.id] ?? [])
      .map((id) => this.registry.getModel(id))
      .filter((m): m is Model => m !== undefined);
    const routes = [model, ...fallbacks].flatMap((m) => {
      const adapter = this.adapters[m.provider];
      return adapter ? [{ model: m, adapter }] : [];
    });
    if (routes.length === 0) throw new ModelUnavailableError(model.id, model.provider);
    return routes;
  }
}

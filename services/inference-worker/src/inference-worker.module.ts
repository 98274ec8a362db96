import { Module, type DynamicModule } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { createModelRegistry, parseRatio } from "@worldrouter/pricing";
import { CoreModule, MoneyEventsModule } from "@worldrouter/runtime";
import { InferenceCancellations } from "./inference-cancellations.js";
import { InferenceJobConsumer } from "./inference-job-consumer.js";
import { ProviderRouter } from "./providers/provider-router.js";
import { ReplyStreams } from "./reply-streams.js";
import { RunInference } from "./run-inference.use-case.js";
import { MODEL_REGISTRY, WORKER_OPTIONS, type InferenceWorkerOptions } from "./tokens.js";

/** Runs inference jobs (from the dispatch stream) against the providers, streams chunks back, reports `inference.started` and `inference.usage` money events. */
@Module({})
export class InferenceWorkerModule {
  static forRoot(config: Config, options: InferenceWorkerOptions = {}): DynamicModule {
    const registry = createModelRegistry({ defaultOverhead: parseRatio(config.pricing.overhead) });
    const fallbacks = options.fallbacks ?? config.inference.fallbacks;
    // A typo in MODEL_FALLBACKS fails the boot instead of silently never falling back.
    for (const [model, alternatives] of Object.entries(fallbacks)) for (const id of [model, ...alternatives]) registry.requireModel(id);
    return {
      module: InferenceWorkerModule,
      imports: [CoreModule.forRoot("inference-worker", config), MoneyEventsModule.forRoot()],
      providers: [
        { provide: WORKER_OPTIONS, useValue: { ...options, fallbacks } },
        { provide: MODEL_REGISTRY, useValue: registry },
        ProviderRouter,
        ReplyStreams,
        InferenceCancellations,
        RunInference,
        InferenceJobConsumer,
      ],
    };
  }
}

import { Module, type DynamicModule } from "@nestjs/common";
import { APP_FILTER } from "@nestjs/core";
import type { Config } from "@worldrouter/config";
import { ChannelBalancesModule, CoreModule, MoneyEventsModule } from "@worldrouter/runtime";
import { ChargeCompletion } from "./chat/charge-completion.use-case.js";
import { ChatCompletionsController } from "./chat/chat-completions.controller.js";
import { QuoteRequest } from "./chat/quote-request.js";
import { DiscoveryController } from "./discovery/discovery.controller.js";
import { HealthController } from "./health/health.controller.js";
import { InternalListener } from "./health/internal-listener.js";
import { ProblemFilter } from "./http/problem.filter.js";
import { RateLimits } from "./http/rate-limits.js";
import { InferenceRelay } from "./inference/inference-relay.js";
import { ModelsController } from "./models/models.controller.js";
import { PaymentVerifierClient } from "./payment-verifier.client.js";
import { modelRegistryProvider } from "./pricing/model-registry.provider.js";
import { MeteredSession } from "./session/metered-session.js";
import { SessionCompletion } from "./session/session-completion.use-case.js";
import { SessionCompletionsController } from "./session/session-completions.controller.js";

/** The OpenAI-compatible HTTP edge. Owns nothing durable: prices, challenges, forwards, relays. */
@Module({})
export class GatewayModule {
  static forRoot(config: Config): DynamicModule {
    return {
      module: GatewayModule,
      imports: [CoreModule.forRoot("gateway", config), MoneyEventsModule.forRoot(), ChannelBalancesModule.forRoot()],
      controllers: [ChatCompletionsController, SessionCompletionsController, ModelsController, DiscoveryController, HealthController],
      providers: [
        modelRegistryProvider,
        QuoteRequest,
        ChargeCompletion,
        SessionCompletion,
        MeteredSession,
        PaymentVerifierClient,
        InferenceRelay,
        InternalListener,
        RateLimits,
        { provide: APP_FILTER, useClass: ProblemFilter },
      ],
    };
  }
}

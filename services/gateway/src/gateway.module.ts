import { Module, type DynamicModule } from "@nestjs/common";
import { APP_FILTER } from "@nestjs/core";
import type { Config } from "@worldrouter/config";
import { CoreModule, QueuesModule } from "@worldrouter/runtime";
import { HealthController } from "./health/health.controller.js";
import { ProblemFilter } from "./http/problem.filter.js";
import { PaymentVerifierClient } from "./payment-verifier.client.js";

/** The OpenAI-compatible HTTP edge. Owns nothing durable: prices, challenges, forwards, relays. */
@Module({})
export class GatewayModule {
  static forRoot(config: Config): DynamicModule {
    return {
      module: GatewayModule,
      imports: [CoreModule.forRoot("gateway", config), QueuesModule.forRoot(config, ["inference"])],
      controllers: [HealthController],
      providers: [PaymentVerifierClient, { provide: APP_FILTER, useClass: ProblemFilter }],
    };
  }
}

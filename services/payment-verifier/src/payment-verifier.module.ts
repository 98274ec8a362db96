import { Module, type DynamicModule } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { CoreModule, QueuesModule } from "@worldrouter/runtime";
import { VerifyChargeUseCase } from "./charge/verify-charge.use-case.js";
import { PaymentController } from "./payment.controller.js";

/** Decides "is this paid" (charge now, session channels next) and publishes `payments` events. */
@Module({})
export class PaymentVerifierModule {
  static forRoot(config: Config): DynamicModule {
    return {
      module: PaymentVerifierModule,
      imports: [CoreModule.forRoot("payment-verifier", config), QueuesModule.forRoot(config, ["payments"])],
      controllers: [PaymentController],
      providers: [VerifyChargeUseCase],
    };
  }
}

import { Module, type DynamicModule } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { DatabaseModule } from "@worldrouter/db";
import { CoreModule, JobConsumersModule, MoneyEventsModule, QueuesModule } from "@worldrouter/runtime";
import { ChargeRecordsJobs } from "./charge/charge-records.jobs.js";
import { RedisReplayStore } from "./charge/replay-store.js";
import { VerifyChargeUseCase } from "./charge/verify-charge.use-case.js";
import { PaymentController } from "./payment.controller.js";

/** Decides "is this paid" (charge now, session channels next) and publishes `charge.verified` money events. */
@Module({})
export class PaymentVerifierModule {
  static forRoot(config: Config): DynamicModule {
    return {
      module: PaymentVerifierModule,
      imports: [
        CoreModule.forRoot("payment-verifier", config),
        DatabaseModule.forRoot(config.databaseUrl),
        QueuesModule.forRoot(config, ["charge-records"]),
        MoneyEventsModule.forRoot(),
        JobConsumersModule.forRoot({ consumes: ["charge-records"], concurrency: { "charge-records": 4 } }),
      ],
      controllers: [PaymentController],
      providers: [RedisReplayStore, VerifyChargeUseCase, ChargeRecordsJobs],
    };
  }
}

import { Module, type DynamicModule } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { DatabaseModule } from "@worldrouter/db";
import { ChannelBalancesModule, CoreModule, JobConsumersModule, MoneyEventsModule, QueuesModule } from "@worldrouter/runtime";
import { ChargeOutcomesJobs } from "./charge/charge-outcomes.jobs.js";
import { ChargePaymentsRepository } from "./charge/charge-payments.repository.js";
import { ChargeRecordsJobs } from "./charge/charge-records.jobs.js";
import { RedisReplayStore } from "./charge/replay-store.js";
import { ResolveChargeOutcomesUseCase } from "./charge/resolve-charge-outcomes.use-case.js";
import { SponsorBudget } from "./charge/sponsor-budget.js";
import { VerifyChargeUseCase } from "./charge/verify-charge.use-case.js";
import { PaymentController } from "./payment.controller.js";
import { ChannelsRepository } from "./session/channels.repository.js";
import { VerifySessionUseCase } from "./session/verify-session.use-case.js";

/** Decides "is this paid" (charge transfers and session channels) and publishes `charge.verified` money events. */
@Module({})
export class PaymentVerifierModule {
  static forRoot(config: Config): DynamicModule {
    return {
      module: PaymentVerifierModule,
      imports: [
        CoreModule.forRoot("payment-verifier", config),
        DatabaseModule.forRoot(config.databaseUrl, config.database),
        QueuesModule.forRoot(config, ["charge-records", "charge-outcomes"]),
        MoneyEventsModule.forRoot(),
        ChannelBalancesModule.forRoot(),
        JobConsumersModule.forRoot({
          consumes: ["charge-records", "charge-outcomes"],
          concurrency: { "charge-records": 4, "charge-outcomes": 1 },
        }),
      ],
      controllers: [PaymentController],
      providers: [
        RedisReplayStore,
        SponsorBudget,
        ChargePaymentsRepository,
        VerifyChargeUseCase,
        ChannelsRepository,
        VerifySessionUseCase,
        ResolveChargeOutcomesUseCase,
        ChargeRecordsJobs,
        ChargeOutcomesJobs,
      ],
    };
  }
}

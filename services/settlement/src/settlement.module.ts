import { Module, type DynamicModule } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { DatabaseModule } from "@worldrouter/db";
import { CoreModule, JobConsumersModule, QueuesModule } from "@worldrouter/runtime";
import { SettlementJobs } from "./settlement.jobs.js";
import { RecordUsageUseCase } from "./usage/record-usage.use-case.js";

/** Writes the ledger from payment and usage events and settles on-chain. */
@Module({})
export class SettlementModule {
  static forRoot(config: Config): DynamicModule {
    return {
      module: SettlementModule,
      imports: [
        CoreModule.forRoot("settlement", config),
        DatabaseModule.forRoot(config.databaseUrl),
        QueuesModule.forRoot(config, ["settlement"]),
        JobConsumersModule.forRoot({ consumes: ["usage", "payments", "settlement"] }),
      ],
      providers: [SettlementJobs, RecordUsageUseCase],
    };
  }
}

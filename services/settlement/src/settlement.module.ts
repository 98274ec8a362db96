import { Module, type DynamicModule } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { DatabaseModule } from "@worldrouter/db";
import { CoreModule, JobConsumersModule, LeasesModule, QueuesModule } from "@worldrouter/runtime";
import { PayeeWallet } from "./chain/payee-wallet.js";
import { LedgerRepository } from "./ledger/ledger.repository.js";
import { RecordChargePaymentUseCase } from "./payments/record-charge-payment.use-case.js";
import { RefundChargeUseCase } from "./refunds/refund-charge.use-case.js";
import { SettlementJobs } from "./settlement.jobs.js";
import { SweepOrphanedChargesUseCase } from "./sweeps/sweep-orphaned-charges.use-case.js";
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
        LeasesModule.forRoot(config),
        // Signing is serialised by the payee signer lease across every replica; several refunds per process can
        // wait for their receipts at once.
        JobConsumersModule.forRoot({ consumes: ["usage", "payments", "settlement"], concurrency: { settlement: 4 } }),
      ],
      providers: [
        SettlementJobs,
        RecordUsageUseCase,
        RecordChargePaymentUseCase,
        RefundChargeUseCase,
        SweepOrphanedChargesUseCase,
        PayeeWallet,
        LedgerRepository,
      ],
    };
  }
}

import { Module, type DynamicModule } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { DatabaseModule } from "@worldrouter/db";
import { CoreModule, JobConsumersModule, LeasesModule, QueuesModule } from "@worldrouter/runtime";
import { PayeeWallet } from "./chain/payee-wallet.js";
import { LedgerRepository } from "./ledger/ledger.repository.js";
import { ApplyMoneyEventsUseCase } from "./money-events/apply-money-events.use-case.js";
import { MoneyEventConsumer } from "./money-events/money-event-consumer.js";
import { MoneyEventStream } from "./money-events/money-event-stream.js";
import { ReconcileChainUseCase } from "./reconciliation/reconcile-chain.use-case.js";
import { RefundChargeUseCase } from "./refunds/refund-charge.use-case.js";
import { OpsModule } from "./ops/ops.module.js";
import { SettlementJobs } from "./settlement.jobs.js";
import { SweepOrphanedChargesUseCase } from "./sweeps/sweep-orphaned-charges.use-case.js";

/**
 * Writes the ledger from the money-event stream (payments, inference starts, usage) and settles on-chain; serves the
 * ledger to ops (API, dashboard) on its own listener.
 */
@Module({})
export class SettlementModule {
  static forRoot(config: Config): DynamicModule {
    return {
      module: SettlementModule,
      imports: [
        CoreModule.forRoot("settlement", config),
        DatabaseModule.forRoot(config.databaseUrl, config.database),
        QueuesModule.forRoot(config, ["settlement"]),
        LeasesModule.forRoot(config),
        // Signing is serialised by the payee signer lease across every replica; several refunds per process can
        // wait for their receipts at once.
        JobConsumersModule.forRoot({ consumes: ["settlement"], concurrency: { settlement: 4 } }),
        OpsModule,
      ],
      providers: [
        SettlementJobs,
        MoneyEventStream,
        ApplyMoneyEventsUseCase,
        MoneyEventConsumer,
        RefundChargeUseCase,
        SweepOrphanedChargesUseCase,
        ReconcileChainUseCase,
        PayeeWallet,
        LedgerRepository,
      ],
    };
  }
}

import { Inject, Injectable } from "@nestjs/common";
import { JobHandler, type JobPayload } from "@worldrouter/runtime";
import type { Job } from "bullmq";
import { ReconcileChainUseCase } from "./reconciliation/reconcile-chain.use-case.js";
import { RefundChargeUseCase } from "./refunds/refund-charge.use-case.js";
import { SweepOrphanedChargesUseCase } from "./sweeps/sweep-orphaned-charges.use-case.js";

/** Queue edge of settlement: each consumed queue maps to one use-case (money events arrive by stream: `money-events/`). */
@Injectable()
export class SettlementJobs {
  constructor(
    @Inject(RefundChargeUseCase) private readonly refundCharge: RefundChargeUseCase,
    @Inject(SweepOrphanedChargesUseCase) private readonly sweepOrphanedCharges: SweepOrphanedChargesUseCase,
    @Inject(ReconcileChainUseCase) private readonly reconcileChain: ReconcileChainUseCase,
  ) {}

  @JobHandler("settlement")
  async onSettlement(job: JobPayload<"settlement">, raw: Job) {
    switch (job.kind) {
      case "refund":
        await this.refundCharge.refund(job.reference, { finalAttempt: raw.attemptsMade + 1 >= (raw.opts.attempts ?? 1) });
        return;
      case "charges.sweep":
        await this.sweepOrphanedCharges.sweepExclusively();
        return;
      case "chain.reconcile":
        await this.reconcileChain.reconcileExclusively();
        return;
    }
  }
}

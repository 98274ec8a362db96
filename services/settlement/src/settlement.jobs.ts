import { Inject, Injectable } from "@nestjs/common";
import { JobHandler, type JobPayload } from "@worldrouter/runtime";
import type { Job } from "bullmq";
import { RefundChargeUseCase } from "./refunds/refund-charge.use-case.js";
import { SweepOrphanedChargesUseCase } from "./sweeps/sweep-orphaned-charges.use-case.js";

/** Queue edge of settlement: each consumed queue maps to one use-case (money events arrive by stream: `money-events/`). */
@Injectable()
export class SettlementJobs {
  constructor(
    @Inject(RefundChargeUseCase) private readonly refundCharge: RefundChargeUseCase,
    @Inject(SweepOrphanedChargesUseCase) private readonly sweepOrphanedCharges: SweepOrphanedChargesUseCase,
  ) {}

  @JobHandler("settlement")
  async onSettlement(job: JobPayload<"settlement">, raw: Job) {
    if (job.kind === "refund")
      await this.refundCharge.refund(job.reference, { finalAttempt: raw.attemptsMade + 1 >= (raw.opts.attempts ?? 1) });
    else await this.sweepOrphanedCharges.sweepExclusively();
  }
}

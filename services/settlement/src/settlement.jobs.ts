import { Inject, Injectable } from "@nestjs/common";
import { JobHandler, type JobPayload } from "@worldrouter/runtime";
import type { Job } from "bullmq";
import { RecordChargePaymentUseCase } from "./payments/record-charge-payment.use-case.js";
import { RefundChargeUseCase } from "./refunds/refund-charge.use-case.js";
import { SweepOrphanedChargesUseCase } from "./sweeps/sweep-orphaned-charges.use-case.js";
import { RecordUsageUseCase } from "./usage/record-usage.use-case.js";

/** Queue edge of settlement: each consumed queue maps to one use-case. */
@Injectable()
export class SettlementJobs {
  constructor(
    @Inject(RecordUsageUseCase) private readonly recordUsage: RecordUsageUseCase,
    @Inject(RecordChargePaymentUseCase) private readonly recordPayment: RecordChargePaymentUseCase,
    @Inject(RefundChargeUseCase) private readonly refundCharge: RefundChargeUseCase,
    @Inject(SweepOrphanedChargesUseCase) private readonly sweepOrphanedCharges: SweepOrphanedChargesUseCase,
  ) {}

  @JobHandler("usage")
  async onUsage(event: JobPayload<"usage">) {
    await this.recordUsage.record(event);
  }

  @JobHandler("payments")
  async onPayment(event: JobPayload<"payments">) {
    await this.recordPayment.record(event);
  }

  @JobHandler("settlement")
  async onSettlement(job: JobPayload<"settlement">, raw: Job) {
    if (job.kind === "refund")
      await this.refundCharge.refund(job.reference, { finalAttempt: raw.attemptsMade + 1 >= (raw.opts.attempts ?? 1) });
    else await this.sweepOrphanedCharges.sweepExclusively();
  }
}

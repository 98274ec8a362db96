import { Inject, Injectable } from "@nestjs/common";
import { JobHandler, type JobPayload } from "@worldrouter/runtime";
import { RecordUsageUseCase } from "./usage/record-usage.use-case.js";

/** Queue edge of settlement: each consumed queue maps to one use-case. */
@Injectable()
export class SettlementJobs {
  constructor(@Inject(RecordUsageUseCase) private readonly recordUsage: RecordUsageUseCase) {}

  @JobHandler("usage")
  async onUsage(event: JobPayload<"usage">) {
    await this.recordUsage.record(event);
  }

  @JobHandler("payments")
  async onPayment(_event: JobPayload<"payments">) {}

  @JobHandler("settlement")
  async onSettlement(_job: JobPayload<"settlement">) {}
}
